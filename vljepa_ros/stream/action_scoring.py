"""Inverse dynamics by embedding (WorldPrediction-WM style): which action text best explains the
change between two world states? The state embedding (predictor output for a before/after clip
with the action query) is compared with each candidate's text embedding by cosine similarity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vljepa_ros.errors import EmptyLabelBankError, InvalidEmbeddingError
from vljepa_ros.stream.embedding_checks import l2_normalize, validate_embedding, validate_embedding_matrix


@dataclass
class RankedAction:
    text: str
    score: float  # cosine similarity between the state embedding and the action's text embedding
    probability: float  # softmax(score / temperature) over the candidates
    index: int  # position in the caller's candidate list


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def rank_actions(state_embedding, candidate_embeddings, candidates: list[str],
                 temperature: float = 0.07) -> list[RankedAction]:
    """Rank `candidates` best first. Raises EmptyLabelBankError for no candidates and
    InvalidEmbeddingError for NaN/Inf or mismatched dimensions."""
    if len(candidates) == 0:
        raise EmptyLabelBankError("no candidate actions to rank")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    state = validate_embedding(state_embedding, name="state embedding")
    texts = validate_embedding_matrix(candidate_embeddings, expected_dim=state.shape[0],
                                      name="candidate embeddings")
    if texts.shape[0] != len(candidates):
        raise InvalidEmbeddingError(f"{len(candidates)} candidates but {texts.shape[0]} candidate embeddings")
    scores = l2_normalize(texts) @ l2_normalize(state)
    probabilities = softmax(scores.astype(np.float64) / temperature)
    order = np.argsort(-scores, kind="stable")
    return [RankedAction(text=candidates[i], score=float(scores[i]), probability=float(probabilities[i]), index=int(i))
            for i in order]
