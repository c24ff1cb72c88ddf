"""Each custom message and the service cross a real process boundary (Fast DDS, localhost)."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ros_testing import DISCOVERY_DEADLINE_S, ros_node, ros_process, spin_until  # noqa: E402
from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent  # noqa: E402
from vljepa_ros.srv import RankActions  # noqa: E402


def test_messages_and_service_cross_processes():
    with ros_process(["test/peers/interface_peer.py"], "interface_peer") as peer, \
            ros_node("interface_subscriber") as (node, executor):
        received: dict[str, object] = {}
        node.create_subscription(SemanticEmbedding, "embedding", lambda m: received.setdefault("embedding", m), 10)
        node.create_subscription(SemanticEvent, "event", lambda m: received.setdefault("event", m), 10)
        node.create_subscription(ActionHypotheses, "hypotheses", lambda m: received.setdefault("hypotheses", m), 10)

        spin_until(executor, lambda: len(received) == 3 or peer.poll() is not None,
                   DISCOVERY_DEADLINE_S, what="one message of each type")
        assert peer.poll() is None, "the publisher process died"

        embedding = received["embedding"]
        assert embedding.clip_start == Time(sec=1, nanosec=0)
        assert embedding.clip_end == Time(sec=2, nanosec=500)
        assert list(embedding.embedding) == [0.5, 0.5, 0.5, 0.5] and embedding.dimension == 4
        assert embedding.query == "What is happening?" and embedding.sequence == 7
        assert list(embedding.top_labels) == ["pick up the red cube"]

        event = received["event"]
        assert event.text == "the robot picks up the red cube"
        assert event.trigger == SemanticEvent.TRIGGER_SHIFT
        assert event.embeddings_in_segment == 5 and list(event.embedding) == [1.0, 0.0]
        assert event.segment_start == Time(sec=3) and event.segment_end == Time(sec=4)

        hypotheses = received["hypotheses"]
        assert list(hypotheses.actions) == ["push", "pick"]
        assert list(hypotheses.scores) == pytest.approx([0.7, 0.1])

        client = node.create_client(RankActions, "rank_actions")
        spin_until(executor, lambda: client.service_is_ready(), DISCOVERY_DEADLINE_S, what="the service")
        request = RankActions.Request()
        request.initial_image = Image(width=4, height=3, encoding="rgb8", step=12, data=bytes(36))
        request.initial_stamp = Time(sec=9)
        request.candidates = ["a", "ccc", "bb"]
        future = client.call_async(request)
        spin_until(executor, future.done, DISCOVERY_DEADLINE_S, what="the service response")
        response = future.result()
        assert response.success, response.message
        assert response.message == "image 4x3"
        assert list(response.hypotheses.actions) == ["ccc", "bb", "a"]
        assert list(response.candidate_indices) == [1, 2, 0]
        assert response.hypotheses.initial_stamp == Time(sec=9)
