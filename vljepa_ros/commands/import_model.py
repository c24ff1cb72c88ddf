"""`vljepa-ros import`: make a model directory from public checkpoints, loadable like models/small everywhere.

    vljepa-ros import open-vljepa --checkpoint best.pt --vjepa2-dir V --llama-dir L --gemma-dir G --out models/open-vljepa
    vljepa-ros import components --vjepa2-dir V --llama-dir L --gemma-dir G --out models/paper-init

open-vljepa: the one public trained VL-JEPA (cun-bjy/open-vljepa on the Hub) + the three component directories
it was trained from. components: the paper model with fresh heads, the starting point of `train --init`.
Both write config.json, model.safetensors, the two tokenizers, starter banks/ and MODEL_CARD.md, and print a
JSON summary with the time taken and the process's peak memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vjepa2-dir", type=Path, required=True,
                        help="V-JEPA 2 directory (facebook/vjepa2-vitl-fpc64-256): config.json + model.safetensors")
    parser.add_argument("--llama-dir", type=Path, required=True,
                        help="Llama directory (meta-llama/Llama-3.2-1B): config, weights, tokenizer")
    parser.add_argument("--gemma-dir", type=Path, required=True,
                        help="EmbeddingGemma directory (google/embeddinggemma-300m): config, weights, tokenizer")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                        help="weights on disk: bf16 halves the file (fp32 parts are rounded once); default fp32")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import", help="make a model directory from open-vljepa's checkpoint or from "
                                   "the public component checkpoints", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    trained = sources.add_parser("open-vljepa", help="open-vljepa's trained best.pt + its three components")
    trained.add_argument("--checkpoint", type=Path, required=True, help="open-vljepa best.pt (torch pickle, "
                         "loaded weights-only)")
    _common_options(trained)
    trained.set_defaults(func=run)
    untrained = sources.add_parser("components", help="the paper model from V-JEPA 2 + Llama + EmbeddingGemma, "
                                   "fresh heads (untrained; for train --init)")
    _common_options(untrained)
    untrained.add_argument("--predictor-layers", type=int, default=8,
                           help="keep the last N Llama layers as the predictor (default: 8, as the paper)")
    untrained.set_defaults(func=run)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1.0 / (1 << 20) if sys.platform == "darwin" else 1.0 / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def run(args: argparse.Namespace) -> int:
    import torch

    from vljepa_ros.model import model_card

    started = time.perf_counter()
    if args.source == "open-vljepa":
        from vljepa_ros.model.open_vljepa import import_open_vljepa

        model, settings = import_open_vljepa(args.checkpoint, args.vjepa2_dir, args.llama_dir, args.gemma_dir)
        card = model_card.open_vljepa_card(args.checkpoint, args.vjepa2_dir, args.llama_dir, args.gemma_dir,
                                           settings.query, settings.epoch, model_card.file_sha256(args.checkpoint))
        query = settings.query
    else:
        from vljepa_ros.model.checkpoint import build_from_components

        model = build_from_components(args.vjepa2_dir, args.llama_dir, args.gemma_dir, heads_file=None,
                                      predictor_layers=args.predictor_layers)
        card = model_card.components_card(args.vjepa2_dir, args.llama_dir, args.gemma_dir, args.predictor_layers)
        query = None
    built = time.perf_counter()
    identity = model_card.write_model_directory(model, args.out, card,
                                                dtype=torch.bfloat16 if args.dtype == "bf16" else None)
    weights = args.out / "model.safetensors"
    print(json.dumps({"model_id": identity, "model_dir": str(args.out), "query": query,
                      "weights_bytes": weights.stat().st_size, "weights_dtype": args.dtype,
                      "build_s": round(built - started, 2), "total_s": round(time.perf_counter() - started, 2),
                      "peak_rss_mb": round(_peak_rss_mb(), 1)}, indent=2))
    return 0
