"""examples/planner_node.py against a fake pipeline (test/peers/planner_peer.py), both real processes:
the planner prints the decoded event and logs the ranking the service returned for a 2 s window."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from ros_testing import DISCOVERY_DEADLINE_S, REPO_ROOT, stop_process_group  # noqa: E402

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

    def wait_for_end(self, timeout_s: float) -> None:
        """Until the output is closed (the process and all that share its stdout are gone)."""
        self._thread.join(timeout_s)


@contextmanager
def piped_process(args: list[str], name: str) -> Iterator[tuple[subprocess.Popen, OutputWatcher]]:
    """`python <args>` in its own process group, its output collected; stopped (its group killed if
    it hangs) on every way out, and its output printed for a failing test."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, *args], cwd=REPO_ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = OutputWatcher(process)
    try:
        yield process, output
    finally:
        stop_process_group(process)
        output.wait_for_end(timeout_s=5.0)
        print(f"--- output of {name} (exit code {process.returncode}) ---\n" + "\n".join(output.lines))


def test_example_planner_prints_events_and_logs_rankings():
    planner_args = ["examples/planner_node.py", "--ros-args", "-p", "rank_period_s:=0.5",
                    "-p", f"candidates:={CANDIDATES}"]
    # Both processes are stopped before anything is asserted, so a failed check never leaves one running.
    with piped_process(["test/peers/planner_peer.py"], "planner_peer"), \
            piped_process(planner_args, "planner") as (planner, planner_output):
        event_line = planner_output.wait_for("event [3.0 s .. 4.0 s]", "the robot picks up the red cube",
                                             timeout_s=DISCOVERY_DEADLINE_S)
        # The peer answers only a stamps request for a 2 s window ending at a clip_end it published,
        # and ranks by reversed alphabetical order.
        ranking_line = planner_output.wait_for("ranking up to", timeout_s=DISCOVERY_DEADLINE_S)
        planner_exit_code = stop_process_group(planner)
    assert "cosine 0.60" in event_line  # [0.6, 0.8] . [1, 0]
    assert "1. c push (score 0.90), 2. b open (score 0.80), 3. a pick (score 0.70)" in ranking_line
    assert not any("ranking failed" in line for line in planner_output.lines), planner_output.lines
    assert planner_exit_code == 0, "the planner did not exit cleanly on SIGINT"
