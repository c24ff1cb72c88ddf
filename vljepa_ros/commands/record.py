"""`vljepa-ros record --out BAG`: record the pipeline's outputs to an mcap bag (opens in Foxglove).

The options live in `vljepa_ros.nodes.arguments`; `python -m vljepa_ros.nodes.recorder` takes the same ones.
"""
from __future__ import annotations

import argparse

from vljepa_ros.nodes.arguments import add_record_arguments


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
