"""eval's familiarity section: the metrics on constructed scores with known values, the report on a tiny
random model, and `eval --ood-bag/--ood-video` end to end (issue 31, items 3 and 4)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

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
    # Two wrong clips: the ideal order adds them last, one at a time (risk 1/2, then 2/3).
    assert risk_coverage([0.9, 0.8, 0.7], [True, False, False]).optimal_aurc == pytest.approx((0 + 1 / 2 + 2 / 3) / 3)


def test_risk_coverage_keeps_equally_confident_clips_together():
    curve = risk_coverage([0.9, 0.9, 0.5], [True, False, True])
    np.testing.assert_allclose(curve.coverage, [2 / 3, 1.0])
    np.testing.assert_allclose(curve.accuracy, [0.5, 2 / 3])
    assert curve.aurc == pytest.approx(0.5 * 2 / 3 + (1 / 3) * (1 / 3))
    assert curve.optimal_aurc == pytest.approx((0 + 0 + 1 / 3) / 3) and curve.optimal_aurc < curve.aurc


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


# ----------------------------------------------------------------------------------------- the report


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    from vljepa_ros.runtime import create_engine

    return create_engine(tiny_model_dir)


@pytest.fixture(scope="module")
def familiarity_model(engine):
    """Fitted on generated tabletop streams from training-range seeds, as `calibrate --data tabletop` does."""
    from vljepa_ros.evaluation.embedding import embed_frames
    from vljepa_ros.stream.clips import CAPTION_QUERY
    from vljepa_ros.stream.familiarity import fit_familiarity
    from vljepa_ros.world.tabletop import generate_stream

    streams = [generate_stream(seed, 1) for seed in (800_001, 800_002)]
    return fit_familiarity([embed_frames(engine, s.frames, s.stamps_ns, CAPTION_QUERY).statistics for s in streams])


@pytest.fixture(scope="module")
def id_stream():
    from vljepa_ros.world.tabletop import generate_stream

    return generate_stream(1_000_001, 1)


def ood_calibration_stream(kind: str, seconds: float = 6.0):
    from vljepa_ros.world.calibration import CalibrationStream
    from vljepa_ros.world.ood_frames import ood_stream

    stream = ood_stream(kind, seed=5, seconds=seconds, fps=10.0, size=64, episodes=1, hold_seconds=2.0)
    return CalibrationStream(kind, stream.frames, stream.stamps_ns)


def test_report_scores_every_clip_as_the_familiarity_model_and_the_label_bank_do(engine, familiarity_model,
                                                                                  id_stream, tmp_path):
    from vljepa_ros.evaluation.embedding import embed_stream
    from vljepa_ros.evaluation.familiarity_report import familiarity_report
    from vljepa_ros.evaluation.metrics import classification_accuracy
    from vljepa_ros.evaluation.run import clip_ground_truth

    from vljepa_ros.evaluation.embedding import embed_frames
    from vljepa_ros.world.calibration import CalibrationStream

    oods = [ood_calibration_stream("noise"), ood_calibration_stream("blank"),
            CalibrationStream("the same stream", id_stream.frames, id_stream.stamps_ns)]
    section = familiarity_report(engine, familiarity_model, id_stream, oods, plot_path=tmp_path / "familiarity.png")
    clips = embed_stream(engine, id_stream)
    familiarity = familiarity_model.familiarity(clips.statistics)
    threshold = familiarity_model.false_alarm_rate
    assert section["in_distribution"]["clips"] == len(clips)
    assert section["in_distribution"]["false_alarm_rate"] == pytest.approx(np.mean(familiarity < threshold))
    assert set(section["out_of_distribution"]) == {"noise", "blank", "the same stream"}
    noise_statistics = embed_frames(engine, oods[0].frames, oods[0].stamps_ns, clips.query).statistics
    noise = section["out_of_distribution"]["noise"]
    assert noise["clips"] == len(noise_statistics)
    assert noise["auroc"] == pytest.approx(auroc(familiarity_model.distances(clips.statistics),
                                                 familiarity_model.distances(noise_statistics)))
    assert noise["flagged_share"] == pytest.approx(np.mean(familiarity_model.familiarity(noise_statistics) < threshold))
    np.testing.assert_allclose(noise["clip_distances"], familiarity_model.distances(noise_statistics), rtol=1e-5)
    np.testing.assert_allclose(section["in_distribution"]["clip_distances"],
                               familiarity_model.distances(clips.statistics), rtol=1e-5)
    # The in-distribution stream against itself: no separation at all, and flagged exactly as often.
    itself = section["out_of_distribution"]["the same stream"]
    assert itself["auroc"] == pytest.approx(0.5) and itself["familiarity_auroc"] == pytest.approx(0.5)
    assert itself["label_confidence_auroc"] == pytest.approx(0.5)
    assert itself["flagged_share"] == pytest.approx(section["in_distribution"]["false_alarm_rate"])
    labels = section["labels"]
    _, true_labels, _ = clip_ground_truth(id_stream, clips)
    label_embeddings = engine.encode_texts(list(id_stream.label_bank))
    assert labels["accuracy"] == pytest.approx(classification_accuracy(clips.embeddings, label_embeddings, true_labels))
    assert labels["clips"] == int(np.sum(true_labels >= 0)) == sum(labels["reliability"]["counts"])
    assert 0.0 <= labels["ece"] <= 1.0 and labels["optimal_aurc"] <= labels["aurc"] + 1e-12
    assert labels["risk_coverage"]["coverage"][-1] == pytest.approx(1.0)
    assert labels["risk_coverage"]["accuracy"][-1] == pytest.approx(labels["accuracy"])
    assert (tmp_path / "familiarity.png").stat().st_size > 10_000


def test_unseen_colours_replace_each_language_colour():
    from vljepa_ros.world.ood_frames import UNSEEN_COLOURS, recoloured
    from vljepa_ros.world.tabletop import COLOURS

    for name, rgb in COLOURS.items():
        jittered = tuple(min(255, max(0, c + 12)) for c in rgb)
        assert recoloured(jittered) == UNSEEN_COLOURS[name]
    assert not set(UNSEEN_COLOURS.values()) & set(COLOURS.values())


def write_video(path, frames: int = 40, fps: float = 20.0):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (80, 60))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    writer.release()
    return path


def test_video_bag_resamples_to_the_camera_rate_and_shrinks(tmp_path):
    from vljepa_ros.world.bag_io import read_stream_bag
    from vljepa_ros.world.video_bag import main

    video = write_video(tmp_path / "clip.avi", frames=40, fps=20.0)  # 2 s
    assert main([str(video), "--bag", str(tmp_path / "bag"), "--fps", "10", "--max-side", "40"]) == 0
    stream = read_stream_bag(tmp_path / "bag")
    assert stream.frame_count == 20 and stream.fps == pytest.approx(10.0)
    assert stream.image_size == (30, 40) and not stream.segments


@pytest.fixture()
def calibrated_model_dir(tiny_model_dir, familiarity_model, tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(tiny_model_dir, directory)
    familiarity_model.save(directory)
    return directory


def test_eval_with_ood_bag_and_video_adds_the_familiarity_section(calibrated_model_dir, tmp_path, capsys):
    from vljepa_ros.cli import main
    from vljepa_ros.world.ood_frames import main as make_ood_bag

    assert make_ood_bag(["blank", "--bag", str(tmp_path / "blank"), "--seconds", "5", "--image-size", "64",
                         "--hold-seconds", "1"]) == 0
    video = write_video(tmp_path / "noise.avi")
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(calibrated_model_dir), "--episodes", "1", "--ood-bag", str(tmp_path / "blank"),
                 "--ood-video", str(video), "--json", str(out), "--plots-dir", str(tmp_path / "plots")]) == 0
    report = json.loads(out.read_text())
    section = report["familiarity"]
    assert set(section["out_of_distribution"]) == {"bag:blank", "video:noise.avi"}
    assert section["calibration"]["false_alarm_rate"] == 0.05 and section["labels"]["clips"] > 0
    assert report["plots"]["familiarity"] == str(tmp_path / "plots" / "familiarity.png")
    printed = capsys.readouterr().out
    assert section["calibration"]["matches_model"] and "WARNING" not in printed
    assert "familiarity:" in printed and "vs video:noise.avi" in printed and "ECE" in printed


def test_eval_ood_without_a_familiarity_file_names_the_calibrate_command(tiny_model_dir, tmp_path, capsys):
    from vljepa_ros.cli import main

    video = write_video(tmp_path / "noise.avi")
    assert main(["eval", "--model", str(tiny_model_dir), "--episodes", "1", "--ood-video", str(video),
                 "--no-plots"]) == 2
    assert "vljepa-ros calibrate --model" in capsys.readouterr().err


def test_summary_warns_when_the_familiarity_file_was_made_for_another_model():
    from vljepa_ros.evaluation.familiarity_report import format_familiarity_summary

    section = {"model_id": "small-new", "calibration": {"false_alarm_rate": 0.05, "model_id": "small-old",
                                                        "matches_model": False},
               "in_distribution": {"name": "demo", "clips": 10, "false_alarm_rate": 0.1},
               "out_of_distribution": {}, "labels": None}
    summary = format_familiarity_summary(section)
    assert "10.0% false alarms on demo" in summary
    assert "calibrated for small-old, not small-new" in summary and "vljepa-ros calibrate" in summary
