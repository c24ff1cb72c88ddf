"""ONNX Runtime backend: runs the exported graphs (see onnx_export.py) on CPU or with the CUDA provider."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vljepa_ros.errors import BackendUnavailableError
from vljepa_ros.runtime.base import InferenceEngine, ModelAssets
from vljepa_ros.runtime.onnx_export import (CLIP_INPUT_NAMES, CLIP_OUTPUT_NAMES, OUTPUT_NAME, TEXT_INPUT_NAMES,
                                            TEXT_OUTPUT_NAMES, OnnxExport)

if TYPE_CHECKING:
    import torch

LOGGER = logging.getLogger(__name__)


def physical_cores() -> int:
    """Cores this process may use (affinity-aware). ORT is fastest with one intra-op thread per core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None, optimized_model_path: Path | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one clip at a time: parallelism inside ops
    options.intra_op_num_threads = int(threads or physical_cores())
    options.inter_op_num_threads = 1
    # Spinning threads burn a core between clips; a robot shares its CPU with everything else.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
    options.log_severity_level = 3
    return options


def providers_for(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise BackendUnavailableError(
                f"onnxruntime on device='cuda' needs the CUDAExecutionProvider, but this onnxruntime only has "
                f"{available}. Install `onnxruntime-gpu` (matching your CUDA) instead of `onnxruntime`, "
                f"or use device='cpu'.")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRuntimeEngine(InferenceEngine):
    """Runs the exported clip and text graphs with ONNX Runtime sessions."""

    backend = "onnxruntime"

    def __init__(self, export: OnnxExport, assets: ModelAssets, device: str = "cpu", precision: str = "fp32",
                 threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise BackendUnavailableError("backend 'onnxruntime' needs `pip install onnxruntime` "
                                          "(or onnxruntime-gpu for CUDA)") from error
        if precision != "fp32":
            raise ValueError(f"the onnxruntime backend runs the fp32 export only, got precision={precision!r}; "
                             "use backend='tensorrt' or 'torch' for fp16/bf16")
        super().__init__(assets, device, precision, query_tokens=export.query_tokens)
        self.export = export
        providers = providers_for(device)
        options = session_options(threads)
        self.threads = options.intra_op_num_threads
        self.clip_session = ort.InferenceSession(str(export.clip_path), options, providers=providers)
        self.text_session = ort.InferenceSession(str(export.text_path), options, providers=providers)
        self.providers = self.clip_session.get_providers()
        _check_names(self.clip_session, CLIP_INPUT_NAMES, CLIP_OUTPUT_NAMES, export.clip_path)
        _check_names(self.text_session, TEXT_INPUT_NAMES, TEXT_OUTPUT_NAMES, export.text_path)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "providers": self.providers, "threads": self.threads}

    def _run_clips(self, pixel_values: torch.Tensor, query_ids: np.ndarray,
                   query_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feeds = dict(zip(CLIP_INPUT_NAMES, (pixel_values.numpy(), query_ids, query_mask)))
        embeddings, statistics = self.clip_session.run(list(CLIP_OUTPUT_NAMES), feeds)
        return embeddings, statistics

    def _run_texts(self, text_ids: np.ndarray, text_mask: np.ndarray) -> np.ndarray:
        feeds = dict(zip(TEXT_INPUT_NAMES, (text_ids, text_mask)))
        return self.text_session.run([OUTPUT_NAME], feeds)[0]


def _check_names(session: Any, expected: tuple[str, ...], expected_outputs: tuple[str, ...], path: Path) -> None:
    """Binding-name mismatches are a classic deployment bug: fail at load time, naming the file."""
    inputs = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    if inputs != expected or outputs != expected_outputs:
        raise ValueError(f"{path} has inputs {inputs} / outputs {outputs}; expected {expected} / {expected_outputs}. "
                         "Re-export it with `vljepa-ros export`.")
