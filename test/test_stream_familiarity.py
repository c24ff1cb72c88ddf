"""The familiarity score (stream/familiarity.py): conformal p-values over a fitted Gaussian, its file, and
the pieces the nodes build on it (segment pooling, the unfamiliar share, label confidence)."""
from __future__ import annotations

import numpy as np
import pytest

from vljepa_ros.stream.familiarity import (FAMILIARITY_FILE, NOT_COMPUTED, FamiliarityError, FamiliarityModel,
                                           UnfamiliarShare, fit_familiarity, segment_familiarity)
from vljepa_ros.stream.label_bank import label_confidence

DIMENSION = 12


def correlated_gaussian(rng: np.random.Generator, count: int, shift: float = 0.0) -> np.ndarray:
    mixing = np.random.default_rng(0).normal(size=(DIMENSION, DIMENSION))
    scales = np.linspace(0.1, 10.0, DIMENSION)  # values of very different scales, as token means and spreads are
    return (rng.normal(size=(count, DIMENSION)) @ mixing) * scales + 3.0 + shift


@pytest.fixture(scope="module")
def fitted() -> FamiliarityModel:
    rng = np.random.default_rng(1)
    return fit_familiarity([correlated_gaussian(rng, 600), correlated_gaussian(rng, 400)], false_alarm_rate=0.05)


def test_false_alarms_on_fresh_in_distribution_data_match_the_stated_rate(fitted) -> None:
    fresh = correlated_gaussian(np.random.default_rng(2), 5000)
    false_alarms = np.mean(fitted.familiarity(fresh) < fitted.false_alarm_rate)
    assert 0.03 <= false_alarms <= 0.07  # 5% stated; the held-out set has 300 clips


def test_shifted_data_is_unfamiliar_and_familiarity_is_a_p_value(fitted) -> None:
    far = correlated_gaussian(np.random.default_rng(3), 200, shift=50.0)
    familiarity = fitted.familiarity(far)
    assert (familiarity < fitted.false_alarm_rate).all()
    assert np.allclose(familiarity, 1.0 / (1.0 + fitted.held_out_distances.size))  # farther than every held-out clip
    held = fitted.held_out_distances
    assert fitted.familiarity_of_distances(0.0) == 1.0
    # a clip exactly at the median held-out distance: about half of them are at least as far
    assert fitted.familiarity_of_distances(np.median(held)) == pytest.approx(0.5, abs=0.01)
    score = fitted.score(far[0])
    assert not score.in_distribution and score.threshold == 0.05 and score.distance > fitted.distance_threshold
    assert fitted.info["fit_clips"] == 700 and fitted.info["held_out_clips"] == 300


def test_held_out_split_takes_each_sources_last_clips() -> None:
    # A source whose last clips differ from its first: they set the threshold, so they come out familiar.
    rng = np.random.default_rng(4)
    drifting = np.concatenate([correlated_gaussian(rng, 70), correlated_gaussian(rng, 30, shift=1.0)])
    model = fit_familiarity([drifting], held_out_share=0.3)
    assert model.info["held_out_clips"] == 30
    assert np.mean(model.familiarity(drifting[70:]) < 0.05) <= 0.1


def test_file_round_trips_and_bad_files_are_refused_with_the_reason(fitted, tmp_path) -> None:
    path = fitted.save(tmp_path)
    assert path == tmp_path / FAMILIARITY_FILE
    loaded = FamiliarityModel.load(tmp_path)
    probe = correlated_gaussian(np.random.default_rng(5), 50, shift=0.5)
    np.testing.assert_array_equal(loaded.familiarity(probe), fitted.familiarity(probe))
    assert loaded.info == fitted.info and loaded.false_alarm_rate == fitted.false_alarm_rate
    with pytest.raises(FamiliarityError, match="vljepa-ros calibrate"):
        FamiliarityModel.load(tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / FAMILIARITY_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(FamiliarityError, match="not a readable familiarity file"):
        FamiliarityModel.load(tmp_path / "broken")
    with pytest.raises(FamiliarityError, match="another model"):
        loaded.familiarity(np.zeros((2, DIMENSION + 1)))


def test_fit_refuses_too_little_or_broken_data() -> None:
    rng = np.random.default_rng(6)
    with pytest.raises(FamiliarityError, match="at least"):
        fit_familiarity([correlated_gaussian(rng, 9)])
    with pytest.raises(FamiliarityError, match="NaN"):
        broken = correlated_gaussian(rng, 100)
        broken[3, 2] = np.nan
        fit_familiarity([broken])
    with pytest.raises(ValueError, match="false_alarm_rate"):
        fit_familiarity([correlated_gaussian(rng, 100)], false_alarm_rate=0.0)


def test_segment_familiarity_is_the_median_of_the_clips_that_carry_one() -> None:
    assert segment_familiarity([0.9, 0.01, 0.4]) == 0.4
    assert segment_familiarity([NOT_COMPUTED, 0.2, float("nan"), 0.6]) == pytest.approx(0.4)
    assert segment_familiarity([NOT_COMPUTED, NOT_COMPUTED]) == NOT_COMPUTED
    assert segment_familiarity([]) == NOT_COMPUTED


def test_unfamiliar_share_warns_while_most_recent_clips_are_unfamiliar() -> None:
    share = UnfamiliarShare(window_s=10.0, warn_share=0.5, min_clips=3)
    for second in range(5):
        share.add(float(second), in_distribution=True)
    assert share.share(4.0) == 0.0 and share.warning(4.0) is None
    for second in range(5, 12):
        share.add(float(second), in_distribution=False)
    assert share.share(11.0) == pytest.approx(7 / 11)  # the clips of seconds 1..11 are in the window
    warning = share.warning(11.0)
    assert warning and "64%" in warning and "fine-tune" in warning
    assert share.share(30.0) == 0.0 and share.warning(30.0) is None  # nothing recent: back to OK
    assert (share.clips_scored, share.clips_unfamiliar) == (12, 7)


def test_label_confidence_is_the_softmax_of_the_best_label_and_its_margin() -> None:
    scores = np.array([0.2, 0.9, 0.5])
    confidence = label_confidence(scores, temperature=0.1)
    expected = np.exp(9.0) / (np.exp(2.0) + np.exp(9.0) + np.exp(5.0))
    assert confidence.probability == pytest.approx(expected)
    assert confidence.margin == pytest.approx(0.4)
    assert label_confidence(np.array([0.3]), 0.07).margin == -1.0
    assert label_confidence(np.array([]), 0.07).probability == -1.0
