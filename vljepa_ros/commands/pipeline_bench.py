"""`vljepa-ros bench --pipeline`: the nodes end to end, as a robot runs them, next to the bare engine.

For every topology (`multi_process`: `vljepa-ros bringup`, one process per node as
launch/vljepa.launch.xml starts them; `single_process`: `vljepa-ros bringup --single-process`) and backend, the nodes start from a copy of the deployment YAML,
are measured idle (`--idle-s`), then get each camera for `--duration-s` seconds:
`demo_bag` (the shipped bag, 128 px JPEG CompressedImage at 10 Hz) and `raw_640x480_30hz` (generated
640x480 rgb8 Image at 30 Hz, from memory). Cameras publish with sensor-data QoS, as a driver does.

Per row: frame publish -> embedding received latency (each embedding's clip_end stamp is its last
frame's stamp), clips expected / published / dropped, frames lost in transport (published minus what
the perception node counted), CPU and RSS of each node process, and the bare engine's latency on the
same clips (timed in this process before any node runs, made by the nodes' own create_engine_from
from the same parameters, so with the same `inference_threads`; pipeline_engine.py). With --find-limits,
the same processes then get the limit search's probes (pipeline_limits.py).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from vljepa_ros.commands.pipeline_engine import ClipSettings, count_clips, percentile, time_engines
from vljepa_ros.commands.pipeline_harness import (CAMERAS, NAMESPACE, TOPOLOGIES, CameraInput, CpuWindow,
                                                  NodeProcesses, RawCameraPublisher, StealMeter, child_environment,
                                                  demo_bag_path, prepare_cameras, rss_mb, source_revision)
from vljepa_ros.commands.pipeline_limits import LimitOptions, find_limits, prepare_limit_cameras
from vljepa_ros.commands.pipeline_live_view import LiveViewSwitch, live_view_costs, live_view_states
from vljepa_ros.commands.pipeline_tables import print_limits, print_live_view_costs, print_table
from vljepa_ros.stream.clip_assembler import DEFAULT_SAMPLE_PERIOD_S, DEFAULT_STRIDE_FRAMES
from vljepa_ros.stream.clips import CAPTION_QUERY

CAMERA_TOPIC = "/camera/image_raw"  # Image here, CompressedImage on <topic>/compressed
READY_STATES = {"perception_node": "active", "monitor_node": "running", "action_inference_node": "running"}
READY_DEADLINE_S = 240.0  # three processes import torch and load their models on 2 shared cores
SETTLE_DEADLINE_S = 30.0
DRAIN_QUIET_S = 2.0  # the stream is over when no embedding arrived for this long (or 3x the engine p95)
IDLE_TARGET_PERCENT = 2.0


@dataclass
class BenchOptions:
    json_path: Path
    model_dir: Path | None = None  # None: the model the config names (the shipped one by default)
    config: Path | None = None  # None: the package's config/vljepa.yaml
    backends: tuple[str, ...] = ("torch", "onnxruntime")
    topologies: tuple[str, ...] = TOPOLOGIES
    cameras: tuple[str, ...] = CAMERAS
    duration_s: float = 20.0
    idle_s: float = 20.0
    transport_profile: Path | None = None  # FASTDDS_DEFAULT_PROFILES_FILE of every process; None: Fast DDS defaults
    live_view: bool = False  # also play each camera with the monitor's live view on (pipeline_live_view.py)
    limits: LimitOptions | None = None  # --find-limits: also search each topology's limit (pipeline_limits.py)


@dataclass
class NodeStatus:
    sequence: int  # how many diagnostics of this node arrived so far
    message: str
    values: dict[str, str]


# ---------------------------------------------------------------------------------------------
# Inputs: config, clips, cameras, the bare engine
# ---------------------------------------------------------------------------------------------
def write_bench_config(source: Path, backend: str, model_dir: Path | None, directory: Path) -> Path:
    """The deployment YAML with `backend` (and the model) set for all three nodes."""
    parameters = yaml.safe_load(source.read_text())
    for section in parameters.values():
        section["ros__parameters"]["backend"] = backend
        if model_dir is not None:
            section["ros__parameters"]["model_dir"] = str(model_dir.resolve())
    path = directory / f"config-{backend}.yaml"
    path.write_text(yaml.safe_dump(parameters, sort_keys=False))
    return path


def perception_parameters(config: Path) -> dict:
    parameters = yaml.safe_load(config.read_text())
    return next(section["ros__parameters"] for key, section in parameters.items() if key.endswith("perception_node"))


def clip_settings(config: Path, model_dir: Path) -> ClipSettings:
    """How the perception node will cut clips (frames_per_clip 0 means the model's clip length)."""
    from vljepa_ros.runtime import load_assets
    values = perception_parameters(config)
    frames_per_clip = int(values.get("frames_per_clip") or load_assets(model_dir).config.frames_per_clip)
    return ClipSettings(frames_per_clip, int(values.get("stride_frames", DEFAULT_STRIDE_FRAMES)),
                        float(values.get("sample_period_s", DEFAULT_SAMPLE_PERIOD_S)),
                        str(values.get("query", CAPTION_QUERY)))


# ---------------------------------------------------------------------------------------------
# The bench's own ROS node
# ---------------------------------------------------------------------------------------------
class BenchProbe:
    """Publishes the cameras and receives embeddings and /diagnostics, in its own ROS context.

    Made before the node processes start, so discovery is long done when the first frame goes out."""

    def __init__(self, bag: Path | None) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from vljepa_ros.msg import SemanticEmbedding
        from vljepa_ros.nodes.bag_replay import BagReplayer

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("pipeline_bench", namespace=NAMESPACE, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.statuses: dict[str, NodeStatus] = {}
        self.publish_times: dict[int, float] = {}  # frame stamp -> monotonic publish time, this stream
        self.arrivals: list[tuple[int, float]] = []  # (clip_end stamp, monotonic arrival), this stream
        self.bag_frame_limit = 0
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        # Reliable and deep: a burst of embeddings must not overwrite each other before the callback.
        self.node.create_subscription(SemanticEmbedding, "embedding", self._on_embedding,
                                      QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
        self.raw_publisher = self.node.create_publisher(Image, CAMERA_TOPIC, qos_profile_sensor_data)
        self.bag_replayer = None if bag is None else BagReplayer(
            self.node, bag, output_topic=f"{CAMERA_TOPIC}/compressed", qos="sensor_data", restamp=True,
            on_publish=self._on_bag_publish)

    def close(self) -> None:
        import rclpy
        if self.bag_replayer is not None:
            self.bag_replayer.stop()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def new_stream(self) -> None:
        self.publish_times, self.arrivals = {}, []

    def record_publish(self, stamp_ns: int, monotonic_s: float) -> None:
        self.publish_times[stamp_ns] = monotonic_s

    def _on_bag_publish(self, count: int, stamp_ns: int) -> None:
        self.record_publish(stamp_ns, time.monotonic())
        if count >= self.bag_frame_limit:
            self.bag_replayer.stop()  # only the first --duration-s seconds of the bag

    def _on_embedding(self, message) -> None:
        self.arrivals.append((message.clip_end.sec * 1_000_000_000 + message.clip_end.nanosec, time.monotonic()))

    def _on_diagnostics(self, message) -> None:
        for status in message.status:
            if status.name.startswith(f"/{NAMESPACE}/"):
                name = status.name.rsplit("/", 1)[-1]
                sequence = self.statuses[name].sequence + 1 if name in self.statuses else 0
                self.statuses[name] = NodeStatus(sequence, status.message, {kv.key: kv.value for kv in status.values})

    def spin_until(self, done, deadline_s: float, what: str, processes: NodeProcesses, every_spin=None) -> None:
        deadline = time.monotonic() + deadline_s
        while not done():
            processes.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {deadline_s:.0f} s (diagnostics: {self.statuses}); "
                                   f"node logs: {', '.join(map(str, processes.logs.values()))}")
            if every_spin is not None:
                every_spin()
            self.executor.spin_once(timeout_sec=0.1)

    def wait_until_ready(self, processes: NodeProcesses) -> None:
        self.spin_until(lambda: all(name in self.statuses and self.statuses[name].message == state
                                    for name, state in READY_STATES.items()),
                        READY_DEADLINE_S, "ready nodes", processes)
        publishers = [self.raw_publisher] + ([self.bag_replayer.publisher] if self.bag_replayer else [])
        self.spin_until(lambda: all(p.get_subscription_count() >= 2 for p in publishers),  # perception + action
                        SETTLE_DEADLINE_S, "camera subscriptions", processes)

    def settled_perception_counters(self, processes: NodeProcesses) -> dict[str, int]:
        """The perception node's counters once two fresh diagnostics in a row agree (nothing in flight)."""
        keys = ("images_received", "clips_dropped")
        readings: list[tuple[int, tuple]] = []

        def settled() -> bool:
            status = self.statuses.get("perception_node")
            if status is not None and (not readings or readings[-1][0] != status.sequence):
                readings.append((status.sequence, tuple(int(status.values.get(key, 0)) for key in keys)))
            return len(readings) >= 3 and readings[-1][1] == readings[-2][1]  # readings[0] may be stale

        self.spin_until(settled, SETTLE_DEADLINE_S, "settled perception diagnostics", processes)
        return dict(zip(keys, readings[-1][1]))

    def wait_quiet(self, quiet_s: float, deadline_s: float, processes: NodeProcesses) -> None:
        last_count, quiet_since = -1, time.monotonic()

        def quiet() -> bool:
            nonlocal last_count, quiet_since
            if len(self.arrivals) != last_count:
                last_count, quiet_since = len(self.arrivals), time.monotonic()
            return time.monotonic() - quiet_since >= quiet_s

        self.spin_until(quiet, deadline_s, "quiet period after the stream", processes)


# ---------------------------------------------------------------------------------------------
# One topology and backend: idle, then each camera
# ---------------------------------------------------------------------------------------------
def measure_idle(probe: BenchProbe, processes: NodeProcesses, idle_s: float) -> dict:
    """CPU of each node process while it is up and ready with no input."""
    window, end = CpuWindow(processes.pids), time.monotonic() + idle_s
    probe.spin_until(lambda: time.monotonic() >= end, idle_s + 10, "end of the idle window", processes)
    return {"cpu_percent": window.percent(),
            "rss_mb": {name: round(rss_mb(pid), 1) for name, pid in processes.pids.items()}}


def start_camera(probe: BenchProbe, camera: CameraInput):
    if camera.name == "demo_bag":
        probe.bag_frame_limit = camera.frame_count
        probe.bag_replayer.start()
        return probe.bag_replayer
    source = RawCameraPublisher(probe.raw_publisher, camera.messages, camera.frame_count, camera.rate_hz,
                                probe.record_publish)
    source.start()
    return source


def measure_stream(probe: BenchProbe, processes: NodeProcesses, camera: CameraInput, quiet_s: float) -> dict:
    """Publish one camera stream, wait for the last embeddings, and collect what happened."""
    before = probe.settled_perception_counters(processes)
    probe.new_stream()
    peak_rss = dict.fromkeys(processes.pids, 0.0)

    def sample_rss() -> None:
        for name, pid in processes.pids.items():
            peak_rss[name] = max(peak_rss[name], rss_mb(pid))

    window, steal = CpuWindow(processes.pids), StealMeter()  # the publishing window: the nodes' steady state
    source = start_camera(probe, camera)
    try:
        probe.spin_until(source.done, camera.frame_count / camera.rate_hz + 60, f"end of the {camera.name} stream",
                         processes, every_spin=sample_rss)
    finally:
        source.stop()
    cpu_percent, steal_percent = window.percent(), steal.percent()
    if camera.name == "demo_bag":
        probe.bag_replayer.wait(10.0)  # re-raises a replay error
    probe.wait_quiet(quiet_s, 120.0, processes)
    after = probe.settled_perception_counters(processes)
    publish_times = dict(probe.publish_times)
    return {"stamps": sorted(publish_times),
            "latencies_ms": [(arrival - publish_times[stamp]) * 1e3 for stamp, arrival in probe.arrivals
                             if stamp in publish_times],  # embeddings of this stream only
            "images_received": after["images_received"] - before["images_received"],
            "clips_dropped": after["clips_dropped"] - before["clips_dropped"],
            "machine_steal_percent": steal_percent, "cpu_percent": cpu_percent,
            "rss_mb": {name: round(value, 1) for name, value in peak_rss.items()},
            "node_side": node_side_latencies(probe.statuses["perception_node"].values)}


# Where the e2e latency goes, from the perception node's own /diagnostics (over its last 10 s of clips, read
# once the stream drained): frame received -> embedding published, and the engine call inside it.
NODE_SIDE_KEYS = {"node_latency_p50_ms": "latency_p50_ms", "node_latency_p95_ms": "latency_p95_ms",
                  "node_engine_p50_ms": "inference_p50_ms", "node_engine_p95_ms": "inference_p95_ms"}


def node_side_latencies(values: dict[str, str]) -> dict[str, float | None]:
    def number(text: str | None) -> float | None:
        try:
            value = float(text)
        except (TypeError, ValueError):
            return None
        return None if value != value else round(value, 2)  # NaN: no clip in the window
    return {key: number(values.get(name)) for key, name in NODE_SIDE_KEYS.items()}


def evaluate_targets(row: dict) -> dict[str, bool]:
    def at_most(value, limit) -> bool:
        return value is not None and limit is not None and value <= limit

    engine_p50, engine_p95 = row["engine_p50_ms"], row["engine_p95_ms"]
    return {
        "latency_p50_le_engine_p50_plus_5ms": at_most(row["latency_p50_ms"], engine_p50 and engine_p50 + 5),
        "latency_p95_le_2x_engine_p95_plus_10ms": at_most(row["latency_p95_ms"], engine_p95 and 2 * engine_p95 + 10),
        "no_clips_dropped": row["clips_dropped"] == 0,
        "no_frames_lost": row["frames_lost"] == 0,
        "idle_cpu_le_2_percent_per_process": all(value <= IDLE_TARGET_PERCENT
                                                 for value in row["idle_cpu_percent"].values()),
    }


def build_row(topology: str, backend: str, camera: CameraInput, measured: dict, engine: dict, idle: dict,
              settings: ClipSettings) -> dict:
    frames_published = len(measured["stamps"])
    row = {
        "topology": topology, "camera": camera.name, "rate_hz": camera.rate_hz, "backend": backend,
        "engine_p50_ms": engine["engine_p50_ms"], "engine_p95_ms": engine["engine_p95_ms"],
        # The same clips one per clip interval, as the node calls the engine (pipeline_engine.time_clips_paced).
        "engine_paced_p50_ms": engine.get("engine_paced_p50_ms"), "engine_paced_p95_ms": engine.get("engine_paced_p95_ms"),
        "latency_p50_ms": percentile(measured["latencies_ms"], 50),
        "latency_p95_ms": percentile(measured["latencies_ms"], 95),
        **measured["node_side"],
        "clips_expected": count_clips(measured["stamps"], settings),
        "clips_published": len(measured["latencies_ms"]),
        "clips_dropped": measured["clips_dropped"],
        "frames_published": frames_published,
        "frames_received": measured["images_received"],
        "frames_lost": frames_published - measured["images_received"],
        "cpu_percent": measured["cpu_percent"], "rss_mb": measured["rss_mb"],
        "idle_cpu_percent": idle["cpu_percent"],
        "engine_clips_timed": engine["engine_clips_timed"],
        # How shared the machine was: CPU the hypervisor gave elsewhere, while timing and while streaming.
        "engine_machine_steal_percent": engine["engine_machine_steal_percent"],
        "machine_steal_percent": measured["machine_steal_percent"],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    row["nodes_add_p50_ms"] = difference(row["latency_p50_ms"], row["engine_p50_ms"])
    row["nodes_add_to_paced_engine_p50_ms"] = difference(row["latency_p50_ms"], row["engine_paced_p50_ms"])
    row["targets"] = evaluate_targets(row)
    return row


def difference(total: float | None, part: float | None) -> float | None:
    return None if total is None or part is None else round(total - part, 2)


def run_session(topology: str, backend: str, options: BenchOptions, config: Path, cameras: dict[str, CameraInput],
                engine_stats: dict, settings: ClipSettings, work_dir: Path, env: dict[str, str],
                limit_cameras: dict[str, CameraInput], say) -> tuple[list, dict, dict | None]:
    """Start the nodes of one topology with one backend, measure them idle, then under each camera, then
    (--find-limits) search their limit on the same processes."""
    node_config = write_bench_config(config, backend, options.model_dir, work_dir)
    probe = BenchProbe(demo_bag_path() if "demo_bag" in cameras else None)
    processes = NodeProcesses()
    try:
        processes.start(topology, node_config, CAMERA_TOPIC, work_dir, env)
        probe.wait_until_ready(processes)
        idle = measure_idle(probe, processes, options.idle_s)

        def play(camera: CameraInput) -> dict:
            engine = engine_stats[(backend, camera.name)]  # timed on this camera's frames
            quiet_s = max(DRAIN_QUIET_S, 3e-3 * (engine["engine_p95_ms"] or 0.0))
            measured = measure_stream(probe, processes, camera, quiet_s)
            return build_row(topology, backend, camera, measured, engine, idle, settings)

        rows, switch, limits = [], LiveViewSwitch(probe.node) if options.live_view else None, None
        for camera in cameras.values():
            for live_view in live_view_states(options.live_view):
                if switch is not None:
                    switch.switch(probe, processes, live_view)
                    before = switch.counters(probe)
                rows.append(play(camera))
                if switch is not None:
                    rows[-1].update(switch.row_values(live_view, before, switch.counters(probe)))
        if options.limits is not None:
            if switch is not None:
                switch.switch(probe, processes, False)  # the limits as deployed: live view off
            say(f"{topology} / {backend}: searching the limits ...")
            limits = {"topology": topology, "backend": backend,
                      **find_limits(play, limit_cameras, options.limits, say)}
    finally:
        processes.stop()
        probe.close()
    return rows, {"topology": topology, "backend": backend, "idle_s": options.idle_s, **idle}, limits


# ---------------------------------------------------------------------------------------------
# The whole run, the report
# ---------------------------------------------------------------------------------------------
def run_pipeline_benchmark(options: BenchOptions, console=None) -> dict:
    from vljepa_ros.paths import default_config_file, resolve_model_dir
    from vljepa_ros.runtime import load_assets
    from vljepa_ros.runtime.benchmark import machine_info

    started = time.monotonic()
    say = console.print if console is not None else (lambda *args: None)
    # Fast DDS reads its profile once per process, when the first participant is made (BenchProbe):
    # this process publishes the cameras, so it needs the profile as much as the nodes do.
    env = child_environment(options.transport_profile)
    os.environ.clear()  # env is this environment with the profile variables set or removed
    os.environ.update(env)
    config = options.config or default_config_file()
    model_dir = options.model_dir or resolve_model_dir(perception_parameters(config).get("model_dir"))
    machine, revision = machine_info(), source_revision()  # what ran: the nodes run this checkout's code
    settings = clip_settings(config, model_dir)
    say(f"preparing cameras {', '.join(options.cameras)} ({options.duration_s:g} s each) ...")
    cameras = prepare_cameras(options.cameras, options.duration_s)
    limit_cameras = prepare_limit_cameras(options.limits) if options.limits else {}  # timed here, played later
    say(f"timing the bare engine ({', '.join(options.backends)}) on the same clips ...")
    engine_stats, engine_threads = time_engines(model_dir, options.backends, {**cameras, **limit_cameras}, settings,
                                                perception_parameters(config))
    work_dir = Path(tempfile.mkdtemp(prefix="vljepa_pipeline_bench_"))
    rows, idle, limits = [], [], []
    try:
        for topology in options.topologies:
            for backend in options.backends:
                say(f"{topology} / {backend}: starting the nodes (logs in {work_dir}) ...")
                session_rows, session_idle, session_limits = run_session(
                    topology, backend, options, config, cameras, engine_stats, settings, work_dir, env, limit_cameras,
                    say)
                rows += session_rows
                idle.append(session_idle)
                limits += [session_limits] if session_limits else []
    except BaseException:
        say(f"[red]failed[/]; node logs kept in {work_dir}")
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    live_view = live_view_costs(rows, options.duration_s) if options.live_view else None
    return {"machine": machine, "pipeline": rows, "idle": idle, "live_view": live_view,
            "limits": limits if options.limits else None, "config": {
        "deployment_config": str(config), "model_dir": str(model_dir), "model_id": load_assets(model_dir).model_id,
        "backends": list(options.backends), "topologies": list(options.topologies),
        "cameras": {name: {"rate_hz": camera.rate_hz, "frames_per_stream": camera.frame_count}
                    for name, camera in cameras.items()},
        "duration_s": options.duration_s, "idle_s": options.idle_s,
        "clip": {"frames_per_clip": settings.frames_per_clip, "stride_frames": settings.stride_frames,
                 "sample_period_s": settings.sample_period_s, "query": settings.query},
        "image_queue_depth": perception_parameters(config).get("image_queue_depth"),
        "camera_topic": CAMERA_TOPIC, "camera_qos": "sensor data: best effort, keep last 5",
        "transport_profile": str(options.transport_profile) if options.transport_profile else None,
        "limits": options.limits.report() if options.limits else None,
        "engine_threads": engine_threads, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "latency": "frame publish (raw camera: just before publish; bag: just after) -> embedding callback here",
        "cpu_percent": "100 = one core busy, over the publishing window; idle: over --idle-s with no input",
        "rss_mb": "peak VmRSS sampled about every 0.1 s while publishing",
        "source": revision, "wall_time_s": round(time.monotonic() - started, 1),
    }}


def run_and_report(options: BenchOptions) -> int:
    """The CLI entry (`vljepa-ros bench --pipeline`): run, write the JSON, print the table."""
    import json
    import sys

    from domain_coordinator import domain_id
    from rich.console import Console

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    # SIGTERM unwinds like Ctrl-C, so every node process is stopped; a SIGINT inherited as ignored
    # (a background job) is restored, so the nodes this process starts take SIGINT again.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    with domain_id() as reserved:  # keep the bench's traffic apart from anything else on the machine
        os.environ.setdefault("ROS_DOMAIN_ID", str(reserved))
        report = run_pipeline_benchmark(options, console)
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    options.json_path.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report, console)
    if report["live_view"]:
        print_live_view_costs(report, console)
    if report["limits"]:
        print_limits(report, console)
    console.print(f"wrote {options.json_path}")
    return 0
