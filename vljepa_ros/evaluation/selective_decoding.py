"""Selective decoding: how much text decoding does each strategy need for a given caption quality?

Every strategy turns the stream's embeddings (one per clip, "time steps") into decodes. A decode
has the embedding it decodes, the step at which it happens, and the span of steps its text is
shown for:
  uniform at r Hz  decode the newest embedding at t0, t0 + 1/r, ...; the text is shown until the
                   next decode (the most recently decoded text; causal).
  ward (offline)   the paper's evaluation: Ward clustering with temporal connectivity splits the
                   stream into N segments; decode each segment's mean embedding, at its midpoint;
                   the text is shown for that segment. Swept at every N from 1 to the uniform 1 Hz
                   decode count (a larger N cannot beat the baseline).
  online           OnlineShiftDetector (the monitor node's algorithm) closes segments; decode each
                   segment's mean embedding when the segment closes; the text is shown for that segment.
Text = retrieval decoding: the nearest entry of the caption bank (here the stream's label bank, so a
decoded text is one class label). Quality = CIDEr-D (captioning.py), as in the paper: the shown text
at every labelled time step scored against the reference captions of the ground-truth segment
covering that step's clip's last frame. Caption accuracy (the fraction of those steps whose shown
text is that segment's label) is kept beside it; without references (unit tests on bare vectors)
caption accuracy is the quality. Rate = decodes / stream duration.

The ceiling says how much of a shortfall is the stream's and how much the model's: the fewest contiguous
segments that reach uniform 1 Hz's quality when each shows the one bank text scoring best on it (dynamic
programming over every segmentation), and the same over Ward's own segments. It reads the references, so
no decoder can do better; a stream whose segments change faster than the baseline decodes allows little.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from vljepa_ros.evaluation.captioning import StepCaptionScorer
from vljepa_ros.evaluation.metrics import caption_accuracy, labels_per_step
from vljepa_ros.stream.label_bank import nearest_indices
from vljepa_ros.stream.segmentation import segment_decode_points, uniform_decode_indices, ward_segments
from vljepa_ros.stream.shift_detector import DetectorSettings, OnlineShiftDetector

UNIFORM_RATES_HZ = (0.1, 0.2, 0.25, 0.33, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
# Dense sweeps: the reduction is read off measured points, so a coarse grid would understate it
# (Ward is swept at every segment count; see ward_segment_counts).
ONLINE_SCORE_QUANTILES = tuple(np.round(np.arange(0.30, 0.991, 0.02), 2))
BASELINE_RATE_HZ = 1.0


@dataclass
class DecodePlan:
    method: str  # "uniform" | "ward" | "online"
    parameter: float  # rate_hz | n_segments | threshold
    decode_steps: np.ndarray  # (K,) step at which each decode happens
    spans: list[tuple[int, int]]  # (K,) [start, end) steps each decoded text is shown for
    embeddings: np.ndarray  # (K, D) what is decoded


@dataclass
class CurvePoint:
    method: str
    parameter: float
    decodes: int
    decodes_per_s: float
    quality: float  # CIDEr-D when the curve has references, else caption accuracy
    decoded_labels: list[int] = field(default_factory=list, repr=False)  # bank index per decode
    caption_accuracy: float = float("nan")
    shown_labels: list[int] = field(default_factory=list, repr=False)  # bank index shown at each step (-1: none)

    def to_dict(self) -> dict:
        summary = asdict(self)
        summary.pop("decoded_labels")
        summary.pop("shown_labels")
        return summary


def stream_duration_s(stamps_ns: np.ndarray) -> float:
    """Span of the time steps plus one step period (N steps at period p last N * p)."""
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    if stamps_ns.size < 2:
        return 0.0
    period_ns = float(np.median(np.diff(stamps_ns)))
    return (stamps_ns[-1] - stamps_ns[0] + period_ns) / 1e9


def uniform_plan(embeddings: np.ndarray, stamps_ns: np.ndarray, rate_hz: float) -> DecodePlan:
    steps = uniform_decode_indices(stamps_ns, rate_hz)
    ends = np.append(steps[1:], len(embeddings))
    return DecodePlan("uniform", float(rate_hz), steps, list(zip(steps.tolist(), ends.tolist())), embeddings[steps])


def ward_segment_counts(steps: int, baseline_decodes: int) -> list[int]:
    """Every segment count N = 1 .. the baseline's decode count (at most one segment per step).

    Each N is one measured point: a grid over N (as an earlier version swept it, every 0.025 Hz) skips
    counts and so understates the reduction by up to a grid step. Fitting is cheap beside scoring.
    """
    return list(range(1, max(1, min(baseline_decodes, steps)) + 1)) if steps else []


def ward_plan(embeddings: np.ndarray, n_segments: int) -> DecodePlan:
    segments = ward_segments(embeddings, n_segments)
    midpoints, means = segment_decode_points(embeddings, segments)
    return DecodePlan("ward", float(len(segments)), midpoints, segments, means)


def online_plan(embeddings: np.ndarray, first_stamps_ns: np.ndarray, last_stamps_ns: np.ndarray,
                threshold: float, settings: DetectorSettings) -> DecodePlan:
    detector = OnlineShiftDetector.from_settings(settings, threshold)
    steps, spans, means = [], [], []
    for step, (vector, start_ns, end_ns) in enumerate(zip(embeddings, first_stamps_ns, last_stamps_ns)):
        event = detector.update(vector, start_ns, end_ns)
        if event is not None:
            steps.append(step)
            spans.append((event.start_index, event.end_index))
            means.append(event.embedding)
    event = detector.flush()
    if event is not None:  # the end of the stream closes the last segment (decoded then, like the monitor)
        steps.append(len(embeddings) - 1)
        spans.append((event.start_index, event.end_index))
        means.append(event.embedding)
    dimension = embeddings.shape[1]
    return DecodePlan("online", float(threshold), np.array(steps, dtype=np.int64), spans,
                      np.stack(means) if means else np.zeros((0, dimension), np.float32))


def online_score_trace(embeddings: np.ndarray, first_stamps_ns: np.ndarray, last_stamps_ns: np.ndarray,
                       settings: DetectorSettings) -> np.ndarray:
    """The detector's local-variance score at every step (a detector that never fires)."""
    detector = OnlineShiftDetector(settings.smoothing_window, settings.variance_window, np.inf, 0.0, 0.0)
    scores = []
    for vector, start_ns, end_ns in zip(embeddings, first_stamps_ns, last_stamps_ns):
        detector.update(vector, start_ns, end_ns)
        scores.append(detector.last_score)
    return np.array(scores)


def online_thresholds(scores: np.ndarray, default_threshold: float | None = None) -> list[float]:
    """Thresholds to sweep: quantiles of the score trace (scale-free across models), plus the node default."""
    positive = scores[scores > 0]
    thresholds = set(np.quantile(positive, ONLINE_SCORE_QUANTILES).tolist()) if positive.size else set()
    if default_threshold:
        thresholds.add(float(default_threshold))
    return sorted(t for t in thresholds if t > 0)


def shown_texts(shown: np.ndarray, bank_texts: Sequence[str]) -> list[str]:
    """The text on screen at each step ('' before the first decode)."""
    return [bank_texts[index] if index >= 0 else "" for index in shown]


def decode_plan(plan: DecodePlan, bank_embeddings: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(bank index of each decode, bank index shown at each step): each decode is its nearest bank entry."""
    decoded = nearest_indices(plan.embeddings, bank_embeddings) if len(plan.embeddings) else np.zeros(0, np.int64)
    return decoded, labels_per_step(steps, plan.spans, decoded)


def evaluate_plan(plan: DecodePlan, bank_embeddings: np.ndarray, true_labels: np.ndarray, duration_s: float,
                  caption_scorer: StepCaptionScorer | None = None, bank_texts: Sequence[str] = ()) -> CurvePoint:
    """Decode each planned embedding to its nearest bank entry and score the shown text at every step."""
    decoded, shown = decode_plan(plan, bank_embeddings, len(true_labels))
    return score_decoding(plan, decoded, shown, true_labels, duration_s, caption_scorer, bank_texts)


def score_decoding(plan: DecodePlan, decoded: np.ndarray, shown: np.ndarray, true_labels: np.ndarray,
                   duration_s: float, caption_scorer: StepCaptionScorer | None = None,
                   bank_texts: Sequence[str] = ()) -> CurvePoint:
    """The curve point of a decoded plan (decode_plan's output)."""
    decodes = len(plan.spans)
    accuracy = caption_accuracy(shown, true_labels)
    quality = caption_scorer.score(shown_texts(shown, bank_texts)) if caption_scorer is not None else accuracy
    return CurvePoint(plan.method, plan.parameter, decodes, decodes / duration_s if duration_s else float("nan"),
                      quality, decoded.tolist(), accuracy, shown.tolist())


def decode_reduction(baseline: CurvePoint, adaptive: list[CurvePoint]) -> tuple[float | None, CurvePoint | None]:
    """baseline.decodes / decodes of the cheapest adaptive point whose quality >= the baseline's.

    Measured points only (no interpolation): the reduction actually achieved by a setting we ran.
    None when no adaptive point reaches the baseline quality.
    """
    reaching = [p for p in adaptive if p.decodes > 0 and p.quality >= baseline.quality - 1e-12]
    if not reaching:
        return None, None
    best = min(reaching, key=lambda p: (p.decodes, -p.quality))
    return baseline.decodes / best.decodes, best


def label_match_scores(true_labels: np.ndarray, bank_size: int) -> np.ndarray:
    """(steps, bank): caption accuracy per step and bank entry (1 for the step's label), NaN at unlabelled steps."""
    true_labels = np.asarray(true_labels)
    scores = (true_labels[:, None] == np.arange(bank_size)[None, :]).astype(np.float64)
    scores[true_labels < 0] = np.nan
    return scores


def _prefix_sums(step_scores: np.ndarray) -> tuple[np.ndarray, int]:
    """(P, labelled steps): P[j] = the scores of steps [0, j) summed per text (unlabelled steps count 0)."""
    labelled = int((~np.isnan(step_scores).all(axis=1)).sum())
    prefix = np.vstack([np.zeros(step_scores.shape[1]), np.cumsum(np.nan_to_num(step_scores), axis=0)])
    return prefix, labelled


def _spans_quality(prefix: np.ndarray, labelled: int, spans: list[tuple[int, int]]) -> float:
    if not labelled or prefix.shape[1] == 0 or not spans:
        return 0.0
    starts, ends = np.array(spans).T
    return float((prefix[ends] - prefix[starts]).max(axis=1).sum() / labelled)


def best_text_quality_by_segment_count(step_scores: np.ndarray, max_segments: int) -> np.ndarray:
    """Quality at k = 1 .. max_segments (at most one per step) of the best display of k contiguous segments,
    each showing the one text (column of step_scores) that scores best on it.

    Dynamic programming without the N x N table: with P the prefix sums of the scores over steps, the best
    total of k segments ending at step j is max_b (P[j, b] + max_{i < j} (best_{k-1}[i] - P[i, b])), and
    the inner maximum is a running maximum over i.
    """
    prefix, labelled = _prefix_sums(step_scores)
    if not labelled or step_scores.shape[1] == 0:
        return np.zeros(0)
    steps = len(step_scores)
    best = np.full(steps + 1, -np.inf)
    best[0] = 0.0  # best total over steps [0, j) with the segments placed so far
    qualities = []
    for _ in range(min(max_segments, steps)):
        running = np.maximum.accumulate(best[:, None] - prefix, axis=0)
        best = np.concatenate([[-np.inf], np.max(prefix[1:] + running[:-1], axis=1)])
        qualities.append(best[steps] / labelled)
    return np.array(qualities)


def spans_best_text_quality(step_scores: np.ndarray, spans: list[tuple[int, int]]) -> float:
    """Quality of these segments when each shows the one text that scores best on it."""
    return _spans_quality(*_prefix_sums(step_scores), spans)


def decode_ceiling(step_scores: np.ndarray, baseline: CurvePoint, ward_plans: list[DecodePlan]) -> dict:
    """The fewest decodes that can reach the baseline's quality: over any segmentation, and over Ward's."""
    def reduction(decodes: int | None) -> float | None:
        return baseline.decodes / decodes if decodes else None

    reaching = np.flatnonzero(best_text_quality_by_segment_count(step_scores, baseline.decodes)
                              >= baseline.quality - 1e-12)
    decodes = int(reaching[0]) + 1 if reaching.size else None
    prefix, labelled = _prefix_sums(step_scores)  # once for every Ward plan
    ward_decodes = min((len(plan.spans) for plan in ward_plans
                        if _spans_quality(prefix, labelled, plan.spans) >= baseline.quality - 1e-12), default=None)
    return {"decodes": decodes, "decode_reduction": reduction(decodes),
            "ward_segments_decodes": ward_decodes, "ward_segments_decode_reduction": reduction(ward_decodes)}


def selective_decoding_curve(embeddings: np.ndarray, first_stamps_ns: np.ndarray, last_stamps_ns: np.ndarray,
                             true_labels: np.ndarray, bank_embeddings: np.ndarray,
                             online_settings: DetectorSettings = DetectorSettings(),
                             caption_scorer: StepCaptionScorer | None = None, bank_texts: Sequence[str] = ()) -> dict:
    """All curve points, the uniform-1 Hz baseline, the decode reductions (overall, Ward, online) and their ceiling.

    With `caption_scorer` (references per step) and `bank_texts`, quality is CIDEr-D; else caption accuracy.
    """
    duration_s = stream_duration_s(last_stamps_ns)
    step_rate_hz = len(embeddings) / duration_s if duration_s else 0.0

    plans: dict[str, list[DecodePlan]] = {"uniform": [], "ward": [], "online": []}
    # Uniform rates above the embedding rate decode every embedding, all alike: keep one of those.
    rates = sorted({min(r, step_rate_hz) for r in UNIFORM_RATES_HZ} | {BASELINE_RATE_HZ})
    plans["uniform"] = [uniform_plan(embeddings, last_stamps_ns, rate) for rate in rates]
    baseline_decodes = len(next(p for p in plans["uniform"] if p.parameter == BASELINE_RATE_HZ).spans)
    plans["ward"] = [ward_plan(embeddings, count) for count in ward_segment_counts(len(embeddings), baseline_decodes)]
    scores = online_score_trace(embeddings, first_stamps_ns, last_stamps_ns, online_settings)
    plans["online"] = [online_plan(embeddings, first_stamps_ns, last_stamps_ns, threshold, online_settings)
                       for threshold in online_thresholds(scores, online_settings.shift_threshold)]

    decodings = {method: [decode_plan(plan, bank_embeddings, len(true_labels)) for plan in method_plans]
                 for method, method_plans in plans.items()}
    if caption_scorer is not None:  # every plan's texts in a few scorer runs, rather than one run per plan
        caption_scorer.prefetch(shown_texts(shown, bank_texts)
                                for method_decodings in decodings.values() for _, shown in method_decodings)
    points = {method: [score_decoding(plan, decoded, shown, true_labels, duration_s, caption_scorer, bank_texts)
                       for plan, (decoded, shown) in zip(method_plans, decodings[method])]
              for method, method_plans in plans.items()}
    baseline = next(p for p in points["uniform"] if p.parameter == BASELINE_RATE_HZ)
    reduction, best = decode_reduction(baseline, points["ward"] + points["online"])
    ward_reduction, _ = decode_reduction(baseline, points["ward"])
    online_reduction, _ = decode_reduction(baseline, points["online"])
    step_scores = caption_scorer.step_scores(bank_texts) if caption_scorer is not None \
        else label_match_scores(true_labels, len(bank_embeddings))
    return {
        "quality_metric": "cider_d" if caption_scorer is not None else "caption_accuracy",
        "duration_s": duration_s, "steps": int(len(embeddings)), "step_rate_hz": step_rate_hz,
        "plans": plans, "points": points, "scores": scores,
        "baseline": baseline, "best_adaptive": best,
        "decode_reduction_vs_uniform_1hz": reduction,
        "decode_reduction_ward": ward_reduction, "decode_reduction_online": online_reduction,
        "ceiling": decode_ceiling(step_scores, baseline, plans["ward"]),
    }
