"""Single-process bring-up: the three nodes in one process, configured from the same YAML file as the
launch file (for pip installs, where `ros2 launch` is not available). Each node spins on its own
single-threaded executor thread (`--executor multi`: one multi-threaded executor for all).

    vljepa-ros bringup --config config/vljepa.yaml --image-topic /camera/image_raw

Parameters are applied by rcl itself from the YAML (`--params-file`), wildcards included, so the
single process and `ros2 launch` read the file identically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import rclpy
from rclpy.node import Node

from vljepa_ros.nodes.spinning import DEFAULT_EXECUTOR, EXECUTORS, run_nodes

DEFAULT_NAMESPACE = "vljepa"
DEFAULT_IMAGE_TOPIC = "/camera/image_raw"


def node_arguments(config: Path, image_topic: str) -> list[str]:
    """ROS arguments every node gets: the parameter file and the camera remapping."""
    return ["--ros-args", "--params-file", str(config),
            "-r", f"image_in:={image_topic}", "-r", f"image_in/compressed:={image_topic}/compressed"]


def create_nodes(config: Path, image_topic: str = DEFAULT_IMAGE_TOPIC, namespace: str = DEFAULT_NAMESPACE,
                 context=None) -> list[Node]:
    """The perception, monitor and action-inference nodes, as the launch file starts them."""
    from vljepa_ros.nodes.action_inference import ActionInferenceNode
    from vljepa_ros.nodes.monitor import MonitorNode
    from vljepa_ros.nodes.perception import PerceptionNode
    arguments = node_arguments(config, image_topic)
    return [node_class(namespace=namespace, cli_args=arguments, context=context)
            for node_class in (PerceptionNode, MonitorNode, ActionInferenceNode)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vljepa-ros bringup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None,
                        help="deployment YAML (default: the package's config/vljepa.yaml)")
    parser.add_argument("--image-topic", default=DEFAULT_IMAGE_TOPIC, help="camera topic (Image; /compressed for CompressedImage)")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--executor", choices=EXECUTORS, default=DEFAULT_EXECUTOR,
                        help="single: one single-threaded executor thread per node (default); "
                             "multi: one rclpy MultiThreadedExecutor for the three nodes")
    return parser


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.paths import default_config_file
    config = args.config or default_config_file()
    if not config.is_file():
        print(f"vljepa-ros bringup: config file {config} does not exist", file=sys.stderr)
        return 2
    return run_nodes(lambda: create_nodes(config, args.image_topic, args.namespace), executor=args.executor)


def main(argv: list[str] | None = None) -> int:
    # `ros2 run`/launch append their own --ros-args; bring-up builds its own per node.
    argv = rclpy.utilities.remove_ros_args(sys.argv if argv is None else argv)[1:]
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
