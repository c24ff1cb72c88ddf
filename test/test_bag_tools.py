"""Bag replay (BagReplayer, `vljepa-ros replay`) and recording (BagRecorder) over real topics.

Bags are generated in tmp_path with rosbags: 20 frames of 16x16 rgb8 at 20 Hz. Tests wait for
messages with deadlines; timing checks are loose bounds (the machine is shared).
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from bag_metadata_rules import installed_type_hash, metadata_problems, topic_type_hashes  # noqa: E402
from ros_testing import DISCOVERY_DEADLINE_S, REPO_ROOT, ros_node, spin_until, stop_process_group  # noqa: E402
from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent  # noqa: E402
from vljepa_ros.nodes.bag_replay import (BagReplayer, BagReplayError, default_output_topic,  # noqa: E402
                                         find_image_topic)
from vljepa_ros.nodes.recorder import BagRecorder, RecordError, make_typestore  # noqa: E402

FRAMES = 20
PERIOD_NS = 50_000_000  # 20 Hz
BAG_SPAN_S = (FRAMES - 1) * PERIOD_NS / 1e9
FIRST_STAMP_NS = 1_700_000_000_000_000_000  # header.stamp of frame 0
RECORD_DELAY_NS = 3_000_000  # record timestamp - header.stamp in the generated bags
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TYPESTORE = get_typestore(Stores.ROS2_KILTED)


def write_image_bag(path: Path, compressed: bool = False, storage: StoragePlugin = StoragePlugin.MCAP,
                    topic: str = "/camera/image_raw", extra_topics: dict[str, str] | None = None) -> list[bytes]:
    """A 20-frame bag; frame i is filled with value i. Returns each frame's serialized bytes."""
    types = TYPESTORE.types
    header_type, time_type = types["std_msgs/msg/Header"], types["builtin_interfaces/msg/Time"]
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    frames: list[bytes] = []
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connection = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
        for other_topic, other_type in (extra_topics or {}).items():
            writer.add_connection(other_topic, other_type, typestore=TYPESTORE)
        for i in range(FRAMES):
            stamp_ns = FIRST_STAMP_NS + i * PERIOD_NS
            header = header_type(stamp=time_type(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="camera")
            if compressed:
                message = types[msgtype](header=header, format="jpeg", data=np.full(64, i, dtype=np.uint8))
            else:
                message = types[msgtype](header=header, height=16, width=16, encoding="rgb8", is_bigendian=0,
                                         step=48, data=np.full(16 * 48, i, dtype=np.uint8))
            raw = TYPESTORE.serialize_cdr(message, msgtype)
            writer.write(connection, stamp_ns + RECORD_DELAY_NS, raw)  # recorded a little after capture
            frames.append(bytes(raw))
    return frames


def replay_into_subscriber(bag: Path, message_type: type, expected: int, **replay_options):
    """Replay `bag` on one node and receive it on a raw subscription of the same node.

    Returns (received bytes, monotonic arrival times, ReplayStats)."""
    received: list[bytes] = []
    arrivals: list[float] = []

    def on_frame(raw: bytes) -> None:
        received.append(raw)
        arrivals.append(time.monotonic())

    with ros_node("bag_replay_test") as (node, executor):
        replayer = BagReplayer(node, bag, qos="reliable", wait_for_subscribers=1, **replay_options)
        node.create_subscription(message_type, replayer.output_topic, on_frame, RELIABLE, raw=True)
        replayer.start()
        try:
            spin_until(executor, lambda: len(received) >= expected or replayer.done(), DISCOVERY_DEADLINE_S,
                       what=f"{expected} frames")
            if replayer.loop:
                replayer.stop()
            stats = replayer.wait(10.0)
            # Reliable delivery: whatever was published arrives; give the last ones a moment.
            spin_until(executor, lambda: len(received) >= stats.published, 5.0, what="the last frames")
        finally:
            replayer.stop()
    return received, arrivals, stats


def test_image_bag_replays_every_frame_byte_identical_with_its_timing(tmp_path):
    frames = write_image_bag(tmp_path / "bag")
    published_stamps: list[int] = []
    received, arrivals, stats = replay_into_subscriber(
        tmp_path / "bag", Image, FRAMES, on_publish=lambda count, stamp_ns: published_stamps.append(stamp_ns))

    assert received == frames
    assert (stats.published, stats.passes, stats.topic, stats.message_type) == \
        (FRAMES, 1, "/camera/image_raw", "sensor_msgs/msg/Image")
    assert stats.output_topic == "/camera/image_raw"  # the bag's topic, like `ros2 bag play`
    assert stats.bag_duration_s == pytest.approx(BAG_SPAN_S)
    # Frames are never published before their time; generous upper bound for a busy machine.
    assert 0.95 * BAG_SPAN_S <= stats.duration_s < 4 * BAG_SPAN_S
    assert arrivals[-1] - arrivals[0] > 0.7 * BAG_SPAN_S
    assert published_stamps == [FIRST_STAMP_NS + i * PERIOD_NS for i in range(FRAMES)]  # header stamps


def test_rate_factor_scales_the_replay_duration(tmp_path):
    write_image_bag(tmp_path / "bag")
    _, _, normal = replay_into_subscriber(tmp_path / "bag", Image, FRAMES, rate=1.0)
    _, _, double = replay_into_subscriber(tmp_path / "bag", Image, FRAMES, rate=2.0)
    assert normal.published == double.published == FRAMES
    assert double.duration_s >= 0.95 * BAG_SPAN_S / 2
    assert 0.3 < double.duration_s / normal.duration_s < 0.75


def test_compressed_sqlite3_bag_replays_remapped(tmp_path):
    frames = write_image_bag(tmp_path / "bag", compressed=True, storage=StoragePlugin.SQLITE3,
                             topic="/camera/image_raw/compressed")
    received, _, stats = replay_into_subscriber(tmp_path / "bag", CompressedImage, FRAMES, rate=4.0,
                                                output_topic="image_in/compressed")
    assert received == frames
    assert stats.message_type == "sensor_msgs/msg/CompressedImage"
    assert stats.output_topic == "/image_in/compressed"


def test_loop_repeats_the_bag_and_restamp_keeps_stamps_increasing(tmp_path):
    frames = write_image_bag(tmp_path / "bag")
    received, _, stats = replay_into_subscriber(tmp_path / "bag", Image, 2 * FRAMES + 5, rate=4.0, loop=True,
                                                restamp=True, output_topic="/looped")
    assert stats.passes >= 3 and len(received) == stats.published >= 2 * FRAMES + 5
    stamps = [struct.unpack_from("<iI", raw, 4) for raw in received]
    stamps_ns = [sec * 10**9 + nanosec for sec, nanosec in stamps]
    assert all(later > earlier for earlier, later in zip(stamps_ns, stamps_ns[1:]))
    # Everything after the stamp is the bag's bytes, pass after pass.
    for index, raw in enumerate(received):
        assert raw[12:] == frames[index % FRAMES][12:]


def test_defaults_best_effort_qos_and_image_transport_topic_names(tmp_path):
    write_image_bag(tmp_path / "bag", compressed=True)  # CompressedImage on /camera/image_raw
    with ros_node("bag_replay_defaults_test") as (node, _):
        replayer = BagReplayer(node, tmp_path / "bag")
        assert replayer.publisher.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        assert replayer.frame_count == FRAMES
        assert replayer.output_topic == "/camera/image_raw/compressed"
    assert default_output_topic("/cam/compressed", "sensor_msgs/msg/CompressedImage") == "/cam/compressed"
    assert default_output_topic("/cam", "sensor_msgs/msg/Image") == "/cam"


def test_bad_bags_and_topics_are_named(tmp_path):
    write_image_bag(tmp_path / "two", extra_topics={"/other/image": "sensor_msgs/msg/Image",
                                                    "/chatter": "std_msgs/msg/String"})
    with pytest.raises(BagReplayError, match="2 image topics"):
        find_image_topic(tmp_path / "two", None)
    with pytest.raises(BagReplayError, match="'/nope' is not in bag"):
        find_image_topic(tmp_path / "two", "/nope")
    with pytest.raises(BagReplayError, match="has type std_msgs/msg/String"):
        find_image_topic(tmp_path / "two", "/chatter")
    with pytest.raises(BagReplayError, match="has no messages"):
        find_image_topic(tmp_path / "two", "/other/image")
    assert find_image_topic(tmp_path / "two", "/camera/image_raw")[:3] == \
        ("/camera/image_raw", "sensor_msgs/msg/Image", FRAMES)
    with ros_node("bag_replay_error_test") as (node, _):
        with pytest.raises(BagReplayError, match="bag not found"):
            BagReplayer(node, tmp_path / "missing")
        with pytest.raises(BagReplayError, match="rate must be > 0"):
            BagReplayer(node, tmp_path / "two", "/camera/image_raw", rate=0.0)


def test_replay_command_publishes_the_bag_from_another_process(tmp_path):
    frames = write_image_bag(tmp_path / "bag")
    received: list[bytes] = []
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    with ros_node("replay_command_test") as (node, executor):
        node.create_subscription(Image, "/replay_cli/image_in", received.append, RELIABLE, raw=True)
        # Reliable + waiting for our subscriber: no frame may be lost to discovery.
        process = subprocess.Popen(
            [sys.executable, "-m", "vljepa_ros.cli", "replay", str(tmp_path / "bag"), "--namespace", "replay_cli",
             "--remap-to", "image_in", "--qos", "reliable", "--wait-for-subscribers", "1", "--start-delay-s", "0.5",
             "--rate", "4", "--no-progress"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # its own process group, so stop_process_group can kill all of it
        try:
            spin_until(executor, lambda: len(received) >= FRAMES or process.poll() is not None,
                       DISCOVERY_DEADLINE_S, what="the replayed frames")
            spin_until(executor, lambda: len(received) >= FRAMES, 5.0, what="the last frames")
            output, _ = process.communicate(timeout=15)
        finally:
            stop_process_group(process)
    assert process.returncode == 0, output
    assert f"published {FRAMES} frames" in output
    assert received == frames


def message_fields_equal(expected: object, actual: object) -> None:
    """Field-by-field comparison of an rclpy message with a decoded one (rosbags or mcap_ros2)."""
    for name in expected.get_fields_and_field_types():
        want, got = getattr(expected, name), getattr(actual, name)
        if hasattr(want, "get_fields_and_field_types"):
            message_fields_equal(want, got)
        elif isinstance(want, (list, tuple)) or hasattr(want, "typecode"):
            assert list(got) == pytest.approx(list(want)), name
        elif isinstance(want, float):
            assert got == pytest.approx(want), name
        else:
            assert got == want, name


def make_outputs(sequence: int) -> dict[str, object]:
    embedding = SemanticEmbedding(frames_in_clip=8, model_id="tiny-0123abcd", backend="torch",
                                  query="What is happening?", dimension=3, sequence=sequence)
    embedding.header.frame_id = "camera"
    embedding.header.stamp.sec = 100 + sequence
    embedding.clip_start.sec, embedding.clip_end.sec = 99 + sequence, 100 + sequence
    embedding.embedding = [0.6, 0.0, 0.8]
    embedding.top_labels = ["pick up the red cube", "push the blue block"]
    embedding.top_scores = [0.9, 0.25]
    event = SemanticEvent(embeddings_in_segment=4, model_id="tiny-0123abcd", dimension=2, text="robot opens drawer",
                          text_score=0.7, decoder="retrieval", shift_score=0.05, shift_threshold=0.02,
                          trigger=SemanticEvent.TRIGGER_SHIFT, sequence=sequence)
    event.segment_start.sec, event.segment_end.nanosec = 90, 123_456_789
    event.embedding = [1.0, 0.0]
    hypotheses = ActionHypotheses(model_id="tiny-0123abcd", actions=["open", "close"], scores=[0.5, -0.1],
                                  probabilities=[0.8, 0.2])
    hypotheses.header.frame_id = str(sequence)  # ActionHypotheses has no sequence field
    hypotheses.initial_stamp.sec, hypotheses.final_stamp.sec = 98, 100
    return {"/embedding": embedding, "/event": event, "/action_hypotheses": hypotheses}


def sequence_of(message: object) -> int:
    return int(message.header.frame_id) if hasattr(message, "actions") else message.sequence


def test_recorder_writes_an_mcap_that_rosbags_and_mcap_ros2_decode(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    sent: dict[tuple[str, int], object] = {}
    with ros_node("recorder_test") as (node, executor):
        recorder = BagRecorder(node, tmp_path / "outputs.mcap")  # default topics, relative to "/"
        publishers = {topic: node.create_publisher(type(message), topic, RELIABLE)
                      for topic, message in make_outputs(0).items()}
        sequence = 0

        def publish_next() -> None:
            nonlocal sequence
            sequence += 1
            for topic, message in make_outputs(sequence).items():
                publishers[topic].publish(message)
                sent[topic, sequence] = message

        # Keep publishing until each topic has a few messages recorded (the first may predate discovery).
        spin_until(executor, lambda: min(recorder.counts.values()) >= 3, DISCOVERY_DEADLINE_S,
                   every_spin=publish_next, what="3 recorded messages per topic")
        stats = recorder.close()
        recorder.close()  # a second close is harmless
    assert set(stats.counts) == {"/embedding", "/event", "/action_hypotheses"}
    assert stats.mcap_path == tmp_path / "outputs" / "outputs.mcap" and stats.mcap_path.is_file()

    typestore = make_typestore()
    read_back: dict[str, int] = {}
    with AnyReader([stats.bag_path]) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == {
            "/embedding": "vljepa_ros/msg/SemanticEmbedding", "/event": "vljepa_ros/msg/SemanticEvent",
            "/action_hypotheses": "vljepa_ros/msg/ActionHypotheses"}
        for connection, _, raw in reader.messages():
            # Uses the schema stored in the bag, not our typestore.
            decoded = reader.deserialize(raw, connection.msgtype)
            expected = sent[connection.topic, sequence_of(decoded)]
            # Compare decoded, not bytes: CDR padding bytes are not initialised by the serializer.
            message_fields_equal(expected, deserialize_message(bytes(raw), type(expected)))
            message_fields_equal(expected, decoded)
            assert typestore.hash_rihs01(connection.msgtype) == connection.digest
            read_back[connection.topic] = read_back.get(connection.topic, 0) + 1
    assert read_back == stats.counts
    # What `ros2 bag` of each distribution needs (bag_metadata_rules), with the running one's type hashes.
    assert {distro: metadata_problems(stats.bag_path, distro) for distro in ("humble", "jazzy", "kilted")} == {
        "humble": [], "jazzy": [], "kilted": []}
    hashes = topic_type_hashes(stats.bag_path)
    assert hashes == {msgtype: installed_type_hash(msgtype) for msgtype in hashes} and len(hashes) == 3

    # What Foxglove reads: mcap with ros2msg schemas, decoded without this package.
    decoded_counts: dict[str, int] = {}
    with open(stats.mcap_path, "rb") as stream:
        mcap_reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, _, decoded in mcap_reader.iter_decoded_messages():
            assert schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
            message_fields_equal(sent[channel.topic, sequence_of(decoded)], decoded)
            decoded_counts[channel.topic] = decoded_counts.get(channel.topic, 0) + 1
    assert decoded_counts == stats.counts


def test_recorder_discovers_types_of_other_topics_and_refuses_existing_bags(tmp_path):
    from std_msgs.msg import String

    with ros_node("recorder_discovery_test") as (node, executor):
        recorder = BagRecorder(node, tmp_path / "chatter", ["chatter"])
        assert recorder.pending_topics == ["/chatter"]
        publisher = node.create_publisher(String, "chatter", RELIABLE)
        spin_until(executor, lambda: recorder.counts.get("/chatter", 0) >= 2, DISCOVERY_DEADLINE_S,
                   every_spin=lambda: publisher.publish(String(data="hello")), what="recorded chatter")
        stats = recorder.close()
        with pytest.raises(RecordError, match="exists already"):
            BagRecorder(node, tmp_path / "chatter")
    with AnyReader([stats.bag_path]) as reader:
        messages = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()]
    assert len(messages) == stats.counts["/chatter"] and messages[0].data == "hello"


def test_record_command_closes_a_readable_bag_on_ctrl_c(tmp_path):
    from std_msgs.msg import String

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "vljepa_ros.cli", "record", "--out", str(tmp_path / "cli.mcap"),
         "--namespace", "rec_cli",
         "--topics", "event", "/rec_cli_chatter:std_msgs/msg/String"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # its own process group, so stop_process_group can kill all of it
    try:
        with ros_node("record_command_test") as (node, executor):
            event_publisher = node.create_publisher(SemanticEvent, "/rec_cli/event", RELIABLE)
            chatter_publisher = node.create_publisher(String, "/rec_cli_chatter", RELIABLE)
            sent = [0]

            def publish() -> None:
                event_publisher.publish(make_outputs(sent[0])["/event"])
                chatter_publisher.publish(String(data=f"message {sent[0]}"))
                sent[0] += 1

            spin_until(executor, lambda: (event_publisher.get_subscription_count() > 0
                                          and chatter_publisher.get_subscription_count() > 0)
                       or process.poll() is not None, DISCOVERY_DEADLINE_S, what="the recorder's subscriptions")
            # Matched: keep publishing a little longer so reliable delivery has the messages through.
            first_matched = sent[0]
            spin_until(executor, lambda: sent[0] >= first_matched + 20, 10.0, every_spin=publish,
                       what="20 more messages")
    finally:
        returncode = stop_process_group(process)  # SIGINT, as Ctrl-C
    output = process.stdout.read()
    assert returncode == 0, output
    assert f"wrote {tmp_path / 'cli' / 'cli.mcap'}" in output
    with AnyReader([tmp_path / "cli"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        texts = [reader.deserialize(raw, c.msgtype).text for c, _, raw in reader.messages()
                 if c.topic == "/rec_cli/event"]
    assert counts["/rec_cli/event"] >= 1 and counts["/rec_cli_chatter"] >= 1, output
    assert set(texts) == {"robot opens drawer"}
