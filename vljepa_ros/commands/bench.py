"""`vljepa-ros bench`: clip latency (p50/p95) and throughput of every backend on the same inputs, plus the machine."""
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
                             "(default: a sensible set for the device)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--iterations", type=int, default=50, help="timed clips per configuration")
    parser.add_argument("--warmup", type=int, default=5, help="untimed clips per configuration first")
    parser.add_argument("--rounds", type=int, default=5, help="round-robin rounds the iterations are split into")
    parser.add_argument("--batch", type=int, default=1, help="clips per call")
    parser.add_argument("--frame-size", type=int, default=None,
                        help="square camera frame size in pixels (default: the preset's image size)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime "
                        "(default: all usable cores)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
