"""`vljepa-ros bringup`: the three nodes in one process from a deployment YAML."""
from vljepa_ros.commands import add_node_command


def add_parser(subparsers) -> None:
    add_node_command(subparsers, "bringup", "run perception, monitor and action inference in one process",
                     "vljepa_ros.nodes.bringup")
