"""A fixed set of labels with their text embeddings, for zero-shot classification and retrieval decoding.

The one nearest-text search of the package: the perception node's top-k labels, the retrieval
Y-decoder (`model.y_decoder.RetrievalDecoder`) and the evaluation's metrics all rank by `nearest_indices`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vljepa_ros.errors import EmptyLabelBankError, InvalidEmbeddingError
from vljepa_ros.stream.embedding_checks import l2_normalize, validate_embedding, validate_embedding_matrix


def nearest_indices(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Row index of the most cosine-similar bank row for each query row: (N, D), (M, D) -> (N,)."""
    return np.argmax(l2_normalize(np.asarray(queries, dtype=np.float32)) @ l2_normalize(np.asarray(bank, dtype=np.float32)).T,
                     axis=1)


class LabelBank:
    def __init__(self, labels: Sequence[str], embeddings) -> None:
        if len(labels) == 0:
            raise EmptyLabelBankError("label bank has no labels")
        embeddings = validate_embedding_matrix(embeddings, name="label embeddings")
        if embeddings.shape[0] != len(labels):
            raise InvalidEmbeddingError(f"label bank has {len(labels)} labels but {embeddings.shape[0]} embeddings")
        self.labels = list(labels)
        self.embeddings = l2_normalize(embeddings)  # (N, D) unit rows: a dot product is a cosine

    @classmethod
    def from_texts(cls, labels: Sequence[str], encode_texts_fn: Callable[[list[str]], np.ndarray]) -> "LabelBank":
        """Embed `labels` with e.g. engine.encode_texts."""
        if len(labels) == 0:
            raise EmptyLabelBankError("label bank has no labels")
        return cls(labels, np.asarray(encode_texts_fn(list(labels))))

    @property
    def dimension(self) -> int:
        return self.embeddings.shape[1]

    def __len__(self) -> int:
        return len(self.labels)

    def scores(self, embeddings) -> np.ndarray:
        """Cosine similarity of each query (N, D) (or one (D,)) to each label: (N, L) (or (L,))."""
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim == 1:
            return self.embeddings @ l2_normalize(validate_embedding(queries, self.dimension))
        return l2_normalize(validate_embedding_matrix(queries, self.dimension)) @ self.embeddings.T

    def nearest(self, embeddings) -> np.ndarray:
        """Index of the best label for each query row (N,)."""
        queries = validate_embedding_matrix(np.atleast_2d(np.asarray(embeddings, dtype=np.float32)), self.dimension)
        return nearest_indices(queries, self.embeddings)

    def top_k(self, embedding, k: int = 5) -> list[tuple[str, float]]:
        """The k best (label, cosine score) for one embedding, best first."""
        scores = self.scores(validate_embedding(embedding, self.dimension))
        order = np.argsort(-scores, kind="stable")[:max(k, 0)]
        return [(self.labels[i], float(scores[i])) for i in order]


@dataclass(frozen=True)
class LabelConfidence:
    """How sure the bank's best label is: what a planner weighs before acting on it."""
    probability: float  # softmax probability of the best label over the bank at the model's temperature (-1: no bank)
    margin: float  # cosine of the best label minus the second best's (-1 with fewer than two labels)


def label_confidence(scores: np.ndarray, temperature: float) -> LabelConfidence:
    """Confidence of the best of `scores` (cosines to every label of a bank, (L,)).

    The softmax at the training temperature is the distribution InfoNCE trained the cosines to express;
    `vljepa-ros eval` measures how well calibrated it is (expected calibration error)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return LabelConfidence(-1.0, -1.0)
    logits = scores / float(temperature)
    weights = np.exp(logits - logits.max())
    probability = float(weights.max() / weights.sum())
    if scores.size < 2:
        return LabelConfidence(probability, -1.0)
    second, best = np.partition(scores, scores.size - 2)[-2:]
    return LabelConfidence(probability, float(best - second))
