"""The other side of test_interfaces_multiprocess.py: publishes one message of each custom type
(re-publishing until stopped) and serves RankActions, ranking candidates by length (longest first)
so the caller can check the ranking arrived intact."""
from __future__ import annotations

import sys

from builtin_interfaces.msg import Time
from rclpy.node import Node

from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent
from vljepa_ros.srv import RankActions

from spin_peer import spin_peer


class InterfacePeer(Node):
    def __init__(self) -> None:
        super().__init__("interface_peer")
        self.embedding_pub = self.create_publisher(SemanticEmbedding, "embedding", 10)
        self.event_pub = self.create_publisher(SemanticEvent, "event", 10)
        self.hypotheses_pub = self.create_publisher(ActionHypotheses, "hypotheses", 10)
        self.create_service(RankActions, "rank_actions", self.rank_actions)
        self.create_timer(0.1, self.publish_all)

    def publish_all(self) -> None:
        embedding = SemanticEmbedding()
        embedding.header.frame_id = "camera"
        embedding.clip_start = Time(sec=1, nanosec=0)
        embedding.clip_end = Time(sec=2, nanosec=500)
        embedding.frames_in_clip = 8
        embedding.model_id = "test-model"
        embedding.query = "What is happening?"
        embedding.dimension = 4
        embedding.embedding = [0.5, 0.5, 0.5, 0.5]
        embedding.top_labels = ["pick up the red cube"]
        embedding.top_scores = [0.9]
        embedding.sequence = 7
        self.embedding_pub.publish(embedding)

        event = SemanticEvent()
        event.segment_start = Time(sec=3)
        event.segment_end = Time(sec=4)
        event.embeddings_in_segment = 5
        event.dimension = 2
        event.embedding = [1.0, 0.0]
        event.text = "the robot picks up the red cube"
        event.text_score = 0.8
        event.decoder = "retrieval"
        event.shift_score = 0.3
        event.shift_threshold = 0.2
        event.trigger = SemanticEvent.TRIGGER_SHIFT
        self.event_pub.publish(event)

        hypotheses = ActionHypotheses()
        hypotheses.initial_stamp = Time(sec=5)
        hypotheses.final_stamp = Time(sec=6)
        hypotheses.actions = ["push", "pick"]
        hypotheses.scores = [0.7, 0.1]
        hypotheses.probabilities = [0.9, 0.1]
        self.hypotheses_pub.publish(hypotheses)

    def rank_actions(self, request: RankActions.Request, response: RankActions.Response):
        if not request.candidates:
            response.success = False
            response.message = "no candidates"
            return response
        order = sorted(range(len(request.candidates)), key=lambda i: -len(request.candidates[i]))
        response.success = True
        response.hypotheses.initial_stamp = request.initial_stamp
        response.hypotheses.final_stamp = request.final_stamp
        response.hypotheses.actions = [request.candidates[i] for i in order]
        response.hypotheses.scores = [float(len(request.candidates[i])) for i in order]
        response.candidate_indices = order
        response.message = f"image {request.initial_image.width}x{request.initial_image.height}"
        return response


def main() -> int:
    return spin_peer(InterfacePeer)


if __name__ == "__main__":
    sys.exit(main())
