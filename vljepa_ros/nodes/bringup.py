"""Bring-up without `ros2 launch` (pip installs): perception, monitor and action inference from the same
deployment YAML as the launch file.

    vljepa-ros bringup --config config/vljepa.yaml --image-topic /camera/image_raw
    vljepa-ros bringup --single-process       # the three nodes in one Python process

By default each node runs in a process of its own, started exactly as launch/vljepa.launch.xml starts it
(parameters applied by rcl from `--params-file`, wildcards included; the camera remapped), and this
process only supervises them: SIGINT or SIGTERM stops all three cleanly (each gets SIGINT once, as
`ros2 launch` forwards it; any still running after STOP_TIMEOUT_S is killed), a node that exits ends
the bring-up with its exit code, and a bring-up that is killed takes its nodes along (they get SIGTERM).

`--single-process` keeps the three nodes in one process, each on its own executor thread (`--executor
multi`: one multi-threaded executor for all), sharing one GIL between two inference engines and every
frame's callbacks. Measured on 2 cores of an Intel Xeon (family 6 model 167) it holds the demo bag and a
640x480 rgb8 camera at 30 Hz (limit: 100 Hz with torch); before frames were shrunk on arrival it dropped
clips at 30 Hz on the AMD EPYC machines, where it has not been measured since (benchmarks/README.md, per
CPU). It uses less memory (one torch import); one process per node is the default, as `ros2 launch` runs it.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import rclpy

from vljepa_ros.nodes.spinning import DEFAULT_EXECUTOR, EXECUTORS, run_nodes

DEFAULT_NAMESPACE = "vljepa"
DEFAULT_IMAGE_TOPIC = "/camera/image_raw"
# Each node's module (`python -m`), under the name launch/vljepa.launch.xml gives it.
NODE_MODULES = {
    "perception_node": "vljepa_ros.nodes.perception",
    "monitor_node": "vljepa_ros.nodes.monitor",
    "action_inference_node": "vljepa_ros.nodes.action_inference",
}
# After SIGINT, nodes still running this long are killed: a node stops in well under 2 s (test_signals.py),
# and a user's Ctrl-C must end the bring-up within 2 s too.
STOP_TIMEOUT_S = 1.8
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def node_arguments(config: Path, image_topic: str, namespace: str | None = None) -> list[str]:
    """ROS arguments every node gets: the parameter file and the camera remapping (and the namespace
    when the node runs in a process of its own, as the launch file's push-ros-namespace does)."""
    arguments = ["--ros-args"] + (["-r", f"__ns:=/{namespace}"] if namespace else [])
    return arguments + ["--params-file", str(config),
                        "-r", f"image_in:={image_topic}", "-r", f"image_in/compressed:={image_topic}/compressed"]


def node_commands(config: Path, image_topic: str = DEFAULT_IMAGE_TOPIC, namespace: str = DEFAULT_NAMESPACE,
                  executor: str = DEFAULT_EXECUTOR) -> dict[str, list[str]]:
    """The command of each node's process, as the launch file starts it."""
    executor_arguments = [] if executor == DEFAULT_EXECUTOR else ["--executor", executor]
    return {name: [sys.executable, "-m", module, *executor_arguments,
                   *node_arguments(config, image_topic, namespace)]
            for name, module in NODE_MODULES.items()}


def create_nodes(config: Path, image_topic: str = DEFAULT_IMAGE_TOPIC, namespace: str = DEFAULT_NAMESPACE,
                 context=None) -> list:
    """The perception, monitor and action-inference nodes in this process, as the launch file starts them."""
    from vljepa_ros.nodes.action_inference import ActionInferenceNode
    from vljepa_ros.nodes.monitor import MonitorNode
    from vljepa_ros.nodes.perception import PerceptionNode
    arguments = node_arguments(config, image_topic)
    return [node_class(namespace=namespace, cli_args=arguments, context=context)
            for node_class in (PerceptionNode, MonitorNode, ActionInferenceNode)]


def _die_with_parent() -> None:
    """In each node process before exec: SIGTERM when the bring-up dies, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a killed bring-up leaves its nodes (stop them by hand)
        pass


class _StopRequested(Exception):
    """Raised by the first SIGINT/SIGTERM in the supervisor's main thread, out of its wait."""


class NodeSupervisor:
    """The bring-up's node processes: started together, stopped together, watched in between."""

    def __init__(self, commands: dict[str, list[str]]) -> None:
        self.commands = commands
        self.processes: dict[str, subprocess.Popen] = {}
        self.stop_signal: str | None = None
        self._waiting = False

    def start(self) -> None:
        # The nodes share this process group, as under `ros2 launch`: a terminal's Ctrl-C reaches them
        # directly too, and the SIGINT forwarded after it is a second one, which a node only notes.
        for name, command in self.commands.items():
            self.processes[name] = subprocess.Popen(command, preexec_fn=_die_with_parent)

    def _on_signal(self, signum: int, frame) -> None:
        if self.stop_signal is None:  # later signals (Ctrl-C's and a forwarded one) are only noted
            self.stop_signal = signal.Signals(signum).name
            if self._waiting:  # out of the wait; once the nodes are being stopped, nothing is interrupted
                raise _StopRequested

    def run(self) -> int:
        """Until a signal or a node's exit; then stop every node. The exit code: 0 after a signal when
        every node stopped cleanly, else the first node's that did not (128 + N for one killed by signal N,
        as a shell says; 1 for a node that exited 0 by itself)."""
        for signum in (signal.SIGINT, signal.SIGTERM):  # installed whatever was inherited (nohup, CI: SIG_IGN)
            signal.signal(signum, self._on_signal)
        ended: str | None = None
        self._waiting = True
        try:
            self.start()
            print("vljepa-ros bringup: " + ", ".join(f"{name} (pid {process.pid})"
                                                     for name, process in self.processes.items()), flush=True)
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)  # until a node exits; a signal raises out of it
            ended = next(name for name, process in self.processes.items() if process.poll() is not None)
        except _StopRequested:
            pass
        finally:
            self._waiting = False
        if ended is not None:
            print(f"vljepa-ros bringup: {ended} exited with code {self.processes[ended].returncode}: "
                  "stopping the other nodes", file=sys.stderr, flush=True)
        codes = {name: 128 - code if code < 0 else code for name, code in self.stop().items()}
        if ended is not None:
            return codes[ended] or 1
        return next((code for code in codes.values() if code != 0), 0)

    def stop(self) -> dict[str, int]:
        """SIGINT to every node still running, at once; kill those still running after STOP_TIMEOUT_S."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"vljepa-ros bringup: {name} still running {STOP_TIMEOUT_S} s after SIGINT: killed",
                      file=sys.stderr, flush=True)
                process.kill()
                process.wait()
        return {name: process.returncode for name, process in self.processes.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vljepa-ros bringup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None,
                        help="deployment YAML (default: the package's config/vljepa.yaml)")
    parser.add_argument("--image-topic", default=DEFAULT_IMAGE_TOPIC, help="camera topic (Image; /compressed for CompressedImage)")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--single-process", action="store_true",
                        help="the three nodes in this one process (less memory, one GIL; its measured limits per CPU "
                             "are above and in benchmarks/README.md); default: one process per node, as `ros2 launch`")
    parser.add_argument("--executor", choices=EXECUTORS, default=DEFAULT_EXECUTOR,
                        help="single: one single-threaded executor thread per node (default); "
                             "multi: one rclpy MultiThreadedExecutor (for all three nodes with --single-process)")
    return parser


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.paths import default_config_file
    config = args.config or default_config_file()
    if not config.is_file():
        print(f"vljepa-ros bringup: config file {config} does not exist", file=sys.stderr)
        return 2
    if args.single_process:
        return run_nodes(lambda: create_nodes(config, args.image_topic, args.namespace), executor=args.executor)
    return NodeSupervisor(node_commands(config.resolve(), args.image_topic, args.namespace, args.executor)).run()


def main(argv: list[str] | None = None) -> int:
    # `ros2 run`/launch append their own --ros-args; bring-up builds its own per node.
    argv = rclpy.utilities.remove_ros_args(sys.argv if argv is None else argv)[1:]
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
