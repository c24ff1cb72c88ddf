"""Helpers for tests that talk to other processes over real ROS topics and services.

Discovery between processes usually takes ~0.15 s but sometimes 1.5-3 s (a missed first
announcement), so tests wait for actual messages with a deadline and keep re-publishing;
they never sleep for a fixed time.

Every process a test starts runs in its own process group (start_new_session=True) and is stopped
with `stop_process_group` on every path out of the test, so nothing it started outlives the test.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

REPO_ROOT = Path(__file__).resolve().parent.parent
DISCOVERY_DEADLINE_S = 20.0
STOP_TIMEOUT_S = 15.0  # a clean shutdown on SIGINT takes well under a second; after this, kill


@contextmanager
def ros_node(name: str, domain_id: int | str | None = None) -> Iterator[tuple[Node, SingleThreadedExecutor]]:
    """A node in its own context, so each test starts from a clean middleware state; on ROS_DOMAIN_ID
    (the test's own, see conftest) unless `domain_id` names another."""
    context = Context()
    rclpy.init(context=context, domain_id=None if domain_id is None else int(domain_id))
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


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
def wait_for_exit(process: subprocess.Popen, timeout_s: float) -> bool:
    """Wait up to `timeout_s` for `process` to exit, without reaping it: until `process.wait()` its
    pid stays taken, so it still names its process group safely. True if it has exited."""
    if process.returncode is not None:
        return True
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:  # reaped behind Popen's back: gone
        return True
    except (AttributeError, OSError):  # no pidfd (old kernel): poll without reaping
        deadline = time.monotonic() + timeout_s
        while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True
    try:  # a pidfd becomes readable when the process exits
        return bool(select.select([pidfd], [], [], max(timeout_s, 0.0))[0])
    finally:
        os.close(pidfd)


def running_after(pids: list[int], timeout_s: float) -> list[int]:
    """Wait up to `timeout_s` for processes that need not be this one's children to exit (each pidfd becomes
    readable when its process exits, as in wait_for_exit); the pids still running then."""
    pidfds = {}
    for pid in pids:
        try:
            pidfds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:  # already gone
            pass
    deadline = time.monotonic() + timeout_s
    try:
        waiting = set(pidfds)
        while waiting:
            exited = select.select(list(waiting), [], [], max(0.0, deadline - time.monotonic()))[0]
            if not exited:
                break
            waiting -= set(exited)
        return [pidfds[pidfd] for pidfd in waiting]
    finally:
        for pidfd in pidfds:
            os.close(pidfd)


def kill_process_group(process: subprocess.Popen) -> None:
    """SIGKILL `process` and everything in its process group (it leads one when started with
    start_new_session=True; otherwise only the process itself is killed). Call before reaping it."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_process_group(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S,
                       stop_signal: int = signal.SIGINT) -> int:
    """Stop `process` as Ctrl-C would (`stop_signal`, so it shuts down cleanly), SIGKILL its whole
    process group if it has not exited within `timeout_s`, reap it and return its exit code.

    What it left running in its group is killed too, before it is reaped (see `wait_for_exit`)."""
    if process.returncode is None:
        if not wait_for_exit(process, 0.0):
            # os.kill, not Popen.send_signal: that would reap an exited process first.
            os.kill(process.pid, stop_signal)
            if not wait_for_exit(process, timeout_s):
                print(f"pid {process.pid} ({' '.join(map(str, process.args))}) did not stop within "
                      f"{timeout_s:g} s of {signal.Signals(stop_signal).name}: killing its process group")
        kill_process_group(process)
    return process.wait()


# The old name, for tests that import it from here; unlike vljepa_ros.nodes.common.stop_process it
# also kills what the process leaves behind in its group.
stop_process = stop_process_group


@contextmanager
def children_inherit_sigint_ignored() -> Iterator[None]:
    """Processes started inside inherit SIGINT ignored, as `cmd &` in a non-interactive shell and
    `nohup` leave it. Set here around the fork rather than in a preexec_fn, which can deadlock the
    child when this process has threads (DDS has). Main thread only."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignored_signals(pid: int) -> set[int]:
    """The numbers of the signals process `pid` ignores (the SigIgn mask of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {number for number in range(1, 65) if mask >> (number - 1) & 1}
    raise RuntimeError(f"no SigIgn line in /proc/{pid}/status")


class LoggedProcess(subprocess.Popen):
    """A process whose stdout and stderr go to `log_path`."""

    def __init__(self, args: list[str], log_path: Path, **kwargs) -> None:
        self.log_path = log_path
        with open(log_path, "w") as log:  # the child holds its own descriptor
            super().__init__(args, stdout=log, stderr=subprocess.STDOUT, **kwargs)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_ros_process(args: list[str], name: str, sigint_ignored: bool = False) -> LoggedProcess:
    """`python <args>` from the repo root (the source tree first on sys.path), in its own process
    group, output to a fresh log file. With `sigint_ignored` it starts with SIGINT ignored."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    log_dir = Path(os.environ.get("PYTEST_TMPDIR", tempfile.gettempdir()))
    descriptor, log_file = tempfile.mkstemp(prefix=f"vljepa_{name}_", suffix=".log", dir=log_dir)
    os.close(descriptor)
    command = [sys.executable, *args]
    if sigint_ignored:
        with children_inherit_sigint_ignored():
            return LoggedProcess(command, Path(log_file), cwd=REPO_ROOT, env=env, start_new_session=True)
    return LoggedProcess(command, Path(log_file), cwd=REPO_ROOT, env=env, start_new_session=True)


def print_and_remove_log(process: LoggedProcess, name: str) -> None:
    # pytest shows captured output for failing tests only.
    print(f"--- output of {name} (exit code {process.returncode}) ---\n{process.output()}")
    process.log_path.unlink(missing_ok=True)


@contextmanager
def ros_process(args: list[str], name: str, sigint_ignored: bool = False,
                stop_timeout_s: float = STOP_TIMEOUT_S) -> Iterator[LoggedProcess]:
    """Run `python <args>` (see `start_ros_process`); on the way out stop it with SIGINT, kill its
    group if it does not stop, and print its output, so a failure in the other process is never
    silent. A test may stop it itself first."""
    process = start_ros_process(args, name, sigint_ignored)
    try:
        yield process
    finally:
        try:
            stop_process_group(process, stop_timeout_s)
        finally:
            print_and_remove_log(process, name)
