"""Y-decoders: text from a predicted embedding.

The paper calls its Y-decoder "lightweight" and invokes it only when text is needed, but does not
publish it. We provide two:

RetrievalDecoder  the nearest caption in a text bank embedded by the Y-encoder (returns the text and its
                  cosine score). Exact, cheap (one matrix product), and limited to texts in the bank: the
                  right choice for a closed world such as the tabletop demo.
PrefixDecoder     a small generative decoder: transformers LlamaForCausalLM (a few narrow layers) that
                  reads the embedding as `prefix_tokens` soft tokens (a linear projection, as in
                  ClipCap-style prefix decoding) followed by the caption tokens, trained with the
                  next-token loss. Chosen because it (a) reuses the Llama classes already in the
                  project (ONNX-exportable, no new dependency), (b) can phrase texts outside any bank,
                  and (c) trains in minutes on CPU. It is trained on Y-encoder embeddings of texts with
                  random perturbations (so it tolerates the gap between predicted and target
                  embeddings), optionally mixed with real predicted embeddings of clips.
                  Saved in the model directory under decoder/.
"""
from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from vljepa_ros.stream.label_bank import LabelBank

from ..errors import CheckpointError, EmptyLabelBankError
from .tokenizer import load_hf_tokenizer


# ---- retrieval ---------------------------------------------------------------------------------------


@dataclass
class DecodedText:
    text: str
    score: float  # cosine similarity between the query embedding and the text's embedding


class RetrievalDecoder:
    """Nearest text in a bank: a `LabelBank` of the texts' unit Y-encoder embeddings (N, D)."""

    def __init__(self, texts: Sequence[str], embeddings: torch.Tensor | np.ndarray) -> None:
        if len(texts) == 0:
            raise EmptyLabelBankError("the retrieval decoder needs at least one text in its bank")
        if isinstance(embeddings, torch.Tensor):
            embeddings = embeddings.detach().float().cpu().numpy()
        self.bank = LabelBank(texts, embeddings)

    @property
    def texts(self) -> list[str]:
        return self.bank.labels

    @property
    def embeddings(self) -> np.ndarray:
        return self.bank.embeddings

    @classmethod
    def from_model(cls, model, texts: Sequence[str]) -> "RetrievalDecoder":
        """Embed `texts` with the model's Y-encoder (model: VLJepa)."""
        if len(texts) == 0:
            raise EmptyLabelBankError("the retrieval decoder needs at least one text in its bank")
        return cls(texts, model.embed_texts(list(texts)).cpu())

    def top_k(self, embedding: torch.Tensor | np.ndarray, k: int = 5) -> list[DecodedText]:
        if isinstance(embedding, torch.Tensor):
            embedding = embedding.detach().float().cpu().numpy()
        return [DecodedText(text, score) for text, score in self.bank.top_k(np.ravel(embedding), k)]

    def decode(self, embedding: torch.Tensor | np.ndarray) -> DecodedText:
        return self.top_k(embedding, k=1)[0]


# ---- generative prefix decoder -------------------------------------------------------------------------


@dataclass
class PrefixDecoderConfig:
    embedding_dim: int
    vocab_size: int
    prefix_tokens: int = 2
    hidden_size: int = 128
    num_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 256
    max_text_tokens: int = 20

    def llama_config(self, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            head_dim=self.hidden_size // self.num_attention_heads,
            max_position_embeddings=self.prefix_tokens + self.max_text_tokens + 1,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=True,
            attn_implementation="sdpa",
        )


class PrefixDecoder(nn.Module):
    def __init__(self, config: PrefixDecoderConfig, tokenizer: PreTrainedTokenizerFast) -> None:
        super().__init__()
        if tokenizer.eos_token_id is None or tokenizer.bos_token_id is None:
            raise ValueError("the decoder's tokenizer needs bos and eos tokens")
        self.config = config
        self.tokenizer = tokenizer
        self.prefix_proj = nn.Linear(config.embedding_dim, config.prefix_tokens * config.hidden_size)
        self.lm = LlamaForCausalLM(config.llama_config(tokenizer))

    def _prefix(self, embeddings: torch.Tensor) -> torch.Tensor:
        embeddings = F.normalize(embeddings.float(), dim=-1).to(self.prefix_proj.weight.dtype)
        return self.prefix_proj(embeddings).view(len(embeddings), self.config.prefix_tokens, self.config.hidden_size)

    def encode_targets(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """[BOS] text [EOS], right padded to the longest (at most max_text_tokens + 1)."""
        rows = []
        for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
            ids = [self.tokenizer.bos_token_id, *ids[: self.config.max_text_tokens - 1], self.tokenizer.eos_token_id]
            rows.append(ids)
        length = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (length - len(r)) for r in rows], dtype=torch.long)
        mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows], dtype=torch.long)
        return ids, mask

    def loss(self, embeddings: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        ids, mask = self.encode_targets(texts)
        ids, mask = ids.to(embeddings.device), mask.to(embeddings.device)
        prefix = self._prefix(embeddings)
        inputs = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
        attention = torch.cat([torch.ones(prefix.shape[:2], dtype=mask.dtype, device=mask.device), mask], dim=1)
        # Prefix positions and padding carry no label; the [BOS] label is skipped too (it is always first).
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, 0] = -100
        ignore = torch.full(prefix.shape[:2], -100, dtype=labels.dtype, device=labels.device)
        return self.lm(inputs_embeds=inputs, attention_mask=attention, labels=torch.cat([ignore, labels], 1)).loss

    @torch.no_grad()
    def generate(self, embeddings: torch.Tensor | np.ndarray, max_new_tokens: int | None = None) -> list[str]:
        """Greedy decoding from (B, D) or (D,) embeddings -> B strings."""
        embeddings = torch.as_tensor(np.asarray(embeddings, dtype=np.float32) if isinstance(embeddings, np.ndarray) else embeddings)
        if embeddings.ndim == 1:
            embeddings = embeddings[None]
        if embeddings.shape[-1] != self.config.embedding_dim:
            raise ValueError(f"embedding dimension {embeddings.shape[-1]}, decoder expects {self.config.embedding_dim}")
        device = self.prefix_proj.weight.device
        max_new_tokens = max_new_tokens or self.config.max_text_tokens
        batch = len(embeddings)
        tokens = torch.full((batch, 1), self.tokenizer.bos_token_id, dtype=torch.long, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        prefix = self._prefix(embeddings.to(device))
        embed = self.lm.get_input_embeddings()
        for _ in range(max_new_tokens):
            # Sequences are a few tokens long, so recomputing without a KV cache is cheap and simple.
            logits = self.lm(inputs_embeds=torch.cat([prefix, embed(tokens)], dim=1)).logits[:, -1]
            next_token = logits.argmax(-1).masked_fill(finished, self.tokenizer.pad_token_id)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
            finished |= next_token == self.tokenizer.eos_token_id
            if finished.all():
                break
        return [self.tokenizer.decode(row[1:].tolist(), skip_special_tokens=True).strip() for row in tokens]

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(dataclasses.asdict(self.config), indent=2) + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if k != "lm.lm_head.weight"}
        safetensors.torch.save_file(state, str(directory / "model.safetensors"))
        self.tokenizer.save_pretrained(str(directory / "tokenizer"))

    @classmethod
    def load(cls, directory: str | Path) -> "PrefixDecoder":
        directory = Path(directory)
        config_path, weights_path = directory / "config.json", directory / "model.safetensors"
        for path in (config_path, weights_path, directory / "tokenizer"):
            if not path.exists():
                raise CheckpointError(f"missing decoder file: {path}")
        try:
            config = PrefixDecoderConfig(**json.loads(config_path.read_text()))
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"invalid decoder config {config_path}: {error}") from error
        decoder = cls(config, load_hf_tokenizer(directory / "tokenizer"))
        from .checkpoint import check_state_dict, read_safetensors

        weights = read_safetensors(weights_path)
        expected = {k: v for k, v in decoder.state_dict().items() if k != "lm.lm_head.weight"}  # tied to embeddings
        check_state_dict(expected, weights, weights_path)
        decoder.load_state_dict(weights, strict=False)
        return decoder.eval()


def load_decoder(model_directory: str | Path) -> PrefixDecoder | None:
    """The PrefixDecoder saved under <model_directory>/decoder, or None when there is none."""
    directory = Path(model_directory) / "decoder"
    return PrefixDecoder.load(directory) if directory.exists() else None


def perturb(embeddings: torch.Tensor, max_noise: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit embeddings moved along a random orthogonal direction by a random length in [0, max_noise], then
    renormalised. max_noise 0.75 leaves cosine >= 0.8 to the original: about the gap between predictions
    and targets."""
    noise = torch.randn(embeddings.shape, generator=generator).to(embeddings.device)
    # Orthogonal to the embedding, so a step of length r leaves cosine exactly 1 / sqrt(1 + r^2).
    noise = F.normalize(noise - (noise * embeddings).sum(-1, keepdim=True) * embeddings, dim=-1)
    scale = torch.rand(len(embeddings), 1, generator=generator).to(embeddings.device) * max_noise
    return F.normalize(embeddings + scale * noise, dim=-1)


def train_decoder(
    model,
    texts: Sequence[str],
    steps: int = 1500,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    max_noise: float = 0.75,
    seed: int = 0,
    decoder_config: PrefixDecoderConfig | None = None,
    predicted: tuple[torch.Tensor, Sequence[str]] | None = None,
    progress: bool = True,
) -> tuple[PrefixDecoder, list[float]]:
    """Train a PrefixDecoder to reproduce `texts` from their (perturbed) Y-encoder embeddings.

    model: the VLJepa whose embedding space is decoded (it stays frozen).
    predicted: optional (embeddings (M, D), texts) from the predictor on real clips, mixed in 1:1 with the
    text-embedding batches so the decoder also sees the distribution it will decode at inference.
    Returns the decoder (eval mode) and the per-step losses.
    """
    texts = sorted(set(texts))
    if not texts:
        raise EmptyLabelBankError("train_decoder needs at least one text")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = model.text_tokenizer.tokenizer
    config = decoder_config or PrefixDecoderConfig(embedding_dim=model.config.shared_dim, vocab_size=len(tokenizer))
    decoder = PrefixDecoder(config, tokenizer).train()
    targets = model.embed_texts(texts).cpu()
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.05)
    losses: list[float] = []
    for _ in tqdm(range(steps), desc="train decoder", disable=not progress):
        picks = [rng.randrange(len(texts)) for _ in range(batch_size)]
        batch_embeddings = perturb(targets[picks], max_noise, generator)
        batch_texts = [texts[i] for i in picks]
        if predicted is not None and len(predicted[1]) > 0:
            extra = [rng.randrange(len(predicted[1])) for _ in range(batch_size)]
            batch_embeddings = torch.cat([batch_embeddings, predicted[0][extra].cpu().float()])
            batch_texts += [predicted[1][i] for i in extra]
        loss = decoder.loss(batch_embeddings, batch_texts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return decoder.eval(), losses
