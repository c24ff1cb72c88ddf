"""Helpers for tests that talk to other processes over real ROS topics and services.

Discovery between processes usually takes ~0.15 s but sometimes 1.5-3 s (a missed first
announcement), so tests wait for actual messages with a deadline and keep re-publishing;
they never sleep for a fixed time.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from vljepa_ros.nodes.common import stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
DISCOVERY_DEADLINE_S = 20.0


@contextmanager
def ros_node(name: str) -> Iterator[tuple[Node, SingleThreadedExecutor]]:
    """A node in its own context, so each test starts from a clean middleware state."""
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node(name, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def spin_until(executor: SingleThreadedExecutor, done: Callable[[], bool], timeout_s: float,
               every_spin: Callable[[], None] | None = None, what: str = "condition") -> None:
    """Spin until `done()` holds; call `every_spin` (e.g. re-publish) between spins."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        if every_spin is not None:
            every_spin()
        executor.spin_once(timeout_sec=0.05)


@contextmanager
def ros_process(args: list[str], name: str) -> Iterator[subprocess.Popen]:
    """Run `python <args>` from the repo root (the source tree first on sys.path); stop it with SIGINT.

    The process's output goes to a log file that is printed if the test fails, so a failure in the
    other process is never silent.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    log_path = Path(os.environ.get("PYTEST_TMPDIR", "/tmp")) / f"vljepa_{name}_{os.getpid()}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop_process(process)
            # pytest shows captured output for failing tests only.
            print(f"--- output of {name} (exit code {process.returncode}) ---\n{log_path.read_text()}")
