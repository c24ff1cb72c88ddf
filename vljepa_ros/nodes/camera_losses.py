"""Camera frames lost before they reached a node: what the middleware knows first, then the stamps.

A node subscribes its camera topics through `CameraLosses.subscribe`, which sees every frame's
rclpy MessageInfo before the node's callback. The middleware's own numbering comes first: a gap in
a publisher's `publication_sequence_number` (Fast DDS sets it) is samples that publisher sent and this
subscription never took, lost in transport or overwritten in a full queue alike, so the books close
exactly (sent = received + counted), pauses of the stream count nothing, and a new publisher starts
over. Where the middleware gives no sequence number, the frame's stamp goes through a FrameGapEstimator
(stream/stream_gaps.py), whose period estimate loss cannot fool, and rclpy's `message_lost` event
(Fast DDS reports the samples a best-effort reader never got, not those a full queue overwrote)
decides whether a long silence was loss or a pause. `frames_lost_in_transport` is counted on the
node's LossCounters; the `message_lost` count, stream pauses (count, longest) and the period in use
are on /diagnostics too, and each pause is logged (a pause lasts over a second: at most one line a second).
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.serialization import deserialize_message

from vljepa_ros.nodes.common import LossCounters
from vljepa_ros.stream.stream_gaps import MAX_GAP_S, FrameGapEstimator, SequenceGapCounter

TRANSPORT_REMEDY = ("raw images over ~500 kB need FASTDDS_DEFAULT_PROFILES_FILE=<share>/vljepa_ros/config/"
                    "fastdds_large_images.xml (FASTRTPS_DEFAULT_PROFILES_FILE on Jazzy) in the camera's "
                    "environment; if the node falls behind, raise "
                    "image_queue_depth")


def serialized_stamp_ns(data: bytes) -> int:
    """header.stamp of a serialized Image/CompressedImage, read without deserialising: a 4-byte CDR
    encapsulation header (byte 1: 1 little-endian, 0 big-endian), then Header's Time (int32 sec, uint32 nanosec)."""
    sec, nanosec = struct.unpack_from("<iI" if data[1] == 1 else ">iI", data, 4)
    return sec * 1_000_000_000 + nanosec


@dataclass(frozen=True)
class SerializedFrame:
    """A camera frame as it came off the wire: a node that keeps frames it may never look at (the
    action node's history) stores these and pays for deserialising only the ones it uses."""
    kind: type  # Image or CompressedImage
    stamp_ns: int
    data: bytes

    def message(self):
        return deserialize_message(self.data, self.kind)


class CameraLosses:
    """Frames lost on a node's camera subscriptions (one estimate per message type: a camera publishing
    both raw and compressed would interleave two cadences)."""

    def __init__(self, node: Node, losses: LossCounters, expected_rate_hz: float = 0.0,
                 max_backward_jump_s: float = 1.0) -> None:
        self._node, self._losses = node, losses
        losses.define("frames_lost_in_transport", "camera frames published that never arrived (gaps in the "
                      "publisher's sequence numbers, else in the header.stamp cadence)", TRANSPORT_REMEDY)
        self._period_s = 1.0 / expected_rate_hz if expected_rate_hz > 0 else 0.0
        self._jump_s = max_backward_jump_s
        self._estimators: dict[type, FrameGapEstimator] = {}
        self._middleware_lost: dict[type, int] = {}  # message_lost events, per message type
        self._sequence_gaps: dict[type, SequenceGapCounter] = {}  # publication sequence numbers, per publisher
        self._sequence_lost: dict[type, int] = {}  # their gaps, cumulative over subscriptions
        self.middleware_events = True  # False once the middleware refused the message_lost event
        self._stamp_gaps = 0  # frames missing from the stamps, where sequence numbers were there to compare
        self._skipped_counted = 0
        losses.define("camera_frames_skipped", "frames missing from the camera's stamp cadence that its publisher "
                      "never sent (no gap in its sequence numbers)", "the camera driver drops frames before "
                      "publishing them: check its load and rate settings (or set expected_rate_hz to its true rate)")

    def _make_estimator(self) -> FrameGapEstimator:
        return FrameGapEstimator(max_backward_jump_s=self._jump_s, expected_period_s=self._period_s)

    def set_max_backward_jump_s(self, jump_s: float) -> None:
        self._jump_s = jump_s
        for estimator in self._estimators.values():
            estimator.max_backward_jump_ns = int(jump_s * 1e9)

    def subscribe(self, kind: type, topic: str, callback, qos, serialized: bool = False, **kwargs):
        """`node.create_subscription` of `callback(message)`, with every frame's losses counted first
        (`observe`) and the message_lost event counted for `kind`. `serialized`: the callback gets a
        SerializedFrame instead, the message never deserialised."""
        # A new subscription (perception re-activated) starts the books over: what was published while
        # nothing was subscribed was not lost.
        self._estimators.setdefault(kind, self._make_estimator()).reset()
        self._sequence_gaps[kind] = SequenceGapCounter()
        self._middleware_lost.setdefault(kind, 0)
        self._sequence_lost.setdefault(kind, 0)

        def on_lost(info) -> None:  # runs in the subscription's callback group, like `callback`
            self._middleware_lost[kind] += int(info.total_count_change)

        def on_message(message, info) -> None:  # two parameters: rclpy passes the MessageInfo
            self.observe(message, info)
            callback(message)

        def on_serialized(data: bytes, info) -> None:
            frame = SerializedFrame(kind, serialized_stamp_ns(data), data)
            self.observe_stamp(kind, frame.stamp_ns, info)
            callback(frame)

        if serialized:
            on_message, kwargs = on_serialized, dict(kwargs, raw=True)
        try:
            return self._node.create_subscription(kind, topic, on_message, qos, **kwargs,
                                                  event_callbacks=SubscriptionEventCallbacks(message_lost=on_lost))
        except UnsupportedEventTypeError:
            self.middleware_events = False
            self._node.get_logger().warning(f"the middleware reports no lost samples on {topic}: frames lost in "
                                            "transport are estimated from sequence numbers and stamps alone")
            return self._node.create_subscription(kind, topic, on_message, qos, **kwargs)

    def observe(self, message, info=None) -> None:
        """Executor thread: count the frames missing before `message` (and log a pause of the stream)."""
        self.observe_stamp(type(message), message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec,
                           info)

    def observe_stamp(self, kind: type, stamp_ns: int, info=None) -> None:
        """`observe` of a frame of message type `kind` stamped `stamp_ns`."""
        estimator = self._estimators.setdefault(kind, self._make_estimator())
        sequences = self._sequence_gaps.setdefault(kind, SequenceGapCounter())
        sequence = (info or {}).get("publication_sequence_number")
        if sequence:  # the middleware numbers the publisher's samples: its gaps are the loss
            missing = sequences.observe(str((info or {}).get("publisher_gid")), int(sequence))
            self._sequence_lost[kind] = self._sequence_lost.get(kind, 0) + missing
            how = "a gap in the publisher's sequence numbers"
            # The stamps still give the period and the pauses, and the gaps no sequence gap explains:
            # frames the camera never published.
            # (no arrival times: the sequence numbers tell a long silence's loss from a pause).
            self._stamp_gaps += estimator.observe(stamp_ns, self._sequence_lost[kind])
            skipped = self._stamp_gaps - sum(self._sequence_lost.values()) - self._skipped_counted
            if skipped > 0:
                self._skipped_counted += skipped
                self._losses.count("camera_frames_skipped", skipped, f"before stamp {stamp_ns / 1e9:.3f} s")
        else:
            missing = estimator.observe(stamp_ns, self._middleware_lost.get(kind), time.monotonic_ns())
            how = f"gaps in header.stamp, frame period {(estimator.period_ns or 0.0) / 1e6:.1f} ms"
        if missing:
            self._losses.count("frames_lost_in_transport", missing, f"{missing} frame(s) missing before stamp "
                               f"{stamp_ns / 1e9:.3f} s ({how})")
        if estimator.last_pause_ns:
            self._node.get_logger().warning(
                f"the camera stream paused: {estimator.last_pause_ns / 1e9:.3f} s without frames before stamp "
                f"{stamp_ns / 1e9:.3f} s (over {MAX_GAP_S:g} s and 10 frame periods, and the middleware reported no "
                f"loss): counted in stream_pauses, not as lost frames ({estimator.pauses} pause(s) so far)")

    def not_newer(self) -> int:
        return sum(estimator.not_newer for estimator in self._estimators.values())

    def newest_stamp_ns(self) -> int:
        return max((estimator.newest_ns or 0 for estimator in self._estimators.values()), default=0)

    def values(self) -> dict:
        periods = [estimator.period_ns for estimator in self._estimators.values() if estimator.period_ns]
        return {
            "frames_lost_reported_by_middleware": sum(self._middleware_lost.values()),
            "frames_in_open_gap": sum(estimator.open_gap_frames for estimator in self._estimators.values()),
            "stream_pauses": sum(estimator.pauses for estimator in self._estimators.values()),
            "longest_pause_s": max((estimator.longest_pause_ns for estimator in self._estimators.values()),
                                   default=0) / 1e9,
            "frame_period_ms": (min(periods) / 1e6) if periods else 0.0,
        }
