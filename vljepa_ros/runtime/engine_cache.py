"""A cache of built engines (TensorRT plans) that is safe to share between runs and processes.

Pain points this answers (seen with Isaac ROS and friends): engines rebuilt on every start, engines
silently stale after a TensorRT or driver upgrade, half-written files after a crash. So:

* the cache key is sha256(ONNX bytes) + TensorRT version + GPU name + precision (+ the input shapes
  the engine was built for); it is written beside the engine as ``<engine>.key.json``;
* a key mismatch (new model, new TensorRT, other GPU, other precision) rebuilds the engine;
* files are written atomically (temporary file + fsync + os.replace), key last, so a crash leaves
  either the old pair or no key (which rebuilds), never a torn engine that looks valid;
* the key also records the engine's size and sha256: a truncated or corrupt engine is refused with
  a message that names the file and says how to fix it, instead of crashing inside TensorRT.

Plain Python on purpose: the logic is unit-tested without TensorRT, with a fake builder.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from vljepa_ros.errors import CheckpointError

LOGGER = logging.getLogger(__name__)
KEY_SUFFIX = ".key.json"


@dataclass(frozen=True)
class EngineCacheKey:
    """Everything a built engine depends on. Two equal keys may share one engine file."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str
    input_shapes: dict[str, list[int]] = field(default_factory=dict)  # the fixed-shape profile
    workspace_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_of_files(paths: list[Path], chunk_bytes: int = 1 << 22) -> str:
    """sha256 over the bytes of several files in order (an ONNX graph and its external-data files)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_bytes):
                digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def key_path_for(engine_path: Path) -> Path:
    return Path(str(engine_path) + KEY_SUFFIX)


@contextlib.contextmanager
def _build_lock(engine_path: Path) -> Iterator[None]:
    """One builder per engine file across processes (two nodes starting together build once)."""
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(engine_path) + ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def read_cached_engine(engine_path: Path, key: EngineCacheKey) -> bytes | None:
    """The cached engine bytes when the stored key equals `key`; None when missing or stale (rebuild).

    Raises CheckpointError when the key matches but the engine file is truncated or corrupt.
    """
    engine_path, key_path = Path(engine_path), key_path_for(engine_path)
    if not engine_path.exists() or not key_path.exists():
        return None
    try:
        stored = json.loads(key_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        LOGGER.warning("engine key file %s is unreadable; rebuilding %s", key_path, engine_path)
        return None
    if stored.get("key") != key.to_dict():
        changed = sorted(k for k, v in key.to_dict().items() if stored.get("key", {}).get(k) != v)
        LOGGER.info("engine %s is stale (changed: %s); rebuilding", engine_path, ", ".join(changed) or "format")
        return None
    data = engine_path.read_bytes()
    expected_size, expected_sha = stored.get("engine_bytes"), stored.get("engine_sha256")
    if len(data) != expected_size or hashlib.sha256(data).hexdigest() != expected_sha:
        raise CheckpointError(
            f"engine file {engine_path} is corrupt or truncated ({len(data)} bytes, expected {expected_size} "
            f"with sha256 {str(expected_sha)[:12]}...). Delete it (and {key_path.name}) or rebuild it with "
            f"`vljepa-ros export --tensorrt --force-rebuild`.")
    return data


def write_cached_engine(engine_path: Path, key: EngineCacheKey, engine_bytes: bytes) -> None:
    """Store an engine and its key. The old key goes first, the new key last, so a crash never pairs them wrongly."""
    engine_path, key_path = Path(engine_path), key_path_for(engine_path)
    with contextlib.suppress(FileNotFoundError):
        key_path.unlink()
    atomic_write_bytes(engine_path, engine_bytes)
    record = {"key": key.to_dict(), "engine_bytes": len(engine_bytes),
              "engine_sha256": hashlib.sha256(engine_bytes).hexdigest()}
    atomic_write_bytes(key_path, json.dumps(record, indent=2, sort_keys=True).encode())


def load_or_build_engine(engine_path: Path, key: EngineCacheKey, build: Callable[[], bytes],
                         force_rebuild: bool = False) -> tuple[bytes, bool]:
    """Return (engine bytes, built_now). Builds with `build()` when missing, stale or forced.

    `build` can take minutes (TensorRT): call this from a worker thread or ahead of time
    (`vljepa-ros export --tensorrt`), never from a ROS executor callback.
    """
    engine_path = Path(engine_path)
    with _build_lock(engine_path):
        if not force_rebuild:
            cached = read_cached_engine(engine_path, key)
            if cached is not None:
                return cached, False
        LOGGER.info("building engine %s (%s, %s)", engine_path, key.precision, key.gpu_name)
        engine_bytes = build()
        if not engine_bytes:
            raise CheckpointError(f"the engine builder returned no bytes for {engine_path}")
        write_cached_engine(engine_path, key, engine_bytes)
        return engine_bytes, True
