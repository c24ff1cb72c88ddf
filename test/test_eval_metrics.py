"""Evaluation metrics and selective-decoding bookkeeping on hand-made embeddings (no model)."""
import numpy as np
import pytest

from stream_synthetic import piecewise_constant_stream
from vljepa_ros.evaluation.metrics import (caption_accuracy, classification_accuracy, classification_chance,
                                           inverse_dynamics_accuracy, labels_per_step, text_to_clip_recall_at_1)
from vljepa_ros.stream.shift_detector import DetectorSettings
from vljepa_ros.evaluation.selective_decoding import (CurvePoint, best_text_quality_by_segment_count,
                                                      decode_reduction, evaluate_plan, label_match_scores,
                                                      online_plan, selective_decoding_curve,
                                                      spans_best_text_quality, stream_duration_s, uniform_plan,
                                                      ward_plan, ward_segment_counts)

LABELS = np.eye(5, 8, dtype=np.float32)  # 5 orthogonal label embeddings


def test_perfect_classifier_scores_one_and_a_wrong_one_zero():
    truth = np.array([0, 3, 3, 1, 4, -1])  # -1: a clip without ground truth, skipped
    clips = LABELS[np.maximum(truth, 0)] * 2.0 + 0.01  # scaled and offset: cosine must still pick the label
    assert classification_accuracy(clips, LABELS, truth) == 1.0
    assert classification_accuracy(LABELS[(np.maximum(truth, 0) + 1) % 5], LABELS, truth) == 0.0
    assert classification_chance(156) == 1 / 156


def test_retrieval_counts_any_clip_with_the_label_and_chance_is_exact():
    gallery_labels = ["a", "b", "a", "c"]
    gallery = LABELS[[0, 1, 0, 2]]
    recall, chance = text_to_clip_recall_at_1(LABELS[:3], gallery, ["a", "b", "c"], gallery_labels)
    assert recall == 1.0
    assert chance == pytest.approx((2 / 4 + 1 / 4 + 1 / 4) / 3)
    swapped, _ = text_to_clip_recall_at_1(LABELS[[1, 0, 2]], gallery, ["a", "b", "c"], gallery_labels)
    assert swapped == pytest.approx(1 / 3)


def test_inverse_dynamics_accuracy_and_chance():
    candidates = [["w", "x", "y", "z"]] * 3
    texts = [LABELS[:4]] * 3
    answers = [2, 0, 3]
    accuracy, chance, predicted = inverse_dynamics_accuracy(LABELS[answers], texts, candidates, answers)
    assert (accuracy, chance, predicted) == (1.0, 0.25, [2, 0, 3])
    accuracy, _, _ = inverse_dynamics_accuracy(LABELS[[2, 1, 1]], texts, candidates, answers)
    assert accuracy == pytest.approx(1 / 3)


def test_caption_accuracy_counts_steps_with_ground_truth():
    shown = labels_per_step(6, [(0, 2), (2, 5)], [7, 8])
    assert shown.tolist() == [7, 7, 8, 8, 8, -1]
    # valid steps 0,1,2,3,5: right at 0, 2, 3; wrong at 1 (7 vs 8) and 5 (nothing shown)
    assert caption_accuracy(shown, np.array([7, 8, 8, 8, -1, 9])) == pytest.approx(3 / 5)


def test_uniform_plan_shows_the_most_recent_decode():
    stamps = (np.arange(10) * 0.5e9).astype(np.int64)  # 2 Hz steps
    truth = np.array([0] * 5 + [1] * 5)
    plan = uniform_plan(LABELS[truth], stamps, 1.0)
    assert plan.decode_steps.tolist() == [0, 2, 4, 6, 8]
    assert plan.spans == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    point = evaluate_plan(plan, LABELS, truth, stream_duration_s(stamps))
    # Step 5 still shows the decode of step 4 (label 0): 9 of 10 steps right.
    assert point.quality == pytest.approx(0.9) and point.decodes == 5 and point.decodes_per_s == pytest.approx(1.0)


def test_ward_with_true_segment_count_is_perfect_on_a_clean_stream():
    embeddings, start_ns, end_ns, boundaries = piecewise_constant_stream([10, 16, 12, 14], dim=8, noise=0.3, seed=1)
    directions = np.stack([embeddings[a:b].mean(axis=0) for a, b in zip([0, *boundaries], [*boundaries, 52])])
    truth = np.repeat(np.arange(4), [10, 16, 12, 14])
    point = evaluate_plan(ward_plan(embeddings, 4), directions, truth, stream_duration_s(end_ns))
    assert point.quality == 1.0 and point.decodes == 4
    online = online_plan(embeddings, start_ns, end_ns, 0.2, DetectorSettings(smoothing_window=3, variance_window=6, min_interval_s=1.0, max_segment_s=0.0))
    assert online.spans[0][0] == 0 and online.spans[-1][1] == len(embeddings)
    assert all(a[1] == b[0] for a, b in zip(online.spans, online.spans[1:]))  # segments tile the stream
    assert evaluate_plan(online, directions, truth, stream_duration_s(end_ns)).quality > 0.95


def test_decode_reduction_takes_the_cheapest_point_that_matches_the_baseline():
    baseline = CurvePoint("uniform", 1.0, 100, 1.0, 0.80)
    points = [CurvePoint("ward", 10, 10, 0.1, 0.70), CurvePoint("ward", 25, 25, 0.25, 0.80),
              CurvePoint("online", 0.1, 40, 0.4, 0.95)]
    reduction, best = decode_reduction(baseline, points)
    assert reduction == 4.0 and best.parameter == 25
    assert decode_reduction(baseline, points[:1]) == (None, None)


def test_curve_on_a_perfect_stream_reports_a_reduction():
    lengths = [12, 15, 10, 14, 11, 13, 12, 16]  # ~2.5 Hz steps: 5-6 s segments
    embeddings, start_ns, end_ns, boundaries = piecewise_constant_stream(lengths, dim=16, noise=0.3, seed=2,
                                                                         fps=2.5)
    edges = [0, *boundaries, len(embeddings)]
    bank = np.stack([embeddings[a:b].mean(axis=0) for a, b in zip(edges, edges[1:])])
    truth = np.repeat(np.arange(len(lengths)), lengths)
    curve = selective_decoding_curve(embeddings, start_ns, end_ns, truth, bank,
                                     DetectorSettings(smoothing_window=2, variance_window=3, min_interval_s=1.0, max_segment_s=20.0))
    assert curve["baseline"].parameter == 1.0 and curve["baseline"].quality < 1.0  # uniform lags at boundaries
    # One decode per true segment is perfect, so the reduction is at least decodes(1 Hz) / 8.
    assert curve["decode_reduction_vs_uniform_1hz"] >= curve["baseline"].decodes / len(lengths) - 1e-9
    assert curve["best_adaptive"].quality >= curve["baseline"].quality
    # Ward is measured at every segment count up to the baseline's, with exactly that many decodes.
    ward_decodes = [point.decodes for point in curve["points"]["ward"]]
    assert ward_decodes == list(range(1, curve["baseline"].decodes + 1))
    assert curve["decode_reduction_ward"] == curve["baseline"].decodes / len(lengths)  # N = 8 is measured
    # The ceiling reads the truth: the 8 true segments showing their labels are perfect, so at most 8 decodes
    # reach the baseline; it bounds every method, and Ward's cuts with their best text bound Ward.
    ceiling = curve["ceiling"]
    assert ceiling["decodes"] <= len(lengths) and ceiling["decode_reduction"] >= curve["decode_reduction_vs_uniform_1hz"]
    ward_reaching_decodes = round(curve["baseline"].decodes / curve["decode_reduction_ward"])
    assert ceiling["decodes"] <= ceiling["ward_segments_decodes"] <= ward_reaching_decodes


def test_ward_segment_counts_cover_every_count_up_to_the_baseline():
    assert ward_segment_counts(100, 7) == [1, 2, 3, 4, 5, 6, 7]
    assert ward_segment_counts(3, 7) == [1, 2, 3]  # no more segments than steps
    assert ward_segment_counts(5, 0) == [1]
    assert ward_segment_counts(0, 7) == []


def all_segmentations(steps: int, count: int):
    """Every split of range(steps) into `count` contiguous non-empty segments."""
    if count == 1:
        yield [(0, steps)]
        return
    for first_end in range(1, steps - count + 2):
        for rest in all_segmentations(steps - first_end, count - 1):
            yield [(0, first_end)] + [(start + first_end, end + first_end) for start, end in rest]


def test_best_text_quality_equals_brute_force_over_every_segmentation():
    rng = np.random.default_rng(4)
    scores = rng.random((8, 3))
    scores[2] = np.nan  # an unlabelled step counts in no mean
    qualities = best_text_quality_by_segment_count(scores, 8)
    assert len(qualities) == 8
    for count in range(1, 9):
        brute = max(spans_best_text_quality(scores, spans) for spans in all_segmentations(8, count))
        assert qualities[count - 1] == pytest.approx(brute, rel=1e-12)
    assert np.all(np.diff(qualities) >= -1e-12)  # one more segment never hurts
    assert best_text_quality_by_segment_count(scores, 20).shape == (8,)  # at most one segment per step
    assert best_text_quality_by_segment_count(scores[:, :0], 3).size == 0  # an empty bank shows nothing
    assert spans_best_text_quality(scores[:, :0], [(0, 8)]) == 0.0


def test_label_match_scores_give_the_true_segmentation_perfect_accuracy():
    truth = np.array([0, 0, 1, 1, 1, -1, 2, 2])
    scores = label_match_scores(truth, 4)
    assert np.isnan(scores[5]).all() and scores[0].tolist() == [1, 0, 0, 0]
    qualities = best_text_quality_by_segment_count(scores, 5)
    assert qualities[2] == 1.0 and qualities[1] == pytest.approx(5 / 7)  # 3 segments are perfect; 2 miss one run
