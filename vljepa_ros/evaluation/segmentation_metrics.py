"""Event segmentation metrics as the field reports them.

Temporal action segmentation, exactly as MS-TCN's eval.py (Farha & Gall, CVPR 2019;
github.com/yabufarha/ms-tcn/blob/master/eval.py) defines them on frame-wise label sequences:
  segments      runs of equal labels, the background label left out; as in MS-TCN the last segment's
                end is the last frame's index (not one past it), which MS-TCN's published numbers include;
  edit score    (1 - Levenshtein(predicted segment labels, true segment labels) / max(lengths)) * 100;
  F1@k          a predicted segment is a true positive when its IoU with the best same-label true
                segment not yet matched is >= k/100; F1 = 2PR / (P + R) * 100;
  frame accuracy  percent of frames whose label is right (here: of labelled frames).
Our "frames" are the evaluation's time steps (one per clip); -1 (unlabelled) is the background.

Boundary F1 as in generic event boundary detection (Shou et al., ICCV 2021): predicted boundaries are
matched one-to-one to true boundaries no farther than the tolerance (in seconds); the matching
maximises the number of matches (scipy's linear_sum_assignment), ties going to the nearer pairs.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

BACKGROUND = -1  # the label of unlabelled steps; MS-TCN's "background" class
OVERLAPS = (0.10, 0.25, 0.50)  # F1@{10,25,50}
BOUNDARY_TOLERANCES_S = (1.0, 2.0)


def labels_start_end(frame_labels: Sequence[int], background: int = BACKGROUND) -> tuple[list, list, list]:
    """MS-TCN's get_labels_start_end_time: (labels, starts, ends) of each run of equal labels."""
    labels, starts, ends = [], [], []
    if len(frame_labels) == 0:
        return labels, starts, ends
    last = frame_labels[0]
    if last != background:
        labels.append(last)
        starts.append(0)
    index = 0
    for index, label in enumerate(frame_labels):
        if label != last:
            if label != background:
                labels.append(label)
                starts.append(index)
            if last != background:
                ends.append(index)
            last = label
    if last != background:
        ends.append(index)  # MS-TCN: the last frame's index
    return labels, starts, ends


def levenshtein(predicted: Sequence, truth: Sequence) -> int:
    """Edit distance between two label sequences (insertions, deletions, substitutions cost 1)."""
    distances = np.arange(len(truth) + 1)
    for row, label in enumerate(predicted, start=1):
        previous_diagonal, distances[0] = distances[0], row
        for column, true_label in enumerate(truth, start=1):
            substitution = previous_diagonal + (label != true_label)
            previous_diagonal = distances[column]
            distances[column] = min(distances[column] + 1, distances[column - 1] + 1, substitution)
    return int(distances[-1])


def edit_score(predicted: Sequence[int], truth: Sequence[int]) -> float:
    """MS-TCN's normalised edit score in [0, 100] (100 when both have no segment)."""
    predicted_segments, _, _ = labels_start_end(predicted)
    true_segments, _, _ = labels_start_end(truth)
    longest = max(len(predicted_segments), len(true_segments))
    return 100.0 if longest == 0 else (1.0 - levenshtein(predicted_segments, true_segments) / longest) * 100.0


def segment_hits(predicted: Sequence[int], truth: Sequence[int], overlap: float) -> tuple[int, int, int]:
    """MS-TCN's f_score: (true positives, false positives, false negatives) at IoU `overlap`."""
    p_labels, p_starts, p_ends = labels_start_end(predicted)
    y_labels, y_starts, y_ends = labels_start_end(truth)
    y_starts, y_ends, y_labels = np.array(y_starts), np.array(y_ends), np.array(y_labels)
    hits = np.zeros(len(y_labels), dtype=bool)
    true_positives = false_positives = 0
    for label, start, end in zip(p_labels, p_starts, p_ends):
        if len(y_labels) == 0:
            false_positives += 1
            continue
        intersection = np.minimum(end, y_ends) - np.maximum(start, y_starts)
        union = np.maximum(end, y_ends) - np.minimum(start, y_starts)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0) * (y_labels == label)
        best = int(np.argmax(iou))
        if iou[best] >= overlap and not hits[best]:
            true_positives += 1
            hits[best] = True
        else:
            false_positives += 1
    return true_positives, false_positives, int(len(y_labels) - hits.sum())


def f1_from_counts(true_positives: int, false_positives: int, false_negatives: int) -> float:
    precision = true_positives / (true_positives + false_positives) if true_positives + false_positives else 0.0
    recall = true_positives / (true_positives + false_negatives) if true_positives + false_negatives else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def segmental_f1(predicted: Sequence[int], truth: Sequence[int], overlap: float) -> float:
    """F1@overlap in [0, 100], MS-TCN's definition."""
    return 100.0 * f1_from_counts(*segment_hits(predicted, truth, overlap))


def frame_accuracy(predicted: Sequence[int], truth: Sequence[int]) -> float:
    """Percent of labelled steps (truth != background) whose predicted label is right; NaN if none."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    labelled = truth != BACKGROUND
    return float(100.0 * np.mean(predicted[labelled] == truth[labelled])) if labelled.any() else float("nan")


def boundary_scores(predicted_s: Sequence[float], truth_s: Sequence[float], tolerance_s: float) -> dict:
    """Precision, recall and F1 (in [0, 1]) of predicted boundary times matched one-to-one within tolerance."""
    predicted_s, truth_s = np.asarray(predicted_s, dtype=float), np.asarray(truth_s, dtype=float)
    matches = 0
    if predicted_s.size and truth_s.size:
        distance = np.abs(predicted_s[:, None] - truth_s[None, :])
        within = distance <= tolerance_s + 1e-9
        # Each match is worth more than any distance saving, so the assignment maximises the match count.
        cost = np.where(within, distance / (tolerance_s + 1.0), float(max(len(predicted_s), len(truth_s)) + 1))
        rows, columns = linear_sum_assignment(cost)
        matches = int(within[rows, columns].sum())
    false_positives, false_negatives = predicted_s.size - matches, truth_s.size - matches
    return {"precision": matches / predicted_s.size if predicted_s.size else 0.0,
            "recall": matches / truth_s.size if truth_s.size else 0.0,
            "f1": f1_from_counts(matches, false_positives, false_negatives),
            "matched": matches, "predicted": int(predicted_s.size), "true": int(truth_s.size)}


def segmentation_report(predicted: Sequence[int], truth: Sequence[int], predicted_boundaries_s: Sequence[float],
                        true_boundaries_s: Sequence[float]) -> dict:
    """Every metric above for one prediction; `predicted` steps without ground truth are not judged."""
    predicted, truth = np.asarray(predicted, dtype=np.int64), np.asarray(truth, dtype=np.int64)
    predicted = np.where(truth == BACKGROUND, BACKGROUND, predicted)
    report = {f"boundary_f1_{tolerance:g}s": boundary_scores(predicted_boundaries_s, true_boundaries_s, tolerance)["f1"]
              for tolerance in BOUNDARY_TOLERANCES_S}
    report.update({f"f1_at_{round(overlap * 100)}": segmental_f1(predicted, truth, overlap) for overlap in OVERLAPS})
    report["edit_score"] = edit_score(predicted, truth)
    report["frame_accuracy"] = frame_accuracy(predicted, truth)
    report["predicted_boundaries"] = len(predicted_boundaries_s)
    return report


def label_change_boundaries(step_labels: Sequence[int], step_times_s: np.ndarray) -> list[float]:
    """Boundary times where the per-step label changes: midway between the two steps."""
    step_labels = np.asarray(step_labels)
    changes = np.flatnonzero(step_labels[1:] != step_labels[:-1]) + 1
    return [float((step_times_s[i - 1] + step_times_s[i]) / 2) for i in changes]


def span_boundaries(spans: Sequence[tuple[int, int]], step_times_s: np.ndarray) -> list[float]:
    """Boundary times between consecutive segments of a segmenter (Ward, online): midway between steps."""
    starts = sorted({int(start) for start, _ in spans if 0 < int(start) < len(step_times_s)})
    return [float((step_times_s[i - 1] + step_times_s[i]) / 2) for i in starts]
