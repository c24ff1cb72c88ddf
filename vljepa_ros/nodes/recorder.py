"""Record the pipeline's outputs to an mcap rosbag2 bag (a `ros2 bag record` for pip installs).

Subscriptions are raw (`raw=True`): the serialized CDR bytes go to the bag as they arrive, with no
deserialisation. The bag is written with `rosbags`; every connection carries its full `ros2msg`
schema (our messages plus std_msgs/Header, builtin_interfaces/Time, ...), so Foxglove, `mcap` +
`mcap_ros2` and rosbags' AnyReader all decode it without this package installed.

Where the schemas of our own messages come from: the .msg files that `rosidl_generate_interfaces`
installs to `<prefix>/share/vljepa_ros/msg/` beside the generated Python (true for the colcon
route and for `make env`, which builds the interfaces into the venv), else the ament index, else
the source checkout's `msg/`. The first is preferred: those are the files that built the type
support rclpy actually uses.

In-process use (what `vljepa-ros demo` does), with a node that an executor spins:

    recorder = BagRecorder(node, "out/run")           # default topics: embedding, event, action_hypotheses
    ... spin ...
    stats = recorder.close()                          # stats.mcap_path: the file to open in Foxglove

Stand-alone: `vljepa-ros record --out BAG [--topics ...] [--duration-s S]`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from vljepa_ros.errors import VLJepaError
from vljepa_ros.nodes.arguments import PIPELINE_OUTPUT_TYPES, add_record_arguments
from vljepa_ros.ros_distro import BAG_METADATA_VERSION, rosbags_store_name

PACKAGE = "vljepa_ros"
GRAPH_POLL_PERIOD_S = 0.2


class RecordError(VLJepaError, ValueError):
    """The recording cannot be made as asked (bag exists, unknown message type, missing schemas)."""


@dataclass
class RecordStats:
    bag_path: Path                 # rosbag2 directory (metadata.yaml + the mcap file)
    mcap_path: Path                # the file to open in Foxglove
    counts: dict[str, int] = field(default_factory=dict)  # messages written per resolved topic
    pending_topics: list[str] = field(default_factory=list)  # asked for but never seen on the graph


def find_interface_msg_dir() -> Path:
    """Directory holding this package's .msg files (see the module docstring for the search order)."""
    looked_in: list[Path] = []
    for candidate in _interface_msg_dir_candidates():
        if any(candidate.glob("*.msg")):
            return candidate
        looked_in.append(candidate)
    raise RecordError(f"cannot find the {PACKAGE} .msg files (looked in {[str(p) for p in looked_in]}); "
                      f"build the interfaces first (`make env` or colcon build)")


def _interface_msg_dir_candidates() -> Iterator[Path]:
    try:
        generated = importlib.import_module(f"{PACKAGE}.msg")
        # <prefix>/lib/python3.X/{site,dist}-packages/vljepa_ros/msg -> <prefix>/share/vljepa_ros/msg
        for parent in Path(generated.__file__).resolve().parents:
            yield parent / "share" / PACKAGE / "msg"
    except ImportError:
        pass
    try:
        from ament_index_python.packages import get_package_share_directory
        yield Path(get_package_share_directory(PACKAGE)) / "msg"
    except (ImportError, LookupError, OSError):  # no ament_index_python, package not indexed, no AMENT_PREFIX_PATH
        pass
    yield Path(__file__).resolve().parents[2] / "msg"  # source checkout


def make_typestore(msg_dir: Path | None = None) -> Typestore:
    """rosbags' typestore of the running ROS 2 distribution plus this package's messages, for schemas and decoding."""
    typestore = get_typestore(Stores(rosbags_store_name()))
    msg_dir = msg_dir or find_interface_msg_dir()
    types = {}
    for msg_file in sorted(msg_dir.glob("*.msg")):
        types.update(get_types_from_msg(msg_file.read_text(), f"{PACKAGE}/msg/{msg_file.stem}"))
    typestore.register(types)
    return typestore


def import_message_class(msgtype: str) -> type:
    """"pkg/msg/Name" -> the rclpy message class (pkg.msg.Name)."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as error:
        raise RecordError(f"cannot import message type {msgtype}: {error}") from error


def bag_paths(out: str | Path) -> tuple[Path, Path]:
    """`out/run` or `out/run.mcap` -> (bag directory out/run, mcap file out/run/run.mcap)."""
    out = Path(out)
    bag_dir = out.with_suffix("") if out.suffix == ".mcap" else out
    return bag_dir, bag_dir / f"{bag_dir.name}.mcap"


class BagRecorder:
    """Writes every message of `topics` that `node` receives to a new mcap bag at `out`.

    `topics` are names relative to `node`'s namespace (or absolute). Their types come from
    `topic_types`, then PIPELINE_OUTPUT_TYPES (by the name's last part), else from the ROS graph
    once a publisher appears. Message timestamps are the node clock at reception, like
    `ros2 bag record`. Call close() (or use `with`) to finish the file; an unclosed mcap has no index.
    """

    def __init__(self, node: Node, out: str | Path, topics: Sequence[str] = tuple(PIPELINE_OUTPUT_TYPES), *,
                 topic_types: Mapping[str, str] | None = None, qos: str = "reliable",
                 typestore: Typestore | None = None) -> None:
        if not topics:
            raise RecordError("no topics to record")
        if qos not in ("reliable", "sensor_data"):
            raise RecordError(f"unknown QoS '{qos}': expected 'reliable' or 'sensor_data'")
        self.node = node
        self.bag_path, self.mcap_path = bag_paths(out)
        if self.bag_path.exists():
            raise RecordError(f"{self.bag_path} exists already; rosbag2 bags are never overwritten")
        self.typestore = typestore or make_typestore()
        # Reliable matches the pipeline's reliable outputs without loss; best effort also matches
        # best-effort publishers such as cameras.
        self.qos = (QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE) if qos == "reliable"
                    else qos_profile_sensor_data)

        self.bag_path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = Writer(self.bag_path, version=BAG_METADATA_VERSION, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self._lock = threading.Lock()  # callbacks and close() may run on different threads
        self._closed = False
        self.counts: dict[str, int] = {}
        self._subscriptions = []
        self._pending: list[str] = []

        topic_types = dict(topic_types or {})
        for topic in topics:
            resolved = node.resolve_topic_name(topic)
            msgtype = (topic_types.get(topic) or topic_types.get(resolved)
                       or PIPELINE_OUTPUT_TYPES.get(resolved.rsplit("/", 1)[-1]))
            if msgtype is None:
                self._pending.append(resolved)
            else:
                self._subscribe(resolved, msgtype)
        self._graph_timer = node.create_timer(GRAPH_POLL_PERIOD_S, self._subscribe_discovered) \
            if self._pending else None

    @property
    def pending_topics(self) -> list[str]:
        return list(self._pending)

    def _subscribe(self, topic: str, msgtype: str) -> None:
        if msgtype not in self.typestore.types:
            raise RecordError(f"no schema for {msgtype} (topic {topic}): not a core type of this ROS 2 distribution or a "
                              f"{PACKAGE} message")
        connection = self.writer.add_connection(topic, msgtype, typestore=self.typestore)
        self.counts[topic] = 0

        def write(raw: bytes) -> None:
            with self._lock:
                if self._closed:
                    return
                self.writer.write(connection, self.node.get_clock().now().nanoseconds, raw)
                self.counts[topic] += 1

        self._subscriptions.append(self.node.create_subscription(
            import_message_class(msgtype), topic, write, self.qos, raw=True))

    def _subscribe_discovered(self) -> None:
        """Subscribe to pending topics as soon as the graph knows their type."""
        known = dict(self.node.get_topic_names_and_types())
        for topic in list(self._pending):
            if topic in known:
                self._pending.remove(topic)
                self._subscribe(topic, known[topic][0])
        if not self._pending and self._graph_timer is not None:
            self.node.destroy_timer(self._graph_timer)
            self._graph_timer = None

    def close(self) -> RecordStats:
        """Stop recording and finish the mcap file (index, statistics); safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for subscription in self._subscriptions:
                    self.node.destroy_subscription(subscription)
                if self._graph_timer is not None:
                    self.node.destroy_timer(self._graph_timer)
                    self._graph_timer = None
                self.writer.close()
        return RecordStats(bag_path=self.bag_path, mcap_path=self.mcap_path, counts=dict(self.counts),
                           pending_topics=self.pending_topics)

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def record_from_args(args: argparse.Namespace, ros_args: list[str] | None = None) -> int:
    """Record until --duration-s passes or Ctrl-C; print the counts and the file to open."""
    rclpy.init(args=ros_args)
    node = rclpy.create_node("recorder", namespace=args.namespace)
    # "TOPIC:TYPE" names the type up front (topic names cannot contain ':').
    topics = [entry.split(":", 1)[0] for entry in args.topics]
    topic_types = dict(entry.split(":", 1) for entry in args.topics if ":" in entry)
    try:
        recorder = BagRecorder(node, args.out, topics, topic_types=topic_types, qos=args.qos)
    except RecordError as error:
        print(f"error: {error}", file=sys.stderr)
        node.destroy_node()
        rclpy.try_shutdown()
        return 2
    node.get_logger().info(f"recording {', '.join(node.resolve_topic_name(t) for t in topics)} "
                           f"to {recorder.mcap_path}")
    deadline = time.monotonic() + args.duration_s if args.duration_s > 0 else None
    try:
        while rclpy.ok() and (deadline is None or time.monotonic() < deadline):
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stats = recorder.close()
        node.destroy_node()
        rclpy.try_shutdown()
    for topic, count in stats.counts.items():
        print(f"{topic}: {count} messages")
    for topic in stats.pending_topics:
        print(f"{topic}: never published (type unknown), not recorded")
    print(f"wrote {stats.mcap_path}")
    return 0


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    parser = argparse.ArgumentParser(prog="recorder", description=__doc__.split("\n\n")[0])
    add_record_arguments(parser)
    return record_from_args(parser.parse_args(remove_ros_args(argv)[1:]), argv)


if __name__ == "__main__":
    sys.exit(main())
