"""Validation of embeddings that arrive from the network or from other processes."""
from __future__ import annotations

import numpy as np

from vljepa_ros.errors import InvalidEmbeddingError


def validate_embedding(values, expected_dim: int | None = None, name: str = "embedding") -> np.ndarray:
    """Return `values` as a 1-D float32 array, or raise InvalidEmbeddingError saying what is wrong.

    Rejects: not 1-D, wrong dimension, NaN/Inf, and an all-zero vector (it has no direction, so
    every cosine score against it would be meaningless).
    """
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InvalidEmbeddingError(f"{name} is not numeric: {error}") from error
    if array.ndim != 1:
        raise InvalidEmbeddingError(f"{name} must be 1-D, got shape {array.shape}")
    if expected_dim is not None and array.shape[0] != expected_dim:
        raise InvalidEmbeddingError(f"{name} has dimension {array.shape[0]}, expected {expected_dim}")
    if array.shape[0] == 0:
        raise InvalidEmbeddingError(f"{name} is empty")
    finite = np.isfinite(array)
    if not finite.all():
        bad = int((~finite).sum())
        raise InvalidEmbeddingError(f"{name} contains {bad} NaN/Inf value(s) (first at index {int(np.argmin(finite))})")
    if not np.any(array):
        raise InvalidEmbeddingError(f"{name} is all zeros")
    return array


UNIT_NORM_TOLERANCE = 0.01  # |norm - 1| allowed: fp16/bf16 engines round to ~1e-3; 37 is not an embedding


def require_unit_norm(array: np.ndarray, name: str = "embedding", tolerance: float = UNIT_NORM_TOLERANCE) -> np.ndarray:
    """`array` if its L2 norm is 1 within `tolerance`, else InvalidEmbeddingError. Embeddings on the wire
    are unit vectors (the cosine space the model was trained in); another norm means a foreign or broken
    publisher, whose vectors would move the shift detector's variance by the square of their norm."""
    norm = float(np.linalg.norm(array))
    if not abs(norm - 1.0) <= tolerance:
        raise InvalidEmbeddingError(f"{name} has norm {norm:.4g}: embeddings must be unit vectors "
                                    f"(norm 1 within {tolerance:g})")
    return array


def validate_embedding_matrix(values, expected_dim: int | None = None, name: str = "embeddings") -> np.ndarray:
    """Return `values` as a (N, D) float32 array with finite entries, or raise InvalidEmbeddingError."""
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 2:
        raise InvalidEmbeddingError(f"{name} must be 2-D (N, D), got shape {array.shape}")
    if expected_dim is not None and array.shape[1] != expected_dim:
        raise InvalidEmbeddingError(f"{name} have dimension {array.shape[1]}, expected {expected_dim}")
    if not np.isfinite(array).all():
        rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
        raise InvalidEmbeddingError(f"{name} contain NaN/Inf in {rows.size} row(s) (first row {int(rows[0])})")
    return array


def l2_normalize(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Unit-normalise along `axis`; zero rows stay zero instead of turning into NaN."""
    values = np.asarray(values, dtype=np.float32)
    norms = np.linalg.norm(values, axis=axis, keepdims=True)
    return values / np.maximum(norms, 1e-12)
