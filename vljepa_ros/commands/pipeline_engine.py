"""The bare engine beside the nodes, for `vljepa-ros bench --pipeline`: the clips the perception node
would cut from a camera's frames (the same ClipAssembler settings) and `engine.encode_clip` timed on
them in the bench process, before any node runs, so a row's e2e latency has its engine time beside it.

Kept apart from the nodes' side (pipeline_bench.py): nothing here starts a process or touches ROS.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vljepa_ros.commands.pipeline_harness import CameraInput, StealMeter

ENGINE_WARMUP_CALLS = 10  # per backend and camera: torch's first calls are slow
ENGINE_ROUNDS = 3  # passes over each camera's clips
PACED_CLIPS = 10  # per backend and camera, one at a time at the camera's clip interval


@dataclass(frozen=True)
class ClipSettings:
    frames_per_clip: int
    stride_frames: int
    sample_period_s: float
    query: str

    def assembler(self):
        from vljepa_ros.stream.clip_assembler import ClipAssembler
        return ClipAssembler(self.frames_per_clip, self.stride_frames, self.sample_period_s)


def count_clips(stamps_ns: list[int], settings: ClipSettings) -> int:
    """Clips the perception node's assembler cuts from these frames (the pixels do not matter)."""
    assembler, pixel = settings.assembler(), np.zeros((1, 1, 3), np.uint8)
    return sum(assembler.push(pixel, stamp) is not None for stamp in stamps_ns)


def camera_clips(camera: CameraInput, settings: ClipSettings):
    """The clips the node would cut from the camera's frames, one at a time (all of a 640x480 stream's
    clips at once would take a gigabyte)."""
    assembler = settings.assembler()
    for frame, stamp in zip(camera.frames, camera.stamps_ns):
        clip = assembler.push(frame, stamp)
        if clip is not None:
            yield clip


def time_clips(engine, camera: CameraInput, settings: ClipSettings) -> list[float]:
    timings_ms = []
    for clip in camera_clips(camera, settings):
        started = time.perf_counter()
        engine.encode_clip(clip.frames, settings.query)
        timings_ms.append((time.perf_counter() - started) * 1e3)
    return timings_ms


def time_clips_paced(engine, camera: CameraInput, settings: ClipSettings) -> list[float]:
    """encode_clip at the pace the node calls it, one clip per clip interval (stride frames at the camera's
    rate), not back to back: between calls the caches go cold and an idle vCPU is descheduled, which made
    the same call 1.6-4x slower on an Intel Xeon (family 6 model 167), what the nodes cannot avoid."""
    interval_s = settings.stride_frames * max(1.0 / camera.rate_hz if camera.rate_hz else 0.0, settings.sample_period_s)
    timings_ms = []
    for index, clip in enumerate(camera_clips(camera, settings)):
        if index == PACED_CLIPS:
            break
        time.sleep(interval_s)
        started = time.perf_counter()
        engine.encode_clip(clip.frames, settings.query)
        timings_ms.append((time.perf_counter() - started) * 1e3)
    return timings_ms


def time_engines(model_dir: Path, backends: tuple[str, ...], cameras: dict[str, CameraInput],
                 settings: ClipSettings, node_values: dict) -> tuple[dict, dict]:
    """Engine latency per (backend, camera) and the thread counts the engines ran with. Passes are
    interleaved (like `vljepa-ros bench --rounds`), so a burst of load elsewhere on a shared machine
    spreads over every configuration instead of ruining one. Also leaves the ONNX export in the
    cache, so the nodes do not export it while being timed."""
    import torch

    from vljepa_ros.nodes.common import create_engine_from
    # As the nodes make theirs: the same function over the same parameters (threads included).
    engines = {backend: create_engine_from({"device": "cpu", **node_values, "model_dir": str(model_dir),
                                            "backend": backend})
               for backend in backends}
    threads = {backend: getattr(engine, "threads", None) or torch.get_num_threads()
               for backend, engine in engines.items()}
    for engine in engines.values():
        for camera in cameras.values():
            first_clip = next(camera_clips(camera, settings), None)
            for _ in range(ENGINE_WARMUP_CALLS if first_clip is not None else 0):
                engine.encode_clip(first_clip.frames, settings.query)
    timings = {(backend, name): [] for backend in engines for name in cameras}
    steal = {key: [] for key in timings}
    for _ in range(ENGINE_ROUNDS):
        for (backend, name), values in timings.items():
            meter = StealMeter()
            values += time_clips(engines[backend], cameras[name], settings)
            steal[(backend, name)].append(meter.percent())
    paced = {(backend, name): time_clips_paced(engines[backend], cameras[name], settings) for backend, name in timings}
    return {key: {"engine_p50_ms": percentile(values, 50), "engine_p95_ms": percentile(values, 95),
                  "engine_clips_timed": len(values),
                  "engine_paced_p50_ms": percentile(paced[key], 50), "engine_paced_p95_ms": percentile(paced[key], 95),
                  "engine_machine_steal_percent": round(float(np.mean(steal[key])), 1)}
            for key, values in timings.items()}, threads


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None
