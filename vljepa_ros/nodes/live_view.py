"""The monitor's live view: an optional image topic a person watches in rqt_image_view or Foxglove.

With `live_view:=true` the monitor subscribes the camera (`image_in`, `image_in/compressed`) and, at
most `live_view_rate_hz` times a second, draws the frame that has just arrived and publishes it on
`live_view` (sensor_msgs/Image rgb8, drawn by vljepa_ros.stream.live_view): the frame with the newest
event text (else the newest top label), its score, the familiarity, and a strip of the recent shift
scores. Frames arrive serialized (a raw subscription) and only those drawn are deserialized and
decoded: a 30 Hz 640x480 camera is not converted 30 times a second to show 5 frames. The camera's
arrivals pace the drawing, so no timer wakes the node to look for a frame (none while the camera is
silent). Off (the default) it holds no subscription or publisher and costs nothing; `ros2 param set`
turns it on and off at run time.

`live_view` is published reliable, keep last 1: a reliable publisher matches reliable subscribers
(rqt_image_view through image_transport, most tools) and best-effort ones alike, where a best-effort
publisher would leave a reliable viewer silently without images; depth 1 because only the newest
frame is worth showing, so a slow viewer never makes the monitor queue frames.
"""
from __future__ import annotations

import threading
import time
from collections import deque

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image

from vljepa_ros.errors import ImageConversionError
from vljepa_ros.nodes.common import SENSOR_QOS, LatencyStats, LossCounters, ParameterSpec, image_msg_to_rgb
from vljepa_ros.stream.live_view import LiveViewContent, render_live_view

LIVE_VIEW_PARAMETERS = (
    ParameterSpec("live_view", False, "publish `live_view` (sensor_msgs/Image rgb8, for rqt_image_view or Foxglove): "
                  "the newest camera frame (image_in) with the newest text, its score, the familiarity and the "
                  "recent shift scores; off: no camera subscription at all"),
    ParameterSpec("live_view_rate_hz", 5.0, "live view images per second (each from the newest camera frame)",
                  min_value=0.5, max_value=30.0),
)
LIVE_VIEW_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
SHIFT_HISTORY = 120  # shift scores in the strip: 24 s of embeddings at the default 5 clips per second


class LiveView:
    """Owns the live view's subscriptions and publisher on `node`, and what it shows.

    Camera callbacks (which draw) and embeddings run on the node's executor; events come from the
    monitor's decoder thread, so the shown state is guarded by a lock."""

    def __init__(self, node: Node, losses: LossCounters, camera_topic: str, compressed_camera_topic: str) -> None:
        self._node = node
        self._camera_topics = camera_topic, compressed_camera_topic  # the node's names, remapped by launch
        self._losses = losses
        losses.define("live_view_images_rejected", "camera images the live view could not decode",
                      "publish rgb8/bgr8/mono8 Image or JPEG/PNG CompressedImage on the camera topic")
        self._lock = threading.Lock()
        self._subscriptions: list = []
        self._publisher = None
        self._period_s = 0.0
        self._next_view_due = 0.0  # monotonic seconds; camera frames before it are not drawn
        self._shift_scores: deque[float] = deque(maxlen=SHIFT_HISTORY)
        self._shift_threshold = 0.0
        self._label = LiveViewContent()  # from the newest embedding: top label, confidence, familiarity
        self._event_text, self._event_score = "", -1.0
        self.images_received = 0
        self.frames_rendered = 0
        self.render_latency = LatencyStats()

    @property
    def enabled(self) -> bool:
        return self._publisher is not None

    def configure(self, enabled: bool, rate_hz: float) -> None:
        """Create (or re-create at a new rate) the subscriptions and the publisher; or destroy them."""
        self._stop()
        if not enabled:
            return
        self._period_s, self._next_view_due = 1.0 / rate_hz, 0.0
        self._publisher = self._node.create_publisher(Image, "live_view", LIVE_VIEW_QOS)
        self._subscriptions = [
            self._node.create_subscription(message_type, topic,
                                           lambda data, kind=message_type: self._on_image(kind, data),
                                           SENSOR_QOS, raw=True)
            for message_type, topic in zip((Image, CompressedImage), self._camera_topics)]

    def _stop(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []
        if self._publisher is not None:
            self._node.destroy_publisher(self._publisher)
            self._publisher = None

    def _on_image(self, message_type: type, serialized: bytes) -> None:
        """Executor thread: draw this frame if a view is due, else let it go (it is not shown)."""
        self.images_received += 1
        now = time.monotonic()
        if now < self._next_view_due or self._publisher is None:
            return
        # Due times advance by the period, so a jittery camera still gives live_view_rate_hz on average; after
        # a silence they restart from now (at most one extra view, never a burst).
        self._next_view_due = max(self._next_view_due, now - self._period_s) + self._period_s
        self._render_and_publish(message_type, serialized)

    def note_embedding(self, message, shift_score: float, shift_threshold: float) -> None:
        """After the detector took an embedding: its shift score, top label, confidence and familiarity."""
        if not self.enabled:
            return
        label = message.top_labels[0] if message.top_labels else ""
        with self._lock:
            self._shift_scores.append(float(shift_score))
            self._shift_threshold = float(shift_threshold)
            self._label = LiveViewContent(text=label, text_source="label" if label else "",
                                          score=float(message.label_confidence) if label else -1.0,
                                          familiarity=float(message.familiarity),
                                          familiarity_threshold=float(message.familiarity_threshold),
                                          in_distribution=bool(message.in_distribution))

    def note_event(self, message) -> None:
        """A published SemanticEvent (decoder thread): its text replaces the label in the banner."""
        if not self.enabled or not message.text:
            return
        # A segment marked unfamiliar was not decoded (decoder "none"): its text has no score to show.
        score = float(message.text_score) if message.decoder != "none" else -1.0
        with self._lock:
            self._event_text, self._event_score = message.text, score

    def content(self) -> LiveViewContent:
        with self._lock:
            label = self._label
            text, source, score = ((self._event_text, "event", self._event_score) if self._event_text
                                   else (label.text, label.text_source, label.score))
            return LiveViewContent(text=text, text_source=source, score=score, familiarity=label.familiarity,
                                   familiarity_threshold=label.familiarity_threshold,
                                   in_distribution=label.in_distribution, shift_scores=tuple(self._shift_scores),
                                   shift_threshold=self._shift_threshold)

    def _render_and_publish(self, message_type: type, serialized: bytes) -> None:
        started = time.monotonic()
        try:
            message = deserialize_message(serialized, message_type)
            rgb = image_msg_to_rgb(message)
        except ImageConversionError as error:
            self._losses.count("live_view_images_rejected", 1, str(error))
            return
        image = render_live_view(rgb, self.content())
        output = Image(header=message.header, height=image.shape[0], width=image.shape[1], encoding="rgb8",
                       step=image.shape[1] * 3, data=image.tobytes())
        self.render_latency.add(time.monotonic() - started)
        self._publisher.publish(output)
        self.frames_rendered += 1

    def diagnostic_values(self) -> dict:
        return {"live_view": self.enabled, "live_view_images_received": self.images_received,
                "live_view_frames_rendered": self.frames_rendered,
                "live_view_render_p50_ms": self.render_latency.percentile_ms(50)}
