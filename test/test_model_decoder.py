"""Y-decoders: nearest-caption retrieval and the generative prefix decoder."""
from __future__ import annotations

import pytest
import torch

from vljepa_ros.errors import CheckpointError, EmptyLabelBankError
from vljepa_ros.model.config import get_preset
from vljepa_ros.model.vljepa import new_model
from vljepa_ros.model.y_decoder import PrefixDecoder, RetrievalDecoder, load_decoder, perturb, train_decoder

TEXTS = ["pick up the red cube", "push the blue ball left", "place the green triangle", "the arm is idle"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return new_model(get_preset("tiny"), TEXTS + ["What is happening?"]).eval()


def test_retrieval_returns_the_nearest_text_and_its_cosine(model) -> None:
    decoder = RetrievalDecoder.from_model(model, TEXTS)
    embeddings = model.embed_texts(TEXTS)
    for text, embedding in zip(TEXTS, embeddings):
        decoded = decoder.decode(embedding)
        assert decoded.text == text and decoded.score == pytest.approx(1.0, abs=1e-5)
    ranked = decoder.top_k(embeddings[0].numpy(), k=3)
    assert [r.text for r in ranked][0] == TEXTS[0] and len(ranked) == 3
    assert ranked[1].score == pytest.approx(float(embeddings[0].numpy() @ decoder.embeddings[TEXTS.index(ranked[1].text)]), abs=1e-5)
    with pytest.raises(EmptyLabelBankError):
        RetrievalDecoder([], torch.zeros(0, 16))
    with pytest.raises(ValueError, match="dimension"):
        decoder.decode(torch.ones(5))


def test_prefix_decoder_learns_to_write_texts_back(model, tmp_path) -> None:
    """A few hundred steps on 4 texts: greedy decoding of each text's (unperturbed) embedding must give
    the text back; save/load keeps the outputs identical."""
    decoder, losses = train_decoder(model, TEXTS, steps=150, batch_size=16, learning_rate=3e-3, max_noise=0.3,
                                    progress=False)
    assert losses[-1] < 0.25 * losses[0]
    assert decoder.generate(model.embed_texts(TEXTS)) == TEXTS
    decoder.save(tmp_path / "decoder")
    loaded = load_decoder(tmp_path)
    assert isinstance(loaded, PrefixDecoder)
    assert loaded.generate(model.embed_texts(TEXTS)) == TEXTS
    assert load_decoder(tmp_path / "nothing") is None
    (tmp_path / "decoder" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_decoder(tmp_path)


def test_perturb_keeps_cosine_above_bound() -> None:
    embeddings = torch.nn.functional.normalize(torch.randn(256, 64), dim=-1)
    moved = perturb(embeddings, 0.75, torch.Generator().manual_seed(0))
    cosine = (moved * embeddings).sum(-1)
    assert torch.allclose(moved.norm(dim=-1), torch.ones(256)) and cosine.min() > 0.79
