"""`vljepa-ros eval --ood-bag/--ood-video`: does the model know when it does not know?

One in-distribution stream (with ground truth) against one or more out-of-distribution frame streams,
every clip cut as the perception node cuts it and scored by the model's FamiliarityModel
(stream/familiarity.py):

- detection, per OOD stream: AUROC and FPR at 95% TPR of the continuous Mahalanobis distance (the ranking
  the familiarity is a monotone step function of), the same for the published familiarity p-value (its
  ties can only lose), and of the best label's softmax probability as the baseline it must beat;
- the flag at the model's own threshold: false alarms on the ID stream, share of each OOD stream flagged;
- the labels of the ID stream (its label bank, softmax at the model's temperature): the risk-coverage curve
  (accuracy when the least confident clips are left out) with its area, and the expected calibration error.

Metric definitions: evaluation/familiarity_metrics.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vljepa_ros.evaluation.embedding import StreamEmbeddings, embed_frames, embed_stream
from vljepa_ros.evaluation.familiarity_metrics import (TPR_FOR_FPR, auroc, expected_calibration_error, flagged_share,
                                                       fpr_at_tpr, risk_coverage, roc_points)
from vljepa_ros.evaluation.run import EvalOptions, clip_ground_truth
from vljepa_ros.stream.familiarity import FamiliarityModel
from vljepa_ros.stream.label_bank import label_confidence
from vljepa_ros.world.calibration import DEFAULT_VIDEO_FPS, CalibrationStream, bag_stream, video_stream
from vljepa_ros.world.types import WorldStream

COVERAGES_REPORTED = (0.5, 0.8, 0.9)


@dataclass
class ClipScores:
    """What the model says about each clip of one stream."""
    name: str
    distance: np.ndarray  # (N,) Mahalanobis distance (RMS per dimension): higher is less familiar
    familiarity: np.ndarray  # (N,) conformal p-value in (0, 1]
    label_probability: np.ndarray  # (N,) softmax probability of the best label of the ID stream's bank
    predicted_label: np.ndarray  # (N,) index of that label


def load_ood_streams(bags: list[Path] | None, videos: list[Path] | None,
                     video_fps: float = DEFAULT_VIDEO_FPS) -> list[CalibrationStream]:
    """Frame streams of rosbag2 directories (their only image topic) and video files (resampled to video_fps)."""
    return [bag_stream(Path(b)) for b in bags or ()] + [video_stream(Path(v), video_fps) for v in videos or ()]


def score_clips(name: str, clips: StreamEmbeddings, model: FamiliarityModel, label_embeddings: np.ndarray,
                temperature: float) -> ClipScores:
    if clips.statistics is None:
        raise ValueError("the engine returned no visual statistics: it cannot be scored for familiarity")
    distance = np.asarray(model.distances(clips.statistics), dtype=np.float64).reshape(-1)
    cosines = clips.embeddings @ label_embeddings.T
    confidences = [label_confidence(row, temperature).probability for row in cosines]
    return ClipScores(name, distance, np.asarray(model.familiarity_of_distances(distance), dtype=np.float64),
                      np.asarray(confidences, dtype=np.float64), np.argmax(cosines, axis=1))


def detection_section(in_distribution: ClipScores, out: ClipScores, threshold: float) -> dict[str, Any]:
    """How well each score tells the OOD stream's clips from the ID stream's."""
    return {
        "clips": int(out.distance.size),
        "flagged_share": flagged_share(out.familiarity, threshold),
        "auroc": auroc(in_distribution.distance, out.distance),
        "fpr_at_95_tpr": fpr_at_tpr(in_distribution.distance, out.distance, TPR_FOR_FPR),
        "familiarity_auroc": auroc(-in_distribution.familiarity, -out.familiarity),
        "familiarity_fpr_at_95_tpr": fpr_at_tpr(-in_distribution.familiarity, -out.familiarity, TPR_FOR_FPR),
        # What a planner could do without a familiarity score: distrust unconfident labels.
        "label_confidence_auroc": auroc(-in_distribution.label_probability, -out.label_probability),
        "median_distance": float(np.median(out.distance)),
        "mean_label_probability": float(np.mean(out.label_probability)),
        "clip_distances": rounded(out.distance),
    }


def rounded(values: np.ndarray) -> list[float]:
    """Per-clip values for the JSON (pooling streams, other thresholds afterwards), to 6 significant digits."""
    return [float(f"{value:.6g}") for value in values]


def labels_section(scores: ClipScores, true_labels: np.ndarray) -> dict[str, Any] | None:
    """Risk-coverage and calibration of the ID stream's best-label confidence (clips with ground truth)."""
    known = true_labels >= 0
    if not known.any():
        return None
    confidence, correct = scores.label_probability[known], scores.predicted_label[known] == true_labels[known]
    curve = risk_coverage(confidence, correct)
    calibration = expected_calibration_error(confidence, correct)
    return {
        "clips": int(known.sum()), "accuracy": float(correct.mean()), "mean_confidence": float(confidence.mean()),
        "ece": calibration.ece, "aurc": curve.aurc, "optimal_aurc": curve.optimal_aurc,
        "excess_aurc": curve.excess_aurc,
        "accuracy_at_coverage": {f"{c:g}": curve.accuracy_at(c) for c in COVERAGES_REPORTED},
        "risk_coverage": {"coverage": curve.coverage.tolist(), "accuracy": curve.accuracy.tolist()},
        "reliability": {"bin_edges": calibration.bin_edges.tolist(), "counts": calibration.bin_counts.tolist(),
                        "confidence": calibration.bin_confidence.tolist(),
                        "accuracy": calibration.bin_accuracy.tolist()},
    }


def familiarity_report(engine, model: FamiliarityModel, stream: WorldStream, ood_streams: list[CalibrationStream],
                       options: EvalOptions | None = None, plot_path: Path | None = None,
                       id_clips: StreamEmbeddings | None = None) -> dict[str, Any]:
    """The `familiarity` section of an eval report (plain JSON types except NaN); writes the PNG at plot_path.

    `id_clips`: the ID stream's clips if the caller has them already (else they are embedded here)."""
    options = options or EvalOptions()
    if not stream.label_bank:
        raise ValueError(f"stream {stream.name!r} has no label bank: its label confidence cannot be scored")
    if not ood_streams:
        raise ValueError("give at least one out-of-distribution stream")
    clip_settings = (options.frames_per_clip, options.stride_frames, options.sample_period_s)
    label_embeddings = engine.encode_texts(list(stream.label_bank))
    temperature = float(engine.config.temperature)
    if id_clips is None:
        id_clips = embed_stream(engine, stream, options.query, *clip_settings, batch_size=options.batch_size)
    in_distribution = score_clips(stream.name, id_clips, model, label_embeddings, temperature)
    out_scores = [score_clips(ood.name, embed_frames(engine, ood.frames, ood.stamps_ns, options.query, *clip_settings,
                                                    batch_size=options.batch_size),
                              model, label_embeddings, temperature) for ood in ood_streams]
    empty = [s.name for s in out_scores if s.distance.size == 0]
    if empty or in_distribution.distance.size == 0:
        raise ValueError(f"no clips from {empty or [stream.name]}: the streams are shorter than one clip")
    threshold = float(model.false_alarm_rate)
    section = {
        "model_id": engine.model_id,
        # A file copied from another model of the same width loads, but its statistics describe other features.
        "calibration": {"model_id": model.info.get("model_id"), "data": model.info.get("data"),
                        "matches_model": model.info.get("model_id") in (None, engine.model_id),
                        "false_alarm_rate": threshold, "distance_threshold": model.distance_threshold,
                        "held_out_clips": int(model.held_out_distances.size)},
        "in_distribution": {"name": stream.name, "clips": int(in_distribution.distance.size),
                            "false_alarm_rate": flagged_share(in_distribution.familiarity, threshold),
                            "median_distance": float(np.median(in_distribution.distance)),
                            "mean_label_probability": float(np.mean(in_distribution.label_probability)),
                            "clip_distances": rounded(in_distribution.distance)},
        "out_of_distribution": {s.name: detection_section(in_distribution, s, threshold) for s in out_scores},
        "labels": labels_section(in_distribution, clip_ground_truth(stream, id_clips)[1]),
    }
    if plot_path is not None:
        section["plot"] = str(plot_familiarity(in_distribution, out_scores, section, model.distance_threshold,
                                               plot_path))
    return section


OOD_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def plot_familiarity(in_distribution: ClipScores, out_scores: list[ClipScores], section: dict[str, Any],
                     distance_threshold: float, path: Path) -> Path:
    """Four panels: distances ID vs OOD with the threshold, ROC curves, risk-coverage, reliability diagram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ((histogram, roc), (coverage, reliability)) = plt.subplots(2, 2, figsize=(11, 8.5))
    everything = np.concatenate([in_distribution.distance] + [s.distance for s in out_scores])
    # Distances span orders of magnitude (blank frames sit far out); the familiarity p-value is a step
    # function of them, flat beyond the farthest held-out clip, so the distance shows the separation.
    bins = np.geomspace(max(everything.min(), 1e-3), max(everything.max(), 1e-3) * 1.01, 40)
    histogram.hist(np.maximum(in_distribution.distance, 1e-3), bins=bins, alpha=0.6, color="tab:blue",
                   label=f"{in_distribution.name} (ID)")
    for colour, scores in zip(OOD_COLOURS, out_scores):
        histogram.hist(np.maximum(scores.distance, 1e-3), bins=bins, alpha=0.5, color=colour, label=scores.name)
        fpr, tpr = roc_points(in_distribution.distance, scores.distance)
        roc.plot(fpr, tpr, color=colour, label=f"{scores.name} (AUROC "
                 f"{section['out_of_distribution'][scores.name]['auroc']:.3f})")
    histogram.axvline(distance_threshold, color="black", linestyle="--", linewidth=1,
                      label=f"threshold ({section['calibration']['false_alarm_rate']:g} false alarms)")
    histogram.set_xscale("log")
    histogram.set_xlabel("Mahalanobis distance per dimension (log; familiarity falls as it grows)")
    histogram.set_ylabel("clips")
    histogram.set_title("Familiarity: in- vs out-of-distribution clips")
    roc.plot([0, 1], [0, 1], color="tab:gray", linestyle=":", linewidth=1)
    roc.set_xlabel("in-distribution clips flagged (false alarms)")
    roc.set_ylabel("out-of-distribution clips flagged")
    roc.set_title("ROC of the distance")
    labels = section["labels"]
    if labels:
        curve, bins_ = labels["risk_coverage"], labels["reliability"]
        coverage.step(curve["coverage"], curve["accuracy"], where="post", color="tab:blue",
                      label=f"AURC {labels['aurc']:.3f} (optimal {labels['optimal_aurc']:.3f})")
        centres = (np.asarray(bins_["bin_edges"][:-1]) + np.asarray(bins_["bin_edges"][1:])) / 2
        filled = np.asarray(bins_["counts"]) > 0
        reliability.bar(centres[filled], np.asarray(bins_["accuracy"], dtype=float)[filled],
                        width=1.0 / len(centres), edgecolor="black", alpha=0.7, label="accuracy per bin")
        reliability.plot([0, 1], [0, 1], color="tab:gray", linestyle=":", label="perfect calibration")
        reliability.set_title(f"Reliability of the label confidence (ECE {labels['ece']:.3f})")
    coverage.set_xlabel("coverage (share of clips kept, most confident first)")
    coverage.set_ylabel("accuracy of the kept clips")
    coverage.set_title(f"Risk-coverage of the labels on {in_distribution.name}")
    reliability.set_xlabel("best-label probability")
    reliability.set_ylabel("accuracy")
    for axis in (histogram, roc, coverage, reliability):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    for axis in (roc, coverage, reliability):
        axis.set_xlim(-0.02, 1.02)
        axis.set_ylim(-0.02, 1.02)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def format_familiarity_summary(section: dict[str, Any]) -> str:
    """Lines for the eval summary: the ID false alarms, each OOD stream's separation, the label calibration."""
    in_distribution = section["in_distribution"]
    lines = [f"  familiarity: {in_distribution['false_alarm_rate']:.1%} false alarms on {in_distribution['name']} "
             f"({in_distribution['clips']} clips) at threshold {section['calibration']['false_alarm_rate']:g}"]
    if not section["calibration"]["matches_model"]:
        lines.append(f"    WARNING: the familiarity file was calibrated for {section['calibration']['model_id']}, not "
                     f"{section['model_id']}: re-run `vljepa-ros calibrate`")
    for name, ood in section["out_of_distribution"].items():
        lines.append(f"    vs {name} ({ood['clips']} clips): AUROC {ood['auroc']:.3f}, FPR@95%TPR "
                     f"{ood['fpr_at_95_tpr']:.3f}, flagged {ood['flagged_share']:.1%} (label confidence alone: "
                     f"AUROC {ood['label_confidence_auroc']:.3f})")
    labels = section["labels"]
    if labels:
        lines.append(f"    label confidence: ECE {labels['ece']:.3f}, AURC {labels['aurc']:.3f} (optimal "
                     f"{labels['optimal_aurc']:.3f}), accuracy {labels['accuracy']:.3f}, at 50% coverage "
                     f"{labels['accuracy_at_coverage']['0.5']:.3f}")
    return "\n".join(lines)
