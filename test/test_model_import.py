"""`vljepa-ros import`: open-vljepa's checkpoint and the public components become standard model directories.

The real files cannot be downloaded here, so the fixture builds them at tiny geometry in the same formats:
component directories with save_pretrained (V-JEPA 2, a Llama with llama3 RoPE scaling, a bidirectional Gemma 3
with sentence-transformers Dense modules), and a `best.pt` with open-vljepa's key names, dtypes (pretrained parts
bf16, new layers fp32) and training config. The reference below re-implements their forward pass from their
semantics with transformers' modules directly (eager attention; none of vljepa_ros.model), and the imported
directory must reproduce it in torch and through ONNX Runtime.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from tokenizers import processors
from transformers import (AutoTokenizer, Gemma3TextConfig, Gemma3TextModel, LlamaConfig, LlamaForCausalLM,
                          VJEPA2Config, VJEPA2Model)
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm, LlamaRotaryEmbedding

from vljepa_ros.cli import main
from vljepa_ros.errors import CheckpointError
from vljepa_ros.model.checkpoint import load_model
from vljepa_ros.model.config import IMAGENET_MEAN, IMAGENET_STD, get_preset
from vljepa_ros.model.open_vljepa import import_open_vljepa
from vljepa_ros.model.tokenizer import build_byte_bpe_tokenizer
from vljepa_ros.paths import bank_file, read_text_lines

CORPUS = ["Describe the video.", "a robot arm picks up a red cube", "a person opens the door", "nothing moves"]
TEXTS = CORPUS[1:] + ["a much longer caption that runs past the padded length of the text encoder"]
LLAMA_LAYERS, KEPT_LAYERS, SHARED_DIM = 4, 2, 24
TRAINING_CONFIG = {  # the shape of open-vljepa's configs/*.yaml, at tiny sizes
    "encoder": {"type": "vjepa2-vitl", "model_name": "facebook/vjepa2-vitl-fpc64-256", "frozen": True, "output_dim": None},
    "y_encoder": {"model_name": "google/embeddinggemma-300m", "proj_dim": SHARED_DIM, "max_target_len": 64,
                  "lr_multiplier": 0.05},
    "predictor": {"llama_name": "meta-llama/Llama-3.2-1B", "n_keep_layers": KEPT_LAYERS, "proj_dim": SHARED_DIM,
                  "max_query_len": 64, "disable_causal_mask": True},
    "data": {"dataset": "webvid", "num_frames": 4, "image_size": 32, "max_query_len": 12, "max_caption_len": 10,
             "query_text": "Describe the video."},
    "training": {"temperature": 0.05, "bf16": True},
}


def _tokenizer(bos_and_eos: bool, padding_side: str):
    tokenizer = build_byte_bpe_tokenizer(CORPUS, 300)
    if bos_and_eos:  # EmbeddingGemma's tokenizer adds <bos> and <eos>; both are pooled over
        backend = tokenizer.backend_tokenizer
        backend.post_processor = processors.TemplateProcessing(
            single="[BOS] $A [EOS]", special_tokens=[("[BOS]", tokenizer.bos_token_id), ("[EOS]", tokenizer.eos_token_id)])
    tokenizer.padding_side = padding_side
    return tokenizer


def _finetuned(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Pretrained weights moved a little (training changed them), stored in bf16 as open-vljepa does."""
    return {prefix + key: (value + 0.02 * torch.randn_like(value)).to(torch.bfloat16) for key, value in weights.items()}


def _write_components(root: Path) -> None:
    tiny = get_preset("tiny")
    VJEPA2Model(VJEPA2Config(**tiny.x_encoder)).save_pretrained(root / "vjepa2")
    llama_tokenizer, gemma_tokenizer = _tokenizer(False, "right"), _tokenizer(True, "left")
    llama = {k: v for k, v in tiny.predictor.items() if k != "num_layers"}
    llama.update(num_hidden_layers=LLAMA_LAYERS, vocab_size=len(llama_tokenizer), rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "high_freq_factor": 4.0,
        "low_freq_factor": 1.0, "original_max_position_embeddings": 32})
    LlamaForCausalLM(LlamaConfig(**llama)).save_pretrained(root / "llama")
    llama_tokenizer.save_pretrained(root / "llama")
    gemma = Gemma3TextModel(Gemma3TextConfig(**{**tiny.y_encoder, "vocab_size": len(gemma_tokenizer)}))
    gemma.save_pretrained(root / "gemma")
    gemma_tokenizer.save_pretrained(root / "gemma")
    hidden = gemma.config.hidden_size
    for name, shape in (("2_Dense", (4 * hidden, hidden)), ("3_Dense", (hidden, 4 * hidden))):
        (root / "gemma" / name).mkdir()
        safetensors.torch.save_file({"linear.weight": torch.randn(shape)}, str(root / "gemma" / name / "model.safetensors"))


def _checkpoint_state(root: Path) -> dict[str, torch.Tensor]:
    llama = LlamaForCausalLM.from_pretrained(root / "llama").model.state_dict()
    first = LLAMA_LAYERS - KEPT_LAYERS
    kept = {f"layers.{int(k.split('.')[1]) - first}.{k.split('.', 2)[2]}": v for k, v in llama.items()
            if k.startswith("layers.") and int(k.split(".")[1]) >= first}
    kept.update({k: v for k, v in llama.items() if not k.startswith("layers.")})
    state = _finetuned(kept, "predictor.")
    state.update(_finetuned(Gemma3TextModel.from_pretrained(root / "gemma").state_dict(), "y_encoder.model."))
    hidden, visual, text_hidden = llama["norm.weight"].shape[0], get_preset("tiny").x_encoder["hidden_size"], 32
    for name, (rows, cols) in {"predictor.vis_proj": (hidden, visual), "predictor.out_proj": (SHARED_DIM, hidden),
                               "y_encoder.projector": (SHARED_DIM, text_hidden)}.items():
        state[f"{name}.weight"], state[f"{name}.bias"] = torch.randn(rows, cols) * 0.2, torch.randn(rows) * 0.2
    return state


@pytest.fixture(scope="module")
def components(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("open_vljepa")
    torch.manual_seed(0)
    _write_components(root)
    state = _checkpoint_state(root)
    torch.save({"epoch": 7, "model_state_dict": state, "loss": 1.25, "config": TRAINING_CONFIG}, root / "best.pt")
    dirs = [f"--vjepa2-dir={root / 'vjepa2'}", f"--llama-dir={root / 'llama'}", f"--gemma-dir={root / 'gemma'}"]
    assert main(["import", "open-vljepa", f"--checkpoint={root / 'best.pt'}", *dirs, f"--out={root / 'model'}"]) == 0
    return {"root": root, "state": state, "dirs": dirs, "model_dir": root / "model"}


# ---- the reference: open-vljepa's forward pass, written from its semantics ------------------------------

def reference_pixels(frames: np.ndarray, size: int) -> torch.Tensor:
    """frames / 255 -> torchvision Resize(size) on float (bilinear, antialias) -> CenterCrop(size) -> Normalize."""
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    height, width = video.shape[-2:]
    new = (size, int(size * width / height)) if height <= width else (int(size * height / width), size)
    video = F.interpolate(video, size=new, mode="bilinear", antialias=True, align_corners=False)
    top, left = round((new[0] - size) / 2.0), round((new[1] - size) / 2.0)
    video = video[:, :, top : top + size, left : left + size]
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((video - mean) / std)[None]


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask[..., None].float()
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def _subtree(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}


@torch.no_grad()
def reference_clip(root: Path, state: dict, frames: np.ndarray, query: str) -> torch.Tensor:
    data = TRAINING_CONFIG["data"]
    vjepa2 = VJEPA2Model.from_pretrained(root / "vjepa2", attn_implementation="eager").eval()
    visual = vjepa2(reference_pixels(frames, data["image_size"]), skip_predictor=True).last_hidden_state
    config = LlamaConfig.from_pretrained(root / "llama")
    config._attn_implementation = "eager"
    layers = torch.nn.ModuleList(LlamaDecoderLayer(config, i) for i in range(KEPT_LAYERS))
    layers.load_state_dict(_subtree(state, "predictor.layers."))
    norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
    norm.load_state_dict(_subtree(state, "predictor.norm."))
    tokens = AutoTokenizer.from_pretrained(root / "llama")(query, max_length=data["max_query_len"], padding="max_length",
                                                          truncation=True, return_tensors="pt")
    hidden = torch.cat([F.linear(visual, state["predictor.vis_proj.weight"], state["predictor.vis_proj.bias"]),
                        F.embedding(tokens["input_ids"], state["predictor.embed_tokens.weight"].float())], dim=1)
    mask = torch.cat([torch.ones(1, visual.shape[1]), tokens["attention_mask"].float()], dim=1)
    additive = ((1.0 - mask) * torch.finfo(torch.float32).min)[:, None, None, :].expand(1, 1, mask.shape[1], -1)
    positions = torch.arange(mask.shape[1])[None]
    rotary = LlamaRotaryEmbedding(config)(hidden, positions)
    for layer in layers:
        hidden = layer(hidden, attention_mask=additive, position_ids=positions, position_embeddings=rotary)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    pooled = _masked_mean(norm(hidden), mask)
    return F.normalize(F.linear(pooled, state["predictor.out_proj.weight"], state["predictor.out_proj.bias"]), dim=-1)[0]


@torch.no_grad()
def reference_texts(root: Path, state: dict, texts: list[str]) -> torch.Tensor:
    gemma = Gemma3TextModel.from_pretrained(root / "gemma", attn_implementation="eager").eval()
    gemma.load_state_dict(_subtree(state, "y_encoder.model."))
    tokens = AutoTokenizer.from_pretrained(root / "gemma")(texts, max_length=TRAINING_CONFIG["data"]["max_caption_len"],
                                                          padding="max_length", truncation=True, return_tensors="pt")
    hidden = gemma(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
    pooled = _masked_mean(hidden, tokens["attention_mask"])
    return F.normalize(F.linear(pooled, state["y_encoder.projector.weight"], state["y_encoder.projector.bias"]), dim=-1)


def _frames(seed: int) -> np.ndarray:
    # 45 x 61: the resize gives 32 x 43, whose crop anchor 5.5 rounds (to 6) where truncation would give 5.
    return np.random.default_rng(seed).integers(0, 256, (4, 45, 61, 3), dtype=np.uint8)


def _min_cosine(a, b) -> float:
    a, b = torch.as_tensor(np.asarray(a)).float(), torch.as_tensor(np.asarray(b)).float()
    return float(F.cosine_similarity(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])).min())


@pytest.fixture(scope="module")
def references(components) -> dict:
    root, state = components["root"], components["state"]
    query = TRAINING_CONFIG["data"]["query_text"]
    return {"clips": [(_frames(seed), reference_clip(root, state, _frames(seed), query)) for seed in (1, 2)],
            "texts": reference_texts(root, state, TEXTS), "query": query}


# ---- tests ------------------------------------------------------------------------------------------------

def test_imported_model_matches_the_reference_in_torch(components, references) -> None:
    model = load_model(components["model_dir"])
    config = model.config
    assert (config.frames_per_clip, config.image_size, config.resize_shortest_edge) == (4, 32, 32)
    assert (config.pixel_pipeline, config.y_dense_dims, config.temperature) == ("torchvision_float", [], 0.05)
    assert (config.query_max_tokens, config.text_max_tokens, config.shared_dim) == (12, 10, SHARED_DIM)
    assert config.predictor["rope_parameters"]["rope_type"] == "llama3"
    for frames, expected in references["clips"]:
        assert _min_cosine(model.embed_clips(frames, references["query"]), expected) >= 0.99999
    assert _min_cosine(model.embed_texts(TEXTS), references["texts"]) >= 0.99999
    # The reference is sensitive to what was imported: the components' own (un-fine-tuned) Gemma gives other texts.
    untouched = Gemma3TextModel.from_pretrained(components["root"] / "gemma").state_dict()
    other = reference_texts(components["root"], {**components["state"], **{f"y_encoder.model.{k}": v
                                                                           for k, v in untouched.items()}}, TEXTS)
    assert _min_cosine(other, references["texts"]) < 0.999


def test_imported_model_matches_the_reference_through_onnxruntime(components, references, tmp_path) -> None:
    from vljepa_ros.runtime import create_engine

    engine = create_engine(components["model_dir"], backend="onnxruntime", cache_dir=tmp_path)
    for frames, expected in references["clips"]:
        assert _min_cosine(engine.encode_clip(frames, references["query"]), expected) >= 0.99999
    assert _min_cosine(engine.encode_texts(TEXTS), references["texts"]) >= 0.99999


def test_imported_directory_has_card_banks_and_query(components) -> None:
    directory = components["model_dir"]
    card = (directory / "MODEL_CARD.md").read_text()
    for expected in ("Llama 3.2 Community License", "Gemma Terms of Use", "Not verified", "Describe the video.",
                     "checkpoint sha256", "checkpoint epoch: `7`"):
        assert expected in card
    for name in ("labels", "captions", "actions"):
        text = bank_file(directory, name).read_text()
        assert text.startswith("# ") and len(read_text_lines(bank_file(directory, name))) >= 5


def test_mismatched_checkpoints_are_refused_naming_the_first_mismatches(components, tmp_path) -> None:
    root, state = components["root"], dict(components["state"])
    state.pop("predictor.layers.1.mlp.up_proj.weight")
    state["predictor.out_proj.weight"] = torch.zeros(SHARED_DIM + 1, 32)
    state["predictor.extra.weight"] = torch.zeros(2)
    torch.save({"epoch": 0, "model_state_dict": state, "config": TRAINING_CONFIG}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as refused:
        import_open_vljepa(tmp_path / "bad.pt", root / "vjepa2", root / "llama", root / "gemma")
    message = str(refused.value)
    assert "bad.pt" in message and "1 missing tensors (expected predictor.layers.1.mlp.up_proj.weight (64, 32))" in message
    assert "predictor.extra.weight" in message
    assert f"predictor.out_proj.weight: file ({SHARED_DIM + 1}, 32), expected ({SHARED_DIM}, 32)" in message

    # On the command line the same refusal is one line naming the command, and exit status 2.
    assert main(["import", "open-vljepa", f"--checkpoint={tmp_path / 'bad.pt'}", *components["dirs"],
                 f"--out={tmp_path / 'refused'}"]) == 2
    assert not (tmp_path / "refused").exists()

    # A checkpoint trained with more kept layers than the config promises: the extra layers are named.
    three_layers = {**TRAINING_CONFIG, "predictor": {**TRAINING_CONFIG["predictor"], "n_keep_layers": 3}}
    torch.save({"model_state_dict": components["state"], "config": three_layers}, tmp_path / "layers.pt")
    with pytest.raises(CheckpointError, match=r"missing tensors \(expected predictor\.layers\.2\."):
        import_open_vljepa(tmp_path / "layers.pt", root / "vjepa2", root / "llama", root / "gemma")


class NotATensor:
    """Anything a weights-only load must refuse to construct."""


def test_checkpoints_that_would_run_code_are_refused(components, tmp_path) -> None:
    root = components["root"]
    with open(tmp_path / "code.pt", "wb") as handle:
        torch.save({"model_state_dict": {}, "config": NotATensor()}, handle, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="weights-only"):
        import_open_vljepa(tmp_path / "code.pt", root / "vjepa2", root / "llama", root / "gemma")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="expected a dict with 'model_state_dict'"):
        import_open_vljepa(tmp_path / "other.pt", root / "vjepa2", root / "llama", root / "gemma")
    causal = {**TRAINING_CONFIG, "predictor": {**TRAINING_CONFIG["predictor"], "disable_causal_mask": False}}
    torch.save({"model_state_dict": components["state"], "config": causal}, tmp_path / "causal.pt")
    with pytest.raises(CheckpointError, match="disable_causal_mask"):
        import_open_vljepa(tmp_path / "causal.pt", root / "vjepa2", root / "llama", root / "gemma")


def test_import_components_writes_an_untrained_paper_layout_directory(components, tmp_path) -> None:
    full, half = tmp_path / "fp32", tmp_path / "bf16"
    args = ["import", "components", *components["dirs"], f"--predictor-layers={KEPT_LAYERS}"]
    for out, extra in ((full, []), (half, ["--dtype=bf16"])):
        torch.manual_seed(5)  # the same fresh heads in both, so only the storage dtype differs
        assert main([*args, f"--out={out}", *extra]) == 0
    model, rounded = load_model(full), load_model(half)
    assert model.config.y_dense_dims == [128, 32]  # EmbeddingGemma's Dense stack is kept here, as the paper
    assert model.config.pixel_pipeline == "vjepa2_processor" and model.config.resize_shortest_edge == 0
    sizes = [(directory / "model.safetensors").stat().st_size for directory in (full, half)]
    assert sizes[1] < 0.52 * sizes[0]
    frames = _frames(3)
    assert _min_cosine(rounded.embed_clips(frames, "nothing moves"), model.embed_clips(frames, "nothing moves")) > 0.99
    assert "untrained" in (full / "MODEL_CARD.md").read_text()
    # It is the starting point of `train --init` (one step here: the point is that it runs and saves).
    assert main(["train", "--init", str(full), "--data", "tabletop", "--steps", "1", "--batch-size", "2",
                 "--out", str(tmp_path / "trained")]) == 0
    assert load_model(tmp_path / "trained").config.y_dense_dims == [128, 32]


def test_pixel_pipeline_options_are_checked_and_default_to_the_vjepa2_processor() -> None:
    tiny = get_preset("tiny")
    assert (tiny.pixel_pipeline, tiny.resize_shortest_edge) == ("vjepa2_processor", 0)
    with pytest.raises(ValueError, match="vjepa2_processor, torchvision_float"):
        tiny.replace(pixel_pipeline="bilinear")
    with pytest.raises(ValueError, match="resize_shortest_edge=16 is smaller than the crop image_size=32"):
        tiny.replace(resize_shortest_edge=16)
    # A config.json written before these options existed loads with the defaults.
    legacy = tiny.to_dict()
    del legacy["pixel_pipeline"], legacy["resize_shortest_edge"]
    assert type(tiny).from_dict(legacy) == tiny
