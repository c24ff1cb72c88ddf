"""Engine cache: key match reuses, key mismatch rebuilds, corrupt/truncated files are refused, writes are atomic.

Plain Python with a fake builder, because the TensorRT builder cannot be installed on these machines
(test_runtime_tensorrt.py runs the real thing wherever tensorrt imports).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from vljepa_ros.errors import CheckpointError
from vljepa_ros.runtime.engine_cache import (EngineCacheKey, atomic_write_bytes, key_path_for, load_or_build_engine,
                                             read_cached_engine, sha256_of_files)


class FakeBuilder:
    """Stands in for TensorRT: returns distinct bytes per call and counts builds."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return f"engine-build-{self.calls}".encode() * 100


def make_key(**changes) -> EngineCacheKey:
    fields = dict(onnx_sha256="a" * 64, tensorrt_version="10.9.0", gpu_name="NVIDIA H100", precision="fp16",
                  input_shapes={"pixel_values": [1, 4, 3, 32, 32]}, workspace_bytes=1 << 30)
    fields.update(changes)
    return EngineCacheKey(**fields)


def test_first_call_builds_then_reuses(tmp_path: Path) -> None:
    engine, build = tmp_path / "clip.engine", FakeBuilder()
    data1, built1 = load_or_build_engine(engine, make_key(), build)
    data2, built2 = load_or_build_engine(engine, make_key(), build)
    assert (built1, built2) == (True, False)
    assert data1 == data2 == engine.read_bytes()
    assert build.calls == 1
    record = json.loads(key_path_for(engine).read_text())
    assert record["key"] == make_key().to_dict()
    assert record["engine_bytes"] == len(data1)


@pytest.mark.parametrize("change", [
    {"onnx_sha256": "b" * 64},  # re-exported / different model
    {"tensorrt_version": "10.10.0"},  # TensorRT upgrade: old plans must not be loaded silently
    {"gpu_name": "NVIDIA Jetson Orin"},
    {"precision": "fp32"},
    {"input_shapes": {"pixel_values": [2, 4, 3, 32, 32]}},
])
def test_key_mismatch_rebuilds(tmp_path: Path, change: dict) -> None:
    engine, build = tmp_path / "clip.engine", FakeBuilder()
    load_or_build_engine(engine, make_key(), build)
    data, built = load_or_build_engine(engine, make_key(**change), build)
    assert built and build.calls == 2
    assert data == b"engine-build-2" * 100
    assert json.loads(key_path_for(engine).read_text())["key"] == make_key(**change).to_dict()


def test_truncated_engine_is_refused_with_clear_message(tmp_path: Path) -> None:
    engine, build = tmp_path / "clip.engine", FakeBuilder()
    load_or_build_engine(engine, make_key(), build)
    engine.write_bytes(engine.read_bytes()[:37])  # e.g. disk full / killed copy
    with pytest.raises(CheckpointError, match=r"clip\.engine is corrupt or truncated.*--force-rebuild"):
        load_or_build_engine(engine, make_key(), build)
    assert build.calls == 1


def test_corrupt_engine_same_size_is_refused(tmp_path: Path) -> None:
    engine, build = tmp_path / "clip.engine", FakeBuilder()
    load_or_build_engine(engine, make_key(), build)
    data = bytearray(engine.read_bytes())
    data[10] ^= 0xFF
    engine.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        read_cached_engine(engine, make_key())


def test_force_rebuild_replaces_a_corrupt_engine(tmp_path: Path) -> None:
    engine, build = tmp_path / "clip.engine", FakeBuilder()
    load_or_build_engine(engine, make_key(), build)
    engine.write_bytes(b"garbage")
    data, built = load_or_build_engine(engine, make_key(), build, force_rebuild=True)
    assert built and data == engine.read_bytes() == b"engine-build-2" * 100
    assert load_or_build_engine(engine, make_key(), build) == (data, False)


def test_missing_or_unreadable_key_file_rebuilds(tmp_path: Path) -> None:
    engine, build = tmp_path / "clip.engine", FakeBuilder()
    load_or_build_engine(engine, make_key(), build)
    key_path_for(engine).unlink()  # e.g. a crash between engine and key write
    assert load_or_build_engine(engine, make_key(), build)[1] is True
    key_path_for(engine).write_text("{not json")
    assert load_or_build_engine(engine, make_key(), build)[1] is True
    assert build.calls == 3


def test_failed_build_leaves_previous_engine_untouched(tmp_path: Path) -> None:
    engine = tmp_path / "clip.engine"
    load_or_build_engine(engine, make_key(), FakeBuilder())
    before = engine.read_bytes()

    def failing_build() -> bytes:
        raise RuntimeError("builder out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        load_or_build_engine(engine, make_key(precision="fp32"), failing_build)
    assert engine.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_empty_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no bytes"):
        load_or_build_engine(tmp_path / "x.engine", make_key(), lambda: b"")


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_concurrent_callers_build_once(tmp_path: Path) -> None:
    engine, build = tmp_path / "clip.engine", FakeBuilder()
    results: list[tuple[bytes, bool]] = []
    threads = [threading.Thread(target=lambda: results.append(load_or_build_engine(engine, make_key(), build)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert build.calls == 1
    assert sum(built for _, built in results) == 1
    assert len({data for data, _ in results}) == 1


def test_sha256_of_files_covers_external_data(tmp_path: Path) -> None:
    graph, data = tmp_path / "m.onnx", tmp_path / "m.onnx.data"
    graph.write_bytes(b"graph")
    data.write_bytes(b"weights-1")
    first = sha256_of_files([graph, data])
    data.write_bytes(b"weights-2")
    assert sha256_of_files([graph, data]) != first
    assert sha256_of_files([graph]) != first
    os.remove(data)


def test_engine_cache_dir_rule_confines_where_a_node_writes(tmp_path, monkeypatch):
    from vljepa_ros.runtime.cache_dir_rules import cache_dir_problem, resolve_cache_dir

    root = tmp_path / "cache_root"
    monkeypatch.setenv("VLJEPA_ROS_CACHE", str(root))
    existing = tmp_path / "existing"
    existing.mkdir()
    (tmp_path / "a_file").write_text("x")
    link = tmp_path / "link_out"
    link.symlink_to(tmp_path / "elsewhere")  # a link to a folder not made yet
    inside_link = root / "sneaky"
    root.mkdir()
    inside_link.symlink_to(tmp_path / "outside_target")
    assert resolve_cache_dir("") == root.resolve()
    assert resolve_cache_dir(str(existing)) == existing.resolve()
    assert resolve_cache_dir(str(root / "new" / "deep")) == (root / "new" / "deep").resolve()  # created on use
    refused = {
        "/etc/vljepa_probe": "does not exist and is not inside the cache root",
        "../../../../tmp/escape": "is relative",
        f"{root}/probe/../probe/deep/er": "contains '..'",
        str(tmp_path / "a_file"): "is not a directory",
        str(link / "x"): "does not exist and is not inside",
        str(inside_link / "deep"): "does not exist and is not inside",  # resolved: the link leaves the root
    }
    for value, reason in refused.items():
        problem = cache_dir_problem(value)
        assert problem is not None and reason in problem, (value, problem)
    assert not (tmp_path / "outside_target").exists() and not (tmp_path / "elsewhere").exists()
