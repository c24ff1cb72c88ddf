"""Doing nothing when nothing changes, on a perception node process driven over real topics: with
skip_unchanged_clips off a still camera's clips are all inferred; switched on at runtime, they are
republished marked `reused` (the inferred clip's embedding and labels, the new clip's stamps and its own
sequence), counted as clips_reused on /diagnostics; a changed picture is inferred again.

Nothing here depends on the machine's speed: the test waits for messages with deadlines."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from rcl_interfaces.msg import ParameterType, ParameterValue  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ros_testing import ros_node, ros_process  # noqa: E402
from test_nodes import MODEL_LOAD_DEADLINE_S, frame, node_command  # noqa: E402
from test_nodes_losses import PERIOD_NS, START_NS, Driver  # noqa: E402
from vljepa_ros.msg import SemanticEmbedding  # noqa: E402
from vljepa_ros.nodes.common import from_float32_field, ns_to_stamp, stamp_to_ns  # noqa: E402

STILL, MOVED = 7, 8  # frame() seeds: the still picture, then another one


def camera(publisher, picture: list[int]):
    """An every_spin callback: the next camera frame (stamped 10 Hz on) showing frame(picture[0])."""
    count = [0]

    def publish() -> None:
        rgb = frame(picture[0])
        message = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3,
                        data=rgb.tobytes())
        message.header.stamp = ns_to_stamp(START_NS + count[0] * PERIOD_NS)
        message.header.frame_id = "camera"
        publisher.publish(message)
        count[0] += 1
    publish.next_stamp_ns = lambda: START_NS + count[0] * PERIOD_NS
    return publish


def test_a_still_camera_is_inferred_when_off_and_reused_when_on_until_the_picture_changes(tiny_model_dir):
    command = node_command("perception", tiny_model_dir, "stride_frames:=2", "top_k:=2")
    with ros_process(command, "perception_reuse") as process, ros_node("reuse_driver") as (node, executor):
        driver = Driver(node, executor, "perception_node")
        images = node.create_publisher(Image, "image_in", 10)
        embeddings: list[SemanticEmbedding] = []
        node.create_subscription(SemanticEmbedding, "embedding", embeddings.append,
                                 QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
        picture = [STILL]
        publish = camera(images, picture)

        # Off (the default): every clip of the still picture is inferred.
        driver.wait(lambda: len(embeddings) >= 4, "4 embeddings", MODEL_LOAD_DEADLINE_S, every_spin=publish)
        driver.wait(lambda: driver.counter("embeddings_published") >= 4, "diagnostics after 4 embeddings")
        assert not any(message.reused for message in embeddings)
        assert driver.values()["skip_unchanged_clips"] == "False" and driver.counter("clips_reused") == 0

        # On at runtime: from the next inferred clip on, the still picture's clips are reused.
        on = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)
        assert driver.set_parameter("skip_unchanged_clips", on)[0]
        switched = len(embeddings)

        def reused_count() -> int:
            return sum(message.reused for message in embeddings[switched:])

        driver.wait(lambda: reused_count() >= 5 and driver.counter("clips_reused") >= 5, "5 reused clips",
                    every_spin=publish)

        # The picture changes: the clips that show it are inferred.
        picture[0] = MOVED
        first_moved_ns = publish.next_stamp_ns()
        changed = len(embeddings)
        driver.wait(lambda: any(stamp_to_ns(m.clip_end) >= first_moved_ns for m in embeddings[changed:]),
                    "an embedding of the changed picture", every_spin=publish)
        after = driver.fresh()[2]
        driver.wait(lambda: len(embeddings) >= int(after["embeddings_published"]), "the embeddings it counted")
        alive = process.poll() is None
    assert alive, "perception node died"

    assert after["skip_unchanged_clips"] == "True" and int(after["clips_reused"]) >= 5
    assert int(after["clips_reused"]) == sum(message.reused for message in embeddings[:int(after["embeddings_published"])])
    # Embeddings kept flowing: one sequence, no gap, stamps always newer, reused or not.
    assert [message.sequence for message in embeddings] == list(range(len(embeddings)))
    ends = [stamp_to_ns(message.clip_end) for message in embeddings]
    assert ends == sorted(set(ends))
    # A reused message carries the last inferred clip's embedding, labels and familiarity, with its own stamps.
    reference = None
    for message in embeddings:
        if not message.reused:
            reference = message
            continue
        assert reference is not None and stamp_to_ns(reference.clip_end) < stamp_to_ns(message.clip_end)
        np.testing.assert_array_equal(from_float32_field(message.embedding), from_float32_field(reference.embedding))
        assert list(message.top_labels) == list(reference.top_labels) and len(message.top_labels) == 2
        assert (message.familiarity, message.in_distribution) == (reference.familiarity, reference.in_distribution)
        assert message.header.stamp == message.clip_end and message.frames_in_clip == reference.frames_in_clip
    # The first clip that shows the new picture was inferred, and its embedding is another.
    moved = next(message for message in embeddings if stamp_to_ns(message.clip_end) >= first_moved_ns)
    assert not moved.reused
    assert not np.array_equal(from_float32_field(moved.embedding), from_float32_field(embeddings[0].embedding))
