"""A camera for the overload test (test_nodes_overload.py): frames with stamps on an exact 30 Hz grid
(frame i at 1 s + i / 30 s), published faster than the nodes drain them or as large raw images.

  1. publishes frames FIRST, FIRST+1, ... every 0.1 s until every node named in NODES reports a newest
     stamp at or after FIRST's on /diagnostics (perception: also `active`); prints `streaming`;
  2. publishes the next FRAMES frames at RATE_HZ (0: as fast as it can, in one go);
  3. prints `done`, then publishes the next frames every 0.1 s (end markers) until stopped, each printed
     as `marker INDEX`.
Every frame has a stamp of its own (no copies), so that a lost one leaves a gap like any other.
Usage: overload_camera.py FRAMES RATE_HZ WIDTH HEIGHT FIRST NODES (NODES: comma-separated node names).
"""
from __future__ import annotations

import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from spin_peer import spin_peer

BASE_NS = 1_000_000_000
PERIOD_NS = 33_333_333  # the stamps' grid: 30 Hz, whatever the publishing rate


def stamp_of(index: int) -> int:
    return BASE_NS + index * PERIOD_NS


class OverloadCamera(Node):
    def __init__(self, frames: int, rate_hz: float, width: int, height: int, first: int, nodes: list[str]) -> None:
        super().__init__("overload_camera")
        self.frames, self.rate_hz, self.first = frames, rate_hz, first
        self.waiting_for = set(nodes)
        self.publisher = self.create_publisher(Image, "image_in", qos_profile_sensor_data)
        rng = np.random.default_rng(0)
        self.messages = [Image(height=height, width=width, encoding="rgb8", step=width * 3,
                               data=rng.integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes())
                         for _ in range(2)]
        self.index = first  # the next frame to publish
        self.streamed = 0
        self.phase = "waiting"
        self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 50)
        self.slow_timer = self.create_timer(0.1, self.publish_marker)
        self.fast_timer = None

    def publish_frame(self, index: int) -> None:
        message = self.messages[index % 2]
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_of(index), 1_000_000_000)
        message.header.frame_id = "camera"
        self.publisher.publish(message)

    def publish_marker(self) -> None:
        if self.phase == "waiting":
            self.publish_frame(self.index)
            self.index += 1
        elif self.phase == "done":
            self.publish_frame(self.index)
            print(f"marker {self.index}", flush=True)  # the next run's stamps continue after it
            self.index += 1

    def on_diagnostics(self, array: DiagnosticArray) -> None:
        if self.phase != "waiting":
            return
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            name = status.name.rsplit("/", 1)[-1]
            if (name in self.waiting_for and int(values.get("newest_stamp_ns", "0")) >= stamp_of(self.first)
                    and values.get("state", "active") == "active"):
                self.waiting_for.discard(name)
        if not self.waiting_for:
            self.phase = "streaming"
            print("streaming", flush=True)
            if self.rate_hz > 0:
                self.fast_timer = self.create_timer(1.0 / self.rate_hz, self.stream_one)
            else:
                started = time.monotonic()
                for _ in range(self.frames):
                    self.publish_frame(self.index)
                    self.index += 1
                print(f"published {self.frames} frames in {time.monotonic() - started:.3f} s", flush=True)
                self.finish()

    def stream_one(self) -> None:
        self.publish_frame(self.index)
        self.index += 1
        self.streamed += 1
        if self.streamed >= self.frames:
            self.destroy_timer(self.fast_timer)
            self.finish()

    def finish(self) -> None:
        self.phase = "done"
        print("done", flush=True)


def main() -> int:
    frames, rate_hz, width, height, first = (int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]),
                                             int(sys.argv[4]), int(sys.argv[5]))
    return spin_peer(lambda: OverloadCamera(frames, rate_hz, width, height, first, sys.argv[6].split(",")), sys.argv)


if __name__ == "__main__":
    raise SystemExit(main())
