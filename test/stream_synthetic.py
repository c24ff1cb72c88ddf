"""Synthetic embedding streams with known boundaries, shared by the stream and evaluation tests."""
from __future__ import annotations

import numpy as np


def piecewise_constant_stream(lengths: list[int], dim: int = 64, noise: float = 0.5, seed: int = 0,
                              fps: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Unit embeddings that sit on one random direction per segment plus Gaussian noise of norm ~`noise`.

    Returns (embeddings (N, D), start stamps (N,), end stamps (N,), true boundary indices
    (index of the first embedding of each segment after the first)).
    """
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(len(lengths), dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    rows = []
    for direction, length in zip(directions, lengths):
        samples = direction + rng.normal(scale=noise / np.sqrt(dim), size=(length, dim))
        rows.append(samples / np.linalg.norm(samples, axis=1, keepdims=True))
    embeddings = np.concatenate(rows).astype(np.float32)
    end_ns = (1_000_000_000 + np.arange(len(embeddings)) * 1e9 / fps).astype(np.int64)
    start_ns = end_ns - 500_000_000  # each embedding's clip spans the half second before it
    boundaries = np.cumsum(lengths)[:-1].tolist()
    return embeddings, start_ns, end_ns, boundaries
