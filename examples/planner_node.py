"""A minimal planner that listens to vljepa_ros and asks it which action explains the last 2 seconds.

It shows the three ways a planner meets the pipeline:
  * `/vljepa/embedding` (SemanticEmbedding): what the camera sees now, as a unit vector in the shared
    text/video space. We keep the latest one.
  * `/vljepa/event` (SemanticEvent): the meaning of the scene changed; the segment that just ended is
    decoded into text. We print it, and how similar the current view still is to it (cosine).
  * `/vljepa/rank_actions` (RankActions service): which of our candidate actions best explains the
    change from 2 s ago to now? We ask periodically, by stamps, and log the ranking.

Run it beside the pipeline (see examples/README.md):
    python examples/planner_node.py
    python examples/planner_node.py --ros-args -p candidates:="['open the drawer','close the drawer']"
"""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.node import Node

from vljepa_ros.msg import SemanticEmbedding, SemanticEvent
from vljepa_ros.nodes.spinning import run_nodes
from vljepa_ros.srv import RankActions

DEFAULT_CANDIDATES = [
    "pick up the red cube",
    "push the blue block",
    "open the drawer",
    "do nothing",
]


def time_to_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def ns_to_time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class ExamplePlanner(Node):

    def __init__(self) -> None:
        super().__init__("example_planner")
        self.declare_parameter("candidates", DEFAULT_CANDIDATES)
        self.declare_parameter("horizon_s", 2.0)     # compare the world now with the world this long ago
        self.declare_parameter("rank_period_s", 2.0)  # how often to ask for a ranking

        self.latest_embedding: SemanticEmbedding | None = None
        self.pending_call = None  # at most one service call in flight

        # Outputs of the pipeline are published reliably; a depth of 10 absorbs short stalls.
        self.create_subscription(SemanticEmbedding, "/vljepa/embedding", self.on_embedding, 10)
        self.create_subscription(SemanticEvent, "/vljepa/event", self.on_event, 10)
        self.rank_client = self.create_client(RankActions, "/vljepa/rank_actions")
        self.create_timer(self.get_parameter("rank_period_s").value, self.request_ranking)

    def on_embedding(self, msg: SemanticEmbedding) -> None:
        self.latest_embedding = msg

    def on_event(self, msg: SemanticEvent) -> None:
        start_s, end_s = time_to_ns(msg.segment_start) / 1e9, time_to_ns(msg.segment_end) / 1e9
        line = f"event [{start_s:.1f} s .. {end_s:.1f} s] ({msg.trigger}): '{msg.text}' (score {msg.text_score:.2f})"
        # Embeddings are unit vectors, so the dot product is the cosine similarity: how much of the
        # decoded segment's meaning the current view still shares.
        if self.latest_embedding is not None and len(self.latest_embedding.embedding) == len(msg.embedding):
            now = np.frombuffer(self.latest_embedding.embedding, dtype=np.float32)
            segment = np.frombuffer(msg.embedding, dtype=np.float32)
            line += f"; current view vs segment: cosine {float(now @ segment):.2f}"
        self.get_logger().info(line)

    def request_ranking(self) -> None:
        if self.latest_embedding is None or self.pending_call is not None:
            return
        if not self.rank_client.service_is_ready():
            self.get_logger().info("waiting for /vljepa/rank_actions ...", throttle_duration_sec=10.0)
            return
        # Ask by stamps: the action-inference node looks the frames up in its own history, so no
        # images travel over the wire. "Now" is the end of the latest clip the pipeline has seen.
        final_ns = time_to_ns(self.latest_embedding.clip_end)
        horizon_ns = int(self.get_parameter("horizon_s").value * 1e9)
        request = RankActions.Request()
        request.use_stamps = True
        request.initial_stamp = ns_to_time(max(final_ns - horizon_ns, 0))
        request.final_stamp = ns_to_time(final_ns)
        request.candidates = list(self.get_parameter("candidates").value)
        self.pending_call = self.rank_client.call_async(request)
        self.pending_call.add_done_callback(self.on_ranking)

    def on_ranking(self, future) -> None:
        self.pending_call = None
        response: RankActions.Response = future.result()
        if not response.success:
            self.get_logger().warning(f"ranking failed: {response.message}")
            return
        hypotheses = response.hypotheses
        end_s = time_to_ns(hypotheses.final_stamp) / 1e9
        ranking = ", ".join(f"{rank}. {action} (score {score:.2f})" for rank, (action, score)
                            in enumerate(zip(hypotheses.actions, hypotheses.scores), start=1))
        self.get_logger().info(f"ranking up to {end_s:.1f} s: {ranking}")


def main(args: list[str] | None = None) -> int:
    # vljepa_ros's runner rather than rclpy.spin: it installs SIGINT/SIGTERM handlers of its own (a planner
    # started in the background by a script inherits SIGINT as ignored), spins on an executor thread and
    # shuts down in order. rclpy.spin's own handler can shut the context down while spin is building its
    # wait set, which ends in an RCLError instead of a clean exit.
    return run_nodes(lambda: [ExamplePlanner()], args)


if __name__ == "__main__":
    raise SystemExit(main())
