"""Full-size `vljepa-ros import` on this machine, with random weights saved in the real sources' formats.

The real downloads are not reachable here, so this writes stand-ins with the real geometry, dtypes and key names:
V-JEPA 2 ViT-L (fp32 safetensors), Llama-3.2-1B (bf16, `model.` prefix, tied embeddings), EmbeddingGemma-300M
(fp32 + 2_Dense/3_Dense), and an open-vljepa `best.pt` (pretrained parts bf16, new layers fp32, training config).
Tokenizers are small byte-level BPEs (ids fit the real tables; token counts are set by the query/text lengths).
Then, each in its own process so each peak RSS is its own:

  import open-vljepa (fp32 and bf16 on disk), import components (fp32),
  one 16 x 256^2 clip through torch fp32 and ONNX Runtime (the components directory: the paper preset's 16 frames;
  queries padded to 64 tokens as open-vljepa), the ONNX export itself, and the imported open-vljepa directory
  (bf16 on disk, fp32 in torch, its 8 frames) on the same clip.

    python benchmarks/full_size_import.py --work /tmp/full-size --json benchmarks/results/import-full-size-cpu.json

Needs ~30 GB of disk under --work and up to ~12 GB RAM; takes tens of minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

QUERY = "Describe the video."
QUERY_TOKENS = 64
OPEN_VLJEPA_TRAINING = {
    "encoder": {"model_name": "facebook/vjepa2-vitl-fpc64-256", "frozen": True, "output_dim": None},
    "y_encoder": {"model_name": "google/embeddinggemma-300m", "proj_dim": 1536, "lr_multiplier": 0.05},
    "predictor": {"llama_name": "meta-llama/Llama-3.2-1B", "n_keep_layers": 8, "proj_dim": 1536,
                  "disable_causal_mask": True},
    "data": {"num_frames": 8, "image_size": 256, "max_query_len": QUERY_TOKENS, "max_caption_len": 64,
             "query_text": QUERY},
    "training": {"temperature": 0.07},
}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def random_tensors(module_class, config, dtype, drop=()) -> dict:
    """A state dict of random values with the module's real names and shapes (built on the meta device, so the
    full-size model is never materialised twice)."""
    import torch

    with torch.device("meta"):
        module = module_class(config)
    return {key: (torch.randn(tensor.shape) * 0.02).to(dtype) if tensor.is_floating_point()
            else torch.zeros(tensor.shape, dtype=tensor.dtype)
            for key, tensor in module.state_dict().items() if key not in drop}


def stage_components(work: Path) -> dict:
    import safetensors.torch
    import torch
    from transformers import Gemma3TextConfig, Gemma3TextModel, LlamaConfig, LlamaForCausalLM, VJEPA2Config, VJEPA2Model

    from vljepa_ros.model.config import get_preset
    from vljepa_ros.model.tokenizer import build_byte_bpe_tokenizer

    paper = get_preset("paper")
    tokenizer = build_byte_bpe_tokenizer([QUERY, "a person opens the door", "a robot picks up a cup"], 400)
    parts = {
        "vjepa2": (VJEPA2Model, VJEPA2Config(**paper.x_encoder), torch.float32, ()),
        "llama": (LlamaForCausalLM, LlamaConfig(**{k: v for k, v in paper.predictor.items() if k != "num_layers"},
                                                num_hidden_layers=16), torch.bfloat16, ("lm_head.weight",)),
        "gemma": (Gemma3TextModel, Gemma3TextConfig(**paper.y_encoder), torch.float32, ()),
    }
    for name, (cls, config, dtype, drop) in parts.items():
        directory = work / name
        directory.mkdir(parents=True, exist_ok=True)
        config.save_pretrained(directory)
        safetensors.torch.save_file(random_tensors(cls, config, dtype, drop), str(directory / "model.safetensors"),
                                    metadata={"format": "pt"})
        if name != "vjepa2":
            tokenizer.save_pretrained(directory)
    for name, shape in (("2_Dense", (3072, 768)), ("3_Dense", (768, 3072))):
        (work / "gemma" / name).mkdir(exist_ok=True)
        safetensors.torch.save_file({"linear.weight": torch.randn(shape) * 0.02},
                                    str(work / "gemma" / name / "model.safetensors"))
    return {"peak_rss_mb": peak_rss_mb()}


def stage_checkpoint(work: Path) -> dict:
    """best.pt as open-vljepa writes it: the kept Llama layers renumbered, embed_tokens, norm, the projections."""
    import safetensors.torch
    import torch

    llama = safetensors.torch.load_file(str(work / "llama" / "model.safetensors"))
    state = {}
    for key, tensor in llama.items():
        name = key.removeprefix("model.")
        if name.startswith("layers."):
            index = int(name.split(".")[1])
            if index < 8:
                continue
            name = f"layers.{index - 8}." + name.split(".", 2)[2]
        state["predictor." + name] = tensor
    del llama
    for key, tensor in safetensors.torch.load_file(str(work / "gemma" / "model.safetensors")).items():
        state["y_encoder.model." + key] = tensor.to(torch.bfloat16)
    for name, shape in (("predictor.vis_proj", (2048, 1024)), ("predictor.out_proj", (1536, 2048)),
                        ("y_encoder.projector", (1536, 768))):
        state[name + ".weight"], state[name + ".bias"] = torch.randn(shape) * 0.02, torch.zeros(shape[0])
    torch.save({"epoch": 0, "model_state_dict": state, "loss": 0.0, "config": OPEN_VLJEPA_TRAINING}, work / "best.pt")
    return {"bytes": (work / "best.pt").stat().st_size, "peak_rss_mb": peak_rss_mb()}


def stage_import(work: Path, source: str, dtype: str) -> dict:
    out = work / f"{source}-{dtype}"
    command = [sys.executable, "-m", "vljepa_ros.cli", "import", source, f"--vjepa2-dir={work / 'vjepa2'}",
               f"--llama-dir={work / 'llama'}", f"--gemma-dir={work / 'gemma'}", f"--out={out}", f"--dtype={dtype}"]
    if source == "open-vljepa":
        command.append(f"--checkpoint={work / 'best.pt'}")
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    summary["dir_bytes"] = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return summary


def _time_clip(engine, repeats: int = 2) -> dict:
    import numpy as np

    frames = np.random.default_rng(0).integers(0, 256, (16, 256, 256, 3), dtype=np.uint8)
    started = time.perf_counter()
    engine.encode_clip(frames, QUERY)
    first = time.perf_counter() - started
    latencies = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine.encode_clip(frames, QUERY)
        latencies.append(time.perf_counter() - started)
    return {"first_clip_s": round(first, 2), "clip_s": [round(v, 2) for v in latencies],
            "best_clip_s": round(min(latencies), 2)}


def stage_clip(work: Path, backend: str, model: str = "components-fp32") -> dict:
    """One clip of 16 frames at 256²; the open-vljepa directory samples them down to its 8."""
    import torch

    from vljepa_ros.runtime import create_engine

    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    engine = create_engine(work / model, backend=backend, cache_dir=work / "onnx",
                           query_tokens=QUERY_TOKENS, threads=os.cpu_count())
    result = {"load_s": round(time.perf_counter() - started, 2), **_time_clip(engine)}
    return {**result, "peak_rss_mb": peak_rss_mb()}


def stage_export(work: Path) -> dict:
    from vljepa_ros.runtime import load_model_and_assets, onnx_export_for

    started = time.perf_counter()
    model, assets = load_model_and_assets(work / "components-fp32")
    loaded = time.perf_counter()
    export = onnx_export_for(model, assets, cache_dir=work / "onnx", query_tokens=QUERY_TOKENS, force=True)
    files = [p for p in (work / "onnx").rglob("*") if p.is_file()]
    return {"load_s": round(loaded - started, 2), "export_s": round(time.perf_counter() - loaded, 2),
            "onnx_bytes": sum(p.stat().st_size for p in files), "clip_graph": export.clip_path.name,
            "peak_rss_mb": peak_rss_mb()}


STAGES = {
    "components": stage_components, "checkpoint": stage_checkpoint,
    "import-open-vljepa-fp32": lambda work: stage_import(work, "open-vljepa", "fp32"),
    "import-open-vljepa-bf16": lambda work: stage_import(work, "open-vljepa", "bf16"),
    "import-components-fp32": lambda work: stage_import(work, "components", "fp32"),
    "torch-clip": lambda work: stage_clip(work, "torch"),
    "onnx-export": stage_export,
    "onnxruntime-clip": lambda work: stage_clip(work, "onnxruntime"),
    "torch-clip-open-vljepa-bf16": lambda work: stage_clip(work, "torch", "open-vljepa-bf16"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="scratch directory (~30 GB)")
    parser.add_argument("--json", type=Path, required=True, help="where to write the measurements")
    parser.add_argument("--stage", choices=sorted(STAGES), help="run one stage in this process (internal)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages to run (default: all)")
    args = parser.parse_args()
    if args.stage:
        started = time.perf_counter()
        result = STAGES[args.stage](args.work)
        print(json.dumps({**result, "stage_s": round(time.perf_counter() - started, 2)}))
        return 0
    from vljepa_ros.runtime.benchmark import machine_info

    args.work.mkdir(parents=True, exist_ok=True)
    report = json.loads(args.json.read_text()) if args.json.exists() else {}
    report.setdefault("stages", {})
    report["machine"] = {**machine_info(), "lscpu": _lscpu()}
    for stage in args.stages.split(","):
        completed = subprocess.run([sys.executable, __file__, "--work", str(args.work), "--json", str(args.json),
                                    "--stage", stage], capture_output=True, text=True)
        if completed.returncode:
            report["stages"][stage] = {"failed": completed.stderr[-2000:]}
        else:
            report["stages"][stage] = json.loads(completed.stdout.strip().splitlines()[-1])
        print(stage, json.dumps(report["stages"][stage]), flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _lscpu() -> dict:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {}
    wanted = ("Model name", "CPU family", "Model", "Thread(s) per core", "CPU(s)", "Flags")
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {key: fields[key].strip() for key in wanted if key in fields and key != "Flags"}


if __name__ == "__main__":
    sys.exit(main())
