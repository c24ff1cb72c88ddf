"""PyTorch backend: CPU or CUDA, fp32 / bf16 / fp16, SDPA attention, optional torch.compile / CUDA graphs."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from vljepa_ros.errors import BackendUnavailableError
from vljepa_ros.runtime.base import InferenceEngine, ModelAssets

if TYPE_CHECKING:
    import torch

LOGGER = logging.getLogger(__name__)


def torch_dtype(precision: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def use_sdpa_attention(model: Any) -> int:
    """Switch every transformers sub-model to PyTorch's fused scaled_dot_product_attention.

    The attention layers read config._attn_implementation at call time, so setting it on every config
    found (VJEPA2, Llama layers, Gemma 3) is enough. Returns how many configs were switched.
    """
    switched, seen = 0, set()
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is None or id(config) in seen or not hasattr(config, "_attn_implementation"):
            continue
        seen.add(id(config))
        try:
            if hasattr(module, "set_attn_implementation"):
                module.set_attn_implementation("sdpa")
            else:
                config._attn_implementation = "sdpa"
            switched += 1
        except Exception as error:  # transformers raises various types for a sub-model without an SDPA path
            LOGGER.info("%s keeps its attention implementation: %s", type(module).__name__, error)
    return switched


class TorchEngine(InferenceEngine):
    """Runs the VLJepa module itself. The reference every other backend is checked against."""

    backend = "torch"

    def __init__(self, model: Any, assets: ModelAssets, device: str = "cpu", precision: str = "fp32",
                 compile: bool = False, cuda_graphs: bool = False, threads: int | None = None,
                 query_tokens: int | None = None) -> None:
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(
                "device='cuda' was requested but torch sees no CUDA GPU (torch.cuda.is_available() is False); "
                "use device='cpu' or install a CUDA build of torch on a GPU machine")
        super().__init__(assets, device, precision, query_tokens=query_tokens)
        if threads:
            torch.set_num_threads(int(threads))
        self.dtype = torch_dtype(precision)
        use_sdpa_attention(model)
        # Whole-model cast (not autocast): halves memory traffic, and the model ends in an L2 norm we
        # compute in fp32 below. The graph is identical to fp32, just in a narrower type.
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self._encode_clip = self.model.encode_clip_with_statistics
        self._encode_text = self.model.encode_text
        if compile or cuda_graphs:
            # "reduce-overhead" captures CUDA graphs (kernel launch cost dominates small batches on GPU).
            mode = "reduce-overhead" if (cuda_graphs and device.startswith("cuda")) else "default"
            self._encode_clip = torch.compile(self.model.encode_clip_with_statistics, mode=mode, dynamic=False)
            self.compiled = mode
        else:
            self.compiled = "no"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "compiled": self.compiled}

    def _run_clips(self, pixel_values: torch.Tensor, query_ids: np.ndarray,
                   query_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            pixels = pixel_values.to(self.device, self.dtype, non_blocking=True)
            ids = torch.from_numpy(query_ids).to(self.device)
            mask = torch.from_numpy(query_mask).to(self.device)
            embedding, statistics = self._encode_clip(pixels, ids, mask)
            return _unit_float32(embedding), statistics.float().cpu().numpy()

    def _run_texts(self, text_ids: np.ndarray, text_mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(text_ids).to(self.device)
            mask = torch.from_numpy(text_mask).to(self.device)
            return _unit_float32(self._encode_text(ids, mask))


def _unit_float32(embedding: Any) -> np.ndarray:
    """Re-normalise in fp32: a bf16/fp16 norm is only unit to ~3 digits."""
    embedding = embedding.float()
    embedding = embedding / embedding.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return embedding.cpu().numpy()
