"""The field's metrics against hand-computed values: MS-TCN's edit / F1@k / accuracy, GEBD boundary F1, CIDEr-D."""
from __future__ import annotations

import numpy as np
import pytest

from vljepa_ros.evaluation.captioning import StepCaptionScorer, caption_tokens, cider_d
from vljepa_ros.evaluation.segmentation_metrics import (boundary_scores, edit_score, frame_accuracy,
                                                        label_change_boundaries, labels_start_end, levenshtein,
                                                        segmentation_report, segmental_f1, span_boundaries)

TRUTH = [0] * 10 + [1] * 10 + [2] * 10


def test_identical_sequences_score_100():
    assert edit_score(TRUTH, TRUTH) == 100.0
    assert all(segmental_f1(TRUTH, TRUTH, k) == 100.0 for k in (0.1, 0.25, 0.5))
    assert frame_accuracy(TRUTH, TRUTH) == 100.0


def test_segments_follow_ms_tcn_including_its_last_end():
    # MS-TCN's get_labels_start_end_time: the last segment ends at the last frame's index.
    assert labels_start_end([0, 0, -1, 1, 1]) == ([0, 1], [0, 3], [2, 4])


def test_over_segmented_prediction():
    """Truth A(10) B(10) C(10); prediction splits B with a 2-frame A in its middle.

    Segments: predicted A B A B C (5), true A B C (3): Levenshtein 2 -> edit (1 - 2/5) * 100 = 60.
    IoU (MS-TCN ends): pA 0-10 vs A 0-10 = 1; pB 10-14 vs B 10-20 = 0.4; pA 14-16 best A IoU 0 (A already hit,
    no overlap); pB 16-20 vs B = 0.4 (B already hit at 0.1 -> FP); pC 20-29 vs C 20-29 = 1.
    F1@10: TP 3 (A, B, C), FP 2, FN 0 -> P 3/5, R 1 -> F1 75. F1@50: pB 0.4 fails -> TP 2, FP 3, FN 1 -> P .4,
    R 2/3 -> F1 50. Frame accuracy 28/30.
    """
    predicted = [0] * 10 + [1] * 4 + [0] * 2 + [1] * 4 + [2] * 10
    assert levenshtein([0, 1, 0, 1, 2], [0, 1, 2]) == 2
    assert edit_score(predicted, TRUTH) == pytest.approx(60.0)
    assert segmental_f1(predicted, TRUTH, 0.10) == pytest.approx(75.0)
    assert segmental_f1(predicted, TRUTH, 0.25) == pytest.approx(75.0)
    assert segmental_f1(predicted, TRUTH, 0.50) == pytest.approx(50.0)
    assert frame_accuracy(predicted, TRUTH) == pytest.approx(100 * 28 / 30)


def test_background_is_not_a_segment_and_not_judged():
    truth = [-1] * 5 + [3] * 5
    report = segmentation_report([7] * 5 + [3] * 5, truth, [], [0.5])
    assert report["edit_score"] == 100.0 and report["f1_at_50"] == 100.0 and report["frame_accuracy"] == 100.0


def test_boundary_f1_matches_one_to_one_within_tolerance():
    truth = [10.0, 20.0, 30.0]
    # 10.4 and 10.8 both lie within 1 s of 10 but only one may match it; 21.5 matches 20 only within 2 s.
    one = boundary_scores([10.4, 10.8, 21.5, 45.0], truth, 1.0)
    assert (one["matched"], one["precision"], one["recall"]) == (1, 0.25, pytest.approx(1 / 3))
    assert one["f1"] == pytest.approx(2 * 0.25 * (1 / 3) / (0.25 + 1 / 3))
    two = boundary_scores([10.4, 10.8, 21.5, 45.0], truth, 2.0)
    assert two["matched"] == 2 and two["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    # The matching maximises matches: 11 could take 10 or 12 greedily, but 10.5 -> 10 and 11.6 -> 12 matches both.
    assert boundary_scores([10.5, 11.6], [10.0, 12.0], 1.0)["matched"] == 2
    assert boundary_scores(truth, truth, 1.0)["f1"] == 1.0
    assert boundary_scores([], truth, 1.0)["f1"] == 0.0


def test_boundary_times_lie_midway_between_steps():
    times = [0.0, 1.0, 2.0, 3.0]
    assert label_change_boundaries([5, 5, 6, 6], times) == [1.5]
    assert span_boundaries([(0, 1), (1, 3), (3, 4)], times) == [0.5, 2.5]


REFERENCES = [["a red cube is picked up", "the robot picks up the red cube", "lifting the red cube"],
              ["the blue ball rolls left", "a blue ball moves to the left", "pushing the blue ball left"],
              ["the arm is idle", "nothing moves", "the robot waits"]]


def test_cider_d_prefers_the_right_caption():
    right, _ = cider_d(["the robot picks up the red cube", "a blue ball moves to the left", "the robot waits"],
                       REFERENCES)
    wrong, _ = cider_d(["the blue ball rolls left", "the arm is idle", "a red cube is picked up"], REFERENCES)
    assert right > 1.0 > wrong


def test_cider_d_fixed_value():
    """A fixed example pins the scorer (coco-caption CIDEr-D: clipping, sigma 6, x10, IDF over these refs)."""
    score, per_item = cider_d(["a red cube", "a blue ball rolls", "the arm waves"],
                              [["a red cube", "the red cube"], ["a blue ball rolls", "the blue ball"],
                               ["the arm waves", "an arm is waving"]])
    assert score == pytest.approx(5.419350551706597, rel=1e-9)
    assert per_item == pytest.approx([5.584491302239357, 6.487714265440399, 4.185846087440035], rel=1e-9)


def test_cider_tokenization_and_unreferenced_items():
    assert caption_tokens("The Robot's arm, picks UP!  the cube.") == "the robots arm picks up the cube"
    score, per_item = cider_d(["x", "a red cube is picked up"], [[], REFERENCES[0]])
    assert per_item[0] != per_item[0] and per_item[1] == pytest.approx(score)  # NaN where no references


def test_step_scorer_caches_but_equals_a_direct_call():
    references = [REFERENCES[0]] * 3 + [REFERENCES[1]] * 2 + [[]]
    scorer = StepCaptionScorer(references, [0, 0, 0, 1, 1, -1])
    first = ["lifting the red cube"] * 3 + ["nothing moves"] * 2 + ["ignored"]
    second = ["lifting the red cube"] * 3 + ["the blue ball rolls left"] * 2 + ["also ignored"]
    for hypotheses in (first, second, first):
        assert scorer.score(hypotheses) == pytest.approx(cider_d(hypotheses[:5], references[:5])[0], rel=1e-12)


def test_step_scorer_prefetch_scores_many_decodings_in_few_runs_and_exactly(monkeypatch):
    from vljepa_ros.evaluation import captioning

    references = [REFERENCES[0]] * 3 + [REFERENCES[1]] * 2 + [[]]
    texts = ["lifting the red cube", "nothing moves", "the blue ball rolls left", "a red cube is picked up",
             "the arm waves", ""]
    decodings = [[texts[(shift + step) % len(texts)] for step in range(6)] for shift in range(6)]
    runs = []
    monkeypatch.setattr(captioning, "cider_d", lambda *args: runs.append(1) or cider_d(*args))
    scorer = StepCaptionScorer(references, [0, 0, 0, 1, 1, -1])
    scorer.prefetch(decodings)
    # 6 texts per segment: segment 0 has 3 steps and segment 1 has 2, so 3 runs score all 12 pairs
    assert len(runs) == 3 and len(scorer.cache) == 12
    for hypotheses in decodings:  # no further run, and each score is what a direct call gives
        assert scorer.score(hypotheses) == pytest.approx(cider_d(hypotheses[:5], references[:5])[0], rel=1e-12)
    assert len(runs) == 3


def test_step_scores_are_each_text_shown_everywhere():
    references = [REFERENCES[0]] * 3 + [REFERENCES[1]] * 2 + [[]]
    scorer = StepCaptionScorer(references, [0, 0, 0, 1, 1, -1])
    texts = ["lifting the red cube", "the blue ball rolls left", ""]
    scores = scorer.step_scores(texts)
    assert scores.shape == (6, 3) and np.isnan(scores[5]).all() and not np.isnan(scores[:5]).any()
    for column, text in enumerate(texts):
        assert scores[:5, column].mean() == pytest.approx(scorer.score([text] * 6), rel=1e-12)
    assert (scores[:, 2][:5] == 0).all()  # showing nothing earns nothing
