"""Metrics of knowing when it does not know: out-of-distribution detection and label-confidence calibration.

Pure numpy (+ sklearn.metrics), so every number is unit-tested on constructed scores.

Detection scores follow one convention: HIGHER means MORE UNUSUAL (a Mahalanobis distance; for the
published familiarity p-value pass `-familiarity`). In-distribution clips are the negatives, out-of-distribution
clips the positives of AUROC. FPR at 95% TPR follows the OOD literature (ODIN, Mahalanobis, energy
scores): at the threshold that keeps 95% of the in-distribution clips, the share of out-of-distribution clips
that are kept too (lower is better).

Selective classification (Geifman & El-Yaniv): the risk-coverage curve leaves out the least confident clips
first; its area (AURC, the mean selective risk) and the same area for a perfect ordering (so that
E-AURC = AURC - optimal says how much of it the confidence ordering, not the classifier, loses).
Expected calibration error: 15 equal-width confidence bins (Guo et al. 2017), bin b = (b/15, (b+1)/15].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TPR_FOR_FPR = 0.95
ECE_BINS = 15


def _detection_scores(in_distribution: np.ndarray, out_of_distribution: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is-OOD labels, scores) of both sets; NaN-free, both non-empty."""
    id_scores = np.asarray(in_distribution, dtype=np.float64).ravel()
    ood_scores = np.asarray(out_of_distribution, dtype=np.float64).ravel()
    if id_scores.size == 0 or ood_scores.size == 0:
        raise ValueError(f"detection metrics need both sets: {id_scores.size} in-distribution and "
                         f"{ood_scores.size} out-of-distribution scores")
    scores = np.concatenate([id_scores, ood_scores])
    if not np.isfinite(scores).all():
        raise ValueError("detection scores hold NaN/Inf")
    return np.concatenate([np.zeros(id_scores.size), np.ones(ood_scores.size)]), scores


def auroc(in_distribution: np.ndarray, out_of_distribution: np.ndarray) -> float:
    """Probability that a random OOD clip scores above a random ID clip (ties count one half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(*_detection_scores(in_distribution, out_of_distribution)))


def roc_points(in_distribution: np.ndarray, out_of_distribution: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of ID clips flagged, share of OOD clips flagged) at every threshold, from (0, 0) to (1, 1)."""
    from sklearn.metrics import roc_curve

    false_positive_rate, true_positive_rate, _ = roc_curve(*_detection_scores(in_distribution, out_of_distribution),
                                                           drop_intermediate=False)
    return false_positive_rate, true_positive_rate


def fpr_at_tpr(in_distribution: np.ndarray, out_of_distribution: np.ndarray, tpr: float = TPR_FOR_FPR) -> float:
    """Share of OOD clips accepted at the strictest threshold that still accepts `tpr` of the ID clips."""
    id_flagged, ood_flagged = roc_points(in_distribution, out_of_distribution)
    # In-distribution is the positive class here: accepting (not flagging) it is a true positive.
    id_accepted, ood_accepted = 1.0 - id_flagged, 1.0 - ood_flagged
    enough = id_accepted >= tpr - 1e-12
    return float(ood_accepted[enough].min())


def flagged_share(familiarity: np.ndarray, threshold: float) -> float:
    """Share of clips called unfamiliar (familiarity below the threshold): the false-alarm rate on
    in-distribution clips, the detection rate on out-of-distribution ones."""
    values = np.asarray(familiarity, dtype=np.float64)
    return float(np.mean(values < threshold)) if values.size else float("nan")


@dataclass
class RiskCoverage:
    """Accuracy of the kept clips when the least confident are left out, at every distinct confidence."""
    coverage: np.ndarray  # (K,) ascending share of clips kept, ending at 1
    accuracy: np.ndarray  # (K,) accuracy of the kept clips
    aurc: float  # area under risk (1 - accuracy) over coverage: the mean selective risk
    optimal_aurc: float  # the same area if the confidence ranked every correct clip above every wrong one

    @property
    def excess_aurc(self) -> float:
        return self.aurc - self.optimal_aurc

    def accuracy_at(self, coverage: float) -> float:
        """Accuracy of the most confident `coverage` share (the first curve point that keeps at least that much)."""
        index = int(np.searchsorted(self.coverage, coverage - 1e-12))
        return float(self.accuracy[min(index, self.accuracy.size - 1)])


def _risk_coverage_points(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    # Clips of equal confidence are kept or left out together: a threshold cannot split them.
    group_ends = np.flatnonzero(np.append(confidence[1:] != confidence[:-1], True)) + 1
    kept_correct = np.cumsum(correct)[group_ends - 1]
    coverage = group_ends / confidence.size
    accuracy = kept_correct / group_ends
    widths = np.diff(np.concatenate([[0.0], coverage]))
    return coverage, accuracy, float(np.sum((1.0 - accuracy) * widths))


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> RiskCoverage:
    """The risk-coverage curve of a classifier's `confidence` per clip and whether it was `correct`."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if confidence.size != correct.size or confidence.size == 0:
        raise ValueError(f"risk_coverage needs as many confidences ({confidence.size}) as outcomes "
                         f"({correct.size}), at least one")
    coverage, accuracy, area = _risk_coverage_points(confidence, correct)
    # The best ordering keeps the correct clips first, then adds the wrong ones one at a time: with k clips
    # kept and c correct, the risk is max(0, k - c) / k (no ties: an ideal confidence tells every clip apart).
    kept = np.arange(1, correct.size + 1)
    optimal = float(np.mean(np.maximum(0, kept - int(correct.sum())) / kept))
    return RiskCoverage(coverage, accuracy, area, optimal)


@dataclass
class Calibration:
    """Expected calibration error and the reliability diagram it comes from."""
    ece: float
    bin_edges: np.ndarray  # (B + 1,)
    bin_counts: np.ndarray  # (B,)
    bin_confidence: np.ndarray  # (B,) mean confidence of each bin (NaN where empty)
    bin_accuracy: np.ndarray  # (B,) accuracy of each bin (NaN where empty)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> Calibration:
    """sum over bins of (clips in bin / clips) * |accuracy - mean confidence|, equal-width bins on [0, 1]."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=np.float64).ravel()
    if confidence.size != correct.size or confidence.size == 0:
        raise ValueError(f"calibration needs as many confidences ({confidence.size}) as outcomes ({correct.size})")
    if (confidence < 0).any() or (confidence > 1).any():
        raise ValueError("confidences must lie in [0, 1]")
    # Right-closed bins (b/B, (b+1)/B]; a confidence of exactly 0 joins the first.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
    filled = counts > 0
    ece = float(np.sum(counts[filled] / confidence.size * np.abs(accuracy[filled] - mean_confidence[filled])))
    return Calibration(ece, np.linspace(0.0, 1.0, bins + 1), counts, mean_confidence, accuracy)
