"""vljepa-ros: train, evaluate, export, benchmark and run VL-JEPA semantic perception."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module under vljepa_ros/commands adds one sub-command; heavy imports stay inside run().
COMMAND_MODULES = [
    "export",
    "bench",
    "bringup",
    "demo",
    "replay",
    "record",
    "make_data",
    "train",
    "train_decoder",
    "eval",
    "annotate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vljepa-ros", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"vljepa_ros.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
