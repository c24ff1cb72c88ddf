"""A camera for the soak test (test_nodes_losses.py): raw frames at a fixed rate, with stamps on an
exact grid (frame i at START + i * period), so the perception node's counts can be checked exactly.

  1. publishes frame 0 every 0.1 s until the perception node's /diagnostics say it is `active` and
     its newest stamp is frame 0's: from then on, every frame sent reaches it or leaves a gap;
  2. publishes frames 1..N at the rate (a wall-clock timer; the stamps stay on the grid);
  3. publishes frame N + 1 every 0.1 s (the end marker) until stopped.
Usage: camera_peer.py FRAMES RATE_HZ WIDTH HEIGHT (topic `image_in`; prints `streaming`, `done`).
"""
from __future__ import annotations

import sys

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from spin_peer import spin_peer

START_NS = 1_000_000_000


class CameraPeer(Node):
    def __init__(self, frames: int, rate_hz: float, width: int, height: int) -> None:
        super().__init__("camera_peer")
        self.frames, self.period_ns = frames, int(round(1e9 / rate_hz))
        self.publisher = self.create_publisher(Image, "image_in", qos_profile_sensor_data)
        rng = np.random.default_rng(0)
        self.messages = []
        for _ in range(2):  # two images alternating: the clips are not constant
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            self.messages.append(Image(height=height, width=width, encoding="rgb8", step=width * 3,
                                       data=rgb.tobytes()))
        self.index = 0
        self.phase = "waiting"
        self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 10)
        self.slow_timer = self.create_timer(0.1, self.publish_marker)
        self.fast_timer = None

    def publish_frame(self, index: int) -> None:
        message = self.messages[index % 2]
        stamp_ns = START_NS + index * self.period_ns
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        message.header.frame_id = "camera"
        self.publisher.publish(message)

    def publish_marker(self) -> None:
        if self.phase == "waiting":
            self.publish_frame(0)
        elif self.phase == "done":
            self.publish_frame(self.frames + 1)

    def on_diagnostics(self, array: DiagnosticArray) -> None:
        if self.phase != "waiting":
            return
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            if (status.name.endswith("perception_node") and values.get("state") == "active"
                    and values.get("newest_stamp_ns") == str(START_NS)):
                self.phase = "streaming"
                print("streaming", flush=True)
                self.fast_timer = self.create_timer(self.period_ns / 1e9, self.stream)

    def stream(self) -> None:
        self.index += 1
        self.publish_frame(self.index)
        if self.index >= self.frames:
            self.destroy_timer(self.fast_timer)
            self.phase = "done"
            print("done", flush=True)


def main() -> int:
    frames, rate_hz, width, height = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    return spin_peer(lambda: CameraPeer(frames, rate_hz, width, height), sys.argv)


if __name__ == "__main__":
    raise SystemExit(main())
