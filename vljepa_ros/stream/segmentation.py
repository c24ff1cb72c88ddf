"""Offline selective decoding (the paper's evaluation): split an embedding stream into N contiguous
segments with Ward agglomerative clustering under temporal connectivity, then decode once per
segment, at its midpoint, from the segment's mean embedding. Uniform decoding is the baseline.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering

from vljepa_ros.stream.embedding_checks import l2_normalize, validate_embedding_matrix


def temporal_connectivity(count: int) -> sparse.csr_matrix:
    """Chain graph i <-> i+1: Ward may only merge neighbours in time, so every cluster is contiguous."""
    ones = np.ones(max(count - 1, 0))
    return sparse.diags([ones, ones], offsets=[-1, 1], shape=(count, count), format="csr")


def ward_segments(embeddings: np.ndarray, n_segments: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) segments in time order; n_segments is clipped to [1, N]."""
    embeddings = validate_embedding_matrix(embeddings)
    count = embeddings.shape[0]
    if count == 0:
        return []
    n_segments = int(min(max(n_segments, 1), count))
    if n_segments == 1:
        return [(0, count)]
    if n_segments == count:
        return [(index, index + 1) for index in range(count)]
    labels = AgglomerativeClustering(n_clusters=n_segments, linkage="ward",
                                     connectivity=temporal_connectivity(count)).fit_predict(embeddings)
    return runs_of_labels(labels)


def runs_of_labels(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of equal consecutive labels."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    starts = np.concatenate([[0], np.flatnonzero(labels[1:] != labels[:-1]) + 1])
    ends = np.concatenate([starts[1:], [labels.size]])
    return [(int(start), int(end)) for start, end in zip(starts, ends)]


def segment_midpoints(segments: list[tuple[int, int]]) -> np.ndarray:
    """Index of each segment's middle element ((start + end - 1) // 2: the earlier one for even lengths)."""
    return np.array([(start + end - 1) // 2 for start, end in segments], dtype=np.int64)


def segment_decode_points(embeddings: np.ndarray, segments: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(midpoint indices (S,), unit mean embedding of each segment (S, D)): what the offline decoder decodes, and when."""
    embeddings = validate_embedding_matrix(embeddings)
    means = np.stack([embeddings[start:end].mean(axis=0) for start, end in segments]) if segments \
        else np.zeros((0, embeddings.shape[1]), np.float32)
    return segment_midpoints(segments), l2_normalize(means)


def uniform_decode_indices(stamps_ns: np.ndarray, rate_hz: float) -> np.ndarray:
    """Uniform decoding at `rate_hz`: at t0, t0 + 1/rate, ... decode the newest sample available then.

    Returns the sorted, unique indices into stamps_ns (ascending) of the decoded samples.
    """
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    if stamps_ns.size == 0:
        return np.zeros(0, dtype=np.int64)
    period_ns = 1e9 / rate_hz
    ticks = stamps_ns[0] + np.arange(0, (stamps_ns[-1] - stamps_ns[0]) / period_ns + 1e-9) * period_ns
    indices = np.searchsorted(stamps_ns, np.round(ticks).astype(np.int64), side="right") - 1
    return np.unique(indices)


# The name CONTRACTS.md lists; the same function.
uniform_decode_points = uniform_decode_indices
