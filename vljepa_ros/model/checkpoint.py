"""Save, load and assemble VL-JEPA checkpoints.

A model directory:
    config.json          VLJepaConfig
    model.safetensors    every weight of VLJepa (X-encoder, predictor, Y-encoder)
    query_tokenizer/     tokenizer of the predictor's query (Llama 3 in the paper preset)
    text_tokenizer/      tokenizer of the Y-encoder (Gemma in the paper preset)
    banks/*.txt          optional text banks, one text per line: answers (decoders), labels, captions, actions
    decoder/             optional: the PrefixDecoder (see y_decoder.py)

build_from_components() assembles the paper model from the public component checkpoints in Hugging
Face layout (V-JEPA 2, Llama-3.2-1B of which the last N layers are kept, EmbeddingGemma) plus a heads
file holding the parts VL-JEPA trains from scratch (visual projection, output projection, Y head).
Every problem is a CheckpointError naming the file at fault.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from transformers import Gemma3TextConfig, LlamaConfig, VJEPA2Config

from ..errors import CheckpointError
from ..paths import bank_file, read_text_lines
from .config import VLJepaConfig, get_preset
from .tokenizer import FixedLengthTokenizer, load_hf_tokenizer
from .vljepa import VLJepa

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
QUERY_TOKENIZER_DIR = "query_tokenizer"
TEXT_TOKENIZER_DIR = "text_tokenizer"
DECODER_DIR = "decoder"
# Parts VL-JEPA adds on top of the pretrained components; they live in the heads file.
HEAD_KEYS = (
    "predictor.visual_proj.weight",
    "predictor.visual_proj.bias",
    "predictor.out_proj.weight",
    "predictor.out_proj.bias",
    "y_encoder.head.weight",
    "y_encoder.head.bias",
)


# ---- whole-model checkpoints ------------------------------------------------------------------------


def _state_tensors(model: VLJepa, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The state dict on the CPU; `dtype` (e.g. bfloat16) recasts the floating-point tensors only."""
    return {name: (tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor).detach().cpu()
            .contiguous() for name, tensor in model.state_dict().items()}


def _write_weights(model: VLJepa, path: Path, dtype: torch.dtype | None = None) -> None:
    # save_file writes each tensor from its own memory: no second copy of a 5 GB model in RAM.
    # One metadata key only: safetensors stores metadata as a hash map, whose order is not stable.
    safetensors.torch.save_file(_state_tensors(model, dtype), str(path), metadata={"format": "pt"})


def _digest_update(digest: Any, name: str, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes in name order (independent of file layout)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        _digest_update(digest, name, tensors[name])
    return digest.hexdigest()


def _open_safetensors(path: Path) -> Any:
    _require(path)
    try:
        return safetensors.safe_open(str(path), framework="pt")
    except Exception as error:  # safetensors raises several types for truncated/corrupt files
        raise CheckpointError(f"cannot read {path}: {error}") from error


def file_weights_digest(path: Path) -> str:
    """weights_digest of a safetensors file, read one tensor at a time (a paper-size file never sits in RAM)."""
    digest = hashlib.sha256()
    with _open_safetensors(path) as weights:
        for name in sorted(weights.keys()):
            _digest_update(digest, name, weights.get_tensor(name))
    return digest.hexdigest()


def save_model(model: VLJepa, directory: str | Path, text_bank: list[str] | None = None,
               dtype: torch.dtype | None = None) -> Path:
    """Write config, weights and both tokenizers; an existing decoder/ in `directory` is left as it is.

    dtype=torch.bfloat16 stores the weights in bf16 (half the size of fp32); load_model casts them back
    into the model's fp32 parameters, so every fp32 weight is then rounded to bf16 once."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save(directory / CONFIG_FILE)
    # Write then rename, so a crash mid-save never leaves a truncated weights file behind.
    partial = directory / (WEIGHTS_FILE + ".partial")
    _write_weights(model, partial, dtype)
    partial.replace(directory / WEIGHTS_FILE)
    model.query_tokenizer.save(directory / QUERY_TOKENIZER_DIR)
    model.text_tokenizer.save(directory / TEXT_TOKENIZER_DIR)
    if text_bank is not None:
        save_banks(directory, {"answers": text_bank})
    return directory


def _require(path: Path) -> Path:
    if not path.exists():
        raise CheckpointError(f"missing checkpoint file: {path}")
    return path


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    _require(path)
    try:
        return safetensors.torch.load_file(str(path))
    except Exception as error:  # safetensors raises several types for truncated/corrupt files
        raise CheckpointError(f"cannot read {path}: {error}") from error


def check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], source: Path,
                     against: str = "the model config", shown: int = 5) -> None:
    """Raise CheckpointError naming `source`, the first `shown` missing, unexpected and wrongly shaped tensors,
    and the shapes `against` expects, when keys or shapes differ from the model's."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [f"{key}: file {tuple(found[key].shape)}, expected {tuple(expected[key].shape)}"
             for key in sorted(set(expected) & set(found)) if tuple(found[key].shape) != tuple(expected[key].shape)]
    problems = []
    if missing:
        named = ", ".join(f"{key} {tuple(expected[key].shape)}" for key in missing[:shown])
        problems.append(f"{len(missing)} missing tensors (expected {named})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors ({', '.join(unexpected[:shown])})")
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape ({'; '.join(wrong[:shown])})")
    if problems:
        raise CheckpointError(f"{source} does not match {against}: " + "; ".join(problems))


def load_config(directory: str | Path) -> VLJepaConfig:
    path = _require(Path(directory) / CONFIG_FILE)
    try:
        return VLJepaConfig.load(path)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"invalid model config {path}: {error}") from error


def load_tokenizer(directory: Path, max_length: int) -> FixedLengthTokenizer:
    """A saved tokenizer (a model's query_tokenizer/ or text_tokenizer/, or an HF checkpoint) at a fixed length."""
    if not directory.is_dir():
        raise CheckpointError(f"missing tokenizer directory: {directory}")
    try:
        return FixedLengthTokenizer.load(directory, max_length)
    except Exception as error:
        raise CheckpointError(f"cannot load tokenizer {directory}: {error}") from error


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> VLJepa:
    """Load a model saved by save_model; weights are restored exactly (bitwise)."""
    directory = Path(directory)
    config = load_config(directory)
    weights_path = directory / WEIGHTS_FILE
    with _open_safetensors(weights_path) as weights:  # opened first: a missing or corrupt file fails fast
        query_tokenizer = load_tokenizer(directory / QUERY_TOKENIZER_DIR, config.query_max_tokens)
        text_tokenizer = load_tokenizer(directory / TEXT_TOKENIZER_DIR, config.text_max_tokens)
        try:
            model = VLJepa(config, query_tokenizer, text_tokenizer)
        except ValueError as error:
            raise CheckpointError(f"{directory / CONFIG_FILE} does not match its tokenizers: {error}") from error
        # Shapes first (from the header), then one tensor at a time into the model: the peak is the model
        # plus its largest tensor, not twice the model. A bf16 file is cast into the fp32 parameters.
        shapes = {name: torch.empty(weights.get_slice(name).get_shape(), device="meta") for name in weights.keys()}
        state = model.state_dict()
        check_state_dict(state, shapes, weights_path)
        for name in shapes:
            state[name].copy_(weights.get_tensor(name))
    return model.to(device).eval()


def model_id(model_or_directory: VLJepa | str | Path) -> str:
    """'<preset>-<first 8 hex of weights_digest>': the same id for a model and its saved directory."""
    if isinstance(model_or_directory, VLJepa):
        name, digest = model_or_directory.config.name, weights_digest(_state_tensors(model_or_directory))
    else:
        directory = Path(model_or_directory)
        name = load_config(directory).name
        digest = file_weights_digest(directory / WEIGHTS_FILE)
    return f"{name}-{digest[:8]}"


def save_banks(directory: str | Path, banks: dict[str, list[str]]) -> None:
    """banks/<name>.txt (`vljepa_ros.paths.bank_file`), one text per line: labels (zero-shot classes),
    captions (retrieval decoder), actions (inverse-dynamics candidates), answers (every trained answer).
    The nodes read these when no file is configured."""
    for name, texts in banks.items():
        path = bank_file(directory, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")


def load_text_bank(directory: str | Path) -> list[str]:
    """The answers bank (banks/answers.txt): the texts the retrieval and generative decoders train on."""
    path = _require(bank_file(directory, "answers"))
    texts = read_text_lines(path)
    if not texts:
        raise CheckpointError(f"the text bank {path} is empty")
    return texts


# ---- assembling the paper model from component checkpoints -------------------------------------------

_LLAMA_KEYS = (
    "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
    "max_position_embeddings", "rms_norm_eps", "rope_parameters", "hidden_act", "attention_bias", "mlp_bias",
    "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range",
)  # fmt: skip
_GEMMA_KEYS = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "head_dim", "query_pre_attn_scalar", "vocab_size", "max_position_embeddings", "sliding_window", "layer_types",
    "rope_parameters", "hidden_activation", "rms_norm_eps", "final_logit_softcapping", "attn_logit_softcapping",
    "attention_bias", "use_bidirectional_attention", "pad_token_id", "bos_token_id", "eos_token_id",
    "initializer_range",
)  # fmt: skip
_VJEPA2_KEYS = (
    "patch_size", "crop_size", "frames_per_clip", "tubelet_size", "hidden_size", "in_chans", "num_attention_heads",
    "num_hidden_layers", "drop_path_rate", "mlp_ratio", "layer_norm_eps", "qkv_bias", "hidden_act",
    "initializer_range", "pred_hidden_size", "pred_num_attention_heads", "pred_num_hidden_layers",
    "pred_num_mask_tokens", "pred_mlp_ratio",
)  # fmt: skip


def _read_hf_config(config_class: Any, directory: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    path = _require(directory / CONFIG_FILE)
    try:
        config = config_class.from_pretrained(str(directory), local_files_only=True)
    except Exception as error:
        raise CheckpointError(f"invalid component config {path}: {error}") from error
    data = config.to_dict()  # to_dict undoes load-time conversions (e.g. Gemma's halved sliding window)
    return {key: data[key] for key in keys if key in data}


def _read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """model.safetensors, or the shards listed in model.safetensors.index.json."""
    single = directory / WEIGHTS_FILE
    index = directory / "model.safetensors.index.json"
    if single.exists():
        return read_safetensors(single)
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"invalid shard index {index}: {error}") from error
        weights: dict[str, torch.Tensor] = {}
        for shard in shards:
            weights.update(read_safetensors(directory / shard))
        return weights
    raise CheckpointError(f"missing checkpoint file: {single} (and no {index.name})")


def _strip_prefix(weights: dict[str, torch.Tensor], roots: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Keep tensors under `roots` ('layers', ...) with any model prefix removed, so LlamaModel,
    LlamaForCausalLM ('model.') and multimodal wrappers all map to the same names; drops lm_head."""
    stripped = {}
    for key, tensor in weights.items():
        for prefix in ("", "model.", "language_model.model.", "model.language_model."):
            if key.startswith(prefix) and key[len(prefix) :].split(".")[0] in roots:
                stripped[key[len(prefix) :]] = tensor
                break
    return stripped


def _dense_layers(gemma_dir: Path) -> list[Path]:
    """sentence-transformers Dense modules (2_Dense/, 3_Dense/ in EmbeddingGemma), in pipeline order."""
    dense = [p for p in gemma_dir.iterdir() if p.is_dir() and re.fullmatch(r"\d+_Dense", p.name)]
    return sorted(dense, key=lambda p: int(p.name.split("_")[0]))


def build_from_components(
    vjepa2_dir: str | Path,
    llama_dir: str | Path,
    gemma_dir: str | Path,
    heads_file: str | Path | None,
    predictor_layers: int = 8,
    base_config: VLJepaConfig | None = None,
) -> VLJepa:
    """Assemble VL-JEPA from Hugging Face component directories.

    vjepa2_dir: VJEPA2Model (config.json + model.safetensors); V-JEPA's own predictor weights are ignored.
    llama_dir:  LlamaModel or LlamaForCausalLM + its tokenizer; the LAST `predictor_layers` layers, the final
                norm and the embedding table become the predictor.
    gemma_dir:  Gemma3TextModel (EmbeddingGemma) + its tokenizer (+ N_Dense/ modules if present).
    heads_file: safetensors with HEAD_KEYS (a trained VL-JEPA's new layers); None = freshly initialised heads,
                the starting point for training.
    base_config: supplies the non-component settings (shared_dim, token lengths, frames, ...); default "paper".
    """
    vjepa2_dir, llama_dir, gemma_dir = Path(vjepa2_dir), Path(llama_dir), Path(gemma_dir)
    dense_dirs = _dense_layers(gemma_dir)
    dense_weights = [read_safetensors(d / WEIGHTS_FILE) for d in dense_dirs]
    for path, weights in zip(dense_dirs, dense_weights):
        if "linear.weight" not in weights:
            raise CheckpointError(f"{path / WEIGHTS_FILE} has no 'linear.weight'")
    heads = read_safetensors(Path(heads_file)) if heads_file is not None else None
    config, total_layers = component_config(vjepa2_dir, llama_dir, gemma_dir, predictor_layers,
                                            base_config or get_preset("paper"), dense_weights, heads)
    model = model_with_component_tokenizers(config, llama_dir, gemma_dir)
    expected = model.state_dict()

    def load_part(prefix: str, found: dict[str, torch.Tensor], source: Path) -> None:
        part_expected = {k[len(prefix) :]: v for k, v in expected.items() if k.startswith(prefix)}
        check_state_dict(part_expected, found, source)
        for key, tensor in found.items():
            expected[prefix + key].copy_(tensor)

    load_x_encoder_weights(expected, vjepa2_dir)
    # Predictor: the last `predictor_layers` Llama layers (the heads are VL-JEPA's own, loaded below).
    predictor = _last_llama_layers(_read_hf_weights(llama_dir), total_layers, predictor_layers)
    pretrained_keys = [k for k in expected if k.startswith("predictor.") and k not in HEAD_KEYS]
    check_state_dict({k[len("predictor.") :]: expected[k] for k in pretrained_keys}, predictor, llama_dir / WEIGHTS_FILE)
    for key, tensor in predictor.items():
        expected["predictor." + key].copy_(tensor)
    # Y-encoder: the Gemma 3 text model, then EmbeddingGemma's Dense modules.
    gemma_weights = _strip_prefix(_read_hf_weights(gemma_dir), ("layers", "embed_tokens", "norm"))
    load_part("y_encoder.gemma.", gemma_weights, gemma_dir / WEIGHTS_FILE)
    for index, (path, weights) in enumerate(zip(dense_dirs, dense_weights)):
        load_part(f"y_encoder.dense.{index}.", {"weight": weights["linear.weight"]}, path / WEIGHTS_FILE)
    if heads is not None:
        check_state_dict({k: expected[k] for k in HEAD_KEYS}, heads, Path(heads_file))
        for key in HEAD_KEYS:
            expected[key].copy_(heads[key])
    return model.eval()


def model_with_component_tokenizers(config: VLJepaConfig, llama_dir: Path, gemma_dir: Path) -> VLJepa:
    """A VLJepa of `config` (weights still to load) with the Llama tokenizer for queries and Gemma's for texts."""
    query_tokenizer = load_tokenizer(llama_dir, config.query_max_tokens)
    text_tokenizer = load_tokenizer(gemma_dir, config.text_max_tokens)
    try:
        return VLJepa(config, query_tokenizer, text_tokenizer)
    except ValueError as error:
        raise CheckpointError(f"tokenizers in {llama_dir} / {gemma_dir} do not fit the configs: {error}") from error


def load_x_encoder_weights(expected: dict[str, torch.Tensor], vjepa2_dir: Path) -> None:
    """Copy the encoder half of a VJEPA2Model directory into a VLJepa state dict (`expected`, in place)."""
    prefix = "x_encoder.vjepa2."
    found = {k: v for k, v in _read_hf_weights(vjepa2_dir).items() if k.startswith("encoder.")}
    check_state_dict({k[len(prefix) :]: v for k, v in expected.items() if k.startswith(prefix)}, found,
                     vjepa2_dir / WEIGHTS_FILE)
    for key, tensor in found.items():
        expected[prefix + key].copy_(tensor)


def component_config(vjepa2_dir: Path, llama_dir: Path, gemma_dir: Path, predictor_layers: int,
                     base: VLJepaConfig, dense_weights: list[dict[str, torch.Tensor]],
                     heads: dict[str, torch.Tensor] | None) -> tuple[VLJepaConfig, int]:
    """The VLJepaConfig the three component configs describe, and the Llama checkpoint's layer count."""
    x_encoder = _read_hf_config(VJEPA2Config, vjepa2_dir, _VJEPA2_KEYS)
    llama = _read_hf_config(LlamaConfig, llama_dir, _LLAMA_KEYS + ("num_hidden_layers",))
    gemma = _read_hf_config(Gemma3TextConfig, gemma_dir, _GEMMA_KEYS)
    total_layers = int(llama.pop("num_hidden_layers"))
    if not 1 <= predictor_layers <= total_layers:
        raise CheckpointError(
            f"{llama_dir / CONFIG_FILE}: asked for the last {predictor_layers} layers of a {total_layers}-layer model"
        )
    llama["num_layers"] = predictor_layers
    gemma["use_bidirectional_attention"] = True
    shared_dim = int(heads["predictor.out_proj.weight"].shape[0]) if heads and "predictor.out_proj.weight" in heads else base.shared_dim
    try:
        config = base.replace(
            name=base.name,
            image_size=int(x_encoder["crop_size"]),
            patch_size=int(x_encoder["patch_size"]),
            tubelet_size=int(x_encoder["tubelet_size"]),
            x_encoder=x_encoder,
            predictor=llama,
            y_encoder=gemma,
            y_dense_dims=[int(w["linear.weight"].shape[0]) for w in dense_weights],
            shared_dim=shared_dim,
        )
    except ValueError as error:
        raise CheckpointError(f"component configs in {vjepa2_dir} / {llama_dir} / {gemma_dir} disagree: {error}") from error
    return config, total_layers


def _last_llama_layers(weights: dict[str, torch.Tensor], total_layers: int, keep: int) -> dict[str, torch.Tensor]:
    """The last `keep` decoder layers, renumbered from 0, plus the final norm and the embedding table."""
    first = total_layers - keep
    predictor: dict[str, torch.Tensor] = {}
    for key, tensor in _strip_prefix(weights, ("layers", "embed_tokens", "norm")).items():
        if key.startswith("layers."):
            index = int(key.split(".")[1])
            if index >= first:
                predictor[f"layers.{index - first}." + key.split(".", 2)[2]] = tensor
        else:
            predictor[key] = tensor
    return predictor


def save_heads(model: VLJepa, path: str | Path) -> None:
    """Write the layers VL-JEPA trains from scratch (the heads file of build_from_components)."""
    state = model.state_dict()
    safetensors.torch.save_file({k: state[k].detach().cpu().contiguous() for k in HEAD_KEYS}, str(path))
