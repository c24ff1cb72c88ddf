"""Plumbing of `vljepa-ros bench --pipeline`: the node processes it starts and stops, their CPU and
memory read from /proc, and the camera streams it replays (the demo bag, a generated raw camera).

Kept apart from the benchmark logic (pipeline_bench.py) so each stays small; nothing here decides
what is measured, only how processes and frames are handled.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAMESPACE = "vljepa"
CAMERAS = ("demo_bag", "raw_640x480_30hz")
# Both run `vljepa-ros bringup` as a user does: multi_process (its default) starts one process per node, as
# launch/vljepa.launch.xml does, and reports each by its node's name; single_process (`--single-process`)
# holds the three nodes in the one process reported as "bringup".
TOPOLOGIES = ("single_process", "multi_process")
BRINGUP_MODULE = "vljepa_ros.nodes.bringup"
# Fast DDS profile for raw images between processes (why: the file's comment, benchmarks/README.md).
TRANSPORT_PROFILE = "config/fastdds_large_images.xml"
STOP_TIMEOUT_S = 15.0  # SIGINT first (nodes shut down cleanly); the process group is killed after this
RAW_CAMERA_WIDTH, RAW_CAMERA_HEIGHT, RAW_CAMERA_RATE_HZ = 640, 480, 30.0
RAW_CAMERA_SEED = 1_000_321  # a held-out tabletop world seed
RAW_CAMERA_RENDER_SIZE = 160  # rendered square, then resized to 640x480 like a camera's full frame
RAW_CAMERA_DISTINCT_FRAMES = 300  # 10 s at 30 Hz held in memory (277 MB at 640x480); longer streams cycle them
RAW_CAMERA_MEMORY_BYTES = RAW_CAMERA_DISTINCT_FRAMES * RAW_CAMERA_WIDTH * RAW_CAMERA_HEIGHT * 3  # per camera
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def child_environment(transport_profile: Path | None) -> dict[str, str]:
    """What every node process gets: this machine only, this checkout's code, the Fast DDS profile."""
    from vljepa_ros.paths import SOURCE_ROOT
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    if (SOURCE_ROOT / "package.xml").is_file():  # a source checkout: run its code, not an older install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    from vljepa_ros.ros_distro import FASTDDS_PROFILE_VARIABLES, fastdds_profile_variable
    for variable in FASTDDS_PROFILE_VARIABLES:  # only the one this distribution reads: both load the file twice
        env.pop(variable, None)
    if transport_profile is not None:
        env[fastdds_profile_variable()] = str(transport_profile)
    return env


def source_revision() -> dict | None:
    """The checkout's commit and uncommitted files the nodes ran from (None outside a git checkout)."""
    from vljepa_ros.paths import SOURCE_ROOT

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(SOURCE_ROOT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout

    try:
        return {"commit": git("rev-parse", "HEAD").strip(),
                "modified": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]}
    except (OSError, subprocess.SubprocessError):
        return None


def bringup_command(topology: str, config: Path, camera_topic: str) -> list[str]:
    return [sys.executable, "-m", BRINGUP_MODULE, "--config", str(config), "--image-topic", camera_topic,
            "--namespace", NAMESPACE, *(["--single-process"] if topology == "single_process" else [])]


def node_process_pids(bringup_pid: int) -> dict[str, int]:
    """The bring-up's node processes (its children running a node module), by node name."""
    from vljepa_ros.nodes.bringup import NODE_MODULES
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != bringup_pid:  # field 4: the parent's pid
                continue
            arguments = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):  # exited meanwhile
            continue
        found.update({name: int(stat.parent.name) for name, module in NODE_MODULES.items()
                      if module.encode() in arguments})
    return found


class NodeProcesses:
    """The bring-up of one topology, in its own session (process group), so stop() reaches its node
    processes too; use it in try/finally, stop() is safe to call at any point."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.topology = ""
        self._node_pids: dict[str, int] = {}

    def start(self, topology: str, config: Path, camera_topic: str, log_dir: Path, env: dict[str, str]) -> None:
        self.topology = topology
        log_path = log_dir / f"{config.stem}-{topology}.log"
        with open(log_path, "w") as log:  # the child keeps its own handle
            self.processes["bringup"] = subprocess.Popen(bringup_command(topology, config, camera_topic), stdout=log,
                                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.logs["bringup"] = log_path

    @property
    def pids(self) -> dict[str, int]:
        """The processes that hold the nodes, by the name the report gives them (read once they run)."""
        bringup = self.processes["bringup"].pid
        if self.topology == "single_process":
            return {"bringup": bringup}
        from vljepa_ros.nodes.bringup import NODE_MODULES
        if len(self._node_pids) < len(NODE_MODULES):
            self._node_pids = node_process_pids(bringup)
        return dict(self._node_pids)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; see {self.logs[name]}")

    def stop(self) -> None:
        """SIGINT to every group at once (the nodes stop in parallel), then kill a group that hangs."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)  # the leader and anything it started
                process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------------
# CPU and memory of a process, from /proc (psutil is not a dependency)
# ---------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of all the process's threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # utime, stime (fields 14, 15 of stat)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class CpuWindow:
    """CPU use of some processes from construction to percent(): 100 is one core fully busy (as top shows)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.started = time.monotonic()
        self.start_seconds = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def percent(self) -> dict[str, float]:
        elapsed = max(1e-6, time.monotonic() - self.started)
        return {name: round(100 * (cpu_seconds(pid) - self.start_seconds[name]) / elapsed, 1)
                for name, pid in self.pids.items()}


class StealMeter:
    """The share of CPU time the hypervisor gave to other guests since construction (steal in /proc/stat).

    On a shared VM a stolen vCPU stalls torch's thread pool on the other core; this says when it happened."""

    def __init__(self) -> None:
        self.start = self._ticks()

    @staticmethod
    def _ticks() -> tuple[int, int]:
        values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return values[7], sum(values)  # steal; user..steal (guest time is already inside user)

    def percent(self) -> float:
        (steal_start, total_start), (steal, total) = self.start, self._ticks()
        return round(100 * (steal - steal_start) / max(1, total - total_start), 1)


# ---------------------------------------------------------------------------------------------
# Cameras
# ---------------------------------------------------------------------------------------------
def demo_bag_frames(bag: Path, duration_s: float) -> tuple[list[int], list[np.ndarray]]:
    """(stamps, RGB frames) of the bag's first `duration_s` seconds: what the replay publishes."""
    from vljepa_ros.world.bag_io import iter_bag_images
    stamps: list[int] = []
    frames: list[np.ndarray] = []
    for stamp_ns, rgb in iter_bag_images(bag):
        if stamps and stamp_ns - stamps[0] >= duration_s * 1e9:
            break
        stamps.append(stamp_ns)
        frames.append(rgb)
    return stamps, frames


@dataclass
class CameraInput:
    name: str
    rate_hz: float
    frame_count: int  # frames one stream publishes
    frames: list = field(repr=False)  # RGB arrays, in publish order (the engine timing's input)
    stamps_ns: list[int] = field(repr=False)
    messages: list[bytes] = field(default_factory=list, repr=False)  # raw camera: serialized, cycled


def demo_bag_path() -> Path:
    from vljepa_ros.paths import find_share_file
    return find_share_file("data/demo_tabletop")


def prepare_cameras(names: tuple[str, ...], duration_s: float) -> dict[str, CameraInput]:
    cameras = {}
    if "demo_bag" in names:
        stamps, frames = demo_bag_frames(demo_bag_path(), duration_s)
        rate_hz = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9) if len(stamps) > 1 else 0.0
        cameras["demo_bag"] = CameraInput("demo_bag", round(rate_hz, 2), len(frames), frames, stamps)
    if "raw_640x480_30hz" in names:
        cameras["raw_640x480_30hz"] = raw_camera("raw_640x480_30hz", RAW_CAMERA_WIDTH, RAW_CAMERA_HEIGHT,
                                                 RAW_CAMERA_RATE_HZ, duration_s)
    return cameras


def raw_camera(name: str, width: int, height: int, rate_hz: float, duration_s: float,
               memory_bytes: int = RAW_CAMERA_MEMORY_BYTES) -> CameraInput:
    """A generated width x height rgb8 camera at `rate_hz` for `duration_s`, its distinct frames held
    in at most `memory_bytes` (cycled: the larger the frame, the fewer distinct ones)."""
    count = max(1, int(round(duration_s * rate_hz)))
    messages = raw_camera_messages(count, width, height, memory_bytes)
    frames = [raw_message_pixels(messages[i % len(messages)], width, height) for i in range(count)]  # views
    stamps = [int(i * 1e9 / rate_hz) for i in range(count)]
    return CameraInput(name, rate_hz, count, frames, stamps, messages)


def raw_camera_messages(frame_count: int, width: int = RAW_CAMERA_WIDTH, height: int = RAW_CAMERA_HEIGHT,
                        memory_bytes: int = RAW_CAMERA_MEMORY_BYTES) -> list[bytes]:
    """Serialized width x height rgb8 sensor_msgs/Image messages of tabletop episodes (at most
    RAW_CAMERA_DISTINCT_FRAMES distinct ones and `memory_bytes` of pixels, at least one; the publisher
    cycles them and restamps each)."""
    import cv2
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from vljepa_ros.world.tabletop import generate_stream

    wanted = max(1, min(frame_count, RAW_CAMERA_DISTINCT_FRAMES, memory_bytes // (width * height * 3)))
    messages: list[bytes] = []
    episode = 0
    while len(messages) < wanted:
        stream = generate_stream(RAW_CAMERA_SEED, 1, fps=RAW_CAMERA_RATE_HZ, image_size=RAW_CAMERA_RENDER_SIZE,
                                 first_episode=episode)
        for rgb in stream.frames[:wanted - len(messages)]:
            full = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
            message = Image(height=height, width=width, encoding="rgb8", is_bigendian=0,
                            step=width * 3, data=full.tobytes())  # bytes: 100x faster than an array
            message.header.frame_id = "camera"
            messages.append(serialize_message(message))
        episode += 1
    return messages


def raw_message_pixels(raw: bytes, width: int = RAW_CAMERA_WIDTH, height: int = RAW_CAMERA_HEIGHT) -> np.ndarray:
    """The RGB frame inside a serialized raw camera message, without copying (data is the last field)."""
    size = width * height * 3
    return np.frombuffer(raw, np.uint8, count=size, offset=len(raw) - size).reshape(height, width, 3)


class RawCameraPublisher:
    """Publishes pre-serialized frames at a fixed rate from a thread, each with a fresh header.stamp
    (the wall clock, as a driver stamps at capture), cycling through `messages` for `frame_count` frames.

    `on_publish(stamp_ns, monotonic_s)` is called with the time taken just *before* publish, so the
    latency it anchors includes the cost of publishing a 900 kB message."""

    def __init__(self, publisher, messages: list[bytes], frame_count: int, rate_hz: float,
                 on_publish: Callable[[int, float], None]) -> None:
        self.publisher, self.messages, self.frame_count = publisher, messages, frame_count
        self.period_s = 1.0 / rate_hz
        self.on_publish = on_publish
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raw_camera", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        from vljepa_ros.nodes.bag_replay import restamp_header
        start = time.monotonic()
        for index in range(self.frame_count):
            # A fixed grid, as a camera's shutter; frames late after a stall go out at once (same length).
            if self._stop.wait(max(0.0, start + index * self.period_s - time.monotonic())):
                return
            stamp_ns = time.time_ns()
            raw = restamp_header(self.messages[index % len(self.messages)], stamp_ns)
            self.on_publish(stamp_ns, time.monotonic())
            self.publisher.publish(raw)
            self.published += 1
