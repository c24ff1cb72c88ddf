"""`vljepa-ros demo`: the robot-world bag through the three nodes, with a timeline and a summary."""
from vljepa_ros.commands import add_node_command


def add_parser(subparsers) -> None:
    add_node_command(subparsers, "demo", "replay the robot-world bag through the three nodes",
                     "vljepa_ros.nodes.demo")
