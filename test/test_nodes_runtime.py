"""The node runtime: nothing polls, model loads end by guard condition, frames are decoded only when used.

In-process (one rclpy context per test), so these run in seconds and need no discovery."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from vljepa_ros.paths import default_config_file  # noqa: E402
from vljepa_ros.stream.clip_assembler import ClipAssembler  # noqa: E402

DIAGNOSTICS_PERIOD_NS = 1_000_000_000
LOAD_DEADLINE_S = 60.0


@pytest.fixture
def context():
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


def test_nodes_keep_no_polling_timer(context, tiny_model_dir, tmp_path):
    """Every timer of the three nodes ticks at most once a second (diagnostics; the action node's
    streaming period): a node that waits for something must not wake up to look."""
    from vljepa_ros.nodes.bringup import create_nodes
    from vljepa_ros.nodes.spinning import make_executors, shutdown_nodes

    config = yaml.safe_load(default_config_file().read_text())
    for section in config.values():
        section["ros__parameters"]["model_dir"] = str(tiny_model_dir)
    config["/**/monitor_node"]["ros__parameters"]["live_view"] = True  # it draws as frames arrive, on no timer
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    nodes = create_nodes(config_path, namespace="runtime_test", context=context)
    executors = make_executors(nodes)
    threads = [threading.Thread(target=executor.spin, daemon=True) for executor in executors]
    try:
        for thread in threads:
            thread.start()
        for node in nodes:  # the loads end through the guard condition, delivered by the executor thread
            assert node.loader.wait(LOAD_DEADLINE_S), f"{node.get_name()} did not finish loading"
        perception, monitor, action = nodes
        assert perception.engine is not None and monitor.decoder is not None and action.engine is not None
        # The bring-up remaps the monitor's image_in (its live view) to the camera, as it does perception's.
        assert {"/camera/image_raw", "/camera/image_raw/compressed"} <= {subscription.topic_name
                                                                        for subscription in monitor.subscriptions}
        periods = {(node.get_name(), timer.timer_period_ns) for node in nodes for timer in node.timers}
    finally:
        shutdown_nodes(nodes, executors, threads)
    assert all(period >= DIAGNOSTICS_PERIOD_NS for _, period in periods), sorted(periods)


def test_background_loader_delivers_on_the_executor_thread(context):
    from vljepa_ros.nodes.common import BackgroundLoader

    node = rclpy.create_node("loader_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    delivered: list[tuple[str, object]] = []
    release = threading.Event()
    loader = BackgroundLoader(node, lambda result: delivered.append((threading.current_thread().name, result)),
                              lambda error: delivered.append((threading.current_thread().name, error)))
    spinner = threading.Thread(target=executor.spin, name="the-executor", daemon=True)
    spinner.start()
    try:
        loader.start(lambda: release.wait(30) and "first")   # superseded: its result must be dropped
        loader.start(lambda: "second")
        assert loader.wait(10.0) and delivered == [("the-executor", "second")]
        release.set()  # the first load ends now; nothing of it may reach the node
        loader.start(lambda: 1 / 0)
        assert loader.wait(10.0)
    finally:
        loader.close()
        executor.shutdown(timeout_sec=1.0)
        spinner.join(2.0)
        node.destroy_node()
    assert delivered[0] == ("the-executor", "second")
    assert len(delivered) == 2 and delivered[1][0] == "the-executor"
    assert isinstance(delivered[1][1], ZeroDivisionError)


def test_clip_assembler_decodes_only_sampled_frames():
    decoded: list[int] = []
    assembler = ClipAssembler(frames_per_clip=2, stride_frames=1, sample_period_s=0.2)

    def frame(stamp_ns: int):
        def decode():
            decoded.append(stamp_ns)
            return np.zeros((4, 4, 3), np.uint8)
        return decode

    stamps = [int(i * 1e8) for i in range(10)]  # 10 Hz, sampled at 5 Hz
    clips = [assembler.push_lazy(frame(stamp), stamp) for stamp in stamps]
    assembler.push_lazy(frame(stamps[3]), stamps[3])  # out of order: never decoded
    assert decoded == stamps[::2]
    assert assembler.frames_skipped == 5 and assembler.dropped_out_of_order == 1
    assert sum(clip is not None for clip in clips) == 4
