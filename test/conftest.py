"""Test-session set-up shared by every test.

ROS traffic stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; kilted ignores
ROS_LOCALHOST_ONLY) and on a ROS_DOMAIN_ID reserved with domain_coordinator, so parallel runs on one
machine never hear each other: one for the whole run (what session- and module-scoped fixtures
see) and a fresh one for each test, so a test never hears what an earlier one left behind. Child
processes inherit both through os.environ; rclpy.init reads ROS_DOMAIN_ID when it creates a context.

The run fails if a process a test started is still alive at the end (it is killed and named).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_fixtures import tiny_model_dir  # noqa: F401  (a session fixture for every test module)

try:
    from domain_coordinator import domain_id
except ImportError:  # only the ROS-free tests can run without the ROS wheels
    domain_id = None

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Two cores, several processes: one torch thread each keeps multi-process tests from thrashing.
os.environ.setdefault("OMP_NUM_THREADS", "1")

_domain_reservation = contextlib.ExitStack()

# launch_testing files are run by launch_testing's own runner (test/test_launch_testing.py), not
# collected by pytest, which cannot import them where the ROS 2 command line is not installed.
collect_ignore_glob = ["launch/*"]


class _RotatingDomains:
    """Selector for domain_coordinator.domain_id: each call offers the domain after the last one
    offered (1..100, from a per-run offset), so consecutive tests never get the same domain, and
    parallel runs start their search at different places. Taken domains are skipped by domain_id."""

    def __init__(self, start: int) -> None:
        self._next = start

    def __call__(self) -> int:
        offered = self._next % 100 + 1
        self._next += 1
        return offered


_domains = _RotatingDomains(start=os.getpid())


def pytest_configure(config: pytest.Config) -> None:
    if domain_id is None:
        os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))
        return
    os.environ["ROS_DOMAIN_ID"] = str(_domain_reservation.enter_context(domain_id(_domains)))


def pytest_unconfigure(config: pytest.Config) -> None:
    _domain_reservation.close()


def pytest_report_header(config: pytest.Config) -> str:
    return (f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID')} (the run's; each test gets its own) "
            f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE')}")


@pytest.fixture(autouse=True)
def ros_domain_of_this_test() -> Iterator[str]:
    """A ROS_DOMAIN_ID of this test's own while it runs; the run's domain again afterwards."""
    run_domain = os.environ.get("ROS_DOMAIN_ID")
    if domain_id is None:
        yield run_domain
        return
    with domain_id(_domains) as reserved:
        os.environ["ROS_DOMAIN_ID"] = str(reserved)
        try:
            yield str(reserved)
        finally:
            if run_domain is None:
                os.environ.pop("ROS_DOMAIN_ID", None)
            else:
                os.environ["ROS_DOMAIN_ID"] = run_domain


# ---------------------------------------------------------------------------------------------
# No process outlives the run
# ---------------------------------------------------------------------------------------------
# Python's own helper processes live until this interpreter exits; no test starts them.
_RUNTIME_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _live_processes() -> dict[int, int]:
    """pid -> parent pid of every process that is not a zombie, from /proc/*/stat."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The command name (field 2) may hold spaces and parentheses; the fields after its ')' don't.
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if state not in ("Z", "X"):
            parents[int(entry.name)] = int(parent)
    return parents


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def live_descendants(root: int) -> list[int]:
    """Processes below `root` (children, theirs, ...) still alive; parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, parent in _live_processes().items():
        children.setdefault(parent, []).append(pid)
    found, frontier = [], [root]
    while frontier:
        below = [child for pid in frontier for child in children.get(pid, [])]
        found += below
        frontier = below
    return found


def _kill(pid: int) -> None:
    """SIGKILL `pid`, with its process group when it leads its own one (not ours)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        group = os.getpgid(pid)
        if group == pid and group != os.getpgrp():
            os.killpg(group, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = [(pid, _command_line(pid)) for pid in live_descendants(os.getpid())]
    leaked = [(pid, command) for pid, command in leaked if not any(helper in command for helper in _RUNTIME_HELPERS)]
    if not leaked:
        return
    for pid, _ in leaked:
        _kill(pid)
    for pid, _ in leaked:  # reap our own children, so they do not stay zombies
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
    report = "\n".join(f"  pid {pid}: {command}" for pid, command in leaked)
    message = f"FAILED: {len(leaked)} process(es) started by the tests were still running at the end (killed):\n{report}"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message, file=sys.stderr)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
