"""Every entry point stops on SIGINT and on SIGTERM within 2 s with exit code 0, whatever signal
disposition it inherited, and a second signal during the shutdown never ends in a traceback or a
non-zero exit code. The monitor still publishes its open segment on the way down.

Each process starts with SIGINT *ignored*, as `cmd &` in a non-interactive shell, `nohup` and CI
runners start it (../shared/FIELD-NOTES.md "Signals"): Python then installs no KeyboardInterrupt
handler, so a node that relies on Python's default one ignores Ctrl-C until it is killed. The test
checks in /proc that the child really started that way.

The stop scenarios of one entry point run as parallel processes (one namespace each) to share the
model-loading time; once all are ready they are stopped one after the other, so each measures its
own shutdown on an otherwise idle machine. A process still running KILL_DEADLINE_S after its stop
signal is killed with its process group and counts as a failure.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

import yaml  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from ros_testing import (LoggedProcess, ignored_signals, kill_process_group, ros_node, ros_process,  # noqa: E402
                         running_after, spin_until, wait_for_exit)
from vljepa_ros.msg import SemanticEmbedding, SemanticEvent  # noqa: E402
from vljepa_ros.nodes.common import from_float32_field, ns_to_stamp, stamp_to_ns, to_float32_field  # noqa: E402

STOP_DEADLINE_S = 2.0  # what a user waits for after Ctrl-C or `kill`
KILL_DEADLINE_S = 10.0  # generous: past this the process is killed, so the test never hangs
SECOND_SIGNAL_AFTER_S = 0.05  # inside the shutdown, like a second Ctrl-C or launch forwarding one
READY_DEADLINE_S = 120.0  # up to four processes import torch and load the model at once on 2 cores
FLUSH_EVENT_GRACE_S = 5.0  # the flush event may still be in transit when the monitor has exited
SEGMENT_EMBEDDINGS = 5
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "vljepa.yaml"


@dataclass(frozen=True)
class StopScenario:
    name: str
    signals: tuple[signal.Signals, ...]  # the first is "the stop"; a second follows SECOND_SIGNAL_AFTER_S later


SIGINT_STOP = StopScenario("SIGINT", (signal.SIGINT,))
SIGTERM_STOP = StopScenario("SIGTERM", (signal.SIGTERM,))
DOUBLE_SIGINT = StopScenario("double SIGINT", (signal.SIGINT, signal.SIGINT))
SIGINT_THEN_SIGTERM = StopScenario("SIGINT then SIGTERM", (signal.SIGINT, signal.SIGTERM))
SINGLE_SIGNALS = (SIGINT_STOP, SIGTERM_STOP)
WITH_SECOND_SIGNALS = (*SINGLE_SIGNALS, DOUBLE_SIGINT, SIGINT_THEN_SIGTERM)


@dataclass
class StopResult:
    scenario: StopScenario
    exit_after_s: float | None  # from the first signal; None: still running at KILL_DEADLINE_S (killed)
    returncode: int
    output: str

    def problems(self) -> list[str]:
        found = []
        if self.exit_after_s is None:
            found.append(f"still running {KILL_DEADLINE_S:.0f} s after the signal: killed")
        elif self.exit_after_s > STOP_DEADLINE_S:
            found.append(f"took {self.exit_after_s:.2f} s to exit (more than {STOP_DEADLINE_S:.0f} s)")
        if self.returncode != 0:
            found.append(f"exit code {self.returncode}")
        found += [f"'{word}' in its output" for word in ("Traceback", "KeyboardInterrupt") if word in self.output]
        return found


def wait_for_exit_spinning(process: LoggedProcess, timeout_s: float, executor: SingleThreadedExecutor) -> bool:
    """wait_for_exit, spinning `executor` meanwhile (its subscriptions keep receiving); True if exited."""
    deadline = time.monotonic() + timeout_s
    while not wait_for_exit(process, 0.0):
        if time.monotonic() >= deadline:
            return False
        executor.spin_once(timeout_sec=0.01)
    return True


def stop_and_measure(process: LoggedProcess, scenario: StopScenario, executor: SingleThreadedExecutor) -> StopResult:
    """Send the scenario's signals, time the exit, kill whatever is left of its group and reap it."""
    started = time.monotonic()
    for index, stop_signal in enumerate(scenario.signals):
        if index and wait_for_exit_spinning(process, SECOND_SIGNAL_AFTER_S, executor):
            break  # shut down before the second signal could land inside the shutdown
        os.kill(process.pid, stop_signal)  # not Popen.send_signal: it reaps, freeing the group id
    exited = wait_for_exit_spinning(process, KILL_DEADLINE_S, executor)
    exit_after_s = time.monotonic() - started if exited else None
    kill_process_group(process)  # all of it when it hung; leftovers of its group otherwise
    returncode = process.wait()
    return StopResult(scenario, exit_after_s, returncode, process.output())


def report(results: list[StopResult], extra_problems: dict[str, list[str]] | None = None) -> str:
    """'' when every scenario is fine; else each failing scenario, with the tail of its output."""
    lines = []
    for result in results:
        problems = result.problems() + (extra_problems or {}).get(result.scenario.name, [])
        timing = "no exit" if result.exit_after_s is None else f"exit after {result.exit_after_s:.2f} s"
        print(f"{result.scenario.name}: {timing}, exit code {result.returncode}")
        if problems:
            tail = "\n    ".join(result.output.splitlines()[-15:])
            lines.append(f"{result.scenario.name}: {'; '.join(problems)}\n  output (tail):\n    {tail}")
    return "\n".join(lines)


@contextlib.contextmanager
def started_with_sigint_ignored(commands: dict[str, list[str]]) -> Iterator[dict[str, LoggedProcess]]:
    """Start every command at once (name -> args for python) with SIGINT ignored; on the way out
    stop each (its group killed if it hangs) and print its output."""
    with contextlib.ExitStack() as running:
        # A test that fails before its own stop still ends them quickly: killed STOP_DEADLINE_S after SIGINT.
        processes = {name: running.enter_context(ros_process(args, name.replace(" ", "_"), sigint_ignored=True,
                                                             stop_timeout_s=STOP_DEADLINE_S))
                     for name, args in commands.items()}
        for name, process in processes.items():
            # The point of the test: the entry point itself must stop on SIGINT, not Python for it.
            assert signal.SIGINT in ignored_signals(process.pid), f"{name}: the child did not inherit SIGINT ignored"
        yield processes


class DiagnosticsWatch:
    """The latest /diagnostics message of each node, by fully qualified name."""

    def __init__(self, node) -> None:
        self.latest: dict[str, tuple[str, dict[str, str]]] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_array, 50)

    def _on_array(self, array: DiagnosticArray) -> None:
        for status in array.status:
            self.latest[status.name] = (status.message, {kv.key: kv.value for kv in status.values})

    def says(self, node_name: str, message: str) -> bool:
        return self.latest.get(node_name, ("", {}))[0] == message


def wait_until_ready(executor: SingleThreadedExecutor, processes: dict[str, LoggedProcess],
                     ready: Callable[[str], bool], every_spin: Callable[[], None] | None = None) -> None:
    """Spin until `ready(name)` holds for every process; fail at once with its output if one dies."""
    def all_ready() -> bool:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} died while starting:\n{process.output()}"
        return all(ready(name) for name in processes)

    try:
        spin_until(executor, all_ready, READY_DEADLINE_S, every_spin=every_spin)
    except TimeoutError:
        raise TimeoutError(f"not ready after {READY_DEADLINE_S:.0f} s: "
                           f"{[name for name in processes if not ready(name)]}") from None


def namespace_of(scenario: StopScenario) -> str:
    return "/" + scenario.name.replace(" ", "_").lower()


def model_dimension(model_dir: Path) -> int:
    return int(json.loads((model_dir / "config.json").read_text())["shared_dim"])


# ---------------------------------------------------------------------------------------------
# The nodes, one process each
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("module", "ready_message"), [("perception", "active"), ("action_inference", "running")])
def test_node_stops_cleanly_on_each_signal(module, ready_message, tiny_model_dir):
    node_name = f"{module}_node"
    commands = {scenario.name: ["-m", f"vljepa_ros.nodes.{module}", "--ros-args", "-r",
                                f"__ns:={namespace_of(scenario)}", "-p", f"model_dir:={tiny_model_dir}"]
                for scenario in SINGLE_SIGNALS}
    with started_with_sigint_ignored(commands) as processes, ros_node(f"{module}_signal_driver") as (node, executor):
        diagnostics = DiagnosticsWatch(node)
        by_name = {scenario.name: scenario for scenario in SINGLE_SIGNALS}
        wait_until_ready(executor, processes,
                         lambda name: diagnostics.says(f"{namespace_of(by_name[name])}/{node_name}", ready_message))
        results = [stop_and_measure(processes[scenario.name], scenario, executor) for scenario in SINGLE_SIGNALS]
    problems = report(results)
    assert not problems, f"{module} did not stop cleanly:\n{problems}"


def test_monitor_publishes_its_open_segment_on_the_way_down(tiny_model_dir):
    """A segment is open (embeddings received, no shift: the threshold is out of reach); on the
    stop the monitor flushes it, and the event carries what was sent. A second signal (the last
    two scenarios) lands while it decodes and publishes."""
    dimension = model_dimension(tiny_model_dir)
    rng = np.random.default_rng(7)
    direction = rng.normal(size=dimension)
    vectors = [(direction + 0.05 * rng.normal(size=dimension)).astype(np.float32) for _ in range(SEGMENT_EMBEDDINGS)]
    vectors = [vector / np.linalg.norm(vector) for vector in vectors]
    nan_probe = np.full(dimension, np.nan, dtype=np.float32)

    def embedding_message(vector: np.ndarray, index: int) -> SemanticEmbedding:
        message = SemanticEmbedding()
        message.clip_start = ns_to_stamp(1_000_000_000 + index * 400_000_000)
        message.clip_end = ns_to_stamp(1_000_000_000 + index * 400_000_000 + 700_000_000)
        message.header.stamp = message.clip_end
        message.dimension = dimension
        message.embedding = to_float32_field(vector)
        message.sequence = index
        return message

    scenarios = {scenario.name: scenario for scenario in WITH_SECOND_SIGNALS}
    commands = {name: ["-m", "vljepa_ros.nodes.monitor", "--ros-args", "-r", f"__ns:={namespace_of(scenario)}",
                       "-p", f"model_dir:={tiny_model_dir}", "-p", "shift_threshold:=4.0", "-p", "max_segment_s:=0.0"]
                for name, scenario in scenarios.items()}
    with started_with_sigint_ignored(commands) as processes, ros_node("monitor_signal_driver") as (node, executor):
        diagnostics = DiagnosticsWatch(node)
        publishers = {name: node.create_publisher(SemanticEmbedding, f"{namespace_of(s)}/embedding", 50)
                      for name, s in scenarios.items()}
        events: dict[str, list[tuple[SemanticEvent, float]]] = {name: [] for name in scenarios}
        for name, scenario in scenarios.items():
            node.create_subscription(SemanticEvent, f"{namespace_of(scenario)}/event",
                                     lambda event, name=name: events[name].append((event, time.monotonic())), 50)

        def values(name: str) -> dict[str, str]:
            return diagnostics.latest.get(f"{namespace_of(scenarios[name])}/monitor_node", ("", {}))[1]

        wait_until_ready(executor, processes,
                         lambda name: diagnostics.says(f"{namespace_of(scenarios[name])}/monitor_node", "running"))

        def probed(name: str) -> bool:  # a rejected NaN probe: subscribed, and the detector untouched
            return int(values(name).get("embeddings_rejected", 0)) >= 1

        def probe_unprobed() -> None:
            for name, publisher in publishers.items():
                if not probed(name):
                    publisher.publish(embedding_message(nan_probe, 0))

        wait_until_ready(executor, processes, probed, every_spin=probe_unprobed)
        for publisher in publishers.values():
            for index, vector in enumerate(vectors, start=1):
                publisher.publish(embedding_message(vector, index))

        def segment_open(name: str) -> bool:
            accepted = int(values(name).get("embeddings_received", 0)) - int(values(name).get("embeddings_rejected", 0))
            return accepted >= SEGMENT_EMBEDDINGS

        wait_until_ready(executor, processes, segment_open)
        results, exit_times = [], {}
        for name, scenario in scenarios.items():
            results.append(stop_and_measure(processes[name], scenario, executor))
            exit_times[name] = time.monotonic()
        # The event of the last one stopped may still be on its way.
        flush_checked = [scenario.name for scenario in SINGLE_SIGNALS]
        with contextlib.suppress(TimeoutError):
            spin_until(executor, lambda: all(events[name] for name in flush_checked), FLUSH_EVENT_GRACE_S,
                       what="the flush events")

    expected = np.mean(vectors, axis=0)
    expected /= np.linalg.norm(expected)
    flush_problems: dict[str, list[str]] = {}
    for name in flush_checked:
        flushes = [(event, arrived) for event, arrived in events[name] if event.trigger == SemanticEvent.TRIGGER_FLUSH]
        if not flushes:
            flush_problems[name] = [f"no flush event (events: {[event.trigger for event, _ in events[name]]})"]
            continue
        event, arrived = flushes[0]
        problems = []
        if event.embeddings_in_segment != SEGMENT_EMBEDDINGS:
            problems.append(f"flush event of {event.embeddings_in_segment} embeddings, {SEGMENT_EMBEDDINGS} were sent")
        cosine = float(from_float32_field(event.embedding) @ expected)
        if cosine < 0.9999:
            problems.append(f"flush event embedding is not the mean of those sent (cosine {cosine:.4f})")
        if stamp_to_ns(event.segment_start) != stamp_to_ns(embedding_message(vectors[0], 1).clip_start):
            problems.append("flush event does not start at the first clip sent")
        print(f"{name}: flush event arrived {arrived - exit_times[name]:+.2f} s from the exit being seen")
        flush_problems[name] = problems
    problems = report(results, flush_problems)
    assert not problems, f"the monitor did not stop cleanly:\n{problems}"


# ---------------------------------------------------------------------------------------------
# The single-process bring-up and the example planner
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def config_with_model(tmp_path, tiny_model_dir) -> Path:
    """The shipped deployment YAML, with every node pointed at the tiny model."""
    config = yaml.safe_load(REPO_CONFIG.read_text())
    for node_parameters in config.values():
        node_parameters["ros__parameters"]["model_dir"] = str(tiny_model_dir)
    path = tmp_path / "vljepa.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


BRINGUP_READY = {"perception_node": "active", "monitor_node": "running", "action_inference_node": "running"}
SINGLE_PROCESS_SIGINT = StopScenario("single process SIGINT", (signal.SIGINT,))


def bringup_args(config: Path, namespace: str) -> list[str]:
    single = ["--single-process"] if namespace.startswith("/single") else []
    return ["-m", "vljepa_ros.nodes.bringup", "--config", str(config), "--namespace", namespace.lstrip("/"), *single]


def test_bringup_stops_cleanly_on_each_signal(config_with_model):
    """One process per node (the default), and all three in one process (--single-process)."""
    ready_messages = BRINGUP_READY
    scenarios = {scenario.name: scenario for scenario in (*WITH_SECOND_SIGNALS, SINGLE_PROCESS_SIGINT)}
    commands = {name: bringup_args(config_with_model, namespace_of(scenario)) for name, scenario in scenarios.items()}
    with started_with_sigint_ignored(commands) as processes, ros_node("bringup_signal_driver") as (node, executor):
        diagnostics = DiagnosticsWatch(node)
        wait_until_ready(executor, processes, lambda name: all(
            diagnostics.says(f"{namespace_of(scenarios[name])}/{node_name}", message)
            for node_name, message in ready_messages.items()))
        results = [stop_and_measure(processes[name], scenario, executor) for name, scenario in scenarios.items()]
    problems = report(results)
    assert not problems, f"the bring-up did not stop cleanly:\n{problems}"


def test_a_node_that_dies_ends_the_bringup_and_a_killed_bringup_takes_its_nodes_along(config_with_model):
    from vljepa_ros.commands.pipeline_harness import node_process_pids
    commands = {name: bringup_args(config_with_model, f"/{name}") for name in ("node_dies", "bringup_killed")}
    with started_with_sigint_ignored(commands) as processes, ros_node("bringup_exit_driver") as (node, executor):
        diagnostics = DiagnosticsWatch(node)
        wait_until_ready(executor, processes, lambda name: all(
            diagnostics.says(f"/{name}/{node_name}", message) for node_name, message in BRINGUP_READY.items()))
        nodes = {name: node_process_pids(process.pid) for name, process in processes.items()}
        os.kill(nodes["node_dies"]["monitor_node"], signal.SIGKILL)
        os.kill(processes["bringup_killed"].pid, signal.SIGKILL)
        ended = wait_for_exit_spinning(processes["node_dies"], KILL_DEADLINE_S, executor)
        # The orphans get SIGTERM (PDEATHSIG): they stop as on a signal.
        still_running = running_after(list(nodes["bringup_killed"].values()), KILL_DEADLINE_S)
        orphans = [name for name, pid in nodes["bringup_killed"].items() if pid in still_running]
        dying_output = processes["node_dies"].output()
    assert set(nodes["node_dies"]) == set(BRINGUP_READY) == set(nodes["bringup_killed"])
    assert ended and processes["node_dies"].returncode == 128 + signal.SIGKILL, dying_output
    assert "monitor_node exited with code -9: stopping the other nodes" in dying_output
    assert not orphans, f"still running after their bring-up was killed: {orphans}"


def test_example_planner_stops_cleanly_on_each_signal():
    """Ready: it logged its first line. It logs once it has an embedding and its ranking timer
    fires (no pipeline here: "waiting for /vljepa/rank_actions"), so this test feeds it embeddings."""
    commands = {scenario.name: ["examples/planner_node.py", "--ros-args", "-p", "rank_period_s:=0.1"]
                for scenario in SINGLE_SIGNALS}
    with started_with_sigint_ignored(commands) as processes, ros_node("planner_signal_driver") as (node, executor):
        publisher = node.create_publisher(SemanticEmbedding, "/vljepa/embedding", 10)
        embedding = SemanticEmbedding(dimension=2, embedding=[0.6, 0.8])
        wait_until_ready(executor, processes, lambda name: processes[name].output().strip() != "",
                         every_spin=lambda: publisher.publish(embedding))
        results = [stop_and_measure(processes[scenario.name], scenario, executor) for scenario in SINGLE_SIGNALS]
    problems = report(results)
    assert not problems, f"the example planner did not stop cleanly:\n{problems}"
