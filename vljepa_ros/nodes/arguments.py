"""Command lines of the bag tools, defined once for both of their doors: the node executables
(`python -m vljepa_ros.nodes.bag_replay`, `ros2 run vljepa_ros bag_replay`, ...) and the
`vljepa-ros replay` / `vljepa-ros record` sub-commands.

Free of rclpy and rosbags, so that building `vljepa-ros --help` imports neither.
"""
from __future__ import annotations

import argparse
from pathlib import Path

REPLAY_QOS_CHOICES = ("sensor_data", "reliable")
RECORD_QOS_CHOICES = ("reliable", "sensor_data")
# The pipeline's outputs, relative to the nodes' namespace (`vljepa` under launch and bring-up).
PIPELINE_OUTPUT_TYPES: dict[str, str] = {
    "embedding": "vljepa_ros/msg/SemanticEmbedding",
    "event": "vljepa_ros/msg/SemanticEvent",
    "action_hypotheses": "vljepa_ros/msg/ActionHypotheses",
}
DEFAULT_NAMESPACE = "vljepa"


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 bag directory (mcap or sqlite3) or its .mcap file")
    parser.add_argument("--topic", default=None, help="image topic in the bag (default: its only image topic)")
    parser.add_argument("--remap-to", default=None, metavar="TOPIC",
                        help="publish on this topic (default: the bag's topic, + /compressed for CompressedImage "
                             "when the bag's name lacks it; relative names resolve in --namespace)")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE,
                        help=f"namespace of the replay node (default: {DEFAULT_NAMESPACE})")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (2.0: twice as fast)")
    parser.add_argument("--loop", action="store_true", help="replay until interrupted")
    parser.add_argument("--start-delay-s", type=float, default=0.0, help="wait before the first frame")
    parser.add_argument("--wait-for-subscribers", type=int, default=0, metavar="N",
                        help="start only once N subscribers are matched (default: 0, start at once)")
    parser.add_argument("--qos", choices=REPLAY_QOS_CHOICES, default=REPLAY_QOS_CHOICES[0],
                        help="sensor_data: best effort like a camera (default); reliable: never drop")
    parser.add_argument("--restamp", action="store_true", help="set header.stamp to the time of publishing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    default_topics = list(PIPELINE_OUTPUT_TYPES)
    parser.add_argument("--out", required=True, type=Path,
                        help="new bag: directory BAG/ holding BAG.mcap (a trailing .mcap is dropped from "
                             "the directory name)")
    parser.add_argument("--topics", nargs="+", default=default_topics, metavar="TOPIC",
                        help="topics to record, relative to --namespace or absolute; TOPIC:TYPE (e.g. "
                             "/camera/image_raw:sensor_msgs/msg/Image) subscribes at once instead of waiting "
                             f"for a publisher to tell the type (default: {' '.join(default_topics)})")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE,
                        help=f"namespace of the recorder node (default: {DEFAULT_NAMESPACE})")
    parser.add_argument("--duration-s", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--qos", choices=RECORD_QOS_CHOICES, default=RECORD_QOS_CHOICES[0],
                        help="reliable (default: the pipeline's outputs) or sensor_data (also matches "
                             "best-effort publishers such as cameras)")
