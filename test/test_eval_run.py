"""`vljepa-ros eval` end to end with a tiny random model on a short generated stream."""
import json

import numpy as np
import pytest
import torch

from vljepa_ros.evaluation import EvalOptions, embed_stream, run_eval
from vljepa_ros.model.config import get_preset
from vljepa_ros.model.vljepa import new_model
from vljepa_ros.runtime.base import ModelAssets
from vljepa_ros.runtime.torch_engine import TorchEngine
from vljepa_ros.stream.clips import CAPTION_QUERY
from vljepa_ros.world.dataset import text_corpus
from vljepa_ros.world.tabletop import generate_stream

METRIC_KEYS = ("classification_accuracy", "classification_chance", "retrieval_r1", "retrieval_chance",
               "inverse_dynamics_accuracy", "decode_reduction_vs_uniform_1hz")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return new_model(get_preset("tiny"), text_corpus())


@pytest.fixture(scope="module")
def engine(tiny_model):
    assets = ModelAssets(tiny_model.config, tiny_model.query_tokenizer, tiny_model.text_tokenizer, "tiny-test")
    return TorchEngine(tiny_model, assets)


@pytest.fixture(scope="module")
def stream():
    return generate_stream(1_000_001, 2)


def test_run_eval_reports_every_metric_in_range_with_exact_chance(engine, stream, tmp_path):
    report = run_eval(engine, stream, EvalOptions(plots_dir=tmp_path), data_source={"kind": "world"})
    for key in METRIC_KEYS:
        assert key in report, key
    for key in ("classification_accuracy", "classification_accuracy_pure_clips", "retrieval_r1",
                "inverse_dynamics_accuracy"):
        assert 0.0 <= report[key] <= 1.0
    assert report["classification_chance"] == 1 / len(stream.label_bank)
    assert report["inverse_dynamics_chance"] == 0.25 and report["inverse_dynamics_items"] == len(stream.action_items)
    # Retrieval chance: every query label appears in the gallery; exact mean of (same-label clips / gallery).
    labels = [segment.label for segment in stream.segments]
    expected = np.mean([labels.count(label) / len(labels) for label in sorted(set(labels))])
    assert report["retrieval_gallery"] == len(labels) and report["retrieval_chance"] == pytest.approx(expected)
    assert report["model_id"] == "tiny-test" and report["backend"] == "torch"
    assert report["clips"]["count"] == (stream.frame_count - 4) // 4 + 1  # T=4, stride 4

    decoding = report["selective_decoding"]
    assert decoding["quality_metric"] == "cider_d" and "Cider" in decoding["cider_scorer"]
    rates = [p["parameter"] for p in decoding["points"]["uniform"]]
    assert 1.0 in rates and decoding["points"]["ward"] and decoding["points"]["online"]
    assert all(p["quality"] >= 0.0 and 0.0 <= p["caption_accuracy"] <= 1.0
               for points in decoding["points"].values() for p in points)
    assert report["uniform_1hz_cider_d"] == decoding["uniform_1hz_cider_d"] >= 0.0
    segmentation = report["segmentation"]
    for name in ("per_clip_classification", "uniform_1hz", "ward_at_true_segment_count", "online"):
        metrics = segmentation[name]
        assert 0.0 <= metrics["boundary_f1_1s"] <= metrics["boundary_f1_2s"] <= 1.0, name
        assert all(0.0 <= metrics[key] <= 100.0 for key in ("f1_at_10", "f1_at_25", "f1_at_50", "edit_score",
                                                              "frame_accuracy")), name
        assert metrics["f1_at_10"] >= metrics["f1_at_25"] >= metrics["f1_at_50"], name
    for key in ("boundary_f1_1s", "boundary_f1_2s", "f1_at_10", "f1_at_25", "f1_at_50", "edit_score",
                "frame_accuracy"):
        assert key in report, key
    # Ward is given the true segment count exactly, even beyond the decoding sweep (uniform 1 Hz's decode count)
    assert segmentation["ward_at_true_segment_count"]["predicted_boundaries"] == len(stream.segments) - 1
    reduction = report["decode_reduction_vs_uniform_1hz"]
    assert reduction is None or reduction > 0
    for name in ("curve", "timeline"):
        with open(report["plots"][name], "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    json.dumps(report, allow_nan=False)  # plain JSON, no NaN


def test_ward_at_the_true_segment_count_beyond_the_decoding_sweep(engine, stream, tmp_path):
    """A stream whose meaning changes faster than once a second: the true count exceeds uniform 1 Hz's decodes."""
    from dataclasses import replace

    piece = 5  # frames: 0.5 s at 10 fps
    short = [replace(segment, start_index=start, end_index=min(start + piece, segment.end_index),
                     start_ns=int(stream.stamps_ns[start]),
                     end_ns=(int(stream.stamps_ns[start + piece]) if start + piece < segment.end_index
                             else segment.end_ns))
             for segment in stream.segments for start in range(segment.start_index, segment.end_index, piece)]
    fast = replace(stream, segments=short, action_items=[])
    report = run_eval(engine, fast, EvalOptions(plots_dir=None), data_source={"kind": "world"})
    assert len(short) > report["selective_decoding"]["uniform_1hz_decodes"]
    ward = report["segmentation"]["ward_at_true_segment_count"]
    assert ward["predicted_boundaries"] == min(len(short), report["clips"]["count"]) - 1


def test_embed_stream_equals_encoding_each_node_clip(engine, stream):
    clips = embed_stream(engine, stream, stride_frames=3)
    assert clips.query == CAPTION_QUERY and len(clips) == (stream.frame_count - 4) // 3 + 1
    # The k-th clip holds frames 3k .. 3k+3 and carries their first/last stamps.
    for k in (0, 5):
        frames = stream.frames[3 * k: 3 * k + 4]
        np.testing.assert_allclose(clips.embeddings[k], engine.encode_clip(frames, CAPTION_QUERY), atol=1e-5)
        assert clips.first_stamps_ns[k] == stream.stamps_ns[3 * k]
        assert clips.last_stamps_ns[k] == stream.stamps_ns[3 * k + 3]


def test_embed_stream_with_skip_unchanged_clips_carries_the_last_encoded_clip_of_a_still_scene(engine, stream):
    """As the node's skip_unchanged_clips: a still stretch's clips carry the last encoded clip's embedding
    and statistics, counted in `reused`; a moving stretch is encoded as without the option."""
    from dataclasses import replace

    from vljepa_ros.stream.clip_reuse import ReuseSettings

    still = 40  # 4 s of the first frame repeated (a waiting robot), then the stream as it was
    frames = np.concatenate([np.repeat(stream.frames[:1], still, axis=0), stream.frames])
    stamps = stream.stamps_ns[0] + np.arange(len(frames), dtype=np.int64) * (stream.stamps_ns[1] - stream.stamps_ns[0])
    waiting = replace(stream, frames=frames, stamps_ns=stamps)
    off = embed_stream(engine, waiting)
    on = embed_stream(engine, waiting, reuse=ReuseSettings(enabled=True, max_age_s=2.0))
    assert off.reused is None and len(on) == len(off)
    first_moving = int(np.searchsorted(on.first_stamps_ns, stamps[still - 4]))  # the first clip with motion in it
    # Clips 0.. of the still stretch: encoded at 0, then reused until 2 s (max age) have passed, encoded again ...
    assert not on.reused[0] and on.reused[1:first_moving].sum() >= first_moving - 3
    assert not on.reused[1:first_moving].all(), "the max age must have re-encoded the still scene"
    for index in np.flatnonzero(on.reused):
        source = max(k for k in range(index) if not on.reused[k])
        np.testing.assert_array_equal(on.embeddings[index], on.embeddings[source])
        np.testing.assert_array_equal(on.statistics[index], on.statistics[source])
    encoded = ~on.reused
    np.testing.assert_allclose(on.embeddings[encoded], off.embeddings[encoded], atol=1e-5)
    assert not on.reused[first_moving:].all()


def test_eval_command_writes_json_from_a_saved_model_and_a_bag(tiny_model, tmp_path):
    checkpoint = pytest.importorskip("vljepa_ros.model.checkpoint")
    from vljepa_ros.cli import main
    from vljepa_ros.world.bag_io import write_stream_bag

    model_dir = tmp_path / "model"
    checkpoint.save_model(tiny_model, model_dir)
    bag = tmp_path / "bag"
    write_stream_bag(bag, generate_stream(1_000_002, 1))
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(model_dir), "--bag", str(bag), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for key in METRIC_KEYS:
        assert key in report, key
    assert report["data_source"]["kind"] == "bag" and report["model_dir"] == str(model_dir)
    assert report["model_id"] == checkpoint.model_id(model_dir)
    assert (tmp_path / "selective_decoding_curve.png").is_file() and (tmp_path / "timeline.png").is_file()


def test_a_stream_without_ground_truth_gets_embeddings_and_a_timeline_only(engine, stream, tmp_path):
    from dataclasses import replace

    bare = replace(stream, segments=[], action_items=[])
    report = run_eval(engine, bare, EvalOptions(plots_dir=tmp_path))
    assert all(report[key] is None for key in METRIC_KEYS)
    assert report["clips"]["count"] > 0 and set(report["plots"]) == {"timeline"}
