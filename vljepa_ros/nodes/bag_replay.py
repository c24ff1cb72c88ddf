"""Replay a rosbag2 bag's camera topic with its original timing (a `ros2 bag play` for pip installs).

The bag (mcap or sqlite3) is read with `rosbags`; each message's serialized CDR bytes are
published as they are (`publisher.publish(raw_bytes)`), so replay costs no deserialisation and
the subscriber receives byte-identical messages. Timing follows the bag's record timestamps,
scaled by a rate factor, like `ros2 bag play --rate`.

In-process use (e.g. the demo), on any node; publishing needs no spinning, so the replay runs on
its own thread while the process's executor spins the pipeline nodes:

    replayer = BagReplayer(node, "data/robot_bag", rate=1.0)   # bag directory or its .mcap file
    replayer.start()                                           # background thread
    while not replayer.done(): executor.spin_once(timeout_sec=0.1)
    stats = replayer.wait()                                    # ReplayStats(published, passes, duration_s, ...)
    # or, blocking the calling thread:  stats = replayer.run_blocking()
    # looping: BagReplayer(..., loop=True); replayer.start(); ...; replayer.stop(); replayer.wait()

Stand-alone: `vljepa-ros replay BAG` or `python -m vljepa_ros.nodes.bag_replay BAG` (same options).
"""
from __future__ import annotations

import argparse
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage, Image

from vljepa_ros.errors import VLJepaError
from vljepa_ros.ros_distro import rosbags_store_name
from vljepa_ros.nodes.arguments import REPLAY_QOS_CHOICES, add_replay_arguments

IMAGE_TYPES: dict[str, type] = {
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/CompressedImage": CompressedImage,
}
SINGLE_FRAME_LOOP_PERIOD_NS = 100_000_000  # a one-frame bag has no frame period; loop it at 10 Hz


class BagReplayError(VLJepaError, ValueError):
    """The bag cannot be replayed as asked (missing, no image topic, ambiguous topic, bad rate)."""



@dataclass
class ReplayStats:
    published: int        # messages published, all passes together
    passes: int           # passes over the bag started (> 1 when looping)
    duration_s: float     # wall time from the first to the last publish
    bag_duration_s: float  # record-time span of one pass over the topic
    topic: str            # bag topic that was read
    output_topic: str     # resolved topic it was published on
    message_type: str     # "sensor_msgs/msg/Image" or "sensor_msgs/msg/CompressedImage"


def make_qos(name: str, depth: int = 10) -> QoSProfile:
    """"sensor_data": best effort, as a camera driver publishes (REP-2003); "reliable": no loss
    on a slow subscriber, at the cost of back-pressure."""
    if name == "sensor_data":
        return qos_profile_sensor_data
    if name == "reliable":
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    raise BagReplayError(f"unknown QoS '{name}': expected one of {REPLAY_QOS_CHOICES}")


def open_bag(bag_path: Path) -> AnyReader:
    """A reader that types messages the bag has no definitions for (older sqlite3 bags) as the running
    ROS 2 distribution does."""
    return AnyReader([bag_path], default_typestore=get_typestore(Stores(rosbags_store_name())))


def find_image_topic(bag_path: Path, topic: str | None) -> tuple[str, str, int, int, int]:
    """The image topic to replay: (topic, message type, message count, first and last record stamp ns)."""
    with open_bag(bag_path) as reader:
        images = [c for c in reader.connections if c.msgtype in IMAGE_TYPES]
        if topic is not None:
            matches = [c for c in reader.connections if c.topic == topic]
            if not matches:
                found = sorted({c.topic for c in reader.connections})
                raise BagReplayError(f"topic '{topic}' is not in bag {bag_path}; it has {found}")
            if matches[0].msgtype not in IMAGE_TYPES:
                raise BagReplayError(f"topic '{topic}' in {bag_path} has type {matches[0].msgtype}; "
                                     f"replay publishes only {sorted(IMAGE_TYPES)}")
            images = matches
        elif len({c.topic for c in images}) != 1:
            found = sorted({f"{c.topic} ({c.msgtype})" for c in images})
            raise BagReplayError(f"bag {bag_path} has {len(found)} image topics {found}: pick one with --topic")
        chosen = images[0].topic
        connections = [c for c in reader.connections if c.topic == chosen]
        stamps = [stamp for _, stamp, _ in reader.messages(connections=connections)]
    if not stamps:
        raise BagReplayError(f"topic '{chosen}' in bag {bag_path} has no messages")
    return chosen, connections[0].msgtype, len(stamps), stamps[0], stamps[-1]


def default_output_topic(topic: str, message_type: str) -> str:
    """The bag's topic; CompressedImage goes to `<topic>/compressed` when the bag did not name it so.

    image_transport's convention, which launch and bring-up follow when they remap the perception
    node's `image_in/compressed` to `<camera topic>/compressed`: an Image and a CompressedImage
    sharing one topic name would never match.
    """
    if message_type.endswith("/CompressedImage") and not topic.endswith("/compressed"):
        return f"{topic}/compressed"
    return topic


def header_stamp_ns(raw: bytes) -> int:
    """header.stamp of serialized Image/CompressedImage bytes (layout: see restamp_header)."""
    sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


def restamp_header(raw: bytes, stamp_ns: int) -> bytes:
    """Overwrite header.stamp in serialized Image/CompressedImage bytes without deserialising.

    CDR layout: 4-byte encapsulation header (byte 1: 0 big-endian, 1 little-endian), then the
    message, whose first field is std_msgs/Header whose first field is Time(int32 sec, uint32 nanosec).
    """
    endian = "<" if raw[1] == 1 else ">"
    return raw[:4] + struct.pack(f"{endian}iI", stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000) + raw[12:]


class BagReplayer:
    """Publishes one image topic of a bag on `node` with the bag's timing scaled by `rate`.

    `output_topic` defaults to the bag's own topic, as `ros2 bag play` does (launch and bring-up
    remap the perception node's `image_in` to the camera topic, /camera/image_raw by default),
    see default_output_topic() for CompressedImage.
    `restamp` rewrites header.stamp to the node's clock at publish time (keeps stamps increasing
    across loops and makes stamp-to-output latency meaningful).
    `on_publish(published_count, header_stamp_ns)` is called after every publish (progress bars,
    latency references); the stamp is the published message's header.stamp (after restamping).
    """

    def __init__(self, node: Node, bag_path: str | Path, topic: str | None = None, *,
                 output_topic: str | None = None, rate: float = 1.0, loop: bool = False,
                 qos: str = "sensor_data", start_delay_s: float = 0.0, wait_for_subscribers: int = 0,
                 wait_timeout_s: float = 30.0, restamp: bool = False,
                 on_publish: Callable[[int, int], None] | None = None) -> None:
        self.bag_path = Path(bag_path)
        if not self.bag_path.exists():
            raise BagReplayError(f"bag not found: {self.bag_path}")
        if not rate > 0:
            raise BagReplayError(f"rate must be > 0, got {rate}")
        if start_delay_s < 0:
            raise BagReplayError(f"start_delay_s must be >= 0, got {start_delay_s}")
        self.node = node
        self.rate = rate
        self.loop = loop
        self.start_delay_s = start_delay_s
        self.wait_for_subscribers = wait_for_subscribers
        self.wait_timeout_s = wait_timeout_s
        self.restamp = restamp
        self.on_publish = on_publish

        self.topic, self.message_type, self.frame_count, self.first_stamp_ns, self.last_stamp_ns = \
            find_image_topic(self.bag_path, topic)
        output_topic = output_topic or default_output_topic(self.topic, self.message_type)
        self.publisher = node.create_publisher(IMAGE_TYPES[self.message_type], output_topic, make_qos(qos))
        self.output_topic = self.publisher.topic_name

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats: ReplayStats | None = None
        self._error: BaseException | None = None

    @property
    def bag_duration_s(self) -> float:
        return (self.last_stamp_ns - self.first_stamp_ns) / 1e9

    def run_blocking(self) -> ReplayStats:
        """Replay (all passes when looping, until stop()) and return the counts."""
        self._wait_for_subscribers()
        if self._stop.wait(self.start_delay_s):
            return self._make_stats(0, 0, 0.0)
        # Loop passes are laid end to end with one mean frame period between them, so a loop
        # boundary looks like any other frame gap.
        period_ns = ((self.last_stamp_ns - self.first_stamp_ns) // (self.frame_count - 1)
                     if self.frame_count > 1 else SINGLE_FRAME_LOOP_PERIOD_NS)
        pass_length_ns = self.last_stamp_ns - self.first_stamp_ns + period_ns
        published = passes = 0
        first_publish = last_publish = time.monotonic()
        start: float | None = None  # set at the first message, after the bag was opened
        while not self._stop.is_set() and (passes == 0 or self.loop):
            offset_ns = passes * pass_length_ns
            passes += 1
            with open_bag(self.bag_path) as reader:
                connections = [c for c in reader.connections if c.topic == self.topic]
                for _, stamp_ns, raw in reader.messages(connections=connections):
                    if start is None:
                        start = time.monotonic()
                    due = start + (offset_ns + stamp_ns - self.first_stamp_ns) / 1e9 / self.rate
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        break
                    if self.restamp:
                        raw = restamp_header(raw, self.node.get_clock().now().nanoseconds)
                    self.publisher.publish(bytes(raw))
                    last_publish = time.monotonic()
                    if published == 0:
                        first_publish = last_publish
                    published += 1
                    if self.on_publish is not None:
                        self.on_publish(published, header_stamp_ns(raw))
        return self._make_stats(published, passes, last_publish - first_publish)

    def start(self) -> None:
        """Replay on a background thread; collect the counts with wait()."""
        if self._thread is not None:
            raise RuntimeError("replay already started")

        def target() -> None:
            try:
                self._stats = self.run_blocking()
            except BaseException as error:  # re-raised by wait(), never lost in the thread
                self._error = error

        self._thread = threading.Thread(target=target, name="bag_replay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the replay to end (returns at once; wait() for the counts)."""
        self._stop.set()

    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> ReplayStats:
        if self._thread is None:
            raise RuntimeError("replay was not started")
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"replay still running after {timeout_s} s")
        if self._error is not None:
            raise self._error
        assert self._stats is not None
        return self._stats

    def _wait_for_subscribers(self) -> None:
        deadline = time.monotonic() + self.wait_timeout_s
        while self.publisher.get_subscription_count() < self.wait_for_subscribers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.wait_for_subscribers} subscriber(s) on {self.output_topic} did not "
                                   f"appear within {self.wait_timeout_s:.0f} s")
            if self._stop.wait(0.05):
                return

    def _make_stats(self, published: int, passes: int, duration_s: float) -> ReplayStats:
        return ReplayStats(published=published, passes=passes, duration_s=duration_s,
                           bag_duration_s=self.bag_duration_s, topic=self.topic,
                           output_topic=self.output_topic, message_type=self.message_type)


def replay_from_args(args: argparse.Namespace, ros_args: list[str] | None = None) -> int:
    """Run a replay node until the bag ends (or Ctrl-C when looping); print the counts."""
    rclpy.init(args=ros_args)
    node = rclpy.create_node("bag_replay", namespace=args.namespace)
    try:
        replayer = BagReplayer(node, args.bag, args.topic, output_topic=args.remap_to, rate=args.rate,
                               loop=args.loop, qos=args.qos, start_delay_s=args.start_delay_s,
                               wait_for_subscribers=args.wait_for_subscribers, restamp=args.restamp)
        stats = spin_replay(node, replayer, show_progress=not args.no_progress)
    except (BagReplayError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"published {stats.published} frames in {stats.duration_s:.2f} s "
          f"({stats.passes} pass{'es' if stats.passes != 1 else ''}) on {stats.output_topic}")
    return 0


def spin_replay(node: Node, replayer: BagReplayer, show_progress: bool = True) -> ReplayStats:
    """Replay on a thread while spinning `node` (so it answers graph queries) until done or Ctrl-C."""
    node.get_logger().info(
        f"replaying {replayer.frame_count} frames ({replayer.message_type}) of '{replayer.topic}' "
        f"over {replayer.bag_duration_s:.1f} s at rate {replayer.rate} on {replayer.output_topic}"
        f"{' in a loop' if replayer.loop else ''}")
    progress = None
    if show_progress:
        from tqdm import tqdm
        progress = tqdm(total=None if replayer.loop else replayer.frame_count, unit="frame", desc="replay")
        replayer.on_publish = lambda count, stamp_ns: progress.update(1)
    replayer.start()
    try:
        while rclpy.ok(context=node.context) and not replayer.done():
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        replayer.stop()  # no-op when the bag ended; ends a loop on Ctrl-C
        if progress is not None:
            progress.close()
    return replayer.wait(10.0)


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    parser = argparse.ArgumentParser(prog="bag_replay", description=__doc__.split("\n\n")[0])
    add_replay_arguments(parser)
    return replay_from_args(parser.parse_args(remove_ros_args(argv)[1:]), argv)


if __name__ == "__main__":
    sys.exit(main())
