"""`vljepa-ros replay BAG`: publish a bag's camera topic with its original timing (rate factor, loop).

The options are defined here once; `python -m vljepa_ros.nodes.bag_replay` takes the same ones.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 bag directory (mcap or sqlite3) or its .mcap file")
    parser.add_argument("--topic", default=None, help="image topic in the bag (default: its only image topic)")
    parser.add_argument("--remap-to", default=None, metavar="TOPIC",
                        help="publish on this topic (default: the bag's topic, + /compressed for CompressedImage "
                             "when the bag's name lacks it; relative names resolve in --namespace)")
    parser.add_argument("--namespace", default="vljepa", help="namespace of the replay node (default: vljepa)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (2.0: twice as fast)")
    parser.add_argument("--loop", action="store_true", help="replay until interrupted")
    parser.add_argument("--start-delay-s", type=float, default=0.0, help="wait before the first frame")
    parser.add_argument("--wait-for-subscribers", type=int, default=0, metavar="N",
                        help="start only once N subscribers are matched (default: 0, start at once)")
    parser.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data",
                        help="sensor_data: best effort like a camera (default); reliable: never drop")
    parser.add_argument("--restamp", action="store_true", help="set header.stamp to the time of publishing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="replay a rosbag2 bag's image topic into the pipeline",
        description="Publish the image topic (Image or CompressedImage) of a rosbag2 bag (mcap or sqlite3) "
                    "with its recorded timing scaled by --rate; serialized bytes are published as they are.")
    add_replay_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.nodes.bag_replay import replay_from_args  # rclpy + rosbags: only when used
    return replay_from_args(args)
