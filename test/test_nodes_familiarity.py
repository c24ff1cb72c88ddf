"""Knowing when it does not know, through real node processes: the perception node flags clips its model
finds unfamiliar (and withholds their labels, and warns on /diagnostics), the monitor publishes an
unfamiliar segment as its unfamiliar_policy says.

No check depends on machine speed: each phase waits (with a deadline) for the messages it needs."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from rcl_interfaces.msg import ParameterValue  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros_testing import ros_node, ros_process  # noqa: E402
from test_nodes import MODEL_LOAD_DEADLINE_S, embedding_message, node_command  # noqa: E402
from test_nodes_losses import WARN, Driver, cycler, string_value  # noqa: E402
from vljepa_ros.msg import SemanticEmbedding, SemanticEvent  # noqa: E402
from vljepa_ros.nodes.common import OUTPUT_QOS, ns_to_stamp  # noqa: E402
from vljepa_ros.stream.familiarity import fit_familiarity  # noqa: E402

FRAME_SIZE = 40
PERIOD_NS = 100_000_000


@pytest.fixture(scope="module")
def calibrated_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model, calibrated on tabletop frames: the tabletop world is familiar to it, blank frames not."""
    from vljepa_ros.evaluation.embedding import embed_frames
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.stream.clips import CAPTION_QUERY
    from vljepa_ros.world import tabletop

    model_dir = tmp_path_factory.mktemp("calibrated") / "tiny"
    shutil.copytree(tiny_model_dir, model_dir)
    frames = tabletop.generate_stream(800_500, 4, image_size=FRAME_SIZE).frames
    stamps = np.arange(len(frames), dtype=np.int64) * PERIOD_NS
    statistics = embed_frames(create_engine(model_dir), frames, stamps, CAPTION_QUERY).statistics
    fit_familiarity([statistics]).save(model_dir)
    return model_dir


def camera_images(frames: np.ndarray, first_index: int) -> list[Image]:
    images = []
    for offset, rgb in enumerate(frames):
        image = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3,
                      data=rgb.tobytes())
        image.header.stamp = ns_to_stamp(1_000_000_000 + (first_index + offset) * PERIOD_NS)
        image.header.frame_id = "camera"
        images.append(image)
    return images


def test_unfamiliar_clips_are_flagged_their_labels_withheld_and_their_segment_marked(calibrated_model_dir):
    from vljepa_ros.world import tabletop

    familiar = tabletop.generate_stream(1_000_000, 1, image_size=FRAME_SIZE).frames[:24]  # held out: never calibrated on
    blank = np.full((24, FRAME_SIZE, FRAME_SIZE, 3), 128, np.uint8)
    perception = node_command("perception", calibrated_model_dir, "top_k:=3", "stride_frames:=2",
                              "unfamiliar_window_s:=60.0")
    monitor = node_command("monitor", calibrated_model_dir, "max_segment_s:=0.0")
    with ros_process(perception, "familiarity_perception"), ros_process(monitor, "familiarity_monitor") as monitor_process, \
            ros_node("familiarity_driver") as (node, executor):
        driver = Driver(node, executor, "perception_node")
        embeddings: list[SemanticEmbedding] = []
        events: list[SemanticEvent] = []
        node.create_subscription(SemanticEmbedding, "embedding", embeddings.append, OUTPUT_QOS)
        node.create_subscription(SemanticEvent, "event", events.append, OUTPUT_QOS)
        camera = node.create_publisher(Image, "image_in", 10)
        driver.wait(lambda: driver.values().get("state") == "active", "perception to load", MODEL_LOAD_DEADLINE_S)
        assert driver.values()["familiarity_calibrated"] == "True"

        driver.wait(lambda: any(m.in_distribution for m in embeddings), "a familiar embedding",
                    every_spin=cycler(camera, camera_images(familiar, 0)))
        known = next(m for m in embeddings if m.in_distribution)
        assert 0.05 <= known.familiarity <= 1.0 and known.familiarity_threshold == pytest.approx(0.05)
        assert len(known.top_labels) == 3 and 0.0 < known.label_confidence <= 1.0 and known.label_margin >= 0.0

        seen = len(embeddings)
        driver.wait(lambda: sum(not m.in_distribution for m in embeddings[seen:]) >= 6, "unfamiliar embeddings",
                    every_spin=cycler(camera, camera_images(blank, 100)))
        unknown = [m for m in embeddings[seen:] if not m.in_distribution]
        assert all(0.0 < m.familiarity < m.familiarity_threshold for m in unknown)
        assert all(not m.top_labels and not m.top_scores for m in unknown)  # withheld: they would mean nothing
        assert all(0.0 < m.label_confidence <= 1.0 for m in unknown)  # still reported, for the planner to weigh
        driver.wait(lambda: driver.latest()[0] == WARN and "unfamiliar" in driver.latest()[1],
                    "the unfamiliar warning on /diagnostics")
        assert int(driver.values()["labels_withheld"]) >= len(unknown)
        assert float(driver.values()["unfamiliar_share"]) > 0.0

        flush = node.create_client(Trigger, "monitor_node/flush")
        assert driver.call(flush, Trigger.Request(), "flush").success
        driver.wait(lambda: any(not e.in_distribution for e in events), "the unfamiliar segment's event")
        marked = next(e for e in events if not e.in_distribution)
        assert marked.text == SemanticEvent.UNFAMILIAR_TEXT and marked.decoder == "none" and marked.text_score == 0.0
        assert 0.0 < marked.familiarity < marked.familiarity_threshold
        assert monitor_process.poll() is None


def publish_segment(publisher, rng, dimension: int, model_id: str, first_index: int, familiarity: float | None):
    """Six embeddings of one meaning, with a familiarity (None: an old publisher that sets none)."""
    direction = rng.normal(size=dimension)
    for index in range(first_index, first_index + 6):
        vector = direction + 0.01 * rng.normal(size=dimension)
        message = embedding_message((vector / np.linalg.norm(vector)).astype(np.float32), index, model_id)
        if familiarity is not None:
            message.familiarity, message.familiarity_threshold = familiarity, 0.05
            message.in_distribution = familiarity >= 0.05
        publisher.publish(message)


def test_monitor_marks_suppresses_or_decodes_unfamiliar_segments_as_its_policy_says(tiny_model_dir):
    from vljepa_ros.runtime import create_engine

    engine = create_engine(tiny_model_dir)
    command = node_command("monitor", tiny_model_dir, "max_segment_s:=0.0")
    with ros_process(command, "familiarity_policy_monitor") as process, \
            ros_node("familiarity_policy_driver") as (node, executor):
        driver = Driver(node, executor, "monitor_node")
        events: list[SemanticEvent] = []
        node.create_subscription(SemanticEvent, "event", events.append, OUTPUT_QOS)
        publisher = node.create_publisher(SemanticEmbedding, "embedding", OUTPUT_QOS)
        flush = node.create_client(Trigger, "monitor_node/flush")
        driver.wait(lambda: driver.latest() is not None and driver.latest()[1].startswith("running"),
                    "the decoder to load", MODEL_LOAD_DEADLINE_S)
        rng = np.random.default_rng(0)
        index = 0

        def segment_then_flush(familiarity: float | None) -> list[SemanticEvent]:
            nonlocal index
            before = driver.counter("embeddings_received")
            publish_segment(publisher, rng, engine.dimension, engine.model_id, index, familiarity)
            index += 6
            driver.wait(lambda: driver.counter("embeddings_received") >= before + 6, "the segment's embeddings")
            count = len(events)
            assert driver.call(flush, Trigger.Request(), "flush").success
            return events[count:]

        driver.wait(publisher.get_subscription_count, "the monitor's subscription")
        marked = segment_then_flush(0.01)
        assert [e.text for e in marked] == [SemanticEvent.UNFAMILIAR_TEXT]
        assert not marked[0].in_distribution and marked[0].familiarity == pytest.approx(0.01)

        assert driver.set_parameter("unfamiliar_policy", string_value("suppress"))[0]
        assert segment_then_flush(0.02) == []
        driver.wait(lambda: driver.counter("events_suppressed_unfamiliar") == 1, "the suppressed count")

        assert driver.set_parameter("unfamiliar_policy", string_value("decode_anyway"))[0]
        decoded = segment_then_flush(0.03)
        assert len(decoded) == 1 and not decoded[0].in_distribution
        assert decoded[0].text not in ("", SemanticEvent.UNFAMILIAR_TEXT) and decoded[0].decoder == "retrieval"

        familiar = segment_then_flush(0.5)
        assert familiar[0].in_distribution and familiar[0].text != SemanticEvent.UNFAMILIAR_TEXT
        legacy = segment_then_flush(None)  # a publisher that sets no familiarity: nothing to judge by
        assert legacy[0].in_distribution and legacy[0].familiarity == -1.0 and legacy[0].text

        ok, why = driver.set_parameter("unfamiliar_policy", ParameterValue(type=4, string_value="ignore"))
        assert not ok and "mark" in why
        assert driver.counter("events_unfamiliar") == 3
        assert process.poll() is None
