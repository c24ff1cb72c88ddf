"""The pipeline's side of test_example_planner.py: publishes embeddings (clip_end advancing 0.5 s per
message, from 10 s) and an event on /vljepa/*, and serves /vljepa/rank_actions. The service checks
the request the way the action-inference node would read it (stamps mode, a 2 s window ending at a
published clip_end) and ranks candidates by reversed alphabetical order."""
from __future__ import annotations

from builtin_interfaces.msg import Time
from rclpy.node import Node

from vljepa_ros.msg import SemanticEmbedding, SemanticEvent
from vljepa_ros.srv import RankActions

from spin_peer import spin_peer

EVENT_TEXT = "the robot picks up the red cube"


class PlannerPeer(Node):
    def __init__(self) -> None:
        super().__init__("planner_peer", namespace="vljepa")
        self.embedding_pub = self.create_publisher(SemanticEmbedding, "embedding", 10)
        self.event_pub = self.create_publisher(SemanticEvent, "event", 10)
        self.create_service(RankActions, "rank_actions", self.rank_actions)
        self.published_clip_ends: set[int] = set()
        self.clip_end_ns = 10_000_000_000
        self.ticks = 0
        self.create_timer(0.1, self.publish)

    def publish(self) -> None:
        self.clip_end_ns += 500_000_000
        embedding = SemanticEmbedding()
        embedding.clip_start = Time(sec=(self.clip_end_ns - 1_000_000_000) // 10**9)
        embedding.clip_end = Time(sec=self.clip_end_ns // 10**9, nanosec=self.clip_end_ns % 10**9)
        embedding.header.stamp = embedding.clip_end
        embedding.dimension = 2
        embedding.embedding = [0.6, 0.8]
        self.embedding_pub.publish(embedding)
        self.published_clip_ends.add(self.clip_end_ns)
        self.ticks += 1
        if self.ticks % 10 != 1:  # an event a second is plenty
            return

        event = SemanticEvent()
        event.segment_start = Time(sec=3)
        event.segment_end = Time(sec=4)
        event.dimension = 2
        event.embedding = [1.0, 0.0]
        event.text = EVENT_TEXT
        event.text_score = 0.8
        event.trigger = SemanticEvent.TRIGGER_SHIFT
        self.event_pub.publish(event)

    def rank_actions(self, request: RankActions.Request, response: RankActions.Response):
        initial_ns = request.initial_stamp.sec * 10**9 + request.initial_stamp.nanosec
        final_ns = request.final_stamp.sec * 10**9 + request.final_stamp.nanosec
        problems = []
        if not request.use_stamps:
            problems.append("use_stamps is false")
        if final_ns not in self.published_clip_ends:
            problems.append(f"final stamp {final_ns} is no published clip_end")
        if final_ns - initial_ns != 2_000_000_000:
            problems.append(f"window is {(final_ns - initial_ns) / 1e9} s, not 2 s")
        if not request.candidates:
            problems.append("no candidates")
        if problems:
            response.success = False
            response.message = "; ".join(problems)
            return response
        order = sorted(range(len(request.candidates)), key=lambda i: request.candidates[i], reverse=True)
        response.success = True
        response.hypotheses.initial_stamp = request.initial_stamp
        response.hypotheses.final_stamp = request.final_stamp
        response.hypotheses.actions = [request.candidates[i] for i in order]
        response.hypotheses.scores = [0.9 - 0.1 * rank for rank in range(len(order))]
        response.hypotheses.probabilities = [1.0 / len(order)] * len(order)
        response.candidate_indices = order
        return response


def main() -> int:
    return spin_peer(PlannerPeer)


if __name__ == "__main__":
    main()
