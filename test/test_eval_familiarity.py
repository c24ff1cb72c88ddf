"""eval's familiarity section: the metrics on constructed scores with known values, the report on a tiny
random model, and `eval --ood-bag/--ood-video` end to end (issue 31, items 3 and 4)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from model_fixtures import tiny_model_dir  # noqa: F401 (a pytest fixture)
from vljepa_ros.evaluation.familiarity_metrics import (auroc, expected_calibration_error, flagged_share, fpr_at_tpr,
                                                       risk_coverage)


# ----------------------------------------------------------------------------------------- metrics


def test_auroc_counts_ordered_pairs_and_ties_count_half():
    # OOD 2.5 beats 3 of the 4 ID scores, the others all 4: 15 of 16 pairs.
    assert auroc([0, 1, 2, 3], [2.5, 3.5, 4, 5]) == pytest.approx(15 / 16)
    assert auroc([1.0], [1.0]) == pytest.approx(0.5)
    assert auroc([5, 6], [1, 2]) == 0.0


def test_fpr_at_95_tpr_takes_the_strictest_threshold_keeping_95_percent_of_in_distribution():
    in_distribution = np.arange(20.0)  # keeping 19 of 20 (95%) means accepting everything below 19
    # ...and the strictest such threshold (just above 18) also accepts only the OOD clip at 10.5.
    assert fpr_at_tpr(in_distribution, [10.5, 18.5, 30, 40]) == pytest.approx(0.25)
    assert fpr_at_tpr(in_distribution, [100, 200]) == 0.0
    assert fpr_at_tpr(in_distribution, [-1, -2]) == 1.0


def test_flagged_share_counts_familiarity_strictly_below_the_threshold():
    assert flagged_share(np.array([0.01, 0.05, 0.5, 0.04]), 0.05) == 0.5


def test_risk_coverage_leaves_out_the_least_confident_first():
    curve = risk_coverage([0.9, 0.8, 0.7, 0.6], [True, False, True, True])
    np.testing.assert_allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.accuracy, [1.0, 0.5, 2 / 3, 0.75])
    assert curve.aurc == pytest.approx((0 + 0.5 + 1 / 3 + 0.25) / 4)  # the mean selective risk
    assert curve.optimal_aurc == pytest.approx(0.25 / 4)  # the wrong clip last: risk only at full coverage
    assert curve.accuracy_at(0.5) == 0.5 and curve.accuracy_at(0.6) == pytest.approx(2 / 3)


def test_risk_coverage_keeps_equally_confident_clips_together():
    curve = risk_coverage([0.9, 0.9, 0.5], [True, False, True])
    np.testing.assert_allclose(curve.coverage, [2 / 3, 1.0])
    np.testing.assert_allclose(curve.accuracy, [0.5, 2 / 3])
    assert curve.aurc == pytest.approx(0.5 * 2 / 3 + (1 / 3) * (1 / 3))


def test_expected_calibration_error_weights_each_bins_gap_by_its_share():
    # Bin (14/15, 1]: confidence 0.95, accuracy 0.5; bin (8/15, 9/15]: 0.55 vs 1.0; each half the clips.
    calibration = expected_calibration_error([0.95, 0.95, 0.55, 0.55], [1, 0, 1, 1])
    assert calibration.ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)
    assert calibration.bin_counts[14] == 2 and calibration.bin_counts[8] == 2 and calibration.bin_counts.sum() == 4
    # Right-closed bins: 2/15 belongs to the second bin, 0 to the first.
    assert list(np.flatnonzero(expected_calibration_error([2 / 15, 0.0], [1, 1]).bin_counts)) == [0, 1]
    assert expected_calibration_error([0.7, 0.7, 0.7], [1, 1, 0]).ece == pytest.approx(0.7 - 2 / 3)


def test_metrics_refuse_empty_or_mismatched_input():
    with pytest.raises(ValueError):
        auroc([], [1.0])
    with pytest.raises(ValueError):
        risk_coverage([0.5, 0.4], [True])
    with pytest.raises(ValueError):
        expected_calibration_error([1.5], [1])
