"""vljepa-ros: train, evaluate, export, benchmark and run VL-JEPA semantic perception."""
from __future__ import annotations

import argparse
import importlib
import sys

from vljepa_ros.errors import VLJepaError

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
    "calibrate",
    "annotate",
    "import_model",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vljepa-ros", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"vljepa_ros.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; a VLJepaError (a bad file, a refused combination: something the user can fix)
    is printed as one line naming the command, like argparse's own errors, and exits with 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VLJepaError as error:
        print(f"vljepa-ros {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
