"""The tables `vljepa-ros bench --pipeline` prints from its report (the JSON holds every number)."""
from __future__ import annotations


def print_table(report: dict, console) -> None:
    from rich.table import Table
    short = {"bringup": "all", "perception_node": "P", "monitor_node": "M", "action_inference_node": "A"}
    table = Table(title="pipeline benchmark (ms; CPU % of one core; RSS MB)",
                  caption="targets: e2e p50 <= engine p50 + 5 | e2e p95 <= 2 x engine p95 + 10 | no clip drops | "
                          "no frames lost | idle <= 2 % per process.  P/M/A: perception/monitor/action process.  In node: "
                          "perception's frame received -> embedding published, and its engine call (its last 10 s).  Paced engine: "
                          "the bare engine called once per clip interval, as the node calls it")
    for column in ("topology", "camera", "backend", "engine p50/p95", "paced engine p50", "e2e p50/p95",
                   "in node: all/engine p50",
                   "clips exp/pub/drop",
                   "frames pub/lost", "CPU %", "RSS MB", "idle CPU %", "targets"):
        is_name = column in ("topology", "camera", "backend")
        table.add_column(column, justify="left" if is_name else "right", no_wrap=is_name)

    def per_process(values: dict) -> str:
        return " ".join(f"{short.get(name, name)} {value:.0f}" for name, value in values.items())

    for row in report["pipeline"]:
        camera = row["camera"] + (" + live view" if row.get("live_view") else "")  # --live-view: the "on" pass
        table.add_row(row["topology"], camera, row["backend"], f"{row['engine_p50_ms']}/{row['engine_p95_ms']}",
                      f"{row.get('engine_paced_p50_ms')}", f"{row['latency_p50_ms']}/{row['latency_p95_ms']}",
                      f"{row.get('node_latency_p50_ms')}/{row.get('node_engine_p50_ms')}",
                      f"{row['clips_expected']}/{row['clips_published']}/{row['clips_dropped']}",
                      f"{row['frames_published']}/{row['frames_lost']}", per_process(row["cpu_percent"]),
                      per_process(row["rss_mb"]), per_process(row["idle_cpu_percent"]),
                      "".join("✓" if met else "✗" for met in row["targets"].values()))
    console.print(table)
    console.print(f"wall time {report['config']['wall_time_s']:.0f} s")


def print_live_view_costs(report: dict, console) -> None:
    from rich.table import Table
    table = Table(title="live view cost (monitor process CPU, % of one core)",
                  caption="CPU ms per frame: the extra CPU with live view on, over its rendered frames; "
                          "render p50: decode + draw + message in the monitor")
    for column in ("topology", "camera", "backend", "CPU % off/on", "views/s", "render p50 ms",
                   "CPU ms per frame", "e2e p50 off/on"):
        table.add_column(column, justify="left" if column in ("topology", "camera", "backend") else "right")
    for cost in report["live_view"]:
        table.add_row(cost["topology"], cost["camera"], cost["backend"],
                      f"{cost['cpu_percent_off']}/{cost['cpu_percent_on']}", f"{cost['frames_rendered_per_s']}",
                      f"{cost['render_p50_ms']}", f"{cost['cpu_ms_per_frame']}",
                      "/".join(str(value) for value in cost["latency_p50_ms_off_on"]))
    console.print(table)


def print_limits(report: dict, console) -> None:
    """--find-limits: each topology and backend's limit beside the fixed-rate rows above, and what failed first."""
    from rich.table import Table
    options = report["config"]["limits"]
    table = Table(title=f"limits (probes of {options['probe_s']:g} s on the running nodes)",
                  caption="pass: no frame lost, no clip dropped, e2e p95 <= 2 x engine p95 + 10 ms (engine timed on "
                          "that frame size).  rate: 640x480 rgb8, up by doubling, then bisection to "
                          f"{options['resolution']:.0%}; frame: at {options['size_rate_hz']:g} Hz")
    for column in ("topology", "backend", "max rate Hz", "first failing rate", "largest frame", "first failing frame",
                   "probes"):
        table.add_column(column, justify="left" if column in ("topology", "backend") else "right")
    for limits in report["limits"]:
        rate, size = limits["rate"], limits["size"]
        table.add_row(limits["topology"], limits["backend"],
                      limit_text(rate["limit_hz"], rate["stopped"], f"{options['min_rate_hz']:g} Hz"),
                      failure_text(rate, rate["first_failing_hz"], lambda probe: probe["rate_hz"]),
                      limit_text(size["limit"], size["stopped"], options["sizes"][0]),
                      failure_text(size, size["first_failing"], lambda probe: f"{probe['width']}x{probe['height']}"),
                      f"{len(rate['probes'])} + {len(size['probes'])}")
    console.print(table)


def limit_text(limit, stopped: str, lowest: str) -> str:
    if stopped == "lowest_failed":
        return f"none ({lowest} fails)"
    return f"≥ {limit} (the maximum tried)" if stopped == "highest_passed" else f"{limit}"


def failure_text(search: dict, first_failing, value_of) -> str:
    """The first failing candidate above the limit, and why it failed."""
    failed = [probe for probe in search["probes"] if not probe["passed"] and value_of(probe) == first_failing]
    return f"{first_failing}: {'; '.join(failed[-1]['failed_because'])}" if failed else "-"
