"""Helpers for tests that run the real ROS 2 command line (`ros2 launch/run/param/lifecycle/topic/...`)
against the installed package, as a user runs it.

Where `ros2` comes from: the venv (`make test` runs `make ros2cli`, which builds ros2cli and launch into it
from a local mirror of their pinned sources, ../shared/ros2-python by default, or else from their
upstream repositories), else a `ros2` on PATH (a real ROS 2 install); without either the tests skip
with SKIP_REASON.

Every command runs in its own process group with its output in a log file, on an explicit
ROS_DOMAIN_ID (a module-scoped stack has its own, conftest's per-test one is function-scoped), with
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; ros2cli verbs that can use the daemon get `--no-daemon`.
A command that runs past its deadline is killed with its process group; nothing outlives a test.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ros_testing import (REPO_ROOT, STOP_TIMEOUT_S, LoggedProcess, kill_process_group, print_and_remove_log,
                         wait_for_exit)

SKIP_REASON = ("no `ros2` command line: `make ros2cli` (run by `make test`) installs it into the venv from a local "
               "mirror of its sources (ROS2_PYTHON=..., ../shared/ros2-python by default) or from the pinned upstream "
               "repositories on github.com, and neither was there (its output says why); or put a ROS 2 install's "
               "`ros2` on PATH")
NO_DAEMON_VERBS = {("node", "list"), ("node", "info"), ("topic", "echo"), ("topic", "list"), ("topic", "info"),
                   ("param", "set"), ("param", "get"), ("param", "list"), ("lifecycle", "get"),
                   ("lifecycle", "set"), ("lifecycle", "list"), ("lifecycle", "nodes")}
DISCOVERY_SPIN_S = "1"  # ros2cli's own discovery window per try (--spin-time); tries repeat up to a deadline
COMMAND_TIMEOUT_S = 60.0
NODE_NOT_DISCOVERED = ("Node not found", "Could not determine the type", "does not appear to be published yet",
                       "Wait for service timed out")


def find_ros2() -> str | None:
    """The venv's `ros2` (installed by `make ros2cli`), else one on PATH."""
    venv_ros2 = Path(sys.prefix) / "bin" / "ros2"
    return str(venv_ros2) if venv_ros2.is_file() else shutil.which("ros2")


ROS2 = find_ros2()
requires_ros2 = pytest.mark.skipif(ROS2 is None, reason=SKIP_REASON)


def ros2_environment(domain: int | str, log_dir: Path | None = None) -> dict[str, str]:
    """The environment of a shell set up as the README says (the venv's bin first on PATH, its prefix on
    the ament index), on `domain`. No source tree on PYTHONPATH: the nodes run from the install."""
    env = dict(os.environ)
    python_path = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep)
                   if entry and Path(entry).resolve() != REPO_ROOT]
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(python_path)
    else:
        env.pop("PYTHONPATH", None)
    prefixes = [sys.prefix, *(p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p and p != sys.prefix)]
    env.update(AMENT_PREFIX_PATH=os.pathsep.join(prefixes),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
               ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    if log_dir is not None:
        env["ROS_LOG_DIR"] = str(log_dir)  # launch's and the nodes' log files
    return env


def with_no_daemon(args: Sequence[str]) -> list[str]:
    """`ros2 <verb> ...` with `--no-daemon --spin-time` added where the verb would use the daemon."""
    args = list(args)
    if len(args) >= 3 and tuple(args[1:3]) in NO_DAEMON_VERBS and "--no-daemon" not in args:
        args += ["--no-daemon", "--spin-time", DISCOVERY_SPIN_S]
    return args


def resolve(args: Sequence[str]) -> list[str]:
    """A README command line as argv: `ros2` is the one found, `vljepa-ros`/`python` the venv's."""
    args = list(args)
    if args[0] == "ros2":
        assert ROS2 is not None, SKIP_REASON
        args[0] = ROS2
    elif args[0] in ("vljepa-ros", "python"):
        args[0] = str(Path(sys.executable).parent / args[0])
    return args


def _log_file(name: str) -> Path:
    log_dir = Path(os.environ.get("PYTEST_TMPDIR", tempfile.gettempdir()))
    descriptor, path = tempfile.mkstemp(prefix=f"vljepa_{name}_", suffix=".log", dir=log_dir)
    os.close(descriptor)
    return Path(path)


def start(args: Sequence[str], env: dict[str, str], name: str) -> LoggedProcess:
    """`args` (a README command line, see `resolve`) in its own process group, output to a log file."""
    return LoggedProcess(resolve(args), _log_file(name), cwd=REPO_ROOT, env=env, start_new_session=True)


@dataclass
class Finished:
    args: list[str]
    returncode: int
    output: str

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}  (exit code {self.returncode})\n{self.output}"

    __repr__ = __str__  # what pytest shows of an assert's message


def run(args: Sequence[str], env: dict[str, str], timeout_s: float = COMMAND_TIMEOUT_S,
        while_running: Callable[[], None] | None = None) -> Finished:
    """Run a command to its end (`while_running`, e.g. spinning an observer, is called meanwhile);
    past `timeout_s` its process group is killed and the test fails."""
    process = start(args, env, "ros2cli")
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        while not wait_for_exit(process, 0.0 if while_running else 0.1):
            if time.monotonic() > deadline:
                raise AssertionError(f"{' '.join(process.args)} did not finish within {timeout_s:.0f} s:\n"
                                     f"{process.output()}")
            if while_running is not None:
                while_running()
    finally:
        kill_process_group(process)  # a timeout, or whatever it left in its group; before reaping
        returncode = process.wait()
        output = process.output()
        process.log_path.unlink(missing_ok=True)
    print(f"{time.monotonic() - started:5.1f} s, exit code {returncode}: {' '.join(map(str, args))}")
    return Finished(list(process.args), returncode, output)


def run_until(args: Sequence[str], env: dict[str, str], done: Callable[[Finished], bool], deadline_s: float,
              while_running: Callable[[], None] | None = None) -> Finished:
    """Run a ros2cli verb again until `done(result)`, up to `deadline_s`: with --no-daemon each try
    discovers the graph anew, and discovery sometimes takes longer than one try's window."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = run(with_no_daemon(args), env, while_running=while_running)
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"no try within {deadline_s:.0f} s gave the expected output; the last:\n{result}")


def discovered(result: Finished) -> bool:
    """The verb found its node / topic / service (else it is worth another try)."""
    return not any(text in result.output for text in NODE_NOT_DISCOVERED)


def interrupt_group(process: LoggedProcess, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Stop `process` as Ctrl-C in its terminal would: SIGINT to its whole process group (`ros2 run`
    and `ros2 launch` expect their children to get it too); SIGKILL the group if it has not exited
    within `timeout_s` (and whatever it left behind in any case), reap it, return its exit code."""
    if process.returncode is None and not wait_for_exit(process, 0.0):
        os.killpg(process.pid, signal.SIGINT)
        if not wait_for_exit(process, timeout_s):
            print(f"{' '.join(process.args)} did not stop within {timeout_s:g} s of SIGINT: killing its group")
    kill_process_group(process)
    return process.wait()


@contextmanager
def running(args: Sequence[str], env: dict[str, str], name: str,
            stop_timeout_s: float = STOP_TIMEOUT_S) -> Iterator[LoggedProcess]:
    """A long-running command (`ros2 launch`, a replay); on the way out it is stopped as by Ctrl-C
    (`interrupt_group`) and its output printed. A test may stop it first."""
    process = start(args, env, name)
    try:
        yield process
    finally:
        try:
            interrupt_group(process, stop_timeout_s)
        finally:
            print_and_remove_log(process, name)


# ---------------------------------------------------------------------------------------------
# Ctrl-C on `ros2 launch`
# ---------------------------------------------------------------------------------------------
@dataclass
class LaunchStop:
    exited: bool                     # the launch process exited within the deadline
    returncode: int
    output: str
    started: dict[str, int] = field(default_factory=dict)   # launch's process name -> pid
    finished_cleanly: set[str] = field(default_factory=set)
    left_running: list[str] = field(default_factory=list)   # processes of its group alive after its exit

    def problems(self, expected: Sequence[str]) -> list[str]:
        found = [] if self.exited else ["ros2 launch did not exit"]
        names = {name.rsplit("-", 1)[0]: name for name in self.started}
        for executable in expected:
            if executable not in names:
                found.append(f"{executable} was never started")
            elif names[executable] not in self.finished_cleanly:
                found.append(f"{executable} did not report 'process has finished cleanly'")
        found += [f"still running after ros2 launch exited: {entry}" for entry in self.left_running]
        if self.returncode != 0:
            found.append(f"ros2 launch exit code {self.returncode}")
        return found


def group_members(group: int) -> list[str]:
    """'pid: command' of every live (not zombie) process in process group `group`."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            command = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, _parent, process_group = stat.rsplit(")", 1)[1].split()[:3]
        if int(process_group) == group and state not in ("Z", "X"):
            members.append(f"{entry.name}: {command.strip()}")
    return members


def ctrl_c(launch: LoggedProcess, timeout_s: float = STOP_TIMEOUT_S) -> LaunchStop:
    """SIGINT to the launch's whole process group, as a terminal sends Ctrl-C; wait for the launch to
    exit, see what of its group is left (then kill that), reap it and read what it reported."""
    if launch.returncode is None and not wait_for_exit(launch, 0.0):
        os.killpg(launch.pid, signal.SIGINT)
    exited = wait_for_exit(launch, timeout_s)  # not reaped: its pid still names its group
    left = [member for member in group_members(launch.pid) if not member.startswith(f"{launch.pid}:")] if exited else []
    kill_process_group(launch)
    returncode = launch.wait()
    output = launch.output()
    started = {name: int(pid)
               for name, pid in re.findall(r"\[INFO\] \[(\S+)\]: process started with pid \[(\d+)\]", output)}
    cleanly = set(re.findall(r"\[INFO\] \[(\S+)\]: process has finished cleanly", output))
    return LaunchStop(exited, returncode, output, started, cleanly, left)


# ---------------------------------------------------------------------------------------------
# A deployment of one's own: the user YAML given with `config:=`
# ---------------------------------------------------------------------------------------------
USER_QUERY = "What is on the table?"
USER_MAX_SEGMENT_S = 1.0  # events every second of camera time (the shipped YAML: 20 s)


def write_user_config(path: Path, model_dir: Path) -> Path:
    """A robot's own deployment YAML: a few parameters of each node (the rest keep the nodes'
    defaults), every node on `model_dir`, so each node shows that it read the file."""
    import yaml

    config = {
        "/**/perception_node": {"ros__parameters": {"model_dir": str(model_dir), "query": USER_QUERY}},
        # No shift can fire (a threshold out of reach): every event is a max_segment one, every second.
        "/**/monitor_node": {"ros__parameters": {"model_dir": str(model_dir), "max_segment_s": USER_MAX_SEGMENT_S,
                                                 "shift_threshold": 4.0}},
        "/**/action_inference_node": {"ros__parameters": {"model_dir": str(model_dir), "stream_period_s": 0.5,
                                                          "horizon_s": 1.0}},
    }
    path.write_text(yaml.safe_dump(config))
    return path
