"""create_engine option errors, missing-backend messages, the TensorRT cache wiring (with a fake TensorRT),
background creation, bench spec parsing; and the real TensorRT path wherever tensorrt imports.

The TensorRT builder cannot be installed on the CI machines (no GPU, builder wheel unreachable), so
test_real_tensorrt_* are skipped there: they run only where `import tensorrt` works and a GPU is visible.
"""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from model_fixtures import QUERIES, tiny_model_dir  # noqa: F401
from vljepa_ros.errors import BackendUnavailableError
from vljepa_ros.runtime import check_engine_options, create_engine
from vljepa_ros.runtime import tensorrt_engine
from vljepa_ros.runtime.engine_cache import key_path_for, sha256_of_files


@pytest.mark.parametrize("backend, device, precision, message", [
    ("tensorflow", "cpu", "fp32", "unknown backend 'tensorflow'; choose one of torch, onnxruntime, tensorrt"),
    ("torch", "tpu", "fp32", "unknown device 'tpu'; choose one of cpu, cuda"),
    ("torch", "cpu", "int8", "unknown precision 'int8'; choose one of fp32, fp16, bf16"),
    ("onnxruntime", "cpu", "fp16", "backend 'onnxruntime' supports precision 'fp32' only"),
    ("tensorrt", "cpu", "fp16", "backend 'tensorrt' runs on device 'cuda' only"),
])
def test_bad_options_raise_value_error_listing_choices(backend, device, precision, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_engine_options(backend, device, precision)
    # Checked before anything is loaded: even a missing model directory reports the option first.
    with pytest.raises(ValueError, match=message):
        create_engine("/nonexistent/model", backend=backend, device=device, precision=precision)


def test_tensorrt_not_importable_gives_actionable_message(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError, as on these machines
    with pytest.raises(BackendUnavailableError, match=r"pip install tensorrt.*backend='onnxruntime'"):
        create_engine(tmp_path, backend="tensorrt", device="cuda", precision="fp16")
    from vljepa_ros.cli import main

    # the command line says it in one line naming the command (no traceback) and exits 2
    assert main(["export", "--model", str(tmp_path), "--out", str(tmp_path / "out"), "--tensorrt", "--fp16"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vljepa-ros export: cannot import tensorrt") and "backend='onnxruntime'" in line


def test_cuda_requested_without_gpu(tiny_model_dir: Path, monkeypatch) -> None:  # noqa: F811
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU"):
        create_engine(tiny_model_dir, backend="torch", device="cuda")
    from vljepa_ros.runtime.onnxruntime_engine import providers_for

    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
            providers_for("cuda")


class FakeTensorRT:
    """Just enough of TensorRT + CUDA for prepare_engine: versions, GPU name, a builder that counts."""

    def __init__(self, monkeypatch, version: str = "10.0.0-fake", gpu: str = "Fake GPU 80GB") -> None:
        self.builds: list[tuple[str, str]] = []
        self.version, self.gpu = version, gpu
        monkeypatch.setattr(tensorrt_engine, "import_tensorrt", lambda: types.SimpleNamespace(__version__=self.version))
        fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(get_device_name=lambda: self.gpu))
        monkeypatch.setattr(tensorrt_engine, "require_cuda", lambda: fake_torch)
        monkeypatch.setattr(tensorrt_engine, "build_serialized_engine", self.build)

    def build(self, onnx_path, precision, workspace_bytes, input_shapes) -> bytes:
        self.builds.append((Path(onnx_path).name, precision))
        return f"plan:{precision}:{len(self.builds)}".encode()


def test_tensorrt_cache_key_wiring_with_fake_tensorrt(monkeypatch, tmp_path: Path) -> None:
    onnx_path = tmp_path / "clip_encoder-q8.onnx"
    onnx_path.write_bytes(b"graph")
    (tmp_path / "clip_encoder-q8.onnx.data").write_bytes(b"weights")
    shapes = {"pixel_values": [1, 4, 3, 32, 32], "query_ids": [1, 8], "query_mask": [1, 8]}
    fake = FakeTensorRT(monkeypatch)

    engine_path, data = tensorrt_engine.prepare_engine(onnx_path, shapes, "fp16", workspace_gb=1)
    assert engine_path.name == "clip_encoder-q8.fake_gpu_80gb.fp16.engine" and engine_path.read_bytes() == data
    key = json.loads(key_path_for(engine_path).read_text())["key"]
    assert key == {"onnx_sha256": sha256_of_files([onnx_path, tmp_path / "clip_encoder-q8.onnx.data"]),
                   "tensorrt_version": "10.0.0-fake", "gpu_name": "Fake GPU 80GB", "precision": "fp16",
                   "input_shapes": shapes, "workspace_bytes": 1 << 30}
    assert tensorrt_engine.prepare_engine(onnx_path, shapes, "fp16", workspace_gb=1)[1] == data
    assert len(fake.builds) == 1  # second start: cached

    (tmp_path / "clip_encoder-q8.onnx.data").write_bytes(b"new weights")  # re-exported model
    tensorrt_engine.prepare_engine(onnx_path, shapes, "fp16", workspace_gb=1)
    fake.version = "10.1.0-fake"  # TensorRT upgrade
    tensorrt_engine.prepare_engine(onnx_path, shapes, "fp16", workspace_gb=1)
    assert len(fake.builds) == 3
    tensorrt_engine.prepare_engine(onnx_path, shapes, "fp32", workspace_gb=1)  # other precision: own file
    assert len(fake.builds) == 4 and len(list(tmp_path.glob("*.engine"))) == 2


def test_bench_spec_parsing_and_no_gpu_report(monkeypatch) -> None:
    import torch

    from vljepa_ros.runtime.benchmark import EngineSpec, run_benchmark

    assert EngineSpec.parse("torch:bf16+compile") == EngineSpec("torch", "bf16", True)
    assert EngineSpec.parse("onnxruntime").label == "onnxruntime-fp32"
    with pytest.raises(ValueError, match="backend"):
        EngineSpec.parse("openvino")
    with pytest.raises(ValueError, match="torch backend only"):
        EngineSpec.parse("onnxruntime+compile")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    report = run_benchmark(["paper"], device="cuda", log=lambda message: None)
    assert "no CUDA GPU on this machine" in report["skipped"] and report["results"] == []
    assert report["machine"]["gpu"] is None and report["machine"]["cpu_model"]


# ---- real TensorRT: only where it is installed with a GPU (never on the CI machines) -----------------------
def _tensorrt_with_gpu():
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not importable here (its builder cannot be installed "
                                                 "on the CI machines); this test runs on GPU machines with tensorrt")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("tensorrt imports but no CUDA GPU is visible")
    return trt


@pytest.mark.slow
def test_real_tensorrt_engine_parity_and_cache(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    _tensorrt_with_gpu()
    reference = create_engine(tiny_model_dir, backend="torch")
    clips = np.random.default_rng(0).integers(0, 256, (3, 4, 40, 52, 3), dtype=np.uint8)
    expected = reference.encode_clips(clips, QUERIES[0])
    for precision, min_cosine in (("fp32", 0.9999), ("fp16", 0.999)):
        engine = create_engine(tiny_model_dir, backend="tensorrt", device="cuda", precision=precision,
                               cache_dir=tmp_path)
        got = engine.encode_clips(clips, QUERIES[0])  # batch 3 through a fixed batch-1 engine
        assert float(np.min(np.sum(got * expected, -1))) >= min_cosine
        texts = ["pick up the red cube", "the arm is idle"]
        assert float(np.min(np.sum(engine.encode_texts(texts) * reference.encode_texts(texts), -1))) >= min_cosine
        stamps = [p.stat().st_mtime_ns for p in engine.engine_paths]
        again = create_engine(tiny_model_dir, backend="tensorrt", device="cuda", precision=precision,
                              cache_dir=tmp_path)
        assert [p.stat().st_mtime_ns for p in again.engine_paths] == stamps  # reused, not rebuilt


def test_bench_report_shape_on_tiny_torch(tmp_path: Path) -> None:
    # Only the torch configurations here: an ONNX export would cost ~20 s; parity tests cover ORT.
    from vljepa_ros.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--json", str(out), "--presets", "tiny", "--backends", "torch,torch:bf16",
                 "--iterations", "4", "--warmup", "1", "--rounds", "2", "--threads", "1"]) == 0
    report = json.loads(out.read_text())
    assert {"cpu_model", "logical_cpus", "torch", "onnxruntime", "gpu"} <= set(report["machine"])
    (result,) = report["results"]
    assert result["preset"] == "tiny" and result["weights"] == "random"
    for label in ("torch-fp32", "torch-bf16"):
        stats = result["configs"][label]
        assert stats["iterations"] == 4 and 0 < stats["p50_ms"] <= stats["p95_ms"]
        assert stats["clips_per_s"] > 0 and stats["cosine_to_first"] > 0.99
    assert result["fastest"] in result["configs"] and result["speedup_fastest_vs_torch_fp32_p50"] >= 1.0
