"""`vljepa-ros record --out BAG`: record the pipeline's outputs to an mcap bag (opens in Foxglove).

The options are defined here once; `python -m vljepa_ros.nodes.recorder` takes the same ones.
"""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_TOPICS = ["embedding", "event", "action_hypotheses"]  # vljepa_ros.nodes.recorder.DEFAULT_TOPIC_TYPES


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path,
                        help="new bag: directory BAG/ holding BAG.mcap (a trailing .mcap is dropped from "
                             "the directory name)")
    parser.add_argument("--topics", nargs="+", default=DEFAULT_TOPICS, metavar="TOPIC",
                        help="topics to record, relative to --namespace or absolute; TOPIC:TYPE (e.g. "
                             "/camera/image_raw:sensor_msgs/msg/Image) subscribes at once instead of waiting "
                             f"for a publisher to tell the type (default: {' '.join(DEFAULT_TOPICS)})")
    parser.add_argument("--namespace", default="vljepa", help="namespace of the recorder node (default: vljepa)")
    parser.add_argument("--duration-s", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    parser.add_argument("--qos", choices=("reliable", "sensor_data"), default="reliable",
                        help="reliable (default: the pipeline's outputs) or sensor_data (also matches "
                             "best-effort publishers such as cameras)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record", help="record embeddings, events and action hypotheses to an mcap bag",
        description="Record topics (serialized, no decoding) to a rosbag2 mcap bag with full message "
                    "schemas, viewable in Foxglove.")
    add_record_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.nodes.recorder import record_from_args  # rclpy + rosbags: only when used
    return record_from_args(args)
