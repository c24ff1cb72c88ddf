"""`vljepa-ros export`: ONNX graphs (and optionally TensorRT engines) ahead of time, so a node starts fast."""
from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export the model to ONNX (clip + text graphs), optionally build TensorRT engines",
        description=__doc__)
    parser.add_argument("--model", default="", help="model directory (default: the small model shipped with the package)")
    parser.add_argument("--out", required=True, help="output directory for the .onnx files (and engines); "
                        "pass it to nodes as engine_cache_dir")
    parser.add_argument("--query-tokens", type=int, default=None,
                        help="fixed query length of the clip graph (default: the model's query_max_tokens)")
    parser.add_argument("--force", action="store_true", help="re-export even when current graphs exist")
    parser.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines (needs tensorrt + a GPU)")
    parser.add_argument("--fp16", action="store_true", help="TensorRT: build fp16 engines (default fp32)")
    parser.add_argument("--bf16", action="store_true", help="TensorRT: build bf16 engines")
    parser.add_argument("--workspace-gb", type=float, default=4.0, help="TensorRT builder workspace limit (GiB)")
    parser.add_argument("--clip-batch", type=int, default=1, help="TensorRT: fixed batch of the clip engine")
    parser.add_argument("--text-batch", type=int, default=8, help="TensorRT: fixed batch of the text engine")
    parser.add_argument("--force-rebuild", action="store_true", help="TensorRT: rebuild engines even when cached")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.paths import resolve_model_dir
    from vljepa_ros.runtime import load_model_and_assets, onnx_export_for
    from vljepa_ros.runtime.onnx_export import onnx_files

    if args.fp16 and args.bf16:
        raise SystemExit("choose one of --fp16 / --bf16")
    if args.tensorrt:  # fail before a long export when TensorRT cannot run here
        from vljepa_ros.runtime.tensorrt_engine import require_cuda, import_tensorrt

        import_tensorrt()
        require_cuda()
    model_dir = resolve_model_dir(args.model)
    model, assets = load_model_and_assets(model_dir)
    export = onnx_export_for(model, assets, cache_dir=args.out, query_tokens=args.query_tokens, force=args.force)
    summary: dict = {"model_id": assets.model_id, "model_dir": str(model_dir),
                     "onnx": [str(p) for p in onnx_files(export.clip_path) + onnx_files(export.text_path)],
                     "query_tokens": export.query_tokens}
    if args.tensorrt:
        from vljepa_ros.runtime.tensorrt_engine import TensorRTEngine

        precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
        engine = TensorRTEngine(export, assets, precision=precision, workspace_gb=args.workspace_gb,
                                clip_batch=args.clip_batch, text_batch=args.text_batch,
                                force_rebuild=args.force_rebuild)
        summary["tensorrt_engines"] = [str(p) for p in engine.engine_paths]
        summary["precision"] = precision
    print(json.dumps(summary, indent=2))
    return 0
