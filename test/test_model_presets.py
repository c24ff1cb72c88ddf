"""Presets: the paper preset's parameter counts match the paper; the CPU presets stay small."""
from __future__ import annotations

import pytest
import torch

from vljepa_ros.model.config import PRESET_NAMES, VLJepaConfig, get_preset
from vljepa_ros.model.tokenizer import FixedLengthTokenizer, build_word_tokenizer
from vljepa_ros.model.vljepa import VLJepa, new_model


def within(value: float, reference: float, tolerance: float = 0.03) -> bool:
    return abs(value - reference) <= tolerance * reference


def test_paper_preset_parameter_counts_match_the_paper() -> None:
    """Built on the meta device (no memory). Paper: X-encoder 304M, predictor 490M, Y-encoder 308M, 1.6B total.

    Measured: X-encoder 303.9M (V-JEPA 2 ViT-L encoder; its own masked-latent predictor dropped);
    predictor 491.8M without the query embedding table (8 Llama-3.2-1B layers 486.6M + final norm +
    visual projection 1024->2048 + output projection 2048->1536); Y-encoder 308.8M (Gemma 3 text
    model 302.9M + EmbeddingGemma's Dense 768->3072->768 4.7M + head 768->1536 1.2M).

    Total: the model holds 1.367B parameters (the three parts + the 128256 x 2048 = 262.7M Llama query
    embedding table). The paper's "1.6B" is NOT the sum of the parts it lists (304 + 490 + 308 = 1.10B,
    or 1.37B with the query embeddings). The gap is 0.233B, within 3% of one more 262.7M table: Llama-3.2-1B
    ties its LM head to that embedding, and counting the tied head separately gives 1.630B, within 3%
    of 1.6B. We believe this is how the paper counted (we cannot check its code offline); VL-JEPA has no
    LM head, so we assert the true total and show the arithmetic rather than add a head to match.
    """
    tokenizer = FixedLengthTokenizer(build_word_tokenizer(["a"]), 8)
    with torch.device("meta"):
        model = VLJepa(get_preset("paper"), tokenizer, tokenizer)
    counts = model.component_parameter_counts(include_query_embeddings=False)
    assert within(counts["x_encoder"], 304e6), counts
    assert within(counts["predictor"], 490e6), counts
    assert within(counts["y_encoder"], 308e6), counts
    query_embeddings = model.predictor.embed_tokens.weight.numel()
    assert query_embeddings == 128256 * 2048
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(counts.values()) + query_embeddings
    assert within(total, 1.367e9, 0.005)
    tied_lm_head_counted_twice = total + query_embeddings
    assert within(tied_lm_head_counted_twice, 1.6e9)


def test_paper_preset_geometry() -> None:
    config = get_preset("paper")
    assert config.num_visual_tokens == 2048  # 16 frames / tubelet 2 x (256 / 16)^2
    assert (config.image_size, config.frames_per_clip, config.shared_dim, config.query_max_tokens) == (256, 16, 1536, 512)
    assert config.freeze_x_encoder and config.y_encoder_lr_multiplier == 0.05
    p = config.predictor
    assert (p["num_layers"], p["hidden_size"], p["num_attention_heads"], p["num_key_value_heads"],
            p["intermediate_size"], p["vocab_size"]) == (8, 2048, 32, 8, 8192, 128256)
    assert config.y_encoder["use_bidirectional_attention"] and config.y_encoder["hidden_size"] == 768


def test_small_preset_fits_the_size_budget() -> None:
    """The shipped CPU model must stay under 25 MB as fp32 safetensors."""
    model = new_model(get_preset("small"), ["What is happening?"] + [f"word{i}" for i in range(600)])
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters * 4 < 25e6 and parameters < 6e6
    assert not model.config.freeze_x_encoder  # random-init X-encoder: it must be trained


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_presets_round_trip_through_json(name: str) -> None:
    config = get_preset(name)
    assert VLJepaConfig.from_json(config.to_json()) == config


def test_inconsistent_config_is_rejected() -> None:
    config = get_preset("tiny").to_dict()
    config["x_encoder"]["tubelet_size"] = 4
    with pytest.raises(ValueError, match="tubelet"):
        VLJepaConfig.from_dict(config)
    with pytest.raises(ValueError, match="unknown"):
        VLJepaConfig.from_dict({**get_preset("tiny").to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")
