"""Checkpoints: exact save/load round-trip, model ids, clear errors, and assembling VL-JEPA from component
directories in Hugging Face layout (tiny VJEPA2Model / Llama / Gemma3TextModel written with save_pretrained)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from transformers import (Gemma3TextConfig, Gemma3TextModel, LlamaConfig, LlamaForCausalLM, LlamaModel, VJEPA2Config,
                          VJEPA2Model)

from vljepa_ros.errors import CheckpointError
from vljepa_ros.model.checkpoint import (HEAD_KEYS, build_from_components, load_model, load_text_bank, model_id,
                                         save_heads, save_model)
from vljepa_ros.model.config import get_preset
from vljepa_ros.model.tokenizer import build_word_tokenizer
from vljepa_ros.model.vljepa import new_model

CORPUS = ["What is happening?", "pick up the red cube", "push the blue ball left", "the arm is idle"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple:
    torch.manual_seed(0)
    model = new_model(get_preset("tiny"), CORPUS).eval()
    directory = save_model(model, tmp_path_factory.mktemp("model"), text_bank=CORPUS[1:])
    return model, directory


def test_round_trip_is_exact(saved) -> None:
    model, directory = saved
    loaded = load_model(directory)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    assert loaded.config == model.config
    assert load_text_bank(directory) == CORPUS[1:]
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    assert torch.equal(loaded.embed_clips(frames, "What is happening?"), model.embed_clips(frames, "What is happening?"))
    assert torch.equal(loaded.embed_texts(CORPUS), model.embed_texts(CORPUS))
    assert loaded.query_tokenizer(CORPUS)[0].tolist() == model.query_tokenizer(CORPUS)[0].tolist()


def test_model_id_names_preset_and_weights(saved) -> None:
    model, directory = saved
    assert model_id(model) == model_id(directory) == model_id(load_model(directory))
    assert model_id(model).startswith("tiny-") and len(model_id(model)) == len("tiny-") + 8
    other = new_model(get_preset("tiny"), CORPUS)
    assert model_id(other) != model_id(model)


def copy_dir(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_missing_corrupt_and_mismatched_files_name_the_file(saved, tmp_path) -> None:
    _, directory = saved
    broken = copy_dir(directory, tmp_path / "missing")
    (broken / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(broken)

    corrupt = copy_dir(directory, tmp_path / "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(corrupt)

    wrong_shape = copy_dir(directory, tmp_path / "shape")
    weights = safetensors.torch.load_file(str(wrong_shape / "model.safetensors"))
    weights["predictor.out_proj.weight"] = torch.zeros(3, 3)
    safetensors.torch.save_file(weights, str(wrong_shape / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*predictor\.out_proj\.weight"):
        load_model(wrong_shape)

    mismatch = copy_dir(directory, tmp_path / "config")
    config = json.loads((mismatch / "config.json").read_text())
    config["shared_dim"] = 24  # weights were saved for 16
    (mismatch / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(mismatch)

    config["x_encoder"]["patch_size"] = 8  # sections disagree with each other
    (mismatch / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(mismatch)

    no_tokenizer = copy_dir(directory, tmp_path / "tokenizer")
    import shutil

    shutil.rmtree(no_tokenizer / "text_tokenizer")
    with pytest.raises(CheckpointError, match="text_tokenizer"):
        load_model(no_tokenizer)


# ---- component directories ---------------------------------------------------------------------------

LLAMA_LAYERS = 4
PREDICTOR_LAYERS = 2


@pytest.fixture(scope="module")
def component_dirs(tmp_path_factory) -> dict:
    """Tiny V-JEPA 2, Llama (4 layers) and EmbeddingGemma-style dirs (+ 2_Dense/3_Dense) in HF layout."""
    root = tmp_path_factory.mktemp("components")
    tiny = get_preset("tiny")
    tokenizer = build_word_tokenizer(CORPUS)
    torch.manual_seed(0)

    vjepa2 = VJEPA2Model(VJEPA2Config(**tiny.x_encoder))
    vjepa2.save_pretrained(root / "vjepa2")

    llama_kwargs = {k: v for k, v in tiny.predictor.items() if k != "num_layers"}
    llama_kwargs.update(num_hidden_layers=LLAMA_LAYERS, vocab_size=len(tokenizer))
    for name, cls in (("llama_causal", LlamaForCausalLM), ("llama_model", LlamaModel)):
        cls(LlamaConfig(**llama_kwargs)).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)

    gemma_config = Gemma3TextConfig(**{**tiny.y_encoder, "vocab_size": len(tokenizer)})
    Gemma3TextModel(gemma_config).save_pretrained(root / "gemma")
    tokenizer.save_pretrained(root / "gemma")
    hidden = gemma_config.hidden_size
    for name, shape in (("2_Dense", (4 * hidden, hidden)), ("3_Dense", (hidden, 4 * hidden))):
        (root / "gemma" / name).mkdir()
        safetensors.torch.save_file({"linear.weight": torch.randn(shape)}, str(root / "gemma" / name / "model.safetensors"))

    llama_hidden = tiny.predictor["hidden_size"]
    heads = {
        "predictor.visual_proj.weight": torch.randn(llama_hidden, tiny.x_encoder["hidden_size"]),
        "predictor.visual_proj.bias": torch.randn(llama_hidden),
        "predictor.out_proj.weight": torch.randn(tiny.shared_dim, llama_hidden),
        "predictor.out_proj.bias": torch.randn(tiny.shared_dim),
        "y_encoder.head.weight": torch.randn(tiny.shared_dim, hidden),
        "y_encoder.head.bias": torch.randn(tiny.shared_dim),
    }
    safetensors.torch.save_file(heads, str(root / "heads.safetensors"))
    return {"root": root, "heads": heads}


@pytest.mark.parametrize("llama_dir", ["llama_causal", "llama_model"])
def test_build_from_component_dirs(component_dirs, llama_dir, tmp_path) -> None:
    root = component_dirs["root"]
    model = build_from_components(root / "vjepa2", root / llama_dir, root / "gemma", root / "heads.safetensors",
                                  predictor_layers=PREDICTOR_LAYERS, base_config=get_preset("tiny"))
    state = model.state_dict()

    vjepa2 = safetensors.torch.load_file(str(root / "vjepa2" / "model.safetensors"))
    assert not any(k.startswith("x_encoder.vjepa2.predictor") for k in state)  # V-JEPA's predictor is dropped
    for key, tensor in vjepa2.items():
        if key.startswith("encoder."):
            assert torch.equal(state["x_encoder.vjepa2." + key], tensor)

    llama = {k.removeprefix("model."): v for k, v in
             safetensors.torch.load_file(str(root / llama_dir / "model.safetensors")).items()}
    first = LLAMA_LAYERS - PREDICTOR_LAYERS  # the LAST layers, renumbered from 0
    assert torch.equal(state["predictor.layers.0.self_attn.q_proj.weight"], llama[f"layers.{first}.self_attn.q_proj.weight"])
    assert torch.equal(state["predictor.layers.1.mlp.down_proj.weight"], llama[f"layers.{first + 1}.mlp.down_proj.weight"])
    assert torch.equal(state["predictor.embed_tokens.weight"], llama["embed_tokens.weight"])
    assert torch.equal(state["predictor.norm.weight"], llama["norm.weight"])

    gemma = safetensors.torch.load_file(str(root / "gemma" / "model.safetensors"))
    for key, tensor in gemma.items():
        assert torch.equal(state["y_encoder.gemma." + key], tensor)
    dense = safetensors.torch.load_file(str(root / "gemma" / "3_Dense" / "model.safetensors"))
    assert torch.equal(state["y_encoder.dense.1.weight"], dense["linear.weight"])
    for key in HEAD_KEYS:
        assert torch.equal(state[key], component_dirs["heads"][key])

    config = model.config
    assert config.predictor["num_layers"] == PREDICTOR_LAYERS and config.y_dense_dims == [128, 32]
    assert config.y_encoder["use_bidirectional_attention"] is True
    frames = np.random.default_rng(0).integers(0, 256, (1, 4, 32, 32, 3), dtype=np.uint8)
    embedding = model.embed_clips(frames, "What is happening?")
    assert embedding.shape == (1, config.shared_dim) and torch.isfinite(embedding).all()

    # The assembled model saves and loads like any other, and its heads file round-trips.
    save_model(model, tmp_path / "assembled")
    assert torch.equal(load_model(tmp_path / "assembled").embed_clips(frames, "What is happening?"), embedding)
    save_heads(model, tmp_path / "heads.safetensors")
    assert safetensors.torch.load_file(str(tmp_path / "heads.safetensors")).keys() == set(HEAD_KEYS)


def test_component_errors_name_the_file(component_dirs, tmp_path) -> None:
    root = component_dirs["root"]
    tiny = get_preset("tiny")
    args = (root / "vjepa2", root / "llama_causal", root / "gemma")
    with pytest.raises(CheckpointError, match="missing.heads"):
        build_from_components(*args, root / "missing.heads", predictor_layers=2, base_config=tiny)
    bad_heads = dict(component_dirs["heads"])
    bad_heads["y_encoder.head.weight"] = torch.zeros(tiny.shared_dim, 5)
    safetensors.torch.save_file(bad_heads, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError, match=r"bad\.safetensors.*y_encoder\.head\.weight"):
        build_from_components(*args, tmp_path / "bad.safetensors", predictor_layers=2, base_config=tiny)
    with pytest.raises(CheckpointError, match=r"llama_causal.config\.json"):
        build_from_components(*args, None, predictor_layers=LLAMA_LAYERS + 1, base_config=tiny)
    with pytest.raises(CheckpointError, match=r"empty.config\.json"):
        (tmp_path / "empty").mkdir()
        build_from_components(tmp_path / "empty", *args[1:], None, predictor_layers=2, base_config=tiny)
    # Fresh heads (None) are allowed: the starting point for training.
    assert build_from_components(*args, None, predictor_layers=2, base_config=tiny) is not None


def test_model_dir_check_refuses_missing_truncated_and_foreign_directories(tmp_path, tiny_model_dir):
    from model_fixtures import write_model_variants
    from vljepa_ros.model.model_dir_check import model_dir_problem

    variants = write_model_variants(tmp_path, tiny_model_dir)
    assert "does not exist" in model_dir_problem(variants["missing"])
    assert "truncated" in model_dir_problem(variants["truncated"])
    assert model_dir_problem(variants["mismatched"]) is None  # whole files: the load decides
    assert model_dir_problem(variants["valid"]) is None and model_dir_problem(tiny_model_dir) is None
    assert "config.json is missing" in model_dir_problem(tmp_path)
    padded = variants["valid"] / "model.safetensors"
    padded.write_bytes(padded.read_bytes() + b"\0")
    assert "truncated or corrupt" in model_dir_problem(variants["valid"])
    (variants["valid"] / "model.safetensors").write_bytes(b"not a safetensors file at all")
    assert model_dir_problem(variants["valid"]) is not None
