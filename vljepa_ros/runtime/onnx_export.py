"""Export VL-JEPA to ONNX with the dynamo exporter (torch.export -> ONNX).

Two graphs, both ending in the L2-normalised embedding so every backend returns the same thing:

* clip graph (X-encoder + predictor): pixel_values float32 (B, T, 3, S, S), query_ids int64 (B, Lq),
  query_mask int64 (B, Lq) -> unit_embedding float32 (B, D) and visual_statistics float32 (B, 2 x encoder
  width), the input of the familiarity score. Lq is fixed per export: the paper pads queries
  to a fixed length, and a fixed shape is what TensorRT optimises best. B is dynamic.
* text graph (Y-encoder): text_ids int64 (N, Lt), text_mask int64 (N, Lt) -> unit_embedding float32 (N, D).

Why dynamo: the legacy TorchScript exporter fails on the Gemma 3 text model (field notes).
The identity of the export (model id, preset, lengths, shapes) goes into the ONNX metadata_props, so
a cached graph is checked against the model before use and a stale one is re-exported.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


LOGGER = logging.getLogger(__name__)

CLIP_INPUT_NAMES = ("pixel_values", "query_ids", "query_mask")
TEXT_INPUT_NAMES = ("text_ids", "text_mask")
# Not "embedding": torch.export names aten.embedding nodes that way and ONNX would see a duplicate.
OUTPUT_NAME = "unit_embedding"
STATISTICS_NAME = "visual_statistics"
CLIP_OUTPUT_NAMES = (OUTPUT_NAME, STATISTICS_NAME)
TEXT_OUTPUT_NAMES = (OUTPUT_NAME,)
METADATA_PREFIX = "vljepa_ros."
# Format version of the exported graphs: bump when names/semantics change so old caches re-export.
EXPORT_FORMAT = "2"  # 2: the clip graph also outputs visual_statistics
# Above this many parameters the weights go to an external-data file (protobuf's 2 GB limit).
EXTERNAL_DATA_MIN_PARAMS = 200_000_000


@dataclass(frozen=True)
class OnnxExport:
    """Paths and metadata of the two exported graphs of one model."""

    clip_path: Path
    text_path: Path
    metadata: dict[str, str]

    @property
    def query_tokens(self) -> int:
        return int(self.metadata["query_tokens"])


def clip_graph_name(query_tokens: int) -> str:
    return f"clip_encoder-q{query_tokens}.onnx"


def text_graph_name(text_tokens: int) -> str:
    return f"text_encoder-t{text_tokens}.onnx"


def default_cache_dir() -> Path:
    """$VLJEPA_ROS_CACHE, else $XDG_CACHE_HOME/vljepa_ros, else ~/.cache/vljepa_ros."""
    if env := os.environ.get("VLJEPA_ROS_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vljepa_ros"


def _clip_module(model: Any) -> Any:
    """nn.Module wrapper so torch.export sees exactly VLJepa.encode_clip (torch imported lazily: it is heavy)."""
    import torch

    class ClipGraph(torch.nn.Module):
        def __init__(self, vljepa: Any) -> None:
            super().__init__()
            self.vljepa = vljepa

        def forward(self, pixel_values: torch.Tensor, query_ids: torch.Tensor,
                    query_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.vljepa.encode_clip_with_statistics(pixel_values, query_ids, query_mask)

    return ClipGraph(model).eval()


def _text_module(model: Any) -> Any:
    import torch

    class TextGraph(torch.nn.Module):
        def __init__(self, vljepa: Any) -> None:
            super().__init__()
            self.vljepa = vljepa

        def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
            return self.vljepa.encode_text(text_ids, text_mask)

    return TextGraph(model).eval()


# The key an export is found by: a graph whose metadata differs in any of these is not loaded.
IDENTITY_KEYS = ("format", "graph", "model_id", "query_tokens", "text_tokens", "frames_per_clip", "image_size",
                 "dimension")


def export_identity(config: Any, model_id: str, query_tokens: int, graph: str) -> dict[str, str]:
    """The IDENTITY_KEYS of one graph of a model: format, model id (preset + weights digest) and shapes."""
    return {
        "format": EXPORT_FORMAT,
        "graph": graph,
        "model_id": model_id,
        "query_tokens": str(query_tokens),
        "text_tokens": str(config.text_max_tokens),
        "frames_per_clip": str(config.frames_per_clip),
        "image_size": str(config.image_size),
        "dimension": str(config.shared_dim),
    }


def export_metadata(model: Any, model_id: str, query_tokens: int, graph: str) -> dict[str, str]:
    import torch

    config = model.config
    return {
        **export_identity(config, model_id, query_tokens, graph),
        "preset": str(getattr(config, "name", "")),
        "torch_version": torch.__version__,
        "exporter": "torch.onnx.export(dynamo=True)",
    }


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """The vljepa_ros.* metadata_props of an ONNX file (without loading external weights)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key[len(METADATA_PREFIX):]: p.value for p in proto.metadata_props if p.key.startswith(METADATA_PREFIX)}


def onnx_files(path: Path) -> list[Path]:
    """An ONNX graph plus its external-data file(s), in a stable order (what an engine hash must cover)."""
    path = Path(path)
    return [path] + sorted(p for p in path.parent.glob(path.name + ".data*"))


def _example_inputs(model: Any, batch: int, query_tokens: int) -> tuple[tuple, tuple]:
    import torch

    config = model.config
    pixel_values = torch.randn(batch, config.frames_per_clip, 3, config.image_size, config.image_size)
    query_vocab, text_vocab = int(config.predictor["vocab_size"]), int(config.y_encoder["vocab_size"])
    query_ids = torch.randint(1, query_vocab, (batch, query_tokens), dtype=torch.long)
    query_mask = torch.ones(batch, query_tokens, dtype=torch.long)
    query_mask[:, query_tokens // 2:] = 0  # padding present, so the masked path is what gets traced
    text_ids = torch.randint(1, text_vocab, (batch, config.text_max_tokens), dtype=torch.long)
    text_mask = torch.ones(batch, config.text_max_tokens, dtype=torch.long)
    text_mask[:, config.text_max_tokens // 2:] = 0
    return (pixel_values, query_ids, query_mask), (text_ids, text_mask)


def _export_graph(module: Any, args: tuple, input_names: tuple[str, ...], output_names: tuple[str, ...], path: Path,
                  metadata: dict[str, str], large: bool) -> None:
    """Export one graph into `path` atomically: build in a temporary folder beside it, then move in."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    dynamic_shapes = {name: {0: batch} for name in input_names}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        with torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(module, args, dynamo=True, input_names=list(input_names),
                                        output_names=list(output_names), dynamic_shapes=dynamic_shapes,
                                        external_data=large, optimize=True, verbose=False)
        for key, value in metadata.items():
            program.model.metadata_props[METADATA_PREFIX + key] = value
        tmp_path = tmp_dir / path.name
        program.save(str(tmp_path), external_data=large)
        # Data file(s) first, graph last: a reader that finds the graph finds its weights.
        for data_file in sorted(tmp_dir.glob(path.name + ".data*")):
            os.replace(data_file, path.parent / data_file.name)
        os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def export_onnx(model: Any, out_dir: Path, model_id: str | None = None, query_tokens: int | None = None,
                force: bool = False) -> OnnxExport:
    """Export `model` (a VLJepa on CPU) into `out_dir`; reuse graphs already there for the same model id.

    query_tokens: the fixed query length of the clip graph (default: the config's query_max_tokens).
    """
    if model_id is None:
        from vljepa_ros.model.checkpoint import model_id as compute_model_id

        model_id = compute_model_id(model)
    out_dir = Path(out_dir)
    query_tokens = int(query_tokens or model.config.query_max_tokens)
    if query_tokens < 1:
        raise ValueError(f"query_tokens must be >= 1, got {query_tokens}")
    clip_path = out_dir / clip_graph_name(query_tokens)
    text_path = out_dir / text_graph_name(int(model.config.text_max_tokens))
    clip_meta = export_metadata(model, model_id, query_tokens, "clip")
    text_meta = export_metadata(model, model_id, query_tokens, "text")
    model = model.to("cpu").float().eval()
    large = sum(p.numel() for p in model.parameters()) >= EXTERNAL_DATA_MIN_PARAMS
    clip_args, text_args = _example_inputs(model, batch=2, query_tokens=query_tokens)
    for path, module, args, names, outputs, meta in (
            (clip_path, _clip_module(model), clip_args, CLIP_INPUT_NAMES, CLIP_OUTPUT_NAMES, clip_meta),
            (text_path, _text_module(model), text_args, TEXT_INPUT_NAMES, TEXT_OUTPUT_NAMES, text_meta)):
        if not force and _is_current(path, meta):
            LOGGER.info("reusing %s", path)
            continue
        LOGGER.info("exporting %s", path)
        _export_graph(module, args, names, outputs, path, meta, large)
    return OnnxExport(clip_path=clip_path, text_path=text_path, metadata=clip_meta)


def _is_current(path: Path, expected: dict[str, str]) -> bool:
    """True when an exported graph exists and was made from the same model with the same settings."""
    if not path.exists():
        return False
    try:
        found = read_onnx_metadata(path)
    except Exception as error:  # a torn or foreign file: re-export rather than fail
        LOGGER.warning("cannot read %s (%s); re-exporting", path, error)
        return False
    return all(found.get(k) == expected[k] for k in IDENTITY_KEYS)


def find_export(directory: Path, model_id: str, query_tokens: int, text_tokens: int,
                config: Any = None) -> OnnxExport | None:
    """An existing, current export of `model_id` in `directory`, or None. With the model's `config`,
    every IDENTITY_KEYS entry of both graphs must match (shapes included), else the export is not loaded."""
    directory = Path(directory)
    clip_path, text_path = directory / clip_graph_name(query_tokens), directory / text_graph_name(text_tokens)
    if not (clip_path.is_file() and text_path.is_file()):
        return None
    try:
        clip_meta, text_meta = read_onnx_metadata(clip_path), read_onnx_metadata(text_path)
    except Exception as error:  # onnx raises several types for a torn or foreign file: not a usable export
        LOGGER.warning("ignoring the export in %s: %s", directory, error)
        return None
    if config is not None:
        mismatched = [f"{graph}.{key}" for graph, meta in (("clip", clip_meta), ("text", text_meta))
                      for key, value in export_identity(config, model_id, query_tokens, graph).items()
                      if meta.get(key) != value]
        if mismatched:
            LOGGER.info("not loading the export in %s: its key differs (%s)", directory, ", ".join(mismatched))
            return None
        return OnnxExport(clip_path=clip_path, text_path=text_path, metadata=clip_meta)
    if (clip_meta.get("model_id") == model_id == text_meta.get("model_id")
            and clip_meta.get("format") == EXPORT_FORMAT == text_meta.get("format")
            and clip_meta.get("query_tokens") == str(query_tokens)):
        return OnnxExport(clip_path=clip_path, text_path=text_path, metadata=clip_meta)
    return None
