"""`bench --pipeline --live-view`: how the live view's cost is worked out from the rows (the run itself is
test_pipeline_bench.py's)."""
from __future__ import annotations

import pytest

from vljepa_ros.commands.pipeline_live_view import live_view_costs, live_view_states, monitor_process


def row(topology: str, camera: str, live_view: bool, cpu: dict, rendered: int = 0, render_ms=None) -> dict:
    return {"topology": topology, "backend": "torch", "camera": camera, "cpu_percent": cpu,
            "latency_p50_ms": 30.0 if live_view else 28.0, "live_view": live_view,
            "live_view_frames_rendered": rendered, "live_view_render_p50_ms": render_ms}


def test_each_camera_is_played_off_then_on_only_when_asked():
    assert live_view_states(False) == (False,)
    assert live_view_states(True) == (False, True)


def test_the_monitor_process_is_its_own_or_the_bringup():
    assert monitor_process({"perception_node": 30.0, "monitor_node": 2.0, "action_inference_node": 9.0}) == \
        "monitor_node"
    assert monitor_process({"bringup": 45.0}) == "bringup"


def test_the_cost_per_frame_is_the_extra_cpu_over_the_rendered_frames():
    three = {"perception_node": 30.0, "action_inference_node": 9.0}
    rows = [row("multi_process", "demo_bag", False, {**three, "monitor_node": 1.0}),
            row("multi_process", "demo_bag", True, {**three, "monitor_node": 6.0}, rendered=50, render_ms=4.2),
            row("single_process", "demo_bag", False, {"bringup": 40.0}),
            row("single_process", "demo_bag", True, {"bringup": 44.0}, rendered=0)]
    multi, single = live_view_costs(rows, duration_s=10.0)
    assert (multi["process"], multi["cpu_percent_off"], multi["cpu_percent_on"]) == ("monitor_node", 1.0, 6.0)
    assert multi["frames_rendered_per_s"] == 5.0
    # 5 % of a core = 50 ms of CPU per second, over 5 frames per second.
    assert multi["cpu_ms_per_frame"] == pytest.approx(10.0)
    assert multi["render_p50_ms"] == 4.2 and multi["latency_p50_ms_off_on"] == [28.0, 30.0]
    assert single["process"] == "bringup" and single["cpu_ms_per_frame"] is None  # nothing rendered: no per-frame cost


@pytest.mark.ros
@pytest.mark.slow
def test_the_bench_plays_each_camera_with_the_live_view_off_then_on(tiny_model_dir, tmp_path):
    """The whole --live-view path: switched on the running monitor, the bag replayed a second time, views received."""
    import json

    pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")
    from test_pipeline_bench import run_bench

    report_path = tmp_path / "pipeline.json"
    output = run_bench(["--json", str(report_path), "--model", str(tiny_model_dir), "--topologies", "single_process",
                        "--cameras", "demo_bag", "--backends", "torch", "--duration-s", "3", "--idle-s", "1",
                        "--live-view"])
    report = json.loads(report_path.read_text())
    off, on = report["pipeline"]
    assert (off["live_view"], on["live_view"]) == (False, True) and off["camera"] == on["camera"] == "demo_bag"
    assert off["frames_published"] == on["frames_published"] > 0  # the bag played in full both times
    assert off["live_view_frames_rendered"] == off["live_view_frames_received"] == 0
    assert on["live_view_frames_rendered"] > 0 and on["live_view_frames_received"] > 0
    assert on["live_view_render_p50_ms"] > 0 and off["live_view_render_p50_ms"] is None
    [cost] = report["live_view"]
    assert cost["process"] == "bringup" and cost["frames_rendered_per_s"] > 0
    assert "live view cost" in output
