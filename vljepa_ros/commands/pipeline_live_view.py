"""`vljepa-ros bench --pipeline --live-view`: what the monitor's live view costs, measured side by side.

Each camera stream is played twice on the same running nodes: live view off, then on, switched at
run time through the monitor's parameter service (as `ros2 param set` does). No restart: both rows
share the processes, the loaded model and the machine's state, and the run takes one stream longer
per camera instead of a second start of the nodes. The bench's node subscribes `live_view` as a viewer
would, so the images really leave the monitor.

Row keys added: live_view (on/off), live_view_frames_rendered (by the monitor, from /diagnostics),
live_view_frames_received (here), live_view_render_p50_ms (the monitor's decode + draw + message time).
The report's `live_view` section sets each on row beside its off row: the monitor process's CPU with
and without it, and that difference per rendered frame.
"""
from __future__ import annotations

MONITOR_NODE = "monitor_node"
SWITCH_DEADLINE_S = 30.0  # the parameter call and the topic's (un)matching, on 2 busy cores
CAMERA_SUBSCRIBERS = 2  # perception and action inference; the monitor too while its live view is on


def live_view_states(measure_live_view: bool) -> tuple[bool, ...]:
    """The live view settings each camera stream is played with."""
    return (False, True) if measure_live_view else (False,)


class LiveViewSwitch:
    """The bench's side of the live view: switches it on the monitor and counts the images it receives."""

    def __init__(self, node) -> None:
        from rcl_interfaces.srv import SetParameters
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self.node = node
        self.received = 0
        node.create_subscription(Image, "live_view", self._on_image, QoSProfile(depth=1,
                                                                               reliability=ReliabilityPolicy.RELIABLE))
        self._client = node.create_client(SetParameters, f"{MONITOR_NODE}/set_parameters")

    def _on_image(self, _message) -> None:
        self.received += 1

    def switch(self, probe, processes, enabled: bool) -> None:
        """Set the monitor's live_view and wait until its publisher is (or is no longer) matched here."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        probe.spin_until(self._client.service_is_ready, SWITCH_DEADLINE_S, "the monitor's parameter service", processes)
        request = SetParameters.Request(parameters=[Parameter("live_view", value=enabled).to_parameter_msg()])
        future = self._client.call_async(request)
        probe.spin_until(future.done, SWITCH_DEADLINE_S, f"live_view={enabled} on the monitor", processes)
        result = future.result().results[0]
        if not result.successful:
            raise RuntimeError(f"the monitor refused live_view={enabled}: {result.reason}")
        probe.spin_until(lambda: (self.node.count_publishers("live_view") > 0) == enabled, SWITCH_DEADLINE_S,
                         f"the live_view publisher {'matched' if enabled else 'gone'}", processes)
        renew_bag_replayer(probe)
        cameras = [probe.raw_publisher] + ([probe.bag_replayer.publisher] if probe.bag_replayer else [])
        subscribers = CAMERA_SUBSCRIBERS + int(enabled)
        probe.spin_until(lambda: all(camera.get_subscription_count() == subscribers for camera in cameras),
                         SWITCH_DEADLINE_S, f"{subscribers} subscribers on each camera", processes)

    def counters(self, probe) -> dict:
        status = probe.statuses.get(MONITOR_NODE)
        values = status.values if status is not None else {}
        return {"rendered": int(values.get("live_view_frames_rendered", 0)), "received": self.received,
                "render_p50_ms": float(values.get("live_view_render_p50_ms", "nan"))}

    def row_values(self, enabled: bool, before: dict, after: dict) -> dict:
        """The row's live view keys (counters of this stream only). The render time is the monitor's
        recent median, reported only for a row it rendered in."""
        rendered = after["rendered"] - before["rendered"]
        return {"live_view": enabled, "live_view_frames_rendered": rendered,
                "live_view_frames_received": after["received"] - before["received"],
                "live_view_render_p50_ms": round(after["render_p50_ms"], 2) if enabled and rendered else None}


def renew_bag_replayer(probe) -> None:
    """A bag replayer plays once: after it played, the probe gets a fresh one on the same topic (its old
    publisher destroyed), so the demo bag can be played again with the live view on."""
    from vljepa_ros.nodes.bag_replay import BagReplayer
    played = probe.bag_replayer
    if played is None or not played.done():
        return
    probe.node.destroy_publisher(played.publisher)
    probe.bag_replayer = BagReplayer(probe.node, played.bag_path, output_topic=played.output_topic,
                                     qos="sensor_data", restamp=True, on_publish=played.on_publish)


def monitor_process(cpu_percent: dict[str, float]) -> str:
    """The process the monitor runs in: its own, or the bring-up holding all three nodes."""
    return MONITOR_NODE if MONITOR_NODE in cpu_percent else next(iter(cpu_percent))


def live_view_costs(rows: list[dict], duration_s: float) -> list[dict]:
    """Each live-view-on row beside the off row of the same topology, backend and camera."""
    off_rows = {(row["topology"], row["backend"], row["camera"]): row for row in rows if not row.get("live_view")}
    costs = []
    for on in (row for row in rows if row.get("live_view")):
        off = off_rows[(on["topology"], on["backend"], on["camera"])]
        process = monitor_process(on["cpu_percent"])
        cpu_off, cpu_on = off["cpu_percent"][process], on["cpu_percent"][process]
        rendered_per_s = on["live_view_frames_rendered"] / duration_s
        costs.append({
            "topology": on["topology"], "backend": on["backend"], "camera": on["camera"], "process": process,
            "cpu_percent_off": cpu_off, "cpu_percent_on": cpu_on,
            "frames_rendered_per_s": round(rendered_per_s, 2),
            "render_p50_ms": on["live_view_render_p50_ms"],
            # CPU percent of one core is 10 ms per second: the extra CPU over the rendered frames.
            "cpu_ms_per_frame": round((cpu_on - cpu_off) * 10.0 / rendered_per_s, 2) if rendered_per_s else None,
            "latency_p50_ms_off_on": [off["latency_p50_ms"], on["latency_p50_ms"]],
        })
    return costs
