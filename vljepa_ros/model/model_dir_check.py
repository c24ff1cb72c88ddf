"""A cheap look at a model directory before a node swaps to it (no torch, no weights read).

A node checks `model_dir` when it is set (`ros2 param set`), so that a missing, incomplete or
truncated model is refused with the reason instead of replacing the model the node runs. The full
load (checkpoint.load_model) still decides; what this cannot see (weights that parse but do not fit
the config) fails that load, and the node keeps its working model then.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

# The layout checkpoint.save_model writes (checkpoint.py imports torch; this module must not).
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIRS = ("query_tokenizer", "text_tokenizer")
MAX_SAFETENSORS_HEADER_BYTES = 100_000_000  # safetensors' own limit


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a whole safetensors file (truncated, padded, not safetensors), or None.
    Reads the header only: its tensors' byte ranges must end exactly where the file does."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return f"{path} is not a safetensors file ({size} bytes)"
            header_bytes = struct.unpack("<Q", prefix)[0]
            if header_bytes > min(MAX_SAFETENSORS_HEADER_BYTES, size - 8):
                return f"{path} is not a safetensors file, or is truncated (header of {header_bytes} bytes)"
            header = json.loads(handle.read(header_bytes))
    except OSError as error:
        return f"{path} cannot be read: {error}"
    except (UnicodeDecodeError, ValueError) as error:
        return f"{path} has a corrupt safetensors header: {error}"
    if not isinstance(header, dict):
        return f"{path} has a corrupt safetensors header"
    try:
        data_end = max((int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"),
                       default=0)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        return f"{path} has a corrupt safetensors header: {error!r}"
    expected = 8 + header_bytes + data_end
    if size != expected:
        return f"{path} is truncated or corrupt: {size} bytes, its header describes {expected}"
    return None


def model_dir_problem(model_dir: str | Path) -> str | None:
    """Why `model_dir` cannot be a model directory, or None if it looks whole (see the module doc)."""
    directory = Path(model_dir).expanduser()
    if not directory.is_dir():
        return f"{directory} does not exist (or is not a directory)"
    config = directory / CONFIG_FILE
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{directory} is not a VL-JEPA model directory: {CONFIG_FILE} is missing"
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return f"{config} cannot be read as JSON: {error}"
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        return f"{directory} is not a VL-JEPA model directory: {WEIGHTS_FILE} is missing"
    missing = [name for name in TOKENIZER_DIRS if not (directory / name).is_dir()]
    if missing:
        return f"{directory} is not a VL-JEPA model directory: {', '.join(missing)} missing"
    return safetensors_problem(weights)
