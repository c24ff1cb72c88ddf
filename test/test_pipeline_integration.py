"""Bag -> three node processes -> events: what the nodes publish equals what the offline evaluation
pipeline (vljepa_ros.evaluation.embed_stream + the same shift detector) computes on the same bag.

Runs the demo itself (`run_demo`), so the README's first command is covered end to end too. The replay
runs in lockstep with the clips, so the outcome never depends on the machine's speed."""
from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from vljepa_ros.paths import default_config_file  # noqa: E402

STREAM_SEED = 1_000_123  # a held-out world seed
REPLAY_RATE = 2.0


def offline_events(embeddings, detector_parameters: dict):
    from vljepa_ros.stream.shift_detector import OnlineShiftDetector
    detector = OnlineShiftDetector(
        smoothing_window=detector_parameters["smoothing_window"],
        variance_window=detector_parameters["variance_window"], threshold=detector_parameters["shift_threshold"],
        min_interval_s=detector_parameters["min_interval_s"], max_segment_s=detector_parameters["max_segment_s"])
    events = [detector.update(vector, start, end) for vector, start, end
              in zip(embeddings.embeddings, embeddings.first_stamps_ns, embeddings.last_stamps_ns)]
    return [event for event in events if event is not None] + [detector.flush()]


def test_nodes_match_the_offline_pipeline_on_a_bag(tiny_model_dir, tmp_path):
    from vljepa_ros.evaluation.embedding import embed_stream
    from vljepa_ros.nodes.common import from_float32_field, stamp_to_ns
    from vljepa_ros.commands.demo import run_demo
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.world.bag_io import read_stream_bag, write_stream_bag
    from vljepa_ros.world.tabletop import generate_stream

    bag = tmp_path / "bag"
    write_stream_bag(bag, generate_stream(STREAM_SEED, num_episodes=2, fps=10.0, image_size=48))
    stream = read_stream_bag(bag)

    config = yaml.safe_load(default_config_file().read_text())
    perception = config["/**/perception_node"]["ros__parameters"]
    monitor = config["/**/monitor_node"]["ros__parameters"]
    engine = create_engine(tiny_model_dir, backend="torch")
    offline = embed_stream(engine, stream, stride_frames=perception["stride_frames"],
                           sample_period_s=perception["sample_period_s"])

    # A random tiny model's embeddings vary less than a trained model's: pick the largest threshold
    # at which the offline detector finds at least two shifts, and give the nodes the same.
    for threshold in (0.02, 0.01, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5):
        monitor["shift_threshold"] = threshold
        if sum(event.trigger == "shift" for event in offline_events(offline, monitor)) >= 2:
            break
    expected_events = offline_events(offline, monitor)
    assert sum(event.trigger == "shift" for event in expected_events) >= 2
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    # Lockstep: the replay waits for each clip's embedding before it sends the next clip's last frame,
    # so no machine is too slow for the nodes to see every clip (real-time behaviour is measured by
    # `vljepa-ros bench --pipeline`, never asserted here).
    result = run_demo(bag, tmp_path / "out", model_dir=tiny_model_dir, config=config_path,
                      rate=REPLAY_RATE, quiet=True, lockstep_clip_ends=set(offline.last_stamps_ns.tolist()))

    # Embeddings: one per offline clip, equal within float tolerance.
    assert result.summary["frames"] == len(stream.frames)
    assert result.summary["frames_received"] == len(stream.frames), "frames lost before the perception callback"
    node_by_end = {stamp_to_ns(message.clip_end): message for message in result.embeddings}
    assert sorted(node_by_end) == sorted(offline.last_stamps_ns.tolist()), "the nodes dropped or added clips"
    for vector, first, last in zip(offline.embeddings, offline.first_stamps_ns, offline.last_stamps_ns):
        message = node_by_end[int(last)]
        assert stamp_to_ns(message.clip_start) == first
        assert float(from_float32_field(message.embedding) @ vector) > 0.9999

    # Events: same segments, same pooled embeddings, same triggers (the last one closed by the flush).
    assert [(stamp_to_ns(e.segment_start), stamp_to_ns(e.segment_end), e.trigger) for e in result.events] == \
        [(e.start_ns, e.end_ns, e.trigger) for e in expected_events]
    for message, event in zip(result.events, expected_events):
        assert float(from_float32_field(message.embedding) @ event.embedding) > 0.9999
        assert message.text and message.embeddings_in_segment == event.count

    # The demo's outputs: summary JSON with the documented keys, the timeline PNG, the recorded bag.
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for key in ("frames", "embeddings", "decodes", "decode_reduction_vs_uniform_1hz",
                "latency_p50_ms", "latency_p95_ms", "drops"):
        assert key in summary, key
    assert summary["embeddings"] == len(offline) and summary["decodes"] == len(expected_events)
    assert summary["drops"] == 0 and summary["latency_p50_ms"] > 0
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 10_000
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / "out" / "pipeline_outputs"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts.get("/vljepa/embedding") == len(offline)
    assert counts.get("/vljepa/event") == len(expected_events)
