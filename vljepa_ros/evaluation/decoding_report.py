"""The selective-decoding and segmentation sections of the eval report (run.py calls these).

Selective decoding is judged by CIDEr-D (captioning.py) with caption accuracy beside it; every
segmentation the evaluation produces is judged by boundary F1, F1@k, edit score and frame accuracy
(segmentation_metrics.py).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from vljepa_ros.evaluation.captioning import SCORER, TOKENIZATION, StepCaptionScorer
from vljepa_ros.stream.label_bank import nearest_indices
from vljepa_ros.evaluation.segmentation_metrics import (BACKGROUND, label_change_boundaries, segmentation_report,
                                                        span_boundaries)
from vljepa_ros.evaluation.selective_decoding import CurvePoint, decode_plan, decode_reduction, ward_plan
from vljepa_ros.world.types import WorldStream

QUALITY_DEFINITION = (
    "CIDEr-D of the shown decoded text (retrieval decoding over the label bank) at every labelled clip time step "
    "against the reference captions of the ground-truth segment covering the clip's last frame, averaged over the "
    "steps; uniform shows the most recent decode, Ward and online show each segment's decode over that segment")
CEILING_DEFINITION = (
    "what the stream allows: decodes = the fewest contiguous segments whose CIDEr-D reaches uniform 1 Hz's when each "
    "segment shows the one label-bank text that scores best on it (read from the references: no decoder does "
    "better); ward_segments_decodes = the same over Ward's own segments (its cuts with the best text); "
    "decode_reduction = uniform 1 Hz decodes / decodes. Actual < ward_segments: the segments' decoded text falls "
    "short; ward_segments < decodes: the cuts do")
REDUCTION_DEFINITION = ("decodes of uniform 1 Hz / decodes of the cheapest measured adaptive point (Ward or online) "
                        "whose CIDEr-D >= uniform 1 Hz CIDEr-D; null if none reaches it")


def caption_scorer_for(stream: WorldStream, segment_of_clip: np.ndarray) -> StepCaptionScorer:
    """References of each clip step: the captions of its ground-truth segment (none where unlabelled)."""
    references = [stream.segments[s].captions if s >= 0 else [] for s in segment_of_clip]
    return StepCaptionScorer(references, [int(s) for s in segment_of_clip])


def constant_label(true_labels: np.ndarray) -> int:
    valid = true_labels[true_labels >= 0]
    return int(np.bincount(valid).argmax()) if valid.size else -1


def decoding_section(curve: dict, true_labels: np.ndarray, scorer: StepCaptionScorer, bank: list[str],
                     online_settings: dict) -> dict[str, Any]:
    best, baseline = curve["best_adaptive"], curve["baseline"]
    # The same reduction at equal caption accuracy (the metric eval used before CIDEr-D), for comparison.
    by_accuracy = [replace(p, quality=p.caption_accuracy) for p in curve["points"]["ward"] + curve["points"]["online"]]
    accuracy_reduction, _ = decode_reduction(replace(baseline, quality=baseline.caption_accuracy), by_accuracy)
    label = constant_label(true_labels)
    constant_cider = scorer.score([bank[label] if label >= 0 else ""] * len(true_labels))
    valid = true_labels >= 0
    constant_accuracy = float(np.mean(true_labels[valid] == label)) if valid.any() else float("nan")
    return {
        "quality_metric": "cider_d", "quality_definition": QUALITY_DEFINITION, "cider_scorer": SCORER,
        "cider_tokenization": TOKENIZATION, "reduction_definition": REDUCTION_DEFINITION,
        "duration_s": curve["duration_s"], "steps": curve["steps"], "step_rate_hz": curve["step_rate_hz"],
        "uniform_1hz_quality": baseline.quality, "uniform_1hz_cider_d": baseline.quality,
        "uniform_1hz_caption_accuracy": baseline.caption_accuracy, "uniform_1hz_decodes": baseline.decodes,
        "best_adaptive": best.to_dict() if best else None,
        # Showing the most frequent true label everywhere: if uniform 1 Hz is no better than this, the model
        # decodes nothing useful and any reduction "at equal quality" is meaningless.
        "constant_label_quality": constant_cider, "constant_label_caption_accuracy": constant_accuracy,
        "uniform_1hz_beats_constant_label": baseline.quality > constant_cider,
        "decode_reduction_at_equal_caption_accuracy": accuracy_reduction,
        "decode_reduction_ward": curve["decode_reduction_ward"],
        "decode_reduction_online": curve["decode_reduction_online"],
        "ceiling": curve["ceiling"] | {"definition": CEILING_DEFINITION},
        "online_settings": online_settings,
        "points": {method: [p.to_dict() for p in points] for method, points in curve["points"].items()},
    }


def true_boundaries_s(stream: WorldStream) -> list[float]:
    """Times (s from the first frame) where one segment ends or starts, inside the stream."""
    origin, end = int(stream.stamps_ns[0]), int(stream.stamps_ns[-1])
    times = {t for s in stream.segments for t in (s.start_ns, s.end_ns) if origin < t <= end}
    return sorted((t - origin) / 1e9 for t in times)


def _point_prediction(point: CurvePoint, plan, step_times_s: np.ndarray) -> tuple[np.ndarray, list[float]]:
    shown = np.asarray(point.shown_labels, dtype=np.int64)
    if point.method == "uniform":  # uniform decoding has no segments: its boundaries are where the text changes
        return shown, label_change_boundaries(shown, step_times_s)
    return shown, span_boundaries(plan.spans, step_times_s)


def segmentation_section(stream: WorldStream, step_times_s: np.ndarray, clip_embeddings: np.ndarray,
                         label_embeddings: np.ndarray, true_labels: np.ndarray, curve: dict) -> dict[str, Any]:
    """The field's segmentation metrics for the per-clip classifier and the decoding strategies' operating points."""
    truth_boundaries = true_boundaries_s(stream)
    per_clip = nearest_indices(clip_embeddings, label_embeddings)
    predictions = {"per_clip_classification": (per_clip, label_change_boundaries(per_clip, step_times_s))}
    points, plans = curve["points"], curve["plans"]

    def add(name: str, point: CurvePoint | None, method: str) -> None:
        if point is not None:
            predictions[name] = _point_prediction(point, plans[method][points[method].index(point)], step_times_s)

    add("uniform_1hz", curve["baseline"], "uniform")
    best = curve["best_adaptive"]
    if best is not None:
        add("best_adaptive", best, best.method)
    # Fitted here, not taken from the decoding sweep: that stops at uniform 1 Hz's decode count, which a stream
    # changing faster than once a second (the Meta-World bag: 88 segments in 76 s) exceeds.
    ward = ward_plan(clip_embeddings, len(stream.segments))
    _, ward_labels = decode_plan(ward, label_embeddings, len(true_labels))
    predictions["ward_at_true_segment_count"] = (ward_labels, span_boundaries(ward.spans, step_times_s))
    if points["online"]:
        _, online = decode_reduction(curve["baseline"], points["online"])
        add("online", online or max(points["online"], key=lambda p: p.quality), "online")
    section = {name: segmentation_report(labels, true_labels, boundaries, truth_boundaries)
               for name, (labels, boundaries) in predictions.items()}
    section["definitions"] = {
        "steps": "one per clip (stride as in --stride-frames), labelled by the segment covering its last frame",
        "boundary_f1": "GEBD-style: predicted boundaries (midway between steps) matched one-to-one within +-1 s / "
                       "+-2 s of true segment starts/ends, maximising matches; in [0, 1]",
        "f1_at_k, edit_score, frame_accuracy": "MS-TCN eval.py definitions on the step label sequences, in [0, 100]; "
                                              "unlabelled steps are background",
        "online": "the online detector at its cheapest threshold matching uniform 1 Hz CIDEr-D, else its best",
        "true_boundaries": len(truth_boundaries), "background_label": BACKGROUND,
    }
    return section


# Ward given the true number of segments: the offline segmentation, judged as unsupervised segmentation
# evaluations do (the count is given); every other prediction stays in report["segmentation"].
HEADLINE_SEGMENTATION = "ward_at_true_segment_count"
HEADLINE_SEGMENTATION_KEYS = ("boundary_f1_1s", "boundary_f1_2s", "f1_at_10", "f1_at_25", "f1_at_50", "edit_score",
                              "frame_accuracy")


def headline_segmentation(segmentation: dict, decoding: dict) -> dict[str, Any]:
    """Top-level keys: CIDEr-D and caption accuracy at uniform 1 Hz, and HEADLINE_SEGMENTATION's metrics."""
    chosen = segmentation.get(HEADLINE_SEGMENTATION, {})
    headline = {key: chosen.get(key) for key in HEADLINE_SEGMENTATION_KEYS}
    headline["segmentation_headline_from"] = HEADLINE_SEGMENTATION
    headline["uniform_1hz_cider_d"] = decoding["uniform_1hz_cider_d"]
    headline["uniform_1hz_caption_accuracy"] = decoding["uniform_1hz_caption_accuracy"]
    return headline
