"""The end-to-end demo: a bag of the robot world through the three nodes over real topics.

    vljepa-ros demo                     # the bag and model shipped with the package
    vljepa-ros demo --bag BAG --model DIR --rate 2

The three nodes run in a separate process (the single-process bring-up, from a copy of the
deployment YAML naming the model). This process replays the bag with its original timing, records
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


def run_demo(bag: Path, out: Path, model_dir: Path | None = None, config: Path | None = None,
             rate: float = 1.0, quiet: bool = False, lockstep_clip_ends: Collection[int] | None = None) -> DemoResult:
    """Replay `bag` through the nodes. With `lockstep_clip_ends` (the last-frame stamps of the clips
    the perception node will emit), the replay waits after each such frame until its embedding has
    arrived: at most one clip is in flight, so no clip can be replaced and no frame can overflow a
    queue however slow the machine (for exact node-vs-offline comparisons; latency then includes no
    queueing)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from std_srvs.srv import Trigger

    from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent
    from vljepa_ros.nodes.bag_replay import BagReplayer
    from vljepa_ros.nodes.common import OUTPUT_QOS, STREAM_INPUT_QOS, stamp_to_ns, stop_process
    from vljepa_ros.nodes.recorder import BagRecorder
    from vljepa_ros.paths import default_config_file

    # A log file or CI is no terminal: keep timeline lines whole instead of wrapping them at 80 columns.
    console = Console(quiet=quiet, highlight=False, width=None if sys.stdout.isatty() else 140)
    out.mkdir(parents=True, exist_ok=True)
    demo_config = write_demo_config(config or default_config_file(), model_dir, out)

    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("vljepa_demo", namespace=DEMO_NAMESPACE, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    # The bag's camera topic as recorded (CompressedImage goes out on <topic>/compressed); the
    # perception and action nodes subscribe to both forms of it.
    replayer = BagReplayer(node, bag, rate=rate, on_publish=lambda count, stamp_ns: on_publish(stamp_ns),
                           wait_for_subscribers=2)
    camera_topic = replayer.output_topic.removesuffix("/compressed")
    pipeline = start_pipeline(demo_config, camera_topic, out / "pipeline.log")
    result = DemoResult(summary={})
    diagnostics: dict[str, dict[str, str]] = {}
    publish_times: dict[int, float] = {}  # frame stamp -> monotonic publish time (latency reference)
    latencies: list[float] = []
    first_stamp_ns: list[int] = []

    embedded = threading.Condition()  # notified by each embedding; the lockstep replay waits on it
    embedded_ends: set[int] = set()

    def on_publish(stamp_ns: int) -> None:  # called by the replay thread after each frame
        publish_times[stamp_ns] = time.monotonic()
        if not first_stamp_ns:
            first_stamp_ns.append(stamp_ns)
        if lockstep_clip_ends is not None and stamp_ns in lockstep_clip_ends:
            with embedded:
                if not embedded.wait_for(lambda: stamp_ns in embedded_ends, LOCKSTEP_DEADLINE_S):
                    raise TimeoutError(f"no embedding for the clip ending at {stamp_ns} within {LOCKSTEP_DEADLINE_S} s")

    def on_diagnostics(message: DiagnosticArray) -> None:
        for status in message.status:
            if status.name.startswith(f"/{DEMO_NAMESPACE}/"):
                diagnostics[status.name.rsplit("/", 1)[-1]] = {"message": status.message,
                                                                **{kv.key: kv.value for kv in status.values}}

    def relative_s(stamp) -> float:
        return (stamp_to_ns(stamp) - first_stamp_ns[0]) / 1e9 if first_stamp_ns else 0.0

    def on_embedding(message: SemanticEmbedding) -> None:
        result.embeddings.append(message)
        with embedded:
            embedded_ends.add(stamp_to_ns(message.clip_end))
            embedded.notify_all()
        published = publish_times.get(stamp_to_ns(message.clip_end))
        if published is not None:
            latencies.append(time.monotonic() - published)

    def top_actions() -> str:
        if not result.hypotheses:
            return ""
        latest = result.hypotheses[-1]
        return ", ".join(f"{action} ({probability:.2f})" for action, probability
                         in list(zip(latest.actions, latest.probabilities))[:3])

    def on_event(message: SemanticEvent) -> None:
        result.events.append(message)
        start, end = relative_s(message.segment_start), relative_s(message.segment_end)
        actions = top_actions()
        result.timeline.append(TimelineEntry(end, "event", message.text))
        if actions:
            result.timeline.append(TimelineEntry(end, "actions", actions))
        console.print(f"[bold cyan]{start:5.1f}-{end:5.1f} s[/]  [bold]{message.text}[/] "
                      f"[dim](score {message.text_score:.2f}, {message.trigger})[/]")
        if actions:
            console.print(f"{'':14}[magenta]actions:[/] {actions}")

    def on_hypotheses(message: ActionHypotheses) -> None:
        result.hypotheses.append(message)

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    node.create_subscription(SemanticEmbedding, "embedding", on_embedding, STREAM_INPUT_QOS)
    node.create_subscription(SemanticEvent, "event", on_event, OUTPUT_QOS)
    node.create_subscription(ActionHypotheses, "action_hypotheses", on_hypotheses, OUTPUT_QOS)
    output_bag = out / "pipeline_outputs"
    replay_stats = recorder = None
    try:
        recorder = BagRecorder(node, output_bag, ["embedding", "event", "action_hypotheses"])
        console.print(f"[bold]vljepa_ros demo[/]: {bag} -> perception, monitor, action inference "
                      f"(node log: {out / 'pipeline.log'})")
        with console.status("starting the nodes and loading the model ..."):
            deadline = time.monotonic() + READY_DEADLINE_S
            ready = {"perception_node": "active", "monitor_node": "running", "action_inference_node": "running"}
            while not all(diagnostics.get(name, {}).get("message") == state for name, state in ready.items()):
                if pipeline.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the nodes did not come up (diagnostics: {diagnostics}); "
                                       f"see {out / 'pipeline.log'}")
                executor.spin_once(timeout_sec=0.1)

        console.print(f"replaying {replayer.frame_count} frames ({replayer.bag_duration_s:.0f} s at rate {rate:g}); "
                      "each line: segment time span, decoded text (score, trigger), top action hypotheses")
        with Progress(TextColumn("replaying"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                      TextColumn("{task.fields[embeddings]} embeddings, {task.fields[events]} events"),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task("replay", total=replayer.frame_count, embeddings=0, events=0)
            replayer.start()
            while not replayer.done():
                executor.spin_once(timeout_sec=0.05)
                progress.update(task, completed=len(publish_times), embeddings=len(result.embeddings),
                                events=len(result.events))
            replay_stats = replayer.wait()

        last_count, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < DRAIN_QUIET_S:  # the last clips are still in inference
            if len(result.embeddings) != last_count:
                last_count, quiet_since = len(result.embeddings), time.monotonic()
            executor.spin_once(timeout_sec=0.05)
        flush = node.create_client(Trigger, "monitor_node/flush")
        if flush.wait_for_service(timeout_sec=10.0):
            future = flush.call_async(Trigger.Request())
            deadline = time.monotonic() + 30.0
            while not future.done() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # the flushed event
            executor.spin_once(timeout_sec=0.05)
    finally:
        record_stats = recorder.close() if recorder is not None else None
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        stop_process(pipeline)

    summary = summarize(replay_stats, result, latencies, diagnostics)
    summary["outputs"] = {"bag": str(record_stats.bag_path if record_stats is not None else output_bag),
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
    decodes = sum(1 for event in result.events if event.text)
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
    for key in ("frames", "embeddings", "decodes", "decode_reduction_vs_uniform_1hz", "action_hypotheses",
                "latency_p50_ms", "latency_p95_ms", "drops", "model_id", "backend"):
        table.add_row(key, str(summary[key]))
    console.print(table)
    for name, path in summary["outputs"].items():
        console.print(f"{name:>13}: {path}")


def default_demo_bag() -> Path:
    from vljepa_ros.paths import find_share_file
    return find_share_file("data/demo_tabletop")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vljepa-ros demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bag", type=Path, default=None, help="image bag (default: the shipped demo bag)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    parser.add_argument("--config", type=Path, default=None, help="deployment YAML (default: config/vljepa.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: output/demo-<time>)")
    parser.add_argument("--rate", type=float, default=1.0, help="replay rate factor")
    return parser


def run(args: argparse.Namespace) -> int:
    from domain_coordinator import domain_id
    out = args.out or Path("output") / time.strftime("demo-%Y%m%d-%H%M%S")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    with domain_id() as reserved:  # keep the demo's traffic apart from anything else on the machine
        os.environ.setdefault("ROS_DOMAIN_ID", str(reserved))
        run_demo(args.bag or default_demo_bag(), out, args.model, args.config, args.rate)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
