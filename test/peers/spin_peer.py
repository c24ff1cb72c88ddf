"""What every peer script's main does: init rclpy, spin its one node until SIGINT (or the context shuts
down), then tear down. Peers run as scripts (`python test/peers/<peer>.py`), so this directory is on sys.path."""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_peer(make_node: Callable[[], Node], args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = make_node()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
