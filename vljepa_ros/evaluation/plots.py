"""The two evaluation figures (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)
import numpy as np  # noqa: E402

from vljepa_ros.evaluation.selective_decoding import CurvePoint  # noqa: E402

METHOD_STYLES = {"uniform": ("tab:gray", "o", "uniform"), "ward": ("tab:blue", "s", "Ward (offline)"),
                 "online": ("tab:orange", "^", "online detector")}
MAX_TIMELINE_LABELS = 40  # beyond this the decoded texts overlap into noise


def plot_decoding_curve(points: dict[str, list[CurvePoint]], baseline: CurvePoint, best: CurvePoint | None,
                        path: str | Path, title: str = "", metric: str = "CIDEr-D") -> Path:
    """Quality (CIDEr-D, or caption accuracy) vs decodes per second per strategy, with the uniform-1 Hz reference."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method, method_points in points.items():
        colour, marker, name = METHOD_STYLES[method]
        ordered = sorted(method_points, key=lambda p: p.decodes_per_s)
        axis.plot([p.decodes_per_s for p in ordered], [p.quality for p in ordered], marker=marker, color=colour,
                  label=name, linewidth=1.5, markersize=5)
    axis.axhline(baseline.quality, color="tab:gray", linestyle="--", linewidth=1,
                 label=f"uniform 1 Hz {metric} ({baseline.quality:.3f})")
    if best is not None:
        axis.annotate(f"{baseline.decodes / best.decodes:.2f}x fewer decodes",
                      (best.decodes_per_s, best.quality), xytext=(15, 30), textcoords="offset points",
                      arrowprops=dict(arrowstyle="->"))
    axis.set_xscale("log")
    axis.set_xlabel("decodes per second (log)")
    axis.set_ylabel(metric)
    top = max([p.quality for method_points in points.values() for p in method_points] + [1.0])
    axis.set_ylim(-0.02 * top, 1.02 * top)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title(title or "Selective decoding: quality vs decode rate")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def plot_timeline(times_s: np.ndarray, embeddings: np.ndarray, boundary_times_s: list[float],
                  decode_times_s: np.ndarray, decode_texts: list[str], path: str | Path, title: str = "") -> Path:
    """Cosine distance between consecutive embeddings, ground-truth boundaries, and decode points with text."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    distance = np.concatenate([[0.0], 1.0 - np.sum(unit[1:] * unit[:-1], axis=1)])
    width = float(np.clip((times_s[-1] - times_s[0]) / 6.0 if len(times_s) else 10, 10, 40))
    figure, axis = plt.subplots(figsize=(width, 5))
    axis.plot(times_s, distance, color="tab:blue", linewidth=1, label="1 - cos(e[t], e[t-1])")
    for index, boundary in enumerate(boundary_times_s):
        axis.axvline(boundary, color="tab:green", linestyle="--", linewidth=0.8,
                     label="ground-truth boundary" if index == 0 else None)
    top = float(distance.max()) if distance.size else 1.0
    top = top if top > 0 else 1.0
    axis.scatter(decode_times_s, np.full(len(decode_times_s), top * 1.05), marker="v", color="tab:red", zorder=3,
                 label="decode")
    for time_s, text in list(zip(decode_times_s, decode_texts))[:MAX_TIMELINE_LABELS]:
        axis.annotate(text, (time_s, top * 1.08), rotation=60, fontsize=7, ha="left", va="bottom")
    axis.set_ylim(0, top * 1.9)  # room for the rotated texts
    axis.set_xlabel("time (s, clip end)")
    axis.set_ylabel("embedding distance")
    axis.legend(loc="upper right", fontsize=8)
    axis.set_title(title or "Embedding timeline")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


SEGMENTATION_BARS = (("boundary_f1_1s", 100.0), ("boundary_f1_2s", 100.0), ("f1_at_10", 1.0), ("f1_at_25", 1.0),
                     ("f1_at_50", 1.0), ("edit_score", 1.0), ("frame_accuracy", 1.0))  # (key, scale to percent)


def plot_segmentation_metrics(segmentation: dict, path: str | Path, title: str = "") -> Path:
    """Grouped bars: boundary F1 (x100), F1@k, edit and frame accuracy for each evaluated segmentation."""
    names = [name for name, metrics in segmentation.items() if isinstance(metrics, dict) and "edit_score" in metrics]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(names), 1)
    for offset, name in enumerate(names):
        values = [(segmentation[name][key] or 0.0) * scale for key, scale in SEGMENTATION_BARS]
        axis.bar(np.arange(len(SEGMENTATION_BARS)) + offset * width, values, width, label=name.replace("_", " "))
    axis.set_xticks(np.arange(len(SEGMENTATION_BARS)) + width * (len(names) - 1) / 2)
    axis.set_xticklabels(["bF1 ±1 s", "bF1 ±2 s", "F1@10", "F1@25", "F1@50", "edit", "frame acc"])
    axis.set_ylabel("percent")
    axis.set_ylim(0, 105)
    axis.legend(fontsize=7)
    axis.grid(True, axis="y", alpha=0.3)
    axis.set_title(title or "Segmentation metrics")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
