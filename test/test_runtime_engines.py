"""torch vs ONNX Runtime parity on the tiny preset, export metadata, engine interface behaviour.

The export goes through the real `vljepa-ros export` command once per module (exporting is the slow
part: ~10-20 s on 2 busy cores) with a query length (12) different from the model's (8): parity then
also shows that query padding does not change the embedding.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_fixtures import CAPTIONS, LABELS, QUERIES, tiny_model_dir  # noqa: F401
from vljepa_ros.errors import ImageConversionError
from vljepa_ros.runtime import create_engine
from vljepa_ros.runtime.onnx_export import (CLIP_INPUT_NAMES, CLIP_OUTPUT_NAMES, TEXT_INPUT_NAMES, TEXT_OUTPUT_NAMES,
                                            clip_graph_name,
                                            find_export, read_onnx_metadata, text_graph_name)

EXPORT_QUERY_TOKENS = 12
PARITY_COSINE = 0.9999


@pytest.fixture(scope="module")
def export_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    from vljepa_ros.cli import main

    out = tmp_path_factory.mktemp("onnx_export")
    assert main(["export", "--model", str(tiny_model_dir), "--out", str(out),
                 "--query-tokens", str(EXPORT_QUERY_TOKENS)]) == 0
    return out


@pytest.fixture(scope="module")
def torch_engine(tiny_model_dir: Path):  # noqa: F811
    return create_engine(tiny_model_dir, backend="torch", query_tokens=EXPORT_QUERY_TOKENS)


@pytest.fixture(scope="module")
def torch_engine_default_length(tiny_model_dir: Path):  # noqa: F811
    return create_engine(tiny_model_dir, backend="torch")


@pytest.fixture(scope="module")
def ort_engine(tiny_model_dir: Path, export_dir: Path):  # noqa: F811
    return create_engine(tiny_model_dir, backend="onnxruntime", cache_dir=export_dir,
                         query_tokens=EXPORT_QUERY_TOKENS)


def random_clips(batch: int, frames: int, height: int = 40, width: int = 52, seed: int = 0) -> np.ndarray:
    # Not the model's 32x32: preprocessing (resize shortest side + centre crop) runs for real.
    return np.random.default_rng(seed).integers(0, 256, (batch, frames, height, width, 3), dtype=np.uint8)


def parity(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    cosines = np.sum(reference * candidate, axis=-1) / (
        np.linalg.norm(reference, axis=-1) * np.linalg.norm(candidate, axis=-1))
    return float(cosines.min()), float(np.abs(reference - candidate).max())


def test_clip_parity_torch_vs_onnxruntime(torch_engine, ort_engine, record_property) -> None:
    clips = random_clips(3, torch_engine.frames_per_clip)
    for query in QUERIES:
        reference, candidate = torch_engine.encode_clips(clips, query), ort_engine.encode_clips(clips, query)
        cosine, max_abs = parity(reference, candidate)
        record_property(f"clip_parity[{query}]", {"min_cosine": cosine, "max_abs_diff": max_abs})
        print(f"clip parity {query!r}: min cosine {cosine:.8f}, max |diff| {max_abs:.3e}")
        assert cosine >= PARITY_COSINE
        assert max_abs < 1e-3


def test_visual_statistics_parity_torch_vs_onnxruntime(torch_engine, ort_engine) -> None:
    """The familiarity score's input comes out of every backend's clip graph, the same in each."""
    clips = random_clips(3, torch_engine.frames_per_clip, seed=7)
    reference = torch_engine.encode_clips_with_statistics(clips, QUERIES[0])
    candidate = ort_engine.encode_clips_with_statistics(clips, QUERIES[0])
    width = torch_engine.config.x_encoder["hidden_size"]
    assert reference[1].shape == candidate[1].shape == (3, 2 * width)
    np.testing.assert_allclose(candidate[0], reference[0], atol=1e-4)
    np.testing.assert_allclose(candidate[1], reference[1], rtol=1e-3, atol=1e-4)
    assert (reference[1][:, width:] > 0).all()  # the second half is a spread: positive for non-constant tokens


def test_text_parity_torch_vs_onnxruntime(torch_engine, ort_engine, record_property) -> None:
    texts = LABELS + CAPTIONS + ["words the tokenizer never saw", ""]
    cosine, max_abs = parity(torch_engine.encode_texts(texts), ort_engine.encode_texts(texts))
    record_property("text_parity", {"min_cosine": cosine, "max_abs_diff": max_abs})
    print(f"text parity: min cosine {cosine:.8f}, max |diff| {max_abs:.3e}")
    assert cosine >= PARITY_COSINE


def test_query_padding_does_not_change_the_embedding(torch_engine_default_length, ort_engine) -> None:
    # "What is happening?" is 5 tokens: 8-token torch and 12-token ONNX differ only in padding.
    clips = random_clips(2, 4, seed=5)
    assert torch_engine_default_length.query_tokens == 8
    cosine, _ = parity(torch_engine_default_length.encode_clips(clips, QUERIES[0]),
                       ort_engine.encode_clips(clips, QUERIES[0]))
    assert cosine >= PARITY_COSINE


def test_engine_attributes_match(torch_engine, ort_engine) -> None:
    for engine in (torch_engine, ort_engine):
        assert engine.dimension == 16 and engine.frames_per_clip == 4 and engine.image_size == 32
        assert engine.model_id == torch_engine.model_id and engine.model_id.startswith("tiny-")
        assert engine.device == "cpu" and engine.precision == "fp32"
    assert (torch_engine.backend, ort_engine.backend) == ("torch", "onnxruntime")
    assert ort_engine.query_tokens == EXPORT_QUERY_TOKENS


def test_encode_clip_returns_unit_float32_and_matches_batch(ort_engine) -> None:
    clips = random_clips(2, ort_engine.frames_per_clip, seed=1)
    batch = ort_engine.encode_clips(clips, QUERIES[0])
    single = ort_engine.encode_clip(clips[1], QUERIES[0])
    assert single.shape == (ort_engine.dimension,) and single.dtype == np.float32
    assert abs(float(np.linalg.norm(single)) - 1.0) < 1e-5
    np.testing.assert_allclose(single, batch[1], atol=1e-5)
    per_clip_queries = ort_engine.encode_clips(clips, [QUERIES[0], QUERIES[1]])
    np.testing.assert_allclose(per_clip_queries[0], batch[0], atol=1e-5)


def test_short_clip_and_single_image_fill_the_clip(torch_engine, ort_engine) -> None:
    image = random_clips(1, 1, seed=2)[0]  # (1, H, W, 3): repeated to frames_per_clip, as in training
    repeated = np.repeat(image, torch_engine.frames_per_clip, axis=0)
    np.testing.assert_allclose(torch_engine.encode_clip(image, QUERIES[0]),
                               torch_engine.encode_clip(repeated, QUERIES[0]), atol=1e-6)
    assert parity(torch_engine.encode_clip(image, QUERIES[0])[None],
                  ort_engine.encode_clip(image, QUERIES[0])[None])[0] >= PARITY_COSINE


def test_query_tokenised_once_per_string(torch_engine) -> None:
    clip = random_clips(1, 4, seed=3)[0]
    torch_engine._query_cache.clear()
    for _ in range(3):
        torch_engine.encode_clip(clip, "What is happening?")
    assert list(torch_engine._query_cache) == ["What is happening?"]


def test_bad_frames_raise_clear_errors(torch_engine) -> None:
    with pytest.raises(ImageConversionError, match="uint8"):
        torch_engine.encode_clip(np.zeros((4, 32, 32, 3), dtype=np.float32), "q")
    with pytest.raises(ImageConversionError, match=r"\(T, H, W, 3\)"):
        torch_engine.encode_clip(np.zeros((32, 32, 3), dtype=np.uint8), "q")
    with pytest.raises(ImageConversionError, match="RGB"):
        torch_engine.encode_clips(np.zeros((1, 4, 32, 32, 4), dtype=np.uint8), "q")
    with pytest.raises(ValueError, match="2 clips but 1 queries"):
        torch_engine.encode_clips(random_clips(2, 4), ["only one"])
    with pytest.raises(TypeError):
        torch_engine.encode_texts("not a list")
    assert torch_engine.encode_texts([]).shape == (0, torch_engine.dimension)


def test_export_metadata_and_stable_names(export_dir: Path, torch_engine) -> None:
    import onnx

    clip_path, text_path = export_dir / clip_graph_name(EXPORT_QUERY_TOKENS), export_dir / text_graph_name(8)
    for path, graph, inputs, outputs in ((clip_path, "clip", CLIP_INPUT_NAMES, CLIP_OUTPUT_NAMES),
                                         (text_path, "text", TEXT_INPUT_NAMES, TEXT_OUTPUT_NAMES)):
        meta = read_onnx_metadata(path)
        assert meta["model_id"] == torch_engine.model_id
        assert meta["preset"] == "tiny" and meta["graph"] == graph
        assert meta["query_tokens"] == str(EXPORT_QUERY_TOKENS) and meta["text_tokens"] == "8"
        assert meta["dimension"] == "16" and meta["frames_per_clip"] == "4" and meta["image_size"] == "32"
        proto = onnx.load(str(path), load_external_data=False)
        assert tuple(i.name for i in proto.graph.input) == inputs
        assert tuple(o.name for o in proto.graph.output) == outputs
    clip_inputs = {i.name: i for i in onnx.load(str(clip_path), load_external_data=False).graph.input}
    query_dims = [d.dim_value for d in clip_inputs["query_ids"].type.tensor_type.shape.dim]
    assert query_dims[1] == EXPORT_QUERY_TOKENS  # query length fixed per export; batch stays dynamic
    assert clip_inputs["pixel_values"].type.tensor_type.shape.dim[0].dim_param


def test_cached_export_is_reused_and_checked_against_the_model(tiny_model_dir: Path, export_dir: Path,  # noqa: F811
                                                                torch_engine) -> None:
    clip_path = export_dir / clip_graph_name(EXPORT_QUERY_TOKENS)
    before = clip_path.stat().st_mtime_ns
    create_engine(tiny_model_dir, backend="onnxruntime", cache_dir=export_dir, query_tokens=EXPORT_QUERY_TOKENS)
    assert clip_path.stat().st_mtime_ns == before  # found by model id + lengths, not re-exported
    assert find_export(export_dir, torch_engine.model_id, EXPORT_QUERY_TOKENS, 8) is not None
    assert find_export(export_dir, "tiny-0000beef", EXPORT_QUERY_TOKENS, 8) is None  # other weights: stale
    assert find_export(export_dir, torch_engine.model_id, 8, 8) is None  # other query length: not this graph
    # With the model's config the whole key (format, graph, model id, lengths, shapes) must match.
    from types import SimpleNamespace

    from vljepa_ros.model.checkpoint import load_config
    config = load_config(tiny_model_dir)
    assert find_export(export_dir, torch_engine.model_id, EXPORT_QUERY_TOKENS, 8, config=config) is not None
    other_shape = SimpleNamespace(text_max_tokens=config.text_max_tokens, frames_per_clip=config.frames_per_clip,
                                  image_size=config.image_size * 2, shared_dim=config.shared_dim)
    assert find_export(export_dir, torch_engine.model_id, EXPORT_QUERY_TOKENS, 8, config=other_shape) is None


def test_torch_bf16_on_cpu_stays_close(tiny_model_dir: Path, torch_engine) -> None:  # noqa: F811
    bf16 = create_engine(tiny_model_dir, backend="torch", precision="bf16", query_tokens=EXPORT_QUERY_TOKENS)
    clips = random_clips(2, 4, seed=4)
    cosine, _ = parity(torch_engine.encode_clips(clips, QUERIES[0]), bf16.encode_clips(clips, QUERIES[0]))
    assert cosine > 0.99
    assert bf16.encode_texts(LABELS).dtype == np.float32


def test_the_nodes_engines_are_warmed_up_before_they_see_a_camera(tiny_model_dir, monkeypatch) -> None:  # noqa: F811
    """create_engine_from (every node's loader) runs WARM_UP_CALLS blank clips and a text through the engine."""
    from vljepa_ros.nodes.common import create_engine_from
    from vljepa_ros.runtime.base import WARM_UP_CALLS
    from vljepa_ros.runtime.torch_engine import TorchEngine
    calls = {"clips": 0, "texts": 0}
    run_clips, run_texts = TorchEngine._run_clips, TorchEngine._run_texts

    def counting_clips(self, *args):
        calls["clips"] += 1
        return run_clips(self, *args)

    def counting_texts(self, *args):
        calls["texts"] += 1
        return run_texts(self, *args)

    monkeypatch.setattr(TorchEngine, "_run_clips", counting_clips)
    monkeypatch.setattr(TorchEngine, "_run_texts", counting_texts)
    values = {"model_dir": str(tiny_model_dir), "backend": "torch", "device": "cpu"}
    engine = create_engine_from(values)
    assert calls == {"clips": WARM_UP_CALLS, "texts": 1}
    create_engine_from(values, warm_up=False)  # the monitor's: it never encodes a clip
    assert calls == {"clips": WARM_UP_CALLS, "texts": 1}
    frames = np.random.default_rng(0).integers(0, 256, (engine.frames_per_clip, 48, 64, 3), dtype=np.uint8)
    assert np.array_equal(engine.encode_clip(frames, QUERIES[0]),
                          create_engine(tiny_model_dir, backend="torch").encode_clip(frames, QUERIES[0]))
