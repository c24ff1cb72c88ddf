"""Clip-encoding benchmark across backends: every configuration sees the same frames and query in one run.

Measures what a node pays per clip: `encode_clip(frames uint8 (T,H,W,3), query)` end to end
(preprocessing + X-encoder + predictor + L2 norm; preprocessing is the same code for every backend).
Models are random-weight presets: speed does not depend on the weights' values.

Measurements are interleaved (round-robin over configurations, several rounds) so that load from other
processes on a shared machine spreads over all configurations instead of penalising one.
"""
from __future__ import annotations

import copy
import datetime
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vljepa_ros.errors import BackendUnavailableError
from vljepa_ros.stream.clips import ACTION_QUERY, CAPTION_QUERY

CPU_DEFAULT_CONFIGS = ("torch:fp32", "torch:bf16", "onnxruntime:fp32")
GPU_DEFAULT_CONFIGS = ("torch:fp32", "torch:bf16", "torch:bf16+compile", "onnxruntime:fp32", "tensorrt:fp16",
                       "tensorrt:bf16")
BENCH_QUERY = CAPTION_QUERY


@dataclass(frozen=True)
class EngineSpec:
    """One configuration to measure, written `backend[:precision][+compile]`, e.g. torch:bf16+compile."""

    backend: str
    precision: str = "fp32"
    compile: bool = False

    @classmethod
    def parse(cls, text: str) -> "EngineSpec":
        from vljepa_ros.runtime import BACKENDS, PRECISIONS

        text = text.strip()
        compiled = text.endswith("+compile")
        text = text.removesuffix("+compile")
        backend, _, precision = text.partition(":")
        precision = precision or "fp32"
        if backend not in BACKENDS or precision not in PRECISIONS:
            raise ValueError(f"bad engine spec {text!r}: use backend[:precision][+compile] with backend in "
                             f"{BACKENDS} and precision in {PRECISIONS}, e.g. torch:bf16 or onnxruntime")
        if compiled and backend != "torch":
            raise ValueError(f"+compile applies to the torch backend only, got {text!r}")
        return cls(backend, precision, compiled)

    @property
    def label(self) -> str:
        return f"{self.backend}-{self.precision}" + ("-compile" if self.compile else "")


def machine_info() -> dict[str, Any]:
    """The machine and library versions a number was measured with."""
    import torch

    info: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu_model": _cpu_model(), "cpu_flags": _cpu_flags(), "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": _memory_gb(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "load_average_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    for name in ("transformers", "onnxruntime", "onnx"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    info["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    """The vector extensions that decide CPU speed here (bf16 is only fast with avx512_bf16 / amx)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in wanted if flag in present]
    except OSError:
        pass
    return []


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def random_model(preset: str, seed: int = 0) -> tuple[Any, Any]:
    """A random-weight model of a preset and its engine assets (speed does not depend on weight values)."""
    import torch

    from vljepa_ros.model.config import get_preset
    from vljepa_ros.model.vljepa import new_model
    from vljepa_ros.runtime.base import ModelAssets

    # Speed does not depend on the vocabulary: a few texts make a small word tokenizer.
    corpus = [BENCH_QUERY, ACTION_QUERY, "pick up the red cube"]
    torch.manual_seed(seed)
    model = new_model(get_preset(preset), corpus).eval()
    assets = ModelAssets(config=model.config, query_tokenizer=model.query_tokenizer,
                         text_tokenizer=model.text_tokenizer, model_id=f"{preset}-random{seed}")
    return model, assets


def build_engine(spec: EngineSpec, model: Any, assets: Any, device: str, export_dir: Path,
                 threads: int | None) -> Any:
    """An engine for `spec` from an in-memory model (no checkpoint round trip: the paper preset is 4 GB)."""
    from vljepa_ros.runtime import check_engine_options, onnx_export_for

    check_engine_options(spec.backend, device, spec.precision)
    if spec.backend == "torch":
        from vljepa_ros.runtime.torch_engine import TorchEngine

        # TorchEngine casts/moves the module it is given: each configuration gets its own copy.
        return TorchEngine(copy.deepcopy(model), assets, device=device, precision=spec.precision,
                           compile=spec.compile, cuda_graphs=spec.compile and device.startswith("cuda"),
                           threads=threads)
    export = onnx_export_for(model, assets, cache_dir=export_dir)
    if spec.backend == "onnxruntime":
        from vljepa_ros.runtime.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(export, assets, device=device, threads=threads)
    from vljepa_ros.runtime.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(export, assets, precision=spec.precision)


def summarise(latencies_ms: list[float], batch: int) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    mean = statistics.fmean(ordered)
    return {"p50_ms": round(_percentile(ordered, 50), 3), "p95_ms": round(_percentile(ordered, 95), 3),
            "mean_ms": round(mean, 3), "min_ms": round(ordered[0], 3), "iterations": len(ordered),
            "clips_per_s": round(batch * 1000.0 / mean, 2)}


def _percentile(ordered: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(ordered), q))


def bench_preset(preset: str, specs: list[EngineSpec], device: str = "cpu", iterations: int = 50, warmup: int = 5,
                 rounds: int = 5, batch: int = 1, frame_size: int | None = None, threads: int | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every spec on one preset; returns {"preset", "configs": {label: stats | {"skipped"}}, ...}."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    model, assets = random_model(preset)
    config = model.config
    size = frame_size or config.image_size
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (batch, config.frames_per_clip, size, size, 3), dtype=np.uint8)
    result: dict[str, Any] = {
        "preset": preset, "device": device, "batch": batch, "frames_per_clip": config.frames_per_clip,
        "frame_size": size, "image_size": config.image_size, "query": BENCH_QUERY, "weights": "random",
        "parameters": {k: int(v) for k, v in model.component_parameter_counts().items()}, "configs": {}}
    engines: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"vljepa-bench-{preset}-") as export_dir:
        for spec in specs:
            try:
                t0 = time.perf_counter()
                engines[spec.label] = build_engine(spec, model, assets, device, Path(export_dir), threads)
                log(f"[{preset}] {spec.label}: ready in {time.perf_counter() - t0:.1f} s")
            except (BackendUnavailableError, ValueError, ImportError, RuntimeError) as error:
                result["configs"][spec.label] = {"skipped": str(error)}
                log(f"[{preset}] {spec.label}: skipped ({error})")
        del model
        # Same inputs for every engine; also record how far each lands from the first (fp32 torch) one.
        reference = None
        for label, engine in engines.items():
            for _ in range(warmup):
                out = engine.encode_clips(frames, BENCH_QUERY)
            reference = out if reference is None else reference
            result["configs"][label] = {"engine": engine.describe(),
                                        "cosine_to_first": round(float(np.min(np.sum(out * reference, -1))), 6)}
        latencies: dict[str, list[float]] = {label: [] for label in engines}
        per_round = max(1, iterations // rounds)
        for _ in range(rounds):
            for label, engine in engines.items():
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    engine.encode_clips(frames, BENCH_QUERY)
                    latencies[label].append((time.perf_counter() - t0) * 1000.0)
        for label, values in latencies.items():
            result["configs"][label].update(summarise(values, batch))
            stats = result["configs"][label]
            log(f"[{preset}] {label}: p50 {stats['p50_ms']:.2f} ms, p95 {stats['p95_ms']:.2f} ms, "
                f"{stats['clips_per_s']:.1f} clips/s")
    baseline = result["configs"].get("torch-fp32", {}).get("p50_ms")
    measured = {k: v for k, v in result["configs"].items() if "p50_ms" in v}
    if measured:
        fastest = min(measured, key=lambda k: measured[k]["p50_ms"])
        result["fastest"] = fastest
        if baseline:
            result["speedup_fastest_vs_torch_fp32_p50"] = round(baseline / measured[fastest]["p50_ms"], 3)
            for label, stats in measured.items():
                stats["speedup_vs_torch_fp32_p50"] = round(baseline / stats["p50_ms"], 3)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def run_benchmark(presets: list[str], config_specs: list[str] | None = None, device: str = "cpu",
                  iterations: int = 50, warmup: int = 5, rounds: int = 5, batch: int = 1,
                  frame_size: int | None = None, threads: int | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole report: machine info + one entry per preset. Says so (and skips) when CUDA is asked for but absent."""
    import torch

    if threads:  # before machine_info, so the report states the thread count actually used
        torch.set_num_threads(threads)
    report: dict[str, Any] = {"machine": machine_info(), "threads": threads or "default (all usable cores)", "device": device, "results": [], "notes": [
        "weights are random (speed does not depend on their values)",
        "latency = encode_clips(frames uint8, query) end to end: preprocessing + X-encoder + predictor + L2 norm",
        "configurations are measured round-robin on the same inputs in one process"]}
    if device.startswith("cuda") and not torch.cuda.is_available():
        message = ("no CUDA GPU on this machine (torch.cuda.is_available() is False): nothing measured for "
                   f"presets {presets} on {device}. Run this on a GPU machine.")
        log(message)
        report["notes"].append(message)
        report["skipped"] = message
        return report
    defaults = GPU_DEFAULT_CONFIGS if device.startswith("cuda") else CPU_DEFAULT_CONFIGS
    specs = [EngineSpec.parse(s) for s in (config_specs or defaults)]
    for preset in presets:
        report["results"].append(bench_preset(preset, specs, device=device, iterations=iterations, warmup=warmup,
                                              rounds=rounds, batch=batch, frame_size=frame_size, threads=threads,
                                              log=log))
    return report
