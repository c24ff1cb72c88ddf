"""`vljepa-ros eval` as a function: every metric of one model on one stream, plus the figures.

Ground truth per clip: the segment that covers the clip's LAST frame (what a causal robot node
reports "now"); `classification_accuracy_pure_clips` also scores only the clips whose frames all lie
in one segment (the training distribution). Caption bank for decoding = the stream's label bank.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vljepa_ros.evaluation.decoding_report import (caption_scorer_for, decoding_section, headline_segmentation,
                                                   segmentation_section)
from vljepa_ros.evaluation.embedding import StreamEmbeddings, embed_stream
from vljepa_ros.evaluation.metrics import (classification_accuracy, classification_chance,
                                           inverse_dynamics_accuracy, text_to_clip_recall_at_1)
from vljepa_ros.evaluation.plots import plot_decoding_curve, plot_segmentation_metrics, plot_timeline
from vljepa_ros.evaluation.selective_decoding import decode_reduction, selective_decoding_curve
from vljepa_ros.stream.clip_assembler import DEFAULT_SAMPLE_PERIOD_S, DEFAULT_STRIDE_FRAMES
from vljepa_ros.stream.clip_reuse import ReuseSettings
from vljepa_ros.stream.clips import ACTION_QUERY, CAPTION_QUERY, make_action_clip
from vljepa_ros.stream.shift_detector import DetectorSettings
from vljepa_ros.world.types import WorldStream


HEADLINE_KEYS = ("classification_accuracy", "classification_chance", "retrieval_r1", "retrieval_chance",
                 "inverse_dynamics_accuracy", "inverse_dynamics_chance", "decode_reduction_vs_uniform_1hz",
                 "uniform_1hz_cider_d", "uniform_1hz_caption_accuracy", "boundary_f1_1s", "boundary_f1_2s",
                 "f1_at_10", "f1_at_25", "f1_at_50", "edit_score", "frame_accuracy")


@dataclass
class EvalOptions:
    query: str = CAPTION_QUERY
    frames_per_clip: int | None = None  # None: the model's
    stride_frames: int = DEFAULT_STRIDE_FRAMES
    sample_period_s: float = DEFAULT_SAMPLE_PERIOD_S
    online: DetectorSettings = DetectorSettings()  # its shift_threshold is always one point of the online sweep
    reuse: ReuseSettings = ReuseSettings()  # the node's skip_unchanged_clips: unchanged clips carry the last embedding
    batch_size: int = 16
    plots_dir: Path | None = None  # where the PNGs go (None: no plots)
    progress: bool = False


def clip_ground_truth(stream: WorldStream, clips: StreamEmbeddings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment index per clip by its last frame, label-bank index per clip, pure mask); -1 where uncovered."""
    first_frames, last_frames = clips.frame_indices(stream.stamps_ns)
    owner = stream.segment_index_per_frame()
    segment_of_clip = owner[np.clip(last_frames, 0, stream.frame_count - 1)] if len(clips) else np.zeros(0, np.int64)
    bank_index = {label: index for index, label in enumerate(stream.label_bank)}
    segment_label = np.array([bank_index.get(s.label, -1) for s in stream.segments] + [-1], dtype=np.int64)
    labels = segment_label[segment_of_clip]  # index -1 picks the trailing -1
    pure = (owner[np.clip(first_frames, 0, stream.frame_count - 1)] == segment_of_clip) & (segment_of_clip >= 0)
    return segment_of_clip, labels, pure


def retrieval_gallery(stream: WorldStream, clips: StreamEmbeddings, segment_of_clip: np.ndarray,
                      pure: np.ndarray) -> list[tuple[int, int]]:
    """One (segment, clip) per segment: the clip nearest the segment's middle, preferring clips entirely inside it.

    Segments shorter than the clip stride may own no clip and are left out.
    """
    first_frames, last_frames = clips.frame_indices(stream.stamps_ns)
    centres = (first_frames + last_frames) / 2.0
    gallery = []
    for segment_index, segment in enumerate(stream.segments):
        owned = np.flatnonzero(segment_of_clip == segment_index)
        if owned.size == 0:
            continue
        inside = owned[pure[owned]]
        choices = inside if inside.size else owned
        middle = (segment.start_index + segment.end_index - 1) / 2.0
        gallery.append((segment_index, int(choices[np.argmin(np.abs(centres[choices] - middle))])))
    return gallery


def action_state_embeddings(engine, stream: WorldStream, frames_per_clip: int, batch_size: int) -> np.ndarray:
    """Predictor embedding of each action item's before/after clip (make_action_clip) with ACTION_QUERY."""
    rows = []
    items = stream.action_items
    for start in range(0, len(items), batch_size):
        batch = np.stack([make_action_clip(stream.frames[item.before_index], stream.frames[item.after_index],
                                           frames_per_clip) for item in items[start:start + batch_size]])
        rows.append(np.asarray(engine.encode_clips(batch, ACTION_QUERY), dtype=np.float32))
    return np.concatenate(rows) if rows else np.zeros((0, engine.dimension), np.float32)


def report_header(engine, stream: WorldStream, clips: StreamEmbeddings, options: EvalOptions,
                  data_source: dict[str, Any] | None, model_dir: str | None) -> dict[str, Any]:
    """The report's model, data and clip sections."""
    return {
        "model_id": engine.model_id, "model_dir": model_dir, "backend": engine.backend,
        "device": getattr(engine, "device", None), "precision": getattr(engine, "precision", None),
        "data_source": data_source or {"kind": "stream", "name": stream.name},
        "stream": {"name": stream.name, "seed": stream.seed, "fps": stream.fps, "frames": stream.frame_count,
                   "duration_s": stream.duration_s, "segments": len(stream.segments),
                   "action_items": len(stream.action_items), "label_bank_size": len(stream.label_bank)},
        "clips": {"count": len(clips), "frames_per_clip": clips.frames_per_clip, "stride_frames": clips.stride_frames,
                  "sample_period_s": clips.sample_period_s, "query": clips.query,
                  "skip_unchanged_clips": vars(options.reuse),
                  "reused": int(np.sum(clips.reused)) if clips.reused is not None else 0,
                  "ground_truth": "segment covering the clip's last frame"},
    }


def run_eval(engine, stream: WorldStream, options: EvalOptions | None = None,
             data_source: dict[str, Any] | None = None, model_dir: str | None = None) -> dict[str, Any]:
    """All metrics as a JSON-ready dict (NaN -> None); writes the PNGs when options.plots_dir is set."""
    options = options or EvalOptions()
    started = time.perf_counter()
    has_ground_truth = bool(stream.segments)
    clips = embed_stream(engine, stream, options.query, options.frames_per_clip, options.stride_frames,
                         options.sample_period_s, batch_size=options.batch_size, progress=options.progress,
                         reuse=options.reuse)
    if len(clips) < 2:
        raise ValueError(f"stream {stream.name!r} gave {len(clips)} clip(s) of {clips.frames_per_clip} frames "
                         f"(stride {options.stride_frames}); need at least 2: use a longer stream")
    label_embeddings = engine.encode_texts(list(stream.label_bank)) if stream.label_bank else None
    segment_of_clip, clip_labels, pure = clip_ground_truth(stream, clips)

    report = report_header(engine, stream, clips, options, data_source, model_dir)

    # Every headline key is always present; null means "not computable here" (e.g. a bag without ground truth).
    report.update({key: None for key in HEADLINE_KEYS})

    # Zero-shot classification over the label bank.
    if has_ground_truth and label_embeddings is not None:
        report["classification_accuracy"] = classification_accuracy(clips.embeddings, label_embeddings, clip_labels)
        report["classification_accuracy_pure_clips"] = classification_accuracy(
            clips.embeddings[pure], label_embeddings, clip_labels[pure])
        report["classification_chance"] = classification_chance(len(stream.label_bank))
        report["classification_clips"] = int(np.sum(clip_labels >= 0))
        report["classification_pure_clips"] = int(np.sum(pure))

    # Text -> clip retrieval: one clip per segment, one query per distinct label.
    if has_ground_truth:
        gallery = retrieval_gallery(stream, clips, segment_of_clip, pure)
        gallery_labels = [stream.segments[s].label for s, _ in gallery]
        query_labels = sorted(set(gallery_labels))
        recall, chance = text_to_clip_recall_at_1(engine.encode_texts(query_labels),
                                                  clips.embeddings[[c for _, c in gallery]], query_labels,
                                                  gallery_labels)
        report.update(retrieval_r1=recall, retrieval_chance=chance, retrieval_queries=len(query_labels),
                      retrieval_gallery=len(gallery))

    # Inverse dynamics, WorldPrediction-WM style: 4 candidates per item.
    if stream.action_items:
        states = action_state_embeddings(engine, stream, clips.frames_per_clip, options.batch_size)
        texts = sorted({text for item in stream.action_items for text in item.candidates})
        text_rows = dict(zip(texts, engine.encode_texts(texts)))
        accuracy, chance, _ = inverse_dynamics_accuracy(
            states, [np.stack([text_rows[t] for t in item.candidates]) for item in stream.action_items],
            [item.candidates for item in stream.action_items], [item.answer_index for item in stream.action_items])
        report.update(inverse_dynamics_accuracy=accuracy, inverse_dynamics_chance=chance,
                      inverse_dynamics_items=len(stream.action_items))

    # Selective decoding curve (CIDEr-D) and the segmentation metrics of its operating points.
    curve = None
    if has_ground_truth and label_embeddings is not None:
        scorer = caption_scorer_for(stream, segment_of_clip)
        curve = selective_decoding_curve(clips.embeddings, clips.first_stamps_ns, clips.last_stamps_ns, clip_labels,
                                         label_embeddings, options.online,
                                         scorer, stream.label_bank)
        report["decode_reduction_vs_uniform_1hz"] = curve["decode_reduction_vs_uniform_1hz"]
        report["selective_decoding"] = decoding_section(curve, clip_labels, scorer, stream.label_bank,
                                                        vars(options.online))
        step_times_s = (clips.last_stamps_ns - int(stream.stamps_ns[0])) / 1e9
        report["segmentation"] = segmentation_section(stream, step_times_s, clips.embeddings, label_embeddings,
                                                      clip_labels, curve)
        report.update(headline_segmentation(report["segmentation"], report["selective_decoding"]))

    if options.plots_dir is not None:
        report["plots"] = write_plots(Path(options.plots_dir), stream, clips, curve, report.get("segmentation"))
    report["elapsed_s"] = time.perf_counter() - started
    return json_ready(report)


def write_plots(directory: Path, stream: WorldStream, clips: StreamEmbeddings, curve: dict | None,
                segmentation: dict | None = None) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    if segmentation:
        written["segmentation"] = str(plot_segmentation_metrics(segmentation, directory / "segmentation_metrics.png",
                                                                f"Segmentation metrics on {stream.name}"))
    origin_ns = int(stream.stamps_ns[0])
    times_s = (clips.last_stamps_ns - origin_ns) / 1e9
    boundaries = [(s.start_ns - origin_ns) / 1e9 for s in stream.segments[1:]]
    decode_times, decode_texts, shown = np.zeros(0), [], "no decodes (no ground truth)"
    if curve is not None:
        written["curve"] = str(plot_decoding_curve(curve["points"], curve["baseline"], curve["best_adaptive"],
                                                   directory / "selective_decoding_curve.png",
                                                   f"Selective decoding on {stream.name}"))
        accuracy_points = {method: [replace(p, quality=p.caption_accuracy) for p in method_points]
                           for method, method_points in curve["points"].items()}
        written["curve_caption_accuracy"] = str(plot_decoding_curve(
            accuracy_points, replace(curve["baseline"], quality=curve["baseline"].caption_accuracy), None,
            directory / "selective_decoding_caption_accuracy.png", f"Selective decoding on {stream.name}",
            metric="caption accuracy"))
        # Show the online detector (the monitor node's algorithm) at its cheapest setting that matches
        # uniform 1 Hz, else at its most accurate setting.
        online_points = curve["points"]["online"]
        if online_points:
            _, chosen = decode_reduction(curve["baseline"], online_points)
            chosen = chosen or max(online_points, key=lambda p: p.quality)
            plan = curve["plans"]["online"][online_points.index(chosen)]
            decode_times = times_s[plan.decode_steps]
            decode_texts = [stream.label_bank[i] for i in chosen.decoded_labels]
            shown = f"online detector, threshold {chosen.parameter:.4g}: {chosen.decodes} decodes"
    written["timeline"] = str(plot_timeline(times_s, clips.embeddings, boundaries, decode_times, decode_texts,
                                            directory / "timeline.png", f"{stream.name} — {shown}"))
    return written


def json_ready(value: Any) -> Any:
    """Plain JSON types; NaN/Inf -> None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
