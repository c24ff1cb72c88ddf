"""Metrics over embeddings: zero-shot classification, text->clip retrieval, inverse dynamics, caption accuracy.

Pure numpy on unit (or un-normalised: everything is re-normalised) embeddings, so each metric is
unit-tested on hand-made vectors. Chance levels are exact expectations of a uniform random guesser.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vljepa_ros.stream.action_scoring import rank_actions
from vljepa_ros.stream.label_bank import nearest_indices


def classification_accuracy(clip_embeddings: np.ndarray, label_embeddings: np.ndarray,
                            true_label_indices: np.ndarray) -> float:
    """Fraction of clips whose nearest label is the true one; clips with a negative true index are skipped."""
    true_label_indices = np.asarray(true_label_indices)
    valid = true_label_indices >= 0
    if not valid.any():
        return float("nan")
    predicted = nearest_indices(np.asarray(clip_embeddings)[valid], label_embeddings)
    return float(np.mean(predicted == true_label_indices[valid]))


def classification_chance(num_labels: int) -> float:
    """A uniform guess over the label bank."""
    return 1.0 / num_labels


def text_to_clip_recall_at_1(text_embeddings: np.ndarray, clip_embeddings: np.ndarray,
                             text_labels: Sequence, clip_labels: Sequence) -> tuple[float, float]:
    """(R@1, chance) of retrieving, for each text, a clip with the same label as the top-1 clip.

    Several gallery clips may share a label (the same action done twice); any of them is a hit.
    Chance for one text = (clips with its label) / (gallery size), averaged over texts.
    """
    text_labels, clip_labels = np.asarray(text_labels), np.asarray(clip_labels)
    if len(text_labels) == 0 or len(clip_labels) == 0:
        return float("nan"), float("nan")
    top = nearest_indices(text_embeddings, clip_embeddings)
    recall = float(np.mean(clip_labels[top] == text_labels))
    chance = float(np.mean([np.mean(clip_labels == label) for label in text_labels]))
    return recall, chance


def inverse_dynamics_accuracy(state_embeddings: np.ndarray, candidate_embeddings: Sequence[np.ndarray],
                              candidates: Sequence[Sequence[str]], answer_indices: Sequence[int]
                              ) -> tuple[float, float, list[int]]:
    """(accuracy, chance, predicted index per item): the best-ranked candidate (rank_actions) vs the answer."""
    if len(answer_indices) == 0:
        return float("nan"), float("nan"), []
    predicted = [rank_actions(state, texts, list(names))[0].index
                 for state, texts, names in zip(state_embeddings, candidate_embeddings, candidates)]
    accuracy = float(np.mean(np.array(predicted) == np.asarray(answer_indices)))
    chance = float(np.mean([1.0 / len(names) for names in candidates]))
    return accuracy, chance, predicted


def labels_per_step(num_steps: int, spans: Sequence[tuple[int, int]], span_labels: Sequence[int]) -> np.ndarray:
    """Expand (span, label) pairs to one label per time step (-1 where no span covers the step).

    Later spans overwrite earlier ones where they overlap.
    """
    per_step = np.full(num_steps, -1, dtype=np.int64)
    for (start, end), label in zip(spans, span_labels):
        per_step[max(start, 0):min(end, num_steps)] = label
    return per_step


def caption_accuracy(decoded_per_step: np.ndarray, true_per_step: np.ndarray) -> float:
    """Fraction of time steps (those with ground truth) whose shown decoded label equals the true label."""
    decoded_per_step, true_per_step = np.asarray(decoded_per_step), np.asarray(true_per_step)
    valid = true_per_step >= 0
    if not valid.any():
        return float("nan")
    return float(np.mean(decoded_per_step[valid] == true_per_step[valid]))
