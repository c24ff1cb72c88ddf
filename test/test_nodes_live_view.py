"""The monitor's live view through a real node process: off by default (no camera subscription at all),
on with `live_view:=true` it publishes the newest camera frame with what the model makes of it, and
`ros2 param set` turns it on and off at run time.

No check depends on machine speed: each phase waits (with a deadline) for the messages it needs."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from rcl_interfaces.msg import ParameterType, ParameterValue  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros_testing import ros_node, ros_process  # noqa: E402
from test_nodes import MODEL_LOAD_DEADLINE_S, embedding_message, image_message, node_command  # noqa: E402
from test_nodes_losses import Driver, cycler  # noqa: E402
from vljepa_ros.msg import SemanticEmbedding, SemanticEvent  # noqa: E402
from vljepa_ros.nodes.common import OUTPUT_QOS, SENSOR_QOS, stamp_to_ns  # noqa: E402
from vljepa_ros.stream.live_view import (BANNER_HEIGHT, DEFAULT_WIDTH, STRIP_HEIGHT, UNFAMILIAR_COLOUR,  # noqa: E402
                                         LiveViewContent, draw_banner)

CAMERA_SIZE = 40  # test_nodes.image_message's frames: square, so the view's frame is DEFAULT_WIDTH tall
VIEW_SHAPE = (BANNER_HEIGHT + DEFAULT_WIDTH + STRIP_HEIGHT, DEFAULT_WIDTH, 3)


def bool_value(value: bool) -> ParameterValue:
    return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)


def view_pixels(message: Image) -> np.ndarray:
    return np.frombuffer(bytes(message.data), np.uint8).reshape(message.height, message.width, 3)


def shows_unfamiliar_mark(message: Image) -> bool:
    banner = view_pixels(message)[:BANNER_HEIGHT]
    return bool(np.all(banner == np.asarray(UNFAMILIAR_COLOUR, np.uint8), axis=-1).any())


def banner_of_event(event: SemanticEvent, familiarity: float) -> np.ndarray:
    """The banner the monitor should draw for `event` after familiar embeddings (threshold 0.05)."""
    banner = np.empty((BANNER_HEIGHT, DEFAULT_WIDTH, 3), np.uint8)
    draw_banner(banner, LiveViewContent(text=event.text, text_source="event", score=float(event.text_score),
                                        familiarity=float(np.float32(familiarity)),
                                        familiarity_threshold=float(np.float32(0.05)), in_distribution=True))
    return banner


def labelled_embeddings(rng, dimension: int, model_id: str, first_index: int, in_distribution: bool) -> list:
    """Embeddings as the perception node sends them: a top label, its confidence and the familiarity."""
    messages = []
    for index in range(first_index, first_index + 4):
        vector = rng.normal(size=dimension)
        message = embedding_message((vector / np.linalg.norm(vector)).astype(np.float32), index, model_id)
        message.top_labels, message.top_scores = (["pick up the red cube"], [0.8]) if in_distribution else ([], [])
        message.label_confidence, message.label_margin = 0.8, 0.2
        message.familiarity, message.familiarity_threshold = (0.4 if in_distribution else 0.01), 0.05
        message.in_distribution = in_distribution
        messages.append(message)
    return messages


def test_live_view_on_publishes_the_camera_frame_with_label_familiarity_and_shift_strip(tiny_model_dir):
    from vljepa_ros.runtime import create_engine

    engine = create_engine(tiny_model_dir)
    command = node_command("monitor", tiny_model_dir, "live_view:=true", "live_view_rate_hz:=10.0",
                           "max_segment_s:=0.0")
    with ros_process(command, "live_view_monitor") as process, ros_node("live_view_driver") as (node, executor):
        driver = Driver(node, executor, "monitor_node")
        views: list[Image] = []
        node.create_subscription(Image, "live_view", views.append, OUTPUT_QOS)
        events: list[SemanticEvent] = []
        node.create_subscription(SemanticEvent, "event", events.append, OUTPUT_QOS)
        camera = node.create_publisher(Image, "image_in", SENSOR_QOS)
        embeddings = node.create_publisher(SemanticEmbedding, "embedding", OUTPUT_QOS)
        camera_frames = [image_message(index) for index in range(10)]
        driver.wait(lambda: driver.latest() is not None and driver.latest()[1].startswith("running"),
                    "the monitor to load", MODEL_LOAD_DEADLINE_S)
        assert driver.values()["live_view"] == "True"

        driver.wait(lambda: views, "a live view image", every_spin=cycler(camera, camera_frames))
        view = views[-1]
        assert (view.height, view.width, 3) == VIEW_SHAPE and view.encoding == "rgb8" and view.step == 3 * view.width
        assert stamp_to_ns(view.header.stamp) in {stamp_to_ns(frame.header.stamp) for frame in camera_frames}
        assert view.header.frame_id == "camera"
        assert not shows_unfamiliar_mark(view)  # nothing judged yet

        rng = np.random.default_rng(0)
        driver.wait(embeddings.get_subscription_count, "the monitor's embedding subscription")
        for message in labelled_embeddings(rng, engine.dimension, engine.model_id, 0, in_distribution=False):
            embeddings.publish(message)
        driver.wait(lambda: shows_unfamiliar_mark(views[-1]), "a view marked unfamiliar",
                    every_spin=cycler(camera, camera_frames))
        for message in labelled_embeddings(rng, engine.dimension, engine.model_id, 4, in_distribution=True):
            embeddings.publish(message)
        driver.wait(lambda: not shows_unfamiliar_mark(views[-1]), "a view of familiar input again",
                    every_spin=cycler(camera, camera_frames))
        assert all((v.height, v.width) == VIEW_SHAPE[:2] for v in views)

        # An event's decoded text (and its score) replaces the label in the banner.
        assert driver.call(node.create_client(Trigger, "monitor_node/flush"), Trigger.Request(), "flush").success
        driver.wait(lambda: events and np.array_equal(view_pixels(views[-1])[:BANNER_HEIGHT],
                                                      banner_of_event(events[-1], 0.4)),
                    "the newest event's text in the banner", every_spin=cycler(camera, camera_frames))
        assert events[-1].text and events[-1].decoder == "retrieval"
        driver.wait(lambda: driver.counter("live_view_frames_rendered") >= 3
                    and driver.counter("embeddings_received") == 8,
                    "the rendered frames and embeddings on /diagnostics")
        assert float(driver.values()["live_view_render_p50_ms"]) > 0.0

        # Off at run time: the camera subscription and the live_view publisher go away.
        assert driver.set_parameter("live_view", bool_value(False))[0]
        driver.wait(lambda: camera.get_subscription_count() == 0 and node.count_publishers("live_view") == 0,
                    "the live view's subscription and publisher to go")
        assert driver.fresh()[2]["live_view"] == "False"
        assert process.poll() is None


def test_live_view_is_off_by_default_and_the_monitor_then_does_not_subscribe_the_camera(tiny_model_dir):
    command = node_command("monitor", tiny_model_dir)
    with ros_process(command, "live_view_off_monitor") as process, ros_node("live_view_off_driver") as (node, executor):
        driver = Driver(node, executor, "monitor_node")
        camera = node.create_publisher(Image, "image_in", SENSOR_QOS)

        def compressed_topic_subscribers() -> int:
            return node.count_subscribers("image_in/compressed")
        embeddings = node.create_publisher(SemanticEmbedding, "embedding", OUTPUT_QOS)
        driver.wait(lambda: driver.latest() is not None and embeddings.get_subscription_count() == 1,
                    "the monitor's diagnostics and its embedding subscription")
        assert driver.values()["live_view"] == "False"
        assert camera.get_subscription_count() == 0 and compressed_topic_subscribers() == 0
        assert node.count_publishers("live_view") == 0

        assert driver.set_parameter("live_view", bool_value(True))[0]  # ros2 param set ... live_view true
        driver.wait(lambda: camera.get_subscription_count() == 1 and compressed_topic_subscribers() == 1
                    and node.count_publishers("live_view") == 1, "the live view's subscriptions and publisher")
        ok, why = driver.set_parameter("live_view_rate_hz", ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                                           double_value=100.0))
        assert not ok  # outside 0.5-30 Hz

        # A frame it cannot decode is counted (and holds /diagnostics at WARN while it rises), nothing published.
        undecodable = Image(height=4, width=4, encoding="bayer_unknown16", step=8, data=bytes(32))
        driver.wait(lambda: driver.counter("live_view_images_rejected") >= 1, "the rejected frame on /diagnostics",
                    every_spin=cycler(camera, [undecodable]))
        assert "live_view_images_rejected" in driver.latest()[1]
        assert process.poll() is None
