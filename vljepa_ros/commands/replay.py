"""`vljepa-ros replay BAG`: publish a bag's camera topic with its original timing (rate factor, loop).

The options live in `vljepa_ros.nodes.arguments`; `python -m vljepa_ros.nodes.bag_replay` takes the same ones.
"""
from __future__ import annotations

import argparse

from vljepa_ros.nodes.arguments import add_replay_arguments


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
