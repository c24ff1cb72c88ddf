"""VLJepa: X-encoder + predictor + Y-encoder, the whole VL-JEPA network.

    clip --XEncoder--> visual tokens --Predictor(query)--> predicted embedding  (L2-normalised, D)
    text --YEncoder--------------------------------------> target embedding     (L2-normalised, D)

Training pulls the two together with bidirectional InfoNCE (loss.py). At inference the predicted
embedding is the semantic state: compare it with text embeddings (classification, retrieval, action
scoring) or decode it to text (y_decoder.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import VLJepaConfig
from .predictor import Predictor
from .tokenizer import FixedLengthTokenizer
from .x_encoder import XEncoder, prepare_clips, visual_statistics
from .y_encoder import YEncoder


class VLJepa(nn.Module):
    def __init__(
        self,
        config: VLJepaConfig,
        query_tokenizer: FixedLengthTokenizer,
        text_tokenizer: FixedLengthTokenizer,
    ) -> None:
        super().__init__()
        config.validate()
        for role, tokenizer, table in (
            ("query", query_tokenizer, config.predictor["vocab_size"]),
            ("text", text_tokenizer, config.y_encoder["vocab_size"]),
        ):
            if tokenizer.vocab_size > table:
                raise ValueError(f"{role} tokenizer has {tokenizer.vocab_size} tokens but the embedding table {table}")
        self.config = config
        self.query_tokenizer = query_tokenizer
        self.text_tokenizer = text_tokenizer
        self.x_encoder = XEncoder(config)
        self.predictor = Predictor(config, visual_dim=self.x_encoder.hidden_size)
        self.y_encoder = YEncoder(config)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.predictor.parameters()).dtype

    def encode_clip(self, pixel_values: torch.Tensor, query_ids: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) float pixels + (B, Lq) query -> (B, D) unit predicted embeddings."""
        visual_tokens = self.x_encoder(pixel_values.to(self.dtype))
        return F.normalize(self.predictor(visual_tokens, query_ids, query_mask).float(), dim=-1)

    def encode_clip_with_statistics(
        self, pixel_values: torch.Tensor, query_ids: torch.Tensor, query_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """encode_clip plus the clip's visual statistics (B, 2 x encoder width): what inference engines run,
        so familiarity (stream/familiarity.py) costs no second pass."""
        visual_tokens = self.x_encoder(pixel_values.to(self.dtype))
        embedding = F.normalize(self.predictor(visual_tokens, query_ids, query_mask).float(), dim=-1)
        return embedding, visual_statistics(visual_tokens)

    def encode_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """(B, Lt) text tokens -> (B, D) unit target embeddings."""
        return F.normalize(self.y_encoder(text_ids, text_mask).float(), dim=-1)

    def forward(
        self,
        pixel_values: torch.Tensor,
        query_ids: torch.Tensor,
        query_mask: torch.Tensor,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward: (predicted, target) unit embeddings, both (B, D)."""
        return self.encode_clip(pixel_values, query_ids, query_mask), self.encode_text(text_ids, text_mask)

    # ---- convenience: raw frames and strings in, embeddings out -------------------------------------

    def prepare_clips(self, frames: np.ndarray | torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (T, H, W, 3), (B, T, H, W, 3) or a list of (T_i, H, W, 3) -> pixels (B, T, 3, S, S)."""
        return prepare_clips(frames, self.config).to(self.device)

    @torch.no_grad()
    def embed_clips(self, frames: np.ndarray | torch.Tensor | Sequence[np.ndarray], queries: Sequence[str] | str) -> torch.Tensor:
        pixels = self.prepare_clips(frames)
        if isinstance(queries, str):
            queries = [queries] * pixels.shape[0]
        if len(queries) != pixels.shape[0]:
            raise ValueError(f"{pixels.shape[0]} clips but {len(queries)} queries")
        query_ids, query_mask = self.query_tokenizer(list(queries))
        return self.encode_clip(pixels, query_ids.to(self.device), query_mask.to(self.device))

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a list of strings")
        outputs = []
        for start in range(0, len(texts), batch_size):
            text_ids, text_mask = self.text_tokenizer(list(texts[start : start + batch_size]))
            outputs.append(self.encode_text(text_ids.to(self.device), text_mask.to(self.device)))
        if not outputs:
            return torch.empty(0, self.config.shared_dim, device=self.device)
        return torch.cat(outputs)

    def component_parameter_counts(self, include_query_embeddings: bool = True) -> dict[str, int]:
        counts = {
            "x_encoder": sum(p.numel() for p in self.x_encoder.parameters()),
            "predictor": sum(p.numel() for p in self.predictor.parameters()),
            "y_encoder": sum(p.numel() for p in self.y_encoder.parameters()),
        }
        if not include_query_embeddings:
            counts["predictor"] -= self.predictor.embed_tokens.weight.numel()
        return counts


def new_model(config: VLJepaConfig, corpus: Sequence[str]) -> VLJepa:
    """A randomly initialised model whose byte-level BPE tokenizer is trained over `corpus` (small presets).

    The query and text tokenizers are the same tokenizer, with up to the preset's Y-encoder vocab_size
    entries; the embedding tables are then sized to it (config.with_vocab_sizes), so no rows are wasted.
    """
    from .tokenizer import build_byte_bpe_tokenizer

    tokenizer = build_byte_bpe_tokenizer(corpus, config.y_encoder["vocab_size"])
    config = config.with_vocab_sizes(len(tokenizer), len(tokenizer))
    return VLJepa(
        config,
        FixedLengthTokenizer(tokenizer, config.query_max_tokens),
        FixedLengthTokenizer(tokenizer, config.text_max_tokens),
    )
