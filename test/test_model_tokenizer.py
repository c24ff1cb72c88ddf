"""Byte-level BPE of the small presets: any UTF-8 text has known tokens, decodes back, and a model built
with it trains, saves and loads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vljepa_ros.model.checkpoint import load_model, save_model
from vljepa_ros.model.config import get_preset
from vljepa_ros.model.tokenizer import FixedLengthTokenizer, build_byte_bpe_tokenizer
from vljepa_ros.model.vljepa import new_model
from vljepa_ros.model.training import ListSource, TrainSettings, train
from vljepa_ros.model.y_decoder import PrefixDecoder, PrefixDecoderConfig
from vljepa_ros.world.types import Example

CORPUS = ["pick up the red cube", "push the blue ball left", "the arm is idle", "What is happening?"]
UNSEEN = ["a purple hexagon slides across the table", "a xylophone sits on the floor",
          "la tasse de café est renversée ☕", "der Roboter öffnet die Schublade", "🤖 grabs 🍎 — naïve façade",
          "日本語のテキスト", "tab\tand\nnewline"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_byte_bpe_tokenizer(CORPUS, vocab_size=320)


@pytest.mark.parametrize("text", UNSEEN + CORPUS)
def test_any_utf8_round_trips_without_unk(tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text.lower()


def test_unseen_sentences_get_different_ids(tokenizer):
    fixed = FixedLengthTokenizer(tokenizer, 64)
    ids, mask = fixed(UNSEEN[:2])
    assert not torch.equal(ids[0], ids[1])
    assert int(mask[0].sum()) > 2 and int(mask[1].sum()) > 2  # more than [BOS] + one catch-all token


def test_special_token_ids_match_the_presets(tokenizer):
    config = get_preset("small")
    assert tokenizer.pad_token_id == config.predictor["pad_token_id"] == 0
    assert tokenizer.bos_token_id == config.predictor["bos_token_id"] == 2
    assert tokenizer.eos_token_id == config.predictor["eos_token_id"] == 3


def test_corpus_words_become_few_tokens_and_vocab_respects_the_budget():
    tokenizer = build_byte_bpe_tokenizer(CORPUS, vocab_size=400)
    assert 260 <= len(tokenizer) <= 400
    # Merges learnt on the corpus: a seen sentence costs far fewer tokens than its bytes.
    assert len(tokenizer("pick up the red cube")["input_ids"]) < len("pick up the red cube") // 2


def test_training_is_independent_of_corpus_order():
    first = build_byte_bpe_tokenizer(CORPUS, 320)
    second = build_byte_bpe_tokenizer(list(reversed(CORPUS)) + CORPUS, 320)
    assert first.get_vocab() == second.get_vocab()


def test_unseen_words_embed_differently():
    """The issue's failure: two out-of-corpus sentences must not collapse onto the same tokens."""
    torch.manual_seed(0)
    model = new_model(get_preset("tiny"), CORPUS).eval()
    assert model.text_tokenizer.tokenizer.unk_token_id not in model.text_tokenizer(UNSEEN)[0].flatten().tolist()
    rows = model.embed_texts(UNSEEN[:2])
    assert not torch.allclose(rows[0], rows[1])


def test_tiny_model_with_byte_bpe_trains_saves_and_loads(tmp_path):
    config = get_preset("tiny")
    rng = np.random.default_rng(0)
    examples = [Example(rng.integers(0, 255, (config.frames_per_clip, config.image_size, config.image_size, 3),
                                     dtype=np.uint8), "What is happening?", answer, "caption")
                for answer in UNSEEN[:4]]
    torch.manual_seed(0)
    model = new_model(config, CORPUS + UNSEEN)
    before = model.state_dict()["y_encoder.head.weight"].clone()
    result = train(model, ListSource(examples), TrainSettings(steps=2, batch_size=4, warmup_steps=1, progress=False))
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    assert not torch.equal(before, model.state_dict()["y_encoder.head.weight"])
    save_model(model.eval(), tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.embed_texts(UNSEEN).detach().numpy(), model.embed_texts(UNSEEN).detach().numpy())
    saved = loaded.text_tokenizer.tokenizer  # the tokenizer that came back from the model directory
    assert saved.decode(saved(UNSEEN[4])["input_ids"], skip_special_tokens=True) == UNSEEN[4].lower()


def test_prefix_decoder_decodes_byte_bpe_tokens(tokenizer):
    decoder = PrefixDecoder(PrefixDecoderConfig(embedding_dim=8, vocab_size=len(tokenizer), hidden_size=16,
                                                num_attention_heads=2, num_key_value_heads=1, intermediate_size=32,
                                                max_text_tokens=64), tokenizer)
    ids, mask = decoder.encode_targets([UNSEEN[4]])
    assert tokenizer.unk_token_id not in ids.flatten().tolist()
    assert tokenizer.decode(ids[0][mask[0] == 1], skip_special_tokens=True) == UNSEEN[4].lower()
    texts = decoder.generate(torch.randn(2, 8), max_new_tokens=3)
    assert len(texts) == 2 and all(isinstance(text, str) for text in texts)
