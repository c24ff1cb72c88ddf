"""`vljepa-ros bench --pipeline --find-limits`: the limit of each topology and backend, as ros2_benchmark
measures a graph's: the highest camera rate, and the largest raw frame, at which the nodes keep up.

On the nodes already running for the fixed-rate rows (started once per topology and backend, never per
probe), two searches, each probe a generated rgb8 camera played for `probe_s` seconds:

- rate: the 640x480 camera from `min_rate_hz` upwards, the rate doubled after each pass (capped at
  `max_rate_hz`) until a probe fails, then bisection between the last passing and the first failing rate
  until they are within `resolution` (a fraction of the passing rate).
- size: the candidate frame sizes (ascending) at `size_rate_hz`, the same search over their indices:
  0, 1, 3, 7, ... (capped at the largest) until one fails, then bisection between the two.

A probe passes when no frame was lost in transport (published minus what the perception node counted), no
clip was dropped and the frame -> embedding p95 is at most 2 x engine p95 + 10 ms: the engine as the bench
timed it before the nodes started, on clips of that frame size (the node resizes every frame, so the bound
grows with the frame). Searches stop at a failing first probe (no limit) or a passing highest one.

The search (search_highest, search_rate, search_size) and the verdict (probe_verdict) know nothing of ROS:
they take a probe callable and a row's numbers, so they are tested with fake probes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vljepa_ros.commands.pipeline_harness import (RAW_CAMERA_HEIGHT, RAW_CAMERA_RATE_HZ, RAW_CAMERA_WIDTH,
                                                  CameraInput, raw_camera)

LIMIT_SIZES = ((320, 240), (640, 480), (960, 540), (1280, 720), (1920, 1080))
RATE_SEARCH_SIZE = (RAW_CAMERA_WIDTH, RAW_CAMERA_HEIGHT)
RATE_GROWTH = 2.0  # the upward sweep doubles the rate
LIMIT_CAMERA_MEMORY_BYTES = 96 << 20  # distinct frames per size: 109 at 640x480, 16 at 1920x1080
# What a probe reports of the row the bench measured for it (pipeline_bench.build_row).
PROBE_KEYS = ("rate_hz", "frames_published", "frames_received", "frames_lost", "clips_expected", "clips_published",
              "clips_dropped", "latency_p50_ms", "latency_p95_ms", "engine_p50_ms", "engine_p95_ms", "cpu_percent",
              "rss_mb", "machine_steal_percent", "load_average_1m")
BOUND = "frames_lost == 0 and clips_dropped == 0 and latency_p95_ms <= 2 x engine_p95_ms + 10"


@dataclass(frozen=True)
class LimitOptions:
    probe_s: float = 8.0  # seconds of camera per probe
    min_rate_hz: float = 5.0  # the rate search's first probe
    max_rate_hz: float = 120.0  # ... and its last
    resolution: float = 0.1  # bisection stops when first failing - last passing <= this x last passing
    size_rate_hz: float = RAW_CAMERA_RATE_HZ  # the rate of the size search
    sizes: tuple[tuple[int, int], ...] = LIMIT_SIZES  # ascending

    def __post_init__(self) -> None:
        if not (self.probe_s > 0 and 0 < self.min_rate_hz <= self.max_rate_hz and self.resolution > 0
                and self.size_rate_hz > 0):
            raise ValueError(f"limit search: probe_s, the rates and the resolution must be positive and "
                             f"min_rate_hz <= max_rate_hz; got {self}")
        pixels = [width * height for width, height in self.sizes]
        if not pixels or min(pixels) <= 0 or pixels != sorted(set(pixels)):
            raise ValueError(f"limit search: sizes must be distinct and ascending in pixels; got {self.sizes}")

    def report(self) -> dict:
        return {**dataclasses.asdict(self), "sizes": [size_name(size) for size in self.sizes],
                "rate_search_size": size_name(RATE_SEARCH_SIZE), "rate_growth": RATE_GROWTH, "pass": BOUND}


def size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """'320x240,640x480' -> ((320, 240), (640, 480)), sorted by pixels."""
    try:
        sizes = {tuple(int(value) for value in item.strip().lower().split("x")) for item in text.split(",")
                 if item.strip()}
    except ValueError:
        sizes = set()
    if not sizes or any(len(size) != 2 for size in sizes):
        raise ValueError(f"frame sizes are WIDTHxHEIGHT, comma-separated; got {text!r}")
    return tuple(sorted(sizes, key=lambda size: (size[0] * size[1], size)))


# ---------------------------------------------------------------------------------------------
# The search: no ROS, a probe callable
# ---------------------------------------------------------------------------------------------
@dataclass
class Search:
    probed: list[tuple[Any, bool]]  # (candidate, passed), in the order probed
    limit: Any | None  # the highest passing candidate; None: the first probe failed
    first_failing: Any | None  # the lowest failing candidate above the limit; None: the highest one passed
    stopped: str  # "lowest_failed" | "highest_passed" | "resolved"


def search_highest(probe: Callable[[Any], bool], first, step_up: Callable[[Any], Any | None],
                   between: Callable[[Any, Any], Any | None]) -> Search:
    """The highest candidate `probe` passes: from `first`, up by `step_up` (None: nothing higher to try)
    after each pass; after the first failure, `between(passing, failing)` (None: close enough) is probed
    and replaces whichever end its verdict says. Assumes a candidate passes when a higher one does."""
    probed: list[tuple[Any, bool]] = []

    def passes(candidate) -> bool:
        probed.append((candidate, bool(probe(candidate))))
        return probed[-1][1]

    if not passes(first):
        return Search(probed, None, first, "lowest_failed")
    passing, failing = first, None
    while failing is None:
        higher = step_up(passing)
        if higher is None:
            return Search(probed, passing, None, "highest_passed")
        passing, failing = (higher, None) if passes(higher) else (passing, higher)
    while (middle := between(passing, failing)) is not None:
        passing, failing = (middle, failing) if passes(middle) else (passing, middle)
    return Search(probed, passing, failing, "resolved")


def search_rate(probe: Callable[[float], bool], min_rate_hz: float, max_rate_hz: float, resolution: float) -> Search:
    """Rates (0.1 Hz steps) from min_rate_hz, doubled up to max_rate_hz, then bisected to `resolution`."""
    def step_up(rate: float) -> float | None:
        return None if rate >= max_rate_hz else min(max_rate_hz, round(rate * RATE_GROWTH, 1))

    def between(passing: float, failing: float) -> float | None:
        middle = round((passing + failing) / 2, 1)
        close = failing - passing <= resolution * passing
        return None if close or not passing < middle < failing else middle

    return search_highest(probe, min_rate_hz, step_up, between)


def search_size(probe: Callable[[tuple[int, int]], bool], sizes: Sequence[tuple[int, int]]) -> Search:
    """The largest of `sizes` (ascending) that passes: indices 0, 1, 3, 7, ..., then bisection."""
    last = len(sizes) - 1
    found = search_highest(lambda index: probe(sizes[index]), 0,
                           lambda index: None if index >= last else min(last, 2 * index + 1),
                           lambda passing, failing: None if failing - passing <= 1 else (passing + failing) // 2)
    return Search([(sizes[index], passed) for index, passed in found.probed],
                  None if found.limit is None else sizes[found.limit],
                  None if found.first_failing is None else sizes[found.first_failing], found.stopped)


def probe_verdict(row: dict) -> dict:
    """Whether a probe's row passes, and why not: no frame lost, no clip dropped, p95 within the bound."""
    engine_p95 = row["engine_p95_ms"]
    bound = None if engine_p95 is None else round(2 * engine_p95 + 10, 2)
    reasons = []
    if row["frames_lost"] != 0:
        reasons.append(f"{row['frames_lost']} frames lost")
    if row["clips_dropped"] != 0:
        reasons.append(f"{row['clips_dropped']} clips dropped")
    if row["latency_p95_ms"] is None:
        reasons.append("no embedding received")
    elif bound is None:
        reasons.append("no engine timing for this frame size")
    elif row["latency_p95_ms"] > bound:
        reasons.append(f"p95 {row['latency_p95_ms']} ms > {bound} ms")
    return {"latency_bound_ms": bound, "passed": not reasons, "failed_because": reasons}


# ---------------------------------------------------------------------------------------------
# The cameras and the searches on running nodes
# ---------------------------------------------------------------------------------------------
def limit_camera_name(size: tuple[int, int]) -> str:
    return f"limit_raw_{size_name(size)}"


def prepare_limit_cameras(limits: LimitOptions) -> dict[str, CameraInput]:
    """One generated camera per frame size the searches play, `probe_s` at size_rate_hz: its frames are
    the engine timing's clips (made before the nodes start), its messages what the probes publish."""
    sizes = sorted({RATE_SEARCH_SIZE, *limits.sizes}, key=lambda size: size[0] * size[1])
    return {limit_camera_name(size): raw_camera(limit_camera_name(size), *size, limits.size_rate_hz, limits.probe_s,
                                                LIMIT_CAMERA_MEMORY_BYTES)
            for size in sizes}


def at_rate(camera: CameraInput, rate_hz: float, duration_s: float) -> CameraInput:
    """The camera's messages played at another rate (no frames: those are the engine timing's)."""
    return dataclasses.replace(camera, rate_hz=rate_hz, frame_count=max(1, round(rate_hz * duration_s)),
                               frames=[], stamps_ns=[])


def find_limits(play: Callable[[CameraInput], dict], cameras: dict[str, CameraInput], limits: LimitOptions,
                say: Callable[[str], None] = lambda text: None) -> dict:
    """Both searches on the running nodes: `play(camera)` streams a camera and returns its row
    (pipeline_bench.build_row, with the engine timed on that camera's frame size)."""
    def probe(size: tuple[int, int], rate_hz: float, records: list[dict]) -> bool:
        row = play(at_rate(cameras[limit_camera_name(size)], rate_hz, limits.probe_s))
        records.append({"width": size[0], "height": size[1], **{key: row[key] for key in PROBE_KEYS},
                        **probe_verdict(row)})
        say(f"  probe {size_name(size)} at {rate_hz:g} Hz: "
            + ("pass" if records[-1]["passed"] else "fail (" + "; ".join(records[-1]["failed_because"]) + ")"))
        return records[-1]["passed"]

    rate_probes: list[dict] = []
    rate = search_rate(lambda rate_hz: probe(RATE_SEARCH_SIZE, rate_hz, rate_probes), limits.min_rate_hz,
                       limits.max_rate_hz, limits.resolution)
    size_probes: list[dict] = []
    size = search_size(lambda frame: probe(frame, limits.size_rate_hz, size_probes), limits.sizes)
    return {
        "rate": {"width": RATE_SEARCH_SIZE[0], "height": RATE_SEARCH_SIZE[1], "limit_hz": rate.limit,
                 "first_failing_hz": rate.first_failing, "stopped": rate.stopped, "probes": rate_probes},
        "size": {"rate_hz": limits.size_rate_hz, "limit": optional_size_name(size.limit),
                 "first_failing": optional_size_name(size.first_failing), "stopped": size.stopped, "probes": size_probes},
    }


def optional_size_name(size: tuple[int, int] | None) -> str | None:
    return None if size is None else size_name(size)
