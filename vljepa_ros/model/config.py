"""VL-JEPA configuration and presets.

One dataclass describes a whole model. The component sections are plain keyword dicts of the
transformers config classes they build (VJEPA2Config, LlamaConfig, Gemma3TextConfig), so a preset
reads like the Hugging Face config.json of each component.

Presets:
  paper  V-JEPA 2 ViT-L/16 @256, 16 frames; last 8 of Llama-3.2-1B's 16 layers; EmbeddingGemma-300M; 1536-d.
  small  the CPU default model (same classes, trained from scratch on the tabletop world): < 25 MB.
  mid    about 10x small, for CPU benchmarks.
  tiny   unit tests: a forward takes milliseconds.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ImageNet statistics, as in V-JEPA 2's video processor (transformers IMAGENET_DEFAULT_MEAN/STD).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PIXEL_PIPELINES = ("vjepa2_processor", "torchvision_float")


@dataclass
class VLJepaConfig:
    name: str
    image_size: int  # square crop fed to the X-encoder
    frames_per_clip: int
    tubelet_size: int
    patch_size: int
    x_encoder: dict[str, Any]  # VJEPA2Config kwargs
    predictor: dict[str, Any]  # LlamaConfig kwargs + "num_layers"
    y_encoder: dict[str, Any]  # Gemma3TextConfig kwargs
    query_max_tokens: int
    text_max_tokens: int
    shared_dim: int
    # EmbeddingGemma's sentence-transformers Dense stack after mean pooling (768 -> 3072 -> 768, no bias).
    y_dense_dims: list[int] = field(default_factory=list)
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    # Pixel preprocessing (x_encoder.preprocess_frames). The defaults reproduce transformers'
    # VJEPA2VideoProcessor; a model trained with other transforms names them here (open-vljepa:
    # resize_shortest_edge=image_size, pixel_pipeline="torchvision_float").
    # Shortest side before the centre crop; 0 = image_size * 256 / 224, as the V-JEPA 2 processor.
    resize_shortest_edge: int = 0
    # PIXEL_PIPELINES: "vjepa2_processor" resizes the uint8 frames (rounded back to uint8) and crops at
    # floor((side - crop) / 2); "torchvision_float" scales to [0, 1] first, resizes in float (no
    # rounding) and crops at round((side - crop) / 2), as torchvision's Resize/CenterCrop on float tensors.
    pixel_pipeline: str = "vjepa2_processor"
    freeze_x_encoder: bool = True
    temperature: float = 0.07
    # The paper trains the pretrained Y-encoder with a 0.05x learning rate so it drifts slowly.
    y_encoder_lr_multiplier: float = 0.05

    def __post_init__(self) -> None:
        self.image_mean = tuple(float(v) for v in self.image_mean)
        self.image_std = tuple(float(v) for v in self.image_std)
        self.y_dense_dims = [int(v) for v in self.y_dense_dims]
        self.resize_shortest_edge = int(self.resize_shortest_edge)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError when sections disagree (a half-edited config must not build silently)."""
        x = self.x_encoder
        checks = {
            "x_encoder.patch_size": (x.get("patch_size"), self.patch_size),
            "x_encoder.tubelet_size": (x.get("tubelet_size"), self.tubelet_size),
            "x_encoder.crop_size": (x.get("crop_size"), self.image_size),
        }
        for key, (got, want) in checks.items():
            if got != want:
                raise ValueError(f"config {self.name!r}: {key}={got} does not match the top-level value {want}")
        if "num_layers" not in self.predictor:
            raise ValueError(f"config {self.name!r}: predictor needs 'num_layers'")
        if self.frames_per_clip < self.tubelet_size or self.frames_per_clip % self.tubelet_size:
            raise ValueError(
                f"config {self.name!r}: frames_per_clip={self.frames_per_clip} must be a multiple of "
                f"tubelet_size={self.tubelet_size}"
            )
        if self.image_size % self.patch_size:
            raise ValueError(f"config {self.name!r}: image_size must be a multiple of patch_size")
        if min(self.query_max_tokens, self.text_max_tokens, self.shared_dim) <= 0:
            raise ValueError(f"config {self.name!r}: token lengths and shared_dim must be positive")
        if self.temperature <= 0:
            raise ValueError(f"config {self.name!r}: temperature must be positive")
        if self.pixel_pipeline not in PIXEL_PIPELINES:
            raise ValueError(f"config {self.name!r}: pixel_pipeline={self.pixel_pipeline!r}; choose one of "
                             f"{', '.join(PIXEL_PIPELINES)}")
        if self.resize_shortest_edge and self.resize_shortest_edge < self.image_size:
            raise ValueError(f"config {self.name!r}: resize_shortest_edge={self.resize_shortest_edge} is smaller "
                             f"than the crop image_size={self.image_size}")

    @property
    def num_visual_tokens(self) -> int:
        side = self.image_size // self.patch_size
        return (self.frames_per_clip // self.tubelet_size) * side * side

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["image_mean"] = list(self.image_mean)
        data["image_std"] = list(self.image_std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VLJepaConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VLJepaConfig fields: {unknown}")
        return cls(**copy.deepcopy(data))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "VLJepaConfig":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "VLJepaConfig":
        return cls.from_json(Path(path).read_text())

    def replace(self, **changes: Any) -> "VLJepaConfig":
        return dataclasses.replace(copy.deepcopy(self), **changes)

    def with_vocab_sizes(self, query_vocab_size: int, text_vocab_size: int) -> "VLJepaConfig":
        """Copy with embedding tables sized to tokenizers we built ourselves (small presets)."""
        new = copy.deepcopy(self)
        new.predictor["vocab_size"] = int(query_vocab_size)
        new.y_encoder["vocab_size"] = int(text_vocab_size)
        return new


def _x_encoder(image_size: int, patch: int, tubelet: int, frames: int, hidden: int, layers: int, heads: int) -> dict:
    return dict(
        crop_size=image_size,
        patch_size=patch,
        tubelet_size=tubelet,
        frames_per_clip=frames,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        mlp_ratio=4.0,
        # V-JEPA's own predictor is dropped after construction; keep it minimal so building is cheap.
        pred_hidden_size=32,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
    )


def _llama(hidden: int, ffn: int, heads: int, kv_heads: int, layers: int, vocab: int, max_positions: int) -> dict:
    return dict(
        num_layers=layers,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        vocab_size=vocab,
        max_position_embeddings=max_positions,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )


def _gemma(hidden: int, ffn: int, heads: int, kv_heads: int, head_dim: int, layers: int, vocab: int) -> dict:
    return dict(
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        query_pre_attn_scalar=head_dim,
        vocab_size=vocab,
        max_position_embeddings=512,
        sliding_window=512,
        use_bidirectional_attention=True,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )


def _paper() -> VLJepaConfig:
    # Llama-3.2-1B geometry (config.json of meta-llama/Llama-3.2-1B), last 8 of its 16 layers.
    predictor = dict(
        num_layers=8,
        hidden_size=2048,
        intermediate_size=8192,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        vocab_size=128256,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
        },
        tie_word_embeddings=True,
        bos_token_id=128000,
        eos_token_id=128001,
    )
    # EmbeddingGemma-300M geometry (google/embeddinggemma-300m config.json): 24 layers, 5 sliding : 1 full.
    y_encoder = dict(
        hidden_size=768,
        intermediate_size=1152,
        num_hidden_layers=24,
        num_attention_heads=3,
        num_key_value_heads=1,
        head_dim=256,
        query_pre_attn_scalar=256,
        vocab_size=262144,
        max_position_embeddings=2048,
        sliding_window=512,
        layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 4,
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
        },
        use_bidirectional_attention=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    x_encoder = _x_encoder(256, 16, 2, 64, hidden=1024, layers=24, heads=16)
    # V-JEPA 2 ViT-L's own predictor geometry (dropped by XEncoder; kept so a real config.json round-trips).
    x_encoder.update(pred_hidden_size=384, pred_num_attention_heads=12, pred_num_hidden_layers=12)
    return VLJepaConfig(
        name="paper",
        image_size=256,
        frames_per_clip=16,
        tubelet_size=2,
        patch_size=16,
        x_encoder=x_encoder,
        predictor=predictor,
        y_encoder=y_encoder,
        y_dense_dims=[3072, 768],
        query_max_tokens=512,
        text_max_tokens=512,
        shared_dim=1536,
        freeze_x_encoder=True,
        y_encoder_lr_multiplier=0.05,
    )


def _small() -> VLJepaConfig:
    # 64 px, 8 frames, 16 px patches, tubelet 2 -> 4 x 4 x 4 = 64 visual tokens. Measured on the shared
    # 2-core CPU, 8 px patches (256 tokens) made a training step ~4x slower; with 16 px patches the
    # 25-minute training budget sees ~4x more clips, which mattered more than spatial detail here. The
    # predictor (its FLOPs dominated a step) is 3 layers of width 128 for the same reason.
    # Trained from scratch: the X-encoder is random-init, so it must train, and the Y-encoder has no
    # pretrained knowledge to protect, so its learning-rate multiplier is 1.0 (the paper's 0.05 exists to
    # keep EmbeddingGemma's pretrained space from drifting).
    return VLJepaConfig(
        name="small",
        image_size=64,
        frames_per_clip=8,
        tubelet_size=2,
        patch_size=16,
        x_encoder=_x_encoder(64, 16, 2, 8, hidden=128, layers=4, heads=4),
        # vocab: up to 1024 byte-level BPE entries (256 bytes + merges), room for whole words of several worlds.
        predictor=_llama(hidden=128, ffn=384, heads=4, kv_heads=2, layers=3, vocab=1024, max_positions=512),
        y_encoder=_gemma(hidden=128, ffn=384, heads=2, kv_heads=1, head_dim=64, layers=3, vocab=1024),
        query_max_tokens=16,
        text_max_tokens=16,
        shared_dim=128,
        freeze_x_encoder=False,
        temperature=0.07,
        y_encoder_lr_multiplier=1.0,
    )


def _mid() -> VLJepaConfig:
    # About 10x the small preset's parameters, same input geometry plus 128 px frames.
    return VLJepaConfig(
        name="mid",
        image_size=128,
        frames_per_clip=8,
        tubelet_size=2,
        patch_size=16,
        x_encoder=_x_encoder(128, 16, 2, 8, hidden=384, layers=6, heads=6),
        predictor=_llama(hidden=512, ffn=1536, heads=8, kv_heads=4, layers=4, vocab=4096, max_positions=1024),
        y_encoder=_gemma(hidden=256, ffn=768, heads=4, kv_heads=1, head_dim=64, layers=4, vocab=4096),
        query_max_tokens=32,
        text_max_tokens=32,
        shared_dim=384,
        freeze_x_encoder=False,
        y_encoder_lr_multiplier=1.0,
    )


def _tiny() -> VLJepaConfig:
    # Unit tests: 32 px, 4 frames, 16 px patches -> 2 x 2 x 2 = 8 visual tokens.
    return VLJepaConfig(
        name="tiny",
        image_size=32,
        frames_per_clip=4,
        tubelet_size=2,
        patch_size=16,
        x_encoder=_x_encoder(32, 16, 2, 4, hidden=32, layers=1, heads=2),
        # vocab: a budget of 512 byte-level BPE entries (256 bytes + 4 specials + merges, tokenizer.py), enough
        # for a test corpus's words to become single tokens; the tables are sized to what the corpus fills.
        predictor=_llama(hidden=32, ffn=64, heads=4, kv_heads=2, layers=2, vocab=512, max_positions=128),
        y_encoder=_gemma(hidden=32, ffn=64, heads=2, kv_heads=1, head_dim=16, layers=2, vocab=512),
        query_max_tokens=8,
        text_max_tokens=8,
        shared_dim=16,
        freeze_x_encoder=False,
        y_encoder_lr_multiplier=1.0,
    )


_PRESETS = {"paper": _paper, "small": _small, "mid": _mid, "tiny": _tiny}
PRESET_NAMES = tuple(_PRESETS)


def get_preset(name: str) -> VLJepaConfig:
    """A fresh copy of a named preset (callers may edit it freely)."""
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return _PRESETS[name]()
