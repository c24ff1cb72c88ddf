"""ROS-free inference engines behind one interface (InferenceEngine in base.py).

    engine = create_engine("models/small", backend="onnxruntime")
    embedding = engine.encode_clip(frames_uint8_T_H_W_3, "What is happening?")   # (D,) float32, unit norm
    label_embeddings = engine.encode_texts(["pick up the red cube", ...])          # (N, D)

Backends: torch (reference; CPU/CUDA, fp32/bf16/fp16), onnxruntime (exported graphs; CPU, CUDA provider
when installed), tensorrt (engines built from the same ONNX, cached). Exports and engines are cached by
model id, so a second start is fast; a first start with onnxruntime/tensorrt exports (and builds) first:
do that ahead with `vljepa-ros export`; the nodes load on a background thread (nodes.common.BackgroundLoader).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vljepa_ros.runtime.base import InferenceEngine, ModelAssets

LOGGER = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16")

__all__ = ["BACKENDS", "DEVICES", "PRECISIONS", "InferenceEngine", "ModelAssets", "create_engine",
           "find_onnx_export", "load_assets", "load_model_and_assets",
           "onnx_export_for"]


def check_engine_options(backend: str, device: str, precision: str) -> None:
    """Reject unknown names up front, listing what is accepted (before any slow loading)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if device.split(":")[0] not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)} (or cuda:N)")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if backend == "onnxruntime" and precision != "fp32":
        raise ValueError(f"backend 'onnxruntime' supports precision 'fp32' only, got {precision!r}; "
                         "use 'tensorrt' or 'torch' for fp16/bf16")
    if backend == "tensorrt" and not device.startswith("cuda"):
        raise ValueError("backend 'tensorrt' runs on device 'cuda' only")


def load_assets(model_dir: str | Path) -> ModelAssets:
    """Config, tokenizers and model id of a saved model, without building the network (cheap)."""
    from vljepa_ros.model.checkpoint import (QUERY_TOKENIZER_DIR, TEXT_TOKENIZER_DIR, load_tokenizer, load_config,
                                             model_id)

    model_dir = Path(model_dir)
    config = load_config(model_dir)
    return ModelAssets(config=config,
                       query_tokenizer=load_tokenizer(model_dir / QUERY_TOKENIZER_DIR, config.query_max_tokens),
                       text_tokenizer=load_tokenizer(model_dir / TEXT_TOKENIZER_DIR, config.text_max_tokens),
                       model_id=model_id(model_dir))


def load_model_and_assets(model_dir: str | Path, device: str = "cpu") -> tuple[Any, ModelAssets]:
    """Load a saved VLJepa (checkpoint.load_model) and the identity/tokenizers every engine needs."""
    from vljepa_ros.model.checkpoint import load_model, model_id

    model = load_model(model_dir, device=device)
    assets = ModelAssets(config=model.config, query_tokenizer=model.query_tokenizer,
                         text_tokenizer=model.text_tokenizer, model_id=model_id(model_dir))
    return model, assets


def _export_dirs(assets: ModelAssets, cache_dir: str | Path | None) -> tuple[list[Path], Path]:
    """(where to look for an export, where to write one). An explicit cache_dir is used as is (what
    `vljepa-ros export --out DIR` wrote); the default cache keeps one sub-folder per model id."""
    from vljepa_ros.runtime.onnx_export import default_cache_dir

    if cache_dir is not None:
        return [Path(cache_dir), Path(cache_dir) / assets.model_id], Path(cache_dir)
    target = default_cache_dir() / assets.model_id
    return [target], target


def find_onnx_export(assets: ModelAssets, cache_dir: str | Path | None = None,
                     query_tokens: int | None = None) -> Any:
    """A current ONNX export of this model (same model id, lengths and format), or None."""
    from vljepa_ros.runtime.onnx_export import find_export

    query_tokens = int(query_tokens or assets.config.query_max_tokens)
    for directory in _export_dirs(assets, cache_dir)[0]:
        found = find_export(directory, assets.model_id, query_tokens, int(assets.config.text_max_tokens),
                            config=assets.config)
        if found is not None:
            return found
    return None


def onnx_export_for(model: Any, assets: ModelAssets, cache_dir: str | Path | None = None,
                    query_tokens: int | None = None, force: bool = False) -> Any:
    """Find a current ONNX export of this model, or make one (slow: seconds for small models, minutes at paper size)."""
    from vljepa_ros.runtime.onnx_export import export_onnx

    if not force:
        found = find_onnx_export(assets, cache_dir, query_tokens)
        if found is not None:
            return found
    return export_onnx(model, _export_dirs(assets, cache_dir)[1], model_id=assets.model_id,
                       query_tokens=query_tokens or assets.config.query_max_tokens, force=force)


def create_engine(model_dir: str | Path, backend: str = "torch", device: str = "cpu", precision: str = "fp32",
                  cache_dir: str | Path | None = None, *, query_tokens: int | None = None,
                  threads: int | None = None, compile: bool = False, cuda_graphs: bool = False,
                  workspace_gb: float = 4.0, force_rebuild: bool = False) -> InferenceEngine:
    """Make an engine for the model saved in `model_dir`.

    backend: torch | onnxruntime | tensorrt;  device: cpu | cuda;  precision: fp32 | fp16 | bf16.
    cache_dir: where ONNX exports and TensorRT engines live (default $VLJEPA_ROS_CACHE or ~/.cache/vljepa_ros).
    query_tokens: fixed query length (default: the model's query_max_tokens); longer queries are truncated.
    May take minutes on a cache miss (export, TensorRT build): never call it inside a ROS executor callback.
    """
    check_engine_options(backend, device, precision)
    if backend == "tensorrt":
        # Fail fast with the install hint, before spending a minute on an export.
        from vljepa_ros.runtime.tensorrt_engine import require_cuda, import_tensorrt

        import_tensorrt()
        require_cuda()
    if backend == "torch":
        from vljepa_ros.runtime.torch_engine import TorchEngine

        model, assets = load_model_and_assets(model_dir)
        return TorchEngine(model, assets, device=device, precision=precision, compile=compile,
                           cuda_graphs=cuda_graphs, threads=threads, query_tokens=query_tokens)
    # The exported graphs carry the weights: the torch model is only loaded when an export is missing.
    assets = load_assets(model_dir)
    export = find_onnx_export(assets, cache_dir, query_tokens)
    if export is None:
        model, assets = load_model_and_assets(model_dir)
        export = onnx_export_for(model, assets, cache_dir, query_tokens)
        del model
    if backend == "onnxruntime":
        from vljepa_ros.runtime.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(export, assets, device=device, precision=precision, threads=threads)
    from vljepa_ros.runtime.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(export, assets, precision=precision, workspace_gb=workspace_gb,
                          force_rebuild=force_rebuild)
