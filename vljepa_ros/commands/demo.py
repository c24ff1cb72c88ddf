"""`vljepa-ros demo`: the robot-world bag through the three nodes, with a timeline and a summary."""
from __future__ import annotations


def add_parser(subparsers) -> None:
    from vljepa_ros.nodes.demo import build_parser
    template = build_parser()
    parser = subparsers.add_parser("demo", help="replay the robot-world bag through the three nodes",
                                   description=template.description, parents=[template], add_help=False,
                                   formatter_class=template.formatter_class)
    parser.set_defaults(func=run)


def run(args) -> int:
    from vljepa_ros.nodes.demo import run as run_demo
    return run_demo(args)
