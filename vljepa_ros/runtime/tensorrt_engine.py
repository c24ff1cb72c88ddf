"""TensorRT backend: a thin layer over the ONNX export plus the engine cache.

Flow: exported ONNX (onnx_export.py) -> TensorRT builder (fp16/bf16 flag, workspace limit, one
fixed-shape optimisation profile) -> serialized plan cached by engine_cache.py -> execution context
fed with torch CUDA tensors (no pycuda needed; torch owns the memory and the stream).

Building takes seconds to minutes. Build ahead (`vljepa-ros export --tensorrt`) or call
`create_engine(...)` from a worker thread (the nodes' BackgroundLoader); never inside a ROS
executor callback. TensorRT is imported only here and only when this backend is asked for.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vljepa_ros.errors import BackendUnavailableError, CheckpointError
from vljepa_ros.runtime.base import InferenceEngine, ModelAssets
from vljepa_ros.runtime.engine_cache import EngineCacheKey, load_or_build_engine, sha256_of_files
from vljepa_ros.runtime.onnx_export import (CLIP_INPUT_NAMES, CLIP_OUTPUT_NAMES, TEXT_INPUT_NAMES, TEXT_OUTPUT_NAMES,
                                            OnnxExport, onnx_files)

if TYPE_CHECKING:
    import torch

LOGGER = logging.getLogger(__name__)
TENSORRT_PRECISIONS = ("fp32", "fp16", "bf16")

INSTALL_HINT = (
    "backend 'tensorrt' needs NVIDIA TensorRT's Python package with the builder "
    "(`pip install tensorrt` on a machine with an NVIDIA GPU, driver and CUDA; on Jetson it ships with JetPack), "
    "plus a CUDA build of torch. Without it use backend='onnxruntime' (CUDAExecutionProvider via onnxruntime-gpu) "
    "or backend='torch'.")


def import_tensorrt() -> Any:
    """The tensorrt module, or BackendUnavailableError saying what to install."""
    try:
        import tensorrt
    except ImportError as error:
        raise BackendUnavailableError(f"cannot import tensorrt ({error}). {INSTALL_HINT}") from error
    return tensorrt


def require_cuda() -> Any:
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError("backend 'tensorrt' needs an NVIDIA GPU, but torch.cuda.is_available() is "
                                      "False here. Use backend='onnxruntime' or 'torch' on this machine.")
    return torch


def engine_path_for(onnx_path: Path, precision: str, gpu_name: str) -> Path:
    """<onnx stem>.<gpu>.<precision>.engine beside the ONNX (the key file disambiguates the rest)."""
    gpu_tag = "".join(c if c.isalnum() else "_" for c in gpu_name).strip("_").lower() or "gpu"
    return Path(onnx_path).with_name(f"{Path(onnx_path).stem}.{gpu_tag}.{precision}.engine")


def build_serialized_engine(onnx_path: Path, precision: str, workspace_bytes: int,
                            input_shapes: dict[str, list[int]]) -> bytes:
    """Parse the ONNX and build a plan with one fixed-shape optimisation profile (min = opt = max)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch; 8.x needs the flag.
    flags = 0
    if hasattr(trt, "NetworkDefinitionCreationFlag") and hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # from file: resolves external-data weights beside it
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CheckpointError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 is on by default: fp32 must mean fp32 (parity with torch)
    elif precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        if not hasattr(trt.BuilderFlag, "BF16"):
            raise BackendUnavailableError(f"TensorRT {trt.__version__} has no BF16 builder flag; use fp16 or fp32")
        config.set_flag(trt.BuilderFlag.BF16)
    profile = builder.create_optimization_profile()
    for name, shape in input_shapes.items():
        profile.set_shape(name, shape, shape, shape)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CheckpointError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    return bytes(serialized)


def prepare_engine(onnx_path: Path, input_shapes: dict[str, list[int]], precision: str = "fp16",
                   workspace_gb: float = 4.0, force_rebuild: bool = False) -> tuple[Path, bytes]:
    """Build (or reuse from the cache) the engine for one ONNX graph. Slow on a miss: run off the executor."""
    trt = import_tensorrt()
    torch = require_cuda()
    gpu_name = torch.cuda.get_device_name()
    key = EngineCacheKey(onnx_sha256=sha256_of_files(onnx_files(onnx_path)), tensorrt_version=trt.__version__,
                         gpu_name=gpu_name, precision=precision, input_shapes=input_shapes,
                         workspace_bytes=int(workspace_gb * (1 << 30)))
    engine_path = engine_path_for(onnx_path, precision, gpu_name)
    data, built = load_or_build_engine(
        engine_path, key, lambda: build_serialized_engine(onnx_path, precision, key.workspace_bytes, input_shapes),
        force_rebuild=force_rebuild)
    LOGGER.info("%s TensorRT engine %s", "built" if built else "reusing", engine_path)
    return engine_path, data


def clip_input_shapes(config: Any, batch: int, query_tokens: int) -> dict[str, list[int]]:
    size = int(config.image_size)
    return {"pixel_values": [batch, int(config.frames_per_clip), 3, size, size],
            "query_ids": [batch, query_tokens], "query_mask": [batch, query_tokens]}


def text_input_shapes(config: Any, batch: int) -> dict[str, list[int]]:
    return {"text_ids": [batch, int(config.text_max_tokens)], "text_mask": [batch, int(config.text_max_tokens)]}


class _TrtGraph:
    """One deserialized engine + execution context, run at its fixed batch on a torch CUDA stream."""

    def __init__(self, trt: Any, engine_bytes: bytes, engine_path: Path, input_names: tuple[str, ...],
                 output_names: tuple[str, ...], input_shapes: dict[str, list[int]]) -> None:
        import torch

        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise CheckpointError(f"TensorRT could not deserialize {engine_path} (built by another TensorRT version "
                                  "or corrupt); delete it or run `vljepa-ros export --tensorrt --force-rebuild`")
        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        if names != set(input_names) | set(output_names):
            raise CheckpointError(f"{engine_path} has tensors {sorted(names)}, expected {sorted(input_names)} + "
                                  f"{sorted(output_names)}; rebuild it from a current export")
        self.context = self.engine.create_execution_context()
        self.input_names, self.input_shapes = input_names, input_shapes
        self.batch = input_shapes[input_names[0]][0]
        for name in input_names:
            self.context.set_input_shape(name, input_shapes[name])
        # Bind in the dtypes the engine chose (older TensorRT turns int64 ids into int32).
        self.dtypes = {name: _torch_dtype(trt, self.engine.get_tensor_dtype(name)) for name in names}
        self.stream = torch.cuda.Stream()
        self.outputs = {name: torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name],
                                          device="cuda") for name in output_names}
        for name, tensor in self.outputs.items():
            self.context.set_tensor_address(name, tensor.data_ptr())

    def run(self, arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """Run any batch size in chunks of the engine's fixed batch (the last chunk is padded by repetition)."""
        import torch

        total, results = arrays[0].shape[0], {name: [] for name in self.outputs}
        for start in range(0, total, self.batch):
            chunk = [a[start:start + self.batch] for a in arrays]
            count = chunk[0].shape[0]
            if count < self.batch:
                chunk = [np.concatenate([c, np.repeat(c[-1:], self.batch - count, axis=0)]) for c in chunk]
            with torch.cuda.stream(self.stream):
                inputs = [torch.from_numpy(np.ascontiguousarray(c)).to("cuda", self.dtypes[name], non_blocking=True)
                          for name, c in zip(self.input_names, chunk)]
                for name, tensor in zip(self.input_names, inputs):
                    self.context.set_tensor_address(name, tensor.data_ptr())
                if not self.context.execute_async_v3(self.stream.cuda_stream):
                    raise RuntimeError("TensorRT execute_async_v3 failed")
                for name, tensor in self.outputs.items():
                    results[name].append(tensor[:count].float().cpu().numpy())
            self.stream.synchronize()
        return tuple(np.concatenate(parts) for parts in results.values())


def _torch_dtype(trt: Any, data_type: Any) -> Any:
    import torch

    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
             trt.DataType.BOOL: torch.bool}
    for name, dtype in (("INT64", torch.int64), ("BF16", torch.bfloat16)):
        if hasattr(trt.DataType, name):
            table[getattr(trt.DataType, name)] = dtype
    if data_type not in table:
        raise CheckpointError(f"engine tensor type {data_type} is not supported by the vljepa_ros TensorRT runner")
    return table[data_type]


class TensorRTEngine(InferenceEngine):
    """Clip and text graphs as TensorRT engines (clip at a fixed batch, texts in fixed-size chunks)."""

    backend = "tensorrt"

    def __init__(self, export: OnnxExport, assets: ModelAssets, precision: str = "fp16", workspace_gb: float = 4.0,
                 clip_batch: int = 1, text_batch: int = 8, force_rebuild: bool = False) -> None:
        if precision not in TENSORRT_PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {TENSORRT_PRECISIONS} for backend 'tensorrt'")
        trt = import_tensorrt()
        require_cuda()
        super().__init__(assets, "cuda", precision, query_tokens=export.query_tokens)
        clip_shapes = clip_input_shapes(self.config, clip_batch, self.query_tokens)
        text_shapes = text_input_shapes(self.config, text_batch)
        clip_engine_path, clip_bytes = prepare_engine(export.clip_path, clip_shapes, precision, workspace_gb,
                                                      force_rebuild)
        text_engine_path, text_bytes = prepare_engine(export.text_path, text_shapes, precision, workspace_gb,
                                                      force_rebuild)
        self.engine_paths = (clip_engine_path, text_engine_path)
        self.clip_graph = _TrtGraph(trt, clip_bytes, clip_engine_path, CLIP_INPUT_NAMES, CLIP_OUTPUT_NAMES, clip_shapes)
        self.text_graph = _TrtGraph(trt, text_bytes, text_engine_path, TEXT_INPUT_NAMES, TEXT_OUTPUT_NAMES, text_shapes)
        self.tensorrt_version = trt.__version__

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "tensorrt_version": self.tensorrt_version,
                "engines": [str(p) for p in self.engine_paths]}

    def _run_clips(self, pixel_values: torch.Tensor, query_ids: np.ndarray,
                   query_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embeddings, statistics = self.clip_graph.run((pixel_values.numpy(), query_ids, query_mask))
        return embeddings, statistics

    def _run_texts(self, text_ids: np.ndarray, text_mask: np.ndarray) -> np.ndarray:
        return self.text_graph.run((text_ids, text_mask))[0]
