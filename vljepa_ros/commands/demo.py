"""`vljepa-ros demo`, the end-to-end demo: a bag of the robot world through the three nodes over real topics.

    vljepa-ros demo                     # the bag and model shipped with the package
    vljepa-ros demo --bag BAG --model DIR --rate 2

The three nodes run as `vljepa-ros bringup` runs them, one process each (from a copy of the deployment
YAML naming the model). This process replays the bag with its original timing, records
the pipeline's outputs to an mcap bag, prints a timeline of decoded events and action hypotheses,
and ends with a summary: frames in, embeddings out, decodes, decode reduction vs uniform 1 Hz
decoding, frame->embedding latency, drops. Outputs: the bag, a timeline PNG, a summary JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

DEMO_NAMESPACE = "vljepa"
READY_DEADLINE_S = 120.0  # the node process imports torch and loads three models on 2 cores
DRAIN_QUIET_S = 2.0  # after the last frame, wait until no embedding arrived for this long
LOCKSTEP_DEADLINE_S = 60.0  # one clip's inference, on the busiest machine


@dataclass
class TimelineEntry:
    time_s: float  # seconds since the bag's first frame (the segment's end)
    kind: str  # "event" (decoded text) | "actions" (the top action hypotheses at that time)
    text: str


@dataclass
class DemoResult:
    summary: dict
    embeddings: list = field(default_factory=list)  # SemanticEmbedding messages, in arrival order
    events: list = field(default_factory=list)  # SemanticEvent messages
    hypotheses: list = field(default_factory=list)  # ActionHypotheses messages
    timeline: list[TimelineEntry] = field(default_factory=list)


def write_demo_config(config: Path, model_dir: Path | None, out: Path) -> Path:
    """The deployment YAML with the chosen model, written beside the outputs (what ran is on disk)."""
    parameters = yaml.safe_load(config.read_text())
    if model_dir is not None:
        for section in parameters.values():
            section["ros__parameters"]["model_dir"] = str(model_dir.resolve())
    path = out / "demo_config.yaml"
    path.write_text(yaml.safe_dump(parameters, sort_keys=False))
    return path


def start_pipeline(config: Path, camera_topic: str, log_path: Path) -> subprocess.Popen:
    from vljepa_ros.paths import SOURCE_ROOT
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    if (SOURCE_ROOT / "package.xml").is_file():  # a source checkout: run its code, not an older install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "vljepa_ros.nodes.bringup", "--config", str(config),
               "--image-topic", camera_topic, "--namespace", DEMO_NAMESPACE]
    with open(log_path, "w") as log:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


class DemoSession:
    """The demo's own node: replays the bag, listens to the pipeline's outputs and diagnostics, and
    records them. `run_demo` drives it through its phases: ready, replay, drain and flush."""

    def __init__(self, bag: Path, out: Path, demo_config: Path, rate: float, console,
                 lockstep_clip_ends: Collection[int] | None) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent
        from vljepa_ros.nodes.bag_replay import BagReplayer
        from vljepa_ros.nodes.common import OUTPUT_QOS, STREAM_INPUT_QOS

        self.out, self.rate, self.console = out, rate, console
        self.lockstep_clip_ends = lockstep_clip_ends
        self.result = DemoResult(summary={})
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.publish_times: dict[int, float] = {}  # frame stamp -> monotonic publish time (latency reference)
        self.latencies: list[float] = []
        self.first_stamp_ns: int | None = None
        self.embedded = threading.Condition()  # notified by each embedding; the lockstep replay waits on it
        self.embedded_ends: set[int] = set()
        self.replay_stats = self.record_stats = None

        self.pipeline: subprocess.Popen | None = None
        self.recorder = None
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("vljepa_demo", namespace=DEMO_NAMESPACE, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        try:
            # The bag's camera topic as recorded (CompressedImage goes out on <topic>/compressed); the
            # perception and action nodes subscribe to both forms of it.
            self.replayer = BagReplayer(self.node, bag, rate=rate, wait_for_subscribers=2,
                                        on_publish=lambda count, stamp_ns: self._on_publish(stamp_ns))
            camera_topic = self.replayer.output_topic.removesuffix("/compressed")
            self.pipeline = start_pipeline(demo_config, camera_topic, out / "pipeline.log")
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
            self.node.create_subscription(SemanticEmbedding, "embedding", self._on_embedding, STREAM_INPUT_QOS)
            self.node.create_subscription(SemanticEvent, "event", self._on_event, OUTPUT_QOS)
            self.node.create_subscription(ActionHypotheses, "action_hypotheses", self.result.hypotheses.append,
                                          OUTPUT_QOS)
        except BaseException:
            self.close()
            raise

    # --- callbacks (the replay thread for _on_publish, the executor for the rest) ---
    def _on_publish(self, stamp_ns: int) -> None:
        self.publish_times[stamp_ns] = time.monotonic()
        if self.first_stamp_ns is None:
            self.first_stamp_ns = stamp_ns
        if self.lockstep_clip_ends is not None and stamp_ns in self.lockstep_clip_ends:
            with self.embedded:
                if not self.embedded.wait_for(lambda: stamp_ns in self.embedded_ends, LOCKSTEP_DEADLINE_S):
                    raise TimeoutError(f"no embedding for the clip ending at {stamp_ns} within {LOCKSTEP_DEADLINE_S} s")

    def _on_diagnostics(self, message) -> None:
        for status in message.status:
            if status.name.startswith(f"/{DEMO_NAMESPACE}/"):
                self.diagnostics[status.name.rsplit("/", 1)[-1]] = {
                    "message": status.message, **{kv.key: kv.value for kv in status.values}}

    def _on_embedding(self, message) -> None:
        from vljepa_ros.nodes.common import stamp_to_ns
        self.result.embeddings.append(message)
        with self.embedded:
            self.embedded_ends.add(stamp_to_ns(message.clip_end))
            self.embedded.notify_all()
        published = self.publish_times.get(stamp_to_ns(message.clip_end))
        if published is not None:
            self.latencies.append(time.monotonic() - published)

    def _on_event(self, message) -> None:
        self.result.events.append(message)
        start, end = self._relative_s(message.segment_start), self._relative_s(message.segment_end)
        actions = self._top_actions()
        self.result.timeline.append(TimelineEntry(end, "event", message.text))
        if actions:
            self.result.timeline.append(TimelineEntry(end, "actions", actions))
        familiarity = f", familiarity {message.familiarity:.3f}" if message.familiarity >= 0.0 else ""
        text = message.text if message.in_distribution else f"[yellow]{message.text}[/]"
        self.console.print(f"[bold cyan]{start:5.1f}-{end:5.1f} s[/]  [bold]{text}[/] "
                           f"[dim](score {message.text_score:.2f}, {message.trigger}{familiarity})[/]")
        if actions:
            self.console.print(f"{'':14}[magenta]actions:[/] {actions}")

    def _relative_s(self, stamp) -> float:
        from vljepa_ros.nodes.common import stamp_to_ns
        return 0.0 if self.first_stamp_ns is None else (stamp_to_ns(stamp) - self.first_stamp_ns) / 1e9

    def _top_actions(self) -> str:
        if not self.result.hypotheses:
            return ""
        latest = self.result.hypotheses[-1]
        return ", ".join(f"{action} ({probability:.2f})" for action, probability
                         in list(zip(latest.actions, latest.probabilities))[:3])

    # --- phases ---
    def wait_until_ready(self) -> None:
        from vljepa_ros.nodes.recorder import BagRecorder
        self.recorder = BagRecorder(self.node, self.out / "pipeline_outputs")  # the pipeline's three outputs
        deadline = time.monotonic() + READY_DEADLINE_S
        ready = {"perception_node": "active", "monitor_node": "running", "action_inference_node": "running"}
        while not all(self.diagnostics.get(name, {}).get("message") == state for name, state in ready.items()):
            if self.pipeline.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the nodes did not come up (diagnostics: {self.diagnostics}); "
                                   f"see {self.out / 'pipeline.log'}")
            self.executor.spin_once(timeout_sec=0.1)

    def replay(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        replayer = self.replayer
        self.console.print(f"replaying {replayer.frame_count} frames ({replayer.bag_duration_s:.0f} s at rate "
                           f"{self.rate:g}); each line: segment time span, decoded text (score, trigger, "
                           "familiarity; an unfamiliar scene in yellow), top action hypotheses")
        with Progress(TextColumn("replaying"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                      TextColumn("{task.fields[embeddings]} embeddings, {task.fields[events]} events"),
                      TimeRemainingColumn(), console=self.console, transient=True) as progress:
            task = progress.add_task("replay", total=replayer.frame_count, embeddings=0, events=0)
            replayer.start()
            while not replayer.done():
                self.executor.spin_once(timeout_sec=0.05)
                progress.update(task, completed=len(self.publish_times), embeddings=len(self.result.embeddings),
                                events=len(self.result.events))
            self.replay_stats = replayer.wait()

    def drain_and_flush(self) -> None:
        """Wait for the clips still in inference, then have the monitor publish its open segment."""
        from std_srvs.srv import Trigger
        self._spin_until(lambda: False, DRAIN_QUIET_S, quiet_on=lambda: len(self.result.embeddings))
        flush = self.node.create_client(Trigger, "monitor_node/flush")
        if flush.wait_for_service(timeout_sec=10.0):
            future = flush.call_async(Trigger.Request())
            self._spin_until(future.done, 30.0)
        self._spin_until(lambda: False, 1.0)  # the flushed event

    def _spin_until(self, done, timeout_s: float, quiet_on=None) -> None:
        """Spin until done() or timeout_s passed; with quiet_on, timeout_s counts from quiet_on()'s last change."""
        last, since = None, time.monotonic()
        while not done() and time.monotonic() - since < timeout_s:
            if quiet_on is not None and quiet_on() != last:
                last, since = quiet_on(), time.monotonic()
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        import rclpy
        from vljepa_ros.nodes.common import stop_process
        self.record_stats = self.recorder.close() if self.recorder is not None else None
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        if self.pipeline is not None:
            stop_process(self.pipeline)


def run_demo(bag: Path, out: Path, model_dir: Path | None = None, config: Path | None = None,
             rate: float = 1.0, quiet: bool = False, lockstep_clip_ends: Collection[int] | None = None) -> DemoResult:
    """Replay `bag` through the nodes. With `lockstep_clip_ends` (the last-frame stamps of the clips
    the perception node will emit), the replay waits after each such frame until its embedding has
    arrived: at most one clip is in flight, so no clip can be replaced and no frame can overflow a
    queue however slow the machine (for exact node-vs-offline comparisons; latency then includes no
    queueing)."""
    from rich.console import Console

    from vljepa_ros.paths import default_config_file

    # A log file or CI is no terminal: keep timeline lines whole instead of wrapping them at 80 columns.
    console = Console(quiet=quiet, highlight=False, width=None if sys.stdout.isatty() else 140)
    out.mkdir(parents=True, exist_ok=True)
    demo_config = write_demo_config(config or default_config_file(), model_dir, out)
    session = DemoSession(bag, out, demo_config, rate, console, lockstep_clip_ends)
    try:
        console.print(f"[bold]vljepa_ros demo[/]: {bag} -> perception, monitor, action inference "
                      f"(node log: {out / 'pipeline.log'})")
        with console.status("starting the nodes and loading the model ..."):
            session.wait_until_ready()
        session.replay()
        session.drain_and_flush()
    finally:
        session.close()

    result = session.result
    summary = summarize(session.replay_stats, result, session.latencies, session.diagnostics)
    record_stats = session.record_stats
    summary["outputs"] = {"bag": str(record_stats.bag_path if record_stats is not None else out / "pipeline_outputs"),
                          "timeline_png": str(out / "timeline.png"), "summary_json": str(out / "summary.json"),
                          "pipeline_log": str(out / "pipeline.log"), "config": str(demo_config)}
    summary["bag"] = str(bag)
    result.summary = summary
    plot_timeline(bag, result, out / "timeline.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(console, summary)
    return result


def summarize(replay_stats, result: DemoResult, latencies: list[float], diagnostics: dict) -> dict:
    from vljepa_ros.nodes.common import stamp_to_ns
    perception = diagnostics.get("perception_node", {})
    stream_s = replay_stats.bag_duration_s if replay_stats else 0.0
    decodes = sum(1 for event in result.events if event.text and event.decoder != "none")
    uniform_1hz_decodes = max(1, int(np.floor(stream_s)) + 1)  # one decode per second of stream
    first = min((stamp_to_ns(e.clip_start) for e in result.embeddings), default=0)
    last = max((stamp_to_ns(e.clip_end) for e in result.embeddings), default=0)
    published = replay_stats.published if replay_stats else 0
    # The last diagnostics arrive after the drain (>= DRAIN_QUIET_S of quiet), so the count is final.
    received = int(perception.get("images_received", 0))
    lost_in_transport = max(0, published - received)  # best-effort frames DDS dropped before the callback
    return {
        "frames": published,
        "frames_received": received,
        "frames_lost_in_transport": lost_in_transport,
        "stream_duration_s": round(stream_s, 3),
        "embeddings": len(result.embeddings),
        "embedding_span_s": round((last - first) / 1e9, 3),
        "decodes": decodes,
        "uniform_1hz_decodes": uniform_1hz_decodes,
        "decode_reduction_vs_uniform_1hz": round(uniform_1hz_decodes / decodes, 3) if decodes else None,
        "events_unfamiliar": sum(1 for event in result.events if not event.in_distribution),
        "embeddings_unfamiliar": sum(1 for embedding in result.embeddings if not embedding.in_distribution),
        "action_hypotheses": len(result.hypotheses),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)) * 1e3, 2) if latencies else None,
        "latency_p95_ms": round(float(np.percentile(latencies, 95)) * 1e3, 2) if latencies else None,
        "drops": int(perception.get("clips_dropped", 0)) + int(perception.get("images_rejected", 0))
        + lost_in_transport,
        "model_id": perception.get("model_id", ""),
        "backend": perception.get("backend", ""),
    }


def plot_timeline(bag: Path, result: DemoResult, path: Path) -> None:
    """The evaluation's timeline plot for what the nodes published: consecutive-embedding distance,
    ground-truth boundaries (when the bag has them), and each decode with its text."""
    from vljepa_ros.evaluation.plots import plot_timeline as plot
    from vljepa_ros.nodes.common import from_float32_field, stamp_to_ns
    from vljepa_ros.world.bag_io import read_groundtruth

    embeddings = sorted(result.embeddings, key=lambda m: stamp_to_ns(m.clip_end))
    if not embeddings:
        return
    groundtruth = read_groundtruth(bag) or {}
    origin = int(groundtruth.get("first_stamp_ns") or stamp_to_ns(embeddings[0].clip_start))
    seconds = lambda stamp_ns: (stamp_ns - origin) / 1e9  # noqa: E731
    plot(np.array([seconds(stamp_to_ns(m.clip_end)) for m in embeddings]),
         np.stack([from_float32_field(m.embedding) for m in embeddings]),
         [seconds(int(segment["start_ns"])) for segment in groundtruth.get("segments", [])[1:]],
         np.array([seconds(stamp_to_ns(event.segment_end)) for event in result.events]),
         [event.text for event in result.events], path,
         title=f"vljepa_ros demo: {bag.name} through the nodes (decodes at segment ends)")


def print_summary(console, summary: dict) -> None:
    from rich.table import Table
    table = Table(title="demo summary", show_header=False)
    for key in ("frames", "embeddings", "embeddings_unfamiliar", "decodes", "events_unfamiliar",
                "decode_reduction_vs_uniform_1hz", "action_hypotheses",
                "latency_p50_ms", "latency_p95_ms", "drops", "model_id", "backend"):
        table.add_row(key, str(summary[key]))
    console.print(table)
    for name, path in summary["outputs"].items():
        console.print(f"{name:>13}: {path}")


def default_demo_bag() -> Path:
    from vljepa_ros.paths import find_share_file
    return find_share_file("data/demo_tabletop")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="replay the robot-world bag through the three nodes",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bag", type=Path, default=None, help="image bag (default: the shipped demo bag)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    parser.add_argument("--config", type=Path, default=None, help="deployment YAML (default: config/vljepa.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: output/demo-<time>)")
    parser.add_argument("--rate", type=float, default=1.0, help="replay rate factor")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from domain_coordinator import domain_id
    out = args.out or Path("output") / time.strftime("demo-%Y%m%d-%H%M%S")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    with domain_id() as reserved:  # keep the demo's traffic apart from anything else on the machine
        os.environ.setdefault("ROS_DOMAIN_ID", str(reserved))
        run_demo(args.bag or default_demo_bag(), out, args.model, args.config, args.rate)
    return 0
