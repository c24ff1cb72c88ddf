"""`vljepa-ros bringup`: the three nodes from a deployment YAML, one process each (or all in one)."""
from vljepa_ros.commands import add_node_command


def add_parser(subparsers) -> None:
    add_node_command(subparsers, "bringup", "run perception, monitor and action inference (one process each, as ros2 launch; or --single-process)",
                     "vljepa_ros.nodes.bringup")
