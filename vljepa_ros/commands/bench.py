"""`vljepa-ros bench`: clip latency (p50/p95) and throughput of every backend on the same inputs, plus the machine.

With --pipeline: the three nodes end to end instead (single process and three processes, the demo bag and
a 640x480 30 Hz raw camera): frame->embedding latency, drops, lost frames, CPU and memory per process,
next to the bare engine on the same clips (vljepa_ros/commands/pipeline_bench.py); with --find-limits also
the highest camera rate and the largest raw frame each topology keeps up with (pipeline_limits.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmark inference backends on random-weight presets",
                                   description=__doc__)
    parser.add_argument("--json", required=True, help="write the report (machine + results) to this JSON file")
    parser.add_argument("--presets", default="small,mid", help="comma-separated presets (tiny, small, mid, paper)")
    parser.add_argument("--backends", default="",
                        help="comma-separated configs backend[:precision][+compile], e.g. "
                             "torch,torch:bf16,torch:bf16+compile,onnxruntime,tensorrt:fp16 "
                             "(default: a sensible set for the device); with --pipeline: backend names "
                             "(default: torch,onnxruntime)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--iterations", type=int, default=50, help="timed clips per configuration")
    parser.add_argument("--warmup", type=int, default=5, help="untimed clips per configuration first")
    parser.add_argument("--rounds", type=int, default=5, help="round-robin rounds the iterations are split into")
    parser.add_argument("--batch", type=int, default=1, help="clips per call")
    parser.add_argument("--frame-size", type=int, default=None,
                        help="square camera frame size in pixels (default: the preset's image size)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime "
                        "(default: all usable cores)")
    add_pipeline_arguments(parser)
    parser.set_defaults(func=run)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    from vljepa_ros.commands.pipeline_harness import CAMERAS, TOPOLOGIES
    group = parser.add_argument_group("pipeline benchmark (--pipeline)")
    group.add_argument("--pipeline", action="store_true",
                       help="benchmark the nodes end to end (camera -> embedding) instead of the bare engines")
    group.add_argument("--model", type=Path, default=None, help="model directory (default: the config's, "
                       "i.e. the shipped model)")
    group.add_argument("--config", type=Path, default=None, help="deployment YAML the nodes get, with the backend "
                       "set per run (default: the package's config/vljepa.yaml)")
    group.add_argument("--topologies", default=",".join(TOPOLOGIES), help="comma-separated: " + ", ".join(TOPOLOGIES) +
                       " (multi_process: `vljepa-ros bringup`, one process per node as ros2 launch; single_process: "
                       "`vljepa-ros bringup --single-process`)")
    group.add_argument("--cameras", default=",".join(CAMERAS), help="comma-separated: " + ", ".join(CAMERAS))
    group.add_argument("--duration-s", type=float, default=20.0, help="seconds of each camera stream")
    group.add_argument("--idle-s", type=float, default=20.0, help="seconds the nodes are measured idle, "
                       "per topology and backend")
    group.add_argument("--transport-profile", default=None,
                       help="Fast DDS XML profile for every process (default: the package's "
                            "config/fastdds_large_images.xml; 'none': Fast DDS's built-in transports)")
    group.add_argument("--live-view", action="store_true",
                       help="play each camera twice on the same nodes, the monitor's live view off then on, "
                            "and report its cost side by side (CPU, CPU ms per rendered frame, render time)")
    add_limit_arguments(parser)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    from vljepa_ros.commands.pipeline_limits import LIMIT_SIZES, LimitOptions, size_name
    defaults = LimitOptions()
    group = parser.add_argument_group("limit search (--pipeline --find-limits)")
    group.add_argument("--find-limits", action="store_true",
                       help="after the fixed-rate rows, on the same nodes: search the highest 640x480 rgb8 camera "
                            "rate and the largest raw frame at which no frame is lost, no clip dropped and the e2e "
                            "p95 <= 2 x engine p95 + 10 ms (as ros2_benchmark searches a graph's peak rate)")
    group.add_argument("--limit-probe-s", type=float, default=defaults.probe_s, help="seconds of camera per probe")
    group.add_argument("--limit-min-hz", type=float, default=defaults.min_rate_hz,
                       help="the rate search's first probe (fails: no limit)")
    group.add_argument("--limit-max-hz", type=float, default=defaults.max_rate_hz, help="the highest rate probed")
    group.add_argument("--limit-resolution", type=float, default=defaults.resolution,
                       help="the bisection stops when first failing - last passing rate <= this x last passing")
    group.add_argument("--limit-sizes", default=",".join(size_name(size) for size in LIMIT_SIZES),
                       help="frame sizes (WIDTHxHEIGHT, comma-separated) the size search chooses from")
    group.add_argument("--limit-size-rate-hz", type=float, default=defaults.size_rate_hz,
                       help="the camera rate of the size search")


def limit_options(args: argparse.Namespace):
    from vljepa_ros.commands.pipeline_limits import LimitOptions, parse_sizes
    if not args.find_limits:
        return None
    try:
        return LimitOptions(probe_s=args.limit_probe_s, min_rate_hz=args.limit_min_hz, max_rate_hz=args.limit_max_hz,
                            resolution=args.limit_resolution, size_rate_hz=args.limit_size_rate_hz,
                            sizes=parse_sizes(args.limit_sizes))
    except ValueError as error:
        raise SystemExit(f"vljepa-ros bench --pipeline --find-limits: {error}") from None


def parse_list(text: str, choices: tuple[str, ...], what: str) -> tuple[str, ...]:
    values = tuple(value.strip() for value in text.split(",") if value.strip())
    unknown = [value for value in values if value not in choices]
    if unknown or not values:
        raise SystemExit(f"vljepa-ros bench --pipeline: {what} must be some of {', '.join(choices)}; got {text!r}")
    return values


def pipeline_options(args: argparse.Namespace):
    from vljepa_ros.commands.pipeline_bench import BenchOptions
    from vljepa_ros.commands.pipeline_harness import CAMERAS, TOPOLOGIES, TRANSPORT_PROFILE
    from vljepa_ros.paths import find_share_file
    from vljepa_ros.runtime import BACKENDS
    profile = args.transport_profile  # unset: the shipped profile; "none": Fast DDS's built-in transports
    transport_profile = None if profile == "none" else Path(profile) if profile else find_share_file(TRANSPORT_PROFILE)
    if transport_profile is not None and not transport_profile.is_file():
        raise SystemExit(f"vljepa-ros bench --pipeline: --transport-profile {transport_profile} does not exist")
    return BenchOptions(
        json_path=Path(args.json), model_dir=args.model, config=args.config,
        backends=parse_list(args.backends or "torch,onnxruntime", BACKENDS, "--backends"),
        topologies=parse_list(args.topologies, TOPOLOGIES, "--topologies"),
        cameras=parse_list(args.cameras, CAMERAS, "--cameras"), duration_s=args.duration_s, idle_s=args.idle_s,
        transport_profile=transport_profile, live_view=args.live_view, limits=limit_options(args))


def run(args: argparse.Namespace) -> int:
    if args.pipeline:
        from vljepa_ros.commands.pipeline_bench import run_and_report
        return run_and_report(pipeline_options(args))
    from vljepa_ros.runtime.benchmark import run_benchmark

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    specs = [s.strip() for s in args.backends.split(",") if s.strip()] or None
    report = run_benchmark(presets, specs, device=args.device, iterations=args.iterations, warmup=args.warmup,
                           rounds=args.rounds, batch=args.batch, frame_size=args.frame_size, threads=args.threads)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    for result in report["results"]:
        print(f"{result['preset']}: fastest {result.get('fastest')} "
              f"({result.get('speedup_fastest_vs_torch_fp32_p50', 'n/a')}x torch fp32 p50)")
    return 0
