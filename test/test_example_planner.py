"""examples/planner_node.py against a fake pipeline (test/peers/planner_peer.py), both real processes:
the planner prints the decoded event and logs the ranking the service returned for a 2 s window."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from ros_testing import DISCOVERY_DEADLINE_S, REPO_ROOT, stop_process  # noqa: E402

CANDIDATES = ["a pick", "c push", "b open"]


class OutputWatcher:
    """Collects a process's output lines on a thread so the test can wait for one with a deadline."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._finished = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def wait_for(self, *fragments: str, timeout_s: float) -> str:
        """The first line containing every fragment; woken by each new line, up to the deadline or EOF."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for line in self.lines:
                    if all(fragment in line for fragment in fragments):
                        return line
                remaining = deadline - time.monotonic()
                if self._finished or remaining <= 0:
                    break
                self._changed.wait(remaining)
        raise AssertionError(f"no line with {fragments} in the output:\n" + "\n".join(self.lines))


def start(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_example_planner_prints_events_and_logs_rankings():
    peer = start(["test/peers/planner_peer.py"])
    planner = start(["examples/planner_node.py", "--ros-args", "-p", "rank_period_s:=0.5",
                     "-p", f"candidates:={CANDIDATES}"])
    try:
        planner_output = OutputWatcher(planner)
        peer_output = OutputWatcher(peer)
        event_line = planner_output.wait_for("event [3.0 s .. 4.0 s]", "the robot picks up the red cube",
                                             timeout_s=DISCOVERY_DEADLINE_S)
        assert "cosine 0.60" in event_line  # [0.6, 0.8] . [1, 0]
        # The peer answers only a stamps request for a 2 s window ending at a clip_end it published,
        # and ranks by reversed alphabetical order.
        ranking_line = planner_output.wait_for("ranking up to", timeout_s=DISCOVERY_DEADLINE_S)
        assert "1. c push (score 0.90), 2. b open (score 0.80), 3. a pick (score 0.70)" in ranking_line
        assert not any("ranking failed" in line for line in planner_output.lines), planner_output.lines
    finally:
        assert stop_process(planner) == 0, "the planner did not exit cleanly on SIGINT"
        stop_process(peer)
    print("\n".join(peer_output.lines))
