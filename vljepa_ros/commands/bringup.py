"""`vljepa-ros bringup`: the three nodes in one process from a deployment YAML."""
from __future__ import annotations


def add_parser(subparsers) -> None:
    from vljepa_ros.nodes.bringup import build_parser
    template = build_parser()
    parser = subparsers.add_parser("bringup", help="run perception, monitor and action inference in one process",
                                   description=template.description, parents=[template], add_help=False,
                                   formatter_class=template.formatter_class)
    parser.set_defaults(func=run)


def run(args) -> int:
    from vljepa_ros.nodes.bringup import run as run_bringup
    return run_bringup(args)
