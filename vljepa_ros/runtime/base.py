"""The one interface every inference backend implements.

An engine turns camera frames + a text query into a unit embedding (the X-encoder + predictor path),
with the clip's visual statistics for the familiarity score (stream/familiarity.py) from the same pass,
and texts into unit embeddings (the Y-encoder path). Preprocessing and tokenisation live here, once,
so every backend sees bit-identical inputs: the pixels come from the training preprocessing
(`vljepa_ros.model.x_encoder.prepare_clips`) and the query ids from the model's own tokenizer.
Backends only implement `_run_clips` and `_run_texts` on ready tensors.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from vljepa_ros.model.config import VLJepaConfig
    from vljepa_ros.model.tokenizer import FixedLengthTokenizer

from vljepa_ros.errors import ImageConversionError, InvalidEmbeddingError


WARM_UP_CALLS = 2  # the bare engine's timings in bench --pipeline settle after 2-3 calls; a paper-size model on CPU pays seconds each


@dataclass(frozen=True)
class ModelAssets:
    """What an engine needs besides the network weights: configuration, tokenizers and identity."""

    config: VLJepaConfig
    query_tokenizer: FixedLengthTokenizer  # texts -> (ids, mask) LongTensors (B, L)
    text_tokenizer: FixedLengthTokenizer
    model_id: str


class InferenceEngine(ABC):
    """Encode clips (frames + query) and texts into L2-normalised float32 embeddings."""

    backend: str = "abstract"

    def __init__(self, assets: ModelAssets, device: str, precision: str, query_tokens: int | None = None) -> None:
        self.assets = assets
        self.config = assets.config
        self.model_id: str = assets.model_id
        self.device: str = device
        self.precision: str = precision
        self.dimension: int = int(assets.config.shared_dim)
        self.frames_per_clip: int = int(assets.config.frames_per_clip)
        self.image_size: int = int(assets.config.image_size)
        self.statistics_dimension: int = 2 * int(assets.config.x_encoder["hidden_size"])
        # The paper pads queries to a fixed length; exported graphs bake that length in.
        self.query_tokens: int = int(query_tokens or assets.config.query_max_tokens)
        self.text_tokens: int = int(assets.config.text_max_tokens)
        self._query_tokenizer = with_length(assets.query_tokenizer, self.query_tokens)
        self._text_tokenizer = with_length(assets.text_tokenizer, self.text_tokens)
        # A robot asks the same query for every clip: tokenise it once.
        self._query_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # ----------------------------------------------------------------- public API
    def encode_clip(self, frames: np.ndarray, query: str) -> np.ndarray:
        """frames: uint8 (T, H, W, 3) RGB; returns the (D,) float32 unit embedding of the clip given the query."""
        frames = np.asarray(frames)
        if frames.ndim != 4:
            raise ImageConversionError(f"encode_clip expects frames of shape (T, H, W, 3), got {frames.shape}")
        return self.encode_clips(frames[None], query)[0]

    def encode_clips(self, frames: np.ndarray, query: str | list[str]) -> np.ndarray:
        """frames: uint8 (B, T, H, W, 3) RGB; query: one string for all clips or one per clip. Returns (B, D)."""
        return self.encode_clips_with_statistics(frames, query)[0]

    def encode_clips_with_statistics(self, frames: np.ndarray, query: str | list[str]) -> tuple[np.ndarray, np.ndarray]:
        """encode_clips plus each clip's visual statistics (B, 2 x X-encoder width) float32, from the same pass."""
        frames = self._check_frames(np.asarray(frames))
        batch = frames.shape[0]
        queries = [query] * batch if isinstance(query, str) else list(query)
        if len(queries) != batch:
            raise ValueError(f"got {batch} clips but {len(queries)} queries")
        pixel_values = self.preprocess(frames)
        query_ids, query_mask = self.tokenize_queries(queries)
        embeddings, statistics = self._run_clips(pixel_values, query_ids, query_mask)
        statistics = np.asarray(statistics, dtype=np.float32)
        if statistics.shape != (batch, self.statistics_dimension):
            raise InvalidEmbeddingError(f"{self.backend} visual statistics have shape {statistics.shape}, expected "
                                        f"({batch}, {self.statistics_dimension})")
        return self._check_output(embeddings, batch, "clip"), statistics

    def warm_up(self, calls: int = WARM_UP_CALLS) -> None:
        """Run a blank clip and a text through the engine: the first calls of a backend build its kernels
        (oneDNN primitives, ONNX Runtime's allocations) and take several times longer than the next ones;
        a node pays that at load time, not on its camera's first clips."""
        blank = np.zeros((1, self.frames_per_clip, self.image_size, self.image_size, 3), dtype=np.uint8)
        for _ in range(calls):
            self.encode_clips_with_statistics(blank, "")
        self.encode_texts([""])

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """texts: N strings; returns (N, D) float32 unit embeddings from the Y-encoder."""
        if isinstance(texts, str):
            raise TypeError("encode_texts expects a list of strings, got a single str")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids, mask = self.text_tokenizer_call(texts)
        return self._check_output(self._run_texts(ids, mask), len(texts), "text")

    def describe(self) -> dict[str, Any]:
        """A small dict for logs, diagnostics and benchmark reports."""
        return {
            "model_id": self.model_id, "backend": self.backend, "device": self.device, "precision": self.precision,
            "dimension": self.dimension, "frames_per_clip": self.frames_per_clip, "image_size": self.image_size,
            "query_tokens": self.query_tokens,
        }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"{type(self).__name__}({fields})"

    # ------------------------------------------------------------ shared helpers
    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> float32 CPU tensor (B, frames_per_clip, 3, S, S): the training
        preprocessing itself. A tensor, because the torch backend feeds it on as it is; the others take
        its numpy view (`.numpy()`, no copy)."""
        from vljepa_ros.model.x_encoder import prepare_clips
        return prepare_clips(frames, self.config)

    def shrink_frame(self, rgb: np.ndarray) -> np.ndarray:
        """One uint8 (H, W, 3) camera frame made as small as `preprocess` allows with bit-identical results
        (model/x_encoder.py shrink_frame): a stream shrinks each frame on arrival, off the clip's critical path."""
        from vljepa_ros.model.x_encoder import shrink_frame
        return shrink_frame(rgb, self.config)

    def tokenize_queries(self, queries: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Queries -> int64 (B, query_tokens) ids and mask; each distinct query is tokenised once."""
        rows = [self._tokenize_query(q) for q in queries]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])

    def _tokenize_query(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(query, str):
            raise TypeError(f"a query must be a str, got {type(query).__name__}")
        cached = self._query_cache.get(query)
        if cached is None:
            ids, mask = _call_tokenizer(self._query_tokenizer, [query], self.query_tokens)
            cached = (ids[0], mask[0])
            if len(self._query_cache) < 1024:  # bounded: queries come from parameters, not from data
                self._query_cache[query] = cached
        return cached

    def text_tokenizer_call(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return _call_tokenizer(self._text_tokenizer, texts, self.text_tokens)

    def _check_frames(self, frames: np.ndarray) -> np.ndarray:
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ImageConversionError(f"expected uint8 RGB frames of shape (B, T, H, W, 3), got {frames.shape}")
        if frames.dtype != np.uint8:
            raise ImageConversionError(f"expected uint8 RGB frames, got dtype {frames.dtype}")
        if 0 in frames.shape:
            raise ImageConversionError(f"empty frames array {frames.shape}")
        return frames

    def _check_output(self, embeddings: np.ndarray, batch: int, what: str) -> np.ndarray:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (batch, self.dimension):
            raise InvalidEmbeddingError(
                f"{self.backend} {what} embeddings have shape {embeddings.shape}, expected ({batch}, {self.dimension})")
        if not np.isfinite(embeddings).all():
            raise InvalidEmbeddingError(f"{self.backend} produced NaN/Inf {what} embeddings "
                                        f"(precision {self.precision}; try fp32)")
        return embeddings

    # ------------------------------------------------------- backend-specific part
    @abstractmethod
    def _run_clips(self, pixel_values: torch.Tensor, query_ids: np.ndarray,
                   query_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 CPU tensor (B,T,3,S,S), int64 (B,Lq), int64 (B,Lq) -> float32 (B, D) unit embeddings and
        float32 (B, 2 x X-encoder width) visual statistics (model.x_encoder.visual_statistics)."""

    @abstractmethod
    def _run_texts(self, text_ids: np.ndarray, text_mask: np.ndarray) -> np.ndarray:
        """int64 (N,Lt), int64 (N,Lt) -> float32 (N, D) unit embeddings."""


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def with_length(tokenizer: FixedLengthTokenizer, length: int) -> FixedLengthTokenizer:
    """The same FixedLengthTokenizer at another fixed length (an export may fix a length other than the config's)."""
    if getattr(tokenizer, "max_length", length) == length:
        return tokenizer
    resized = copy.copy(tokenizer)
    resized.max_length = int(length)
    return resized


def _call_tokenizer(tokenizer: FixedLengthTokenizer, texts: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    ids, mask = tokenizer(texts)
    ids, mask = _to_numpy(ids).astype(np.int64), _to_numpy(mask).astype(np.int64)
    if ids.shape[1] != length:
        raise ValueError(f"tokenizer produced {ids.shape[1]} tokens, the engine expects {length}")
    return ids, mask
