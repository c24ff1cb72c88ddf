"""`vljepa-ros bench --pipeline`, briefly: the tiny model, the single-process bring-up, the demo bag,
torch, a few seconds. Checks that the report has every key and that its counts agree with each other;
never a speed target (the machine's speed must not decide a test)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from ros_testing import REPO_ROOT  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

BENCH_TIMEOUT_S = 240.0  # generous: the bench itself takes ~45 s on 2 idle cores
ROW_KEYS = {"topology", "camera", "rate_hz", "backend", "engine_p50_ms", "engine_p95_ms", "latency_p50_ms",
            "latency_p95_ms", "clips_expected", "clips_published", "clips_dropped", "frames_published",
            "frames_lost", "cpu_percent", "rss_mb", "idle_cpu_percent", "targets", "node_latency_p50_ms",
            "node_latency_p95_ms", "node_engine_p50_ms", "node_engine_p95_ms", "engine_paced_p50_ms",
            "engine_paced_p95_ms", "nodes_add_p50_ms", "nodes_add_to_paced_engine_p50_ms"}
TARGET_KEYS = {"latency_p50_le_engine_p50_plus_5ms", "latency_p95_le_2x_engine_p95_plus_10ms", "no_clips_dropped",
               "no_frames_lost", "idle_cpu_le_2_percent_per_process"}


def run_bench(arguments: list[str]) -> str:
    """The bench as a user runs it; on a timeout it gets SIGINT, so it stops the nodes it started."""
    command = [sys.executable, "-m", "vljepa_ros.cli", "bench", "--pipeline", *arguments]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        output, _ = process.communicate(timeout=BENCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"the pipeline bench ran over {BENCH_TIMEOUT_S:.0f} s:\n{output}")
    assert process.returncode == 0, output
    return output


def test_pipeline_bench_reports_consistent_counts(tiny_model_dir, tmp_path):
    report_path = tmp_path / "pipeline.json"
    output = run_bench(["--json", str(report_path), "--model", str(tiny_model_dir), "--topologies",
                        "single_process,multi_process", "--cameras", "demo_bag", "--backends", "torch",
                        "--duration-s", "3", "--idle-s", "1"])
    report = json.loads(report_path.read_text())
    assert {"machine", "pipeline", "idle", "config"} <= set(report)
    assert report["machine"]["cpu_model"]
    assert "pipeline benchmark" in output  # the table

    # The bring-up as users run it: its default, one process per node, and --single-process.
    processes = {"single_process": {"bringup"},
                 "multi_process": {"perception_node", "monitor_node", "action_inference_node"}}
    assert [row["topology"] for row in report["pipeline"]] == list(processes)
    for row in report["pipeline"]:
        check_row(row, report, processes[row["topology"]])
    assert [(idle["topology"], idle["backend"], set(idle["cpu_percent"])) for idle in report["idle"]] == [
        (topology, "torch", names) for topology, names in processes.items()]
    config = report["config"]
    assert config["duration_s"] == 3.0 and config["idle_s"] == 1.0
    assert config["clip"]["frames_per_clip"] > 0 and config["engine_threads"]["torch"] >= 1


def check_row(row: dict, report: dict, process_names: set[str]) -> None:
    assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
    assert (row["camera"], row["backend"]) == ("demo_bag", "torch")
    assert row["rate_hz"] == pytest.approx(10.0, rel=0.05)  # the bag's rate
    assert row["frames_published"] == report["config"]["cameras"]["demo_bag"]["frames_per_stream"] > 0
    assert 0 <= row["frames_lost"] <= row["frames_published"]

    # Every clip the node cut is either published or counted as dropped; lost frames cut fewer clips.
    assert row["clips_expected"] > 0
    assert 0 <= row["clips_dropped"] and 0 <= row["clips_published"]
    if row["frames_lost"] == 0:
        assert row["clips_published"] + row["clips_dropped"] == row["clips_expected"]
    else:
        assert row["clips_published"] + row["clips_dropped"] <= row["clips_expected"]

    assert 0 < row["engine_p50_ms"] <= row["engine_p95_ms"]
    assert 0 < row["engine_paced_p50_ms"] <= row["engine_paced_p95_ms"]
    if row["clips_published"]:
        assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"]
        # The perception node's own account of its last clips: the engine call, inside received -> published.
        assert 0 < row["node_engine_p50_ms"] <= row["node_engine_p95_ms"]
        assert 0 < row["node_latency_p50_ms"] <= row["node_latency_p95_ms"]
        assert row["nodes_add_p50_ms"] == pytest.approx(row["latency_p50_ms"] - row["engine_p50_ms"], abs=0.02)
        assert row["nodes_add_to_paced_engine_p50_ms"] == pytest.approx(
            row["latency_p50_ms"] - row["engine_paced_p50_ms"], abs=0.02)
    for per_process in (row["cpu_percent"], row["rss_mb"], row["idle_cpu_percent"]):
        assert set(per_process) == process_names
        assert all(value >= 0 for value in per_process.values())
    assert all(value > 0 for value in row["rss_mb"].values())
    assert set(row["targets"]) == TARGET_KEYS
    assert all(isinstance(met, bool) for met in row["targets"].values())
