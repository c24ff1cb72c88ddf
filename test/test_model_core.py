"""The VL-JEPA network on the tiny preset: shapes, preprocessing, bidirectional attention, padding, loss, learning."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vljepa_ros.model.config import get_preset
from vljepa_ros.model.loss import answer_group_ids, info_nce
from vljepa_ros.model.vljepa import VLJepa, new_model
from vljepa_ros.model.x_encoder import preprocess_frames
from vljepa_ros.stream.clips import fill_clip

CORPUS = ["What is happening?", "pick up the red cube", "push the blue ball left", "place the green triangle",
          "the arm is idle", "Which colour is the cube?", "red", "blue", "green", "yellow"]


@pytest.fixture(scope="module")
def model() -> VLJepa:
    torch.manual_seed(0)
    return new_model(get_preset("tiny"), CORPUS).eval()


def random_frames(batch: int, frames: int, height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, frames, height, width, 3), dtype=np.uint8)


def test_shapes_and_unit_norm(model: VLJepa) -> None:
    config = model.config
    pixels = model.prepare_clips(random_frames(3, config.frames_per_clip))
    assert pixels.shape == (3, config.frames_per_clip, 3, config.image_size, config.image_size)
    visual = model.x_encoder(pixels)
    assert visual.shape == (3, config.num_visual_tokens, config.x_encoder["hidden_size"])
    query_ids, query_mask = model.query_tokenizer(["What is happening?"] * 3)
    assert query_ids.shape == query_mask.shape == (3, config.query_max_tokens)
    predicted = model.encode_clip(pixels, query_ids, query_mask)
    target = model.embed_texts(["pick up the red cube", "red"])
    assert predicted.shape == (3, config.shared_dim) and target.shape == (2, config.shared_dim)
    torch.testing.assert_close(predicted.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(target.norm(dim=-1), torch.ones(2))
    assert model.embed_clips(random_frames(1, 1)[0], "What is happening?").shape == (1, config.shared_dim)


def test_fill_clip_repeats_an_image_and_samples_uniformly() -> None:
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    filled = fill_clip(image, 6)
    assert filled.shape == (6, 4, 5, 3) and all(np.array_equal(f, image) for f in filled)
    long_clip = np.arange(16).reshape(16, 1, 1, 1).repeat(3, axis=-1).astype(np.uint8)
    assert fill_clip(long_clip, 4)[:, 0, 0, 0].tolist() == [2, 6, 10, 14]  # centres of 4 equal bins
    assert fill_clip(long_clip[:2], 4)[:, 0, 0, 0].tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError):
        fill_clip(np.zeros((0, 4, 4, 3), np.uint8), 4)
    # torch tensors (training may hand them in) are filled with the same indices
    assert fill_clip(torch.from_numpy(long_clip), 4)[:, 0, 0, 0].tolist() == [2, 6, 10, 14]


def test_preprocess_matches_the_vjepa2_recipe() -> None:
    """Shortest side -> int(crop*256/224), center crop, /255, ImageNet normalisation (checked by hand here;
    against transformers' VJEPA2VideoProcessor in the next test when torchvision is installed)."""
    config = get_preset("tiny")  # crop 32 -> resize shortest side to 36
    frames = np.full((2, 40, 80, 3), (255, 128, 0), dtype=np.uint8)
    pixels = preprocess_frames(frames, config)
    assert pixels.shape == (1, 2, 3, 32, 32) and pixels.dtype == torch.float32
    expected = (torch.tensor([255, 128, 0]) / 255.0 - torch.tensor(config.image_mean)) / torch.tensor(config.image_std)
    torch.testing.assert_close(pixels[0, 0, :, 5, 7], expected)
    # The crop keeps the centre: a marker in the middle survives, the far left column does not.
    frames = np.zeros((1, 36, 72, 3), dtype=np.uint8)
    frames[:, :, :4] = 255
    frames[:, 16:20, 34:38] = 255
    pixels = preprocess_frames(frames, config)
    assert pixels[0, 0, 0, 14:18, 14:18].mean() > 1.5 and pixels[0, 0, 0, :, 0].max() < -1.5
    with pytest.raises(TypeError):
        preprocess_frames(frames.astype(np.float32), config)


def test_preprocess_equals_transformers_video_processor() -> None:
    pytest.importorskip("torchvision")
    from transformers import VJEPA2VideoProcessor

    config = get_preset("small")
    video = random_frames(1, 4, 48, 80, seed=3)[0]
    processor = VJEPA2VideoProcessor(crop_size=config.image_size)
    reference = processor(video, return_tensors="pt")["pixel_values_videos"]
    torch.testing.assert_close(preprocess_frames(video, config), reference, atol=1e-5, rtol=0)


def test_predictor_attention_is_bidirectional(model: VLJepa) -> None:
    """Changing the LAST query token changes the pooled output AND the hidden states of earlier positions
    (the first visual token and the first query token): impossible under a causal mask."""
    torch.manual_seed(1)
    visual = torch.randn(1, model.config.num_visual_tokens, model.x_encoder.hidden_size)
    ids, mask = model.query_tokenizer(["pick up the red cube"])
    last = int(mask.sum()) - 1
    changed = ids.clone()
    changed[0, last] = (int(ids[0, last]) + 1) % model.query_tokenizer.vocab_size
    with torch.no_grad():
        hidden_a, _ = model.predictor.hidden_states(visual, ids, mask)
        hidden_b, _ = model.predictor.hidden_states(visual, changed, mask)
        pooled_a, pooled_b = model.predictor(visual, ids, mask), model.predictor(visual, changed, mask)
    first_query = model.config.num_visual_tokens
    assert not torch.allclose(pooled_a, pooled_b)
    assert (hidden_a[0, 0] - hidden_b[0, 0]).abs().max() > 1e-6
    assert (hidden_a[0, first_query] - hidden_b[0, first_query]).abs().max() > 1e-6


def test_padding_does_not_change_outputs(model: VLJepa) -> None:
    torch.manual_seed(2)
    visual = torch.randn(1, model.config.num_visual_tokens, model.x_encoder.hidden_size)
    ids, mask = model.query_tokenizer(["pick up the red cube"])
    real = int(mask.sum())
    assert real < ids.shape[1], "the test needs some padding"
    garbage = ids.clone()
    garbage[0, real:] = torch.arange(ids.shape[1] - real) + 4  # arbitrary non-pad ids at masked positions
    with torch.no_grad():
        reference = model.predictor(visual, ids, mask)
        torch.testing.assert_close(model.predictor(visual, garbage, mask), reference)
        torch.testing.assert_close(model.predictor(visual, ids[:, :real], mask[:, :real]), reference)
        text_ids, text_mask = model.text_tokenizer(["push the blue ball left"])
        n = int(text_mask.sum())
        torch.testing.assert_close(model.encode_text(text_ids[:, :n], text_mask[:, :n]),
                                   model.encode_text(text_ids, text_mask))


def test_y_encoder_is_bidirectional(model: VLJepa) -> None:
    """EmbeddingGemma mode: the first token's hidden state depends on later tokens."""
    ids, mask = model.text_tokenizer(["pick up the red cube"])
    changed = ids.clone()
    changed[0, int(mask.sum()) - 1] = model.text_tokenizer.tokenizer.convert_tokens_to_ids("blue")
    with torch.no_grad():
        first_a = model.y_encoder.gemma(input_ids=ids, attention_mask=mask).last_hidden_state[0, 0]
        first_b = model.y_encoder.gemma(input_ids=changed, attention_mask=mask).last_hidden_state[0, 0]
    assert (first_a - first_b).abs().max() > 1e-6


def test_info_nce_chance_level_and_duplicate_answers() -> None:
    batch = 8
    same = torch.ones(batch, 4)
    assert math.isclose(float(info_nce(same, same)), math.log(batch), rel_tol=1e-5)  # all logits equal: chance
    eye = torch.eye(batch)
    assert float(info_nce(eye, eye, temperature=0.01)) < 1e-6
    # Items 0 and 1 share an answer (identical targets): without masking they are each other's hard
    # negatives; with answer groups they are excluded and the loss is the perfect one again.
    target = eye.clone()
    target[1] = target[0]
    pred = target.clone()
    groups = answer_group_ids(["a", "A ", "b", "c", "d", "e", "f", "g"])
    assert groups[0] == groups[1]
    # Unmasked, rows 0 and 1 split their mass between two equal logits: 2 * log(2) / 8 in each direction.
    assert math.isclose(float(info_nce(pred, target, 0.01)), 2 * math.log(2) / batch, rel_tol=1e-4)
    assert float(info_nce(pred, target, 0.01, answer_groups=groups)) < 1e-6


def test_info_nce_hard_negatives() -> None:
    """An extra text equal to row 0's target (but a different answer) must cost row 0 exactly as a duplicate
    target would; one in row 0's own answer group is masked; the text -> prediction half is unchanged."""
    batch = 4
    eye = torch.eye(batch)
    groups = answer_group_ids(["a", "b", "c", "d", "not a", "a"])
    answer_groups, negative_groups = groups[:batch], groups[batch:]
    plain = float(info_nce(eye, eye, 0.01, answer_groups=answer_groups))
    # A negative identical to row 0's own answer text is that answer: masked, nothing changes.
    same_answer = info_nce(eye, eye, 0.01, answer_groups, eye[:1], negative_groups[1:])
    assert math.isclose(float(same_answer), plain, abs_tol=1e-6)
    # A different text embedded onto row 0's target: row 0 now splits its mass between two equal logits.
    hard = info_nce(eye, eye, 0.01, answer_groups, eye[:1], negative_groups[:1])
    assert math.isclose(float(hard) - plain, 0.5 * math.log(2) / batch, rel_tol=1e-4)
    # Rows whose answers are far from the negative are unaffected, so an orthogonal negative costs ~nothing.
    far = info_nce(eye, eye, 0.01, answer_groups, torch.tensor([[-1.0, -1.0, -1.0, -1.0]]), negative_groups[:1])
    assert math.isclose(float(far), plain, abs_tol=1e-6)
    with pytest.raises(ValueError, match="answer_groups"):
        info_nce(eye, eye, 0.01, None, eye[:1], negative_groups[:1])


def test_tiny_model_overfits_a_small_batch() -> None:
    """8 distinct (clip, answer) pairs: InfoNCE starts near chance, log(8) = 2.08, and must fall below
    0.1 * log(8) = 0.21, i.e. each clip puts > ~80% of its softmax mass on its own answer."""
    torch.manual_seed(0)
    answers = ["pick up the red cube", "push the blue ball left", "place the green triangle", "the arm is idle",
               "red", "blue", "green", "yellow"]
    model = new_model(get_preset("tiny"), CORPUS).train()
    pixels = model.prepare_clips(random_frames(8, model.config.frames_per_clip, 32, 32, seed=5))
    query = model.query_tokenizer(["What is happening?"] * 8)
    text = model.text_tokenizer(answers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(100):  # byte-level BPE: seed 0 needs ~70 steps (the word-level vocabulary needed fewer)
        loss = info_nce(*model(pixels, *query, *text), model.config.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * math.log(8)


def test_prepare_clips_takes_a_batch_of_different_image_sizes() -> None:
    """Each clip is preprocessed as it would be alone (training batches may mix cameras and worlds)."""
    from vljepa_ros.model.x_encoder import prepare_clips
    config = get_preset("tiny")
    small, large = random_frames(1, config.frames_per_clip, 40, 40, seed=1)[0], random_frames(1, 3, 96, 80, seed=2)[0]
    mixed = prepare_clips([small, large], config)
    assert mixed.shape == (2, config.frames_per_clip, 3, config.image_size, config.image_size)
    assert torch.equal(mixed[0], prepare_clips(small, config)[0]) and torch.equal(mixed[1], prepare_clips(large, config)[0])


@pytest.mark.parametrize("height, width", [(480, 640), (640, 480), (128, 128), (40, 50), (1080, 1920)])
def test_a_clip_of_frames_shrunk_on_arrival_preprocesses_bit_identically(height: int, width: int) -> None:
    """The perception node shrinks each camera frame as it arrives (shrink_frame): the clip it hands the
    engine must give exactly the pixels the full-size clip would."""
    from vljepa_ros.model.x_encoder import prepare_clips, shrink_frame
    config = get_preset("tiny")
    frames = np.random.default_rng(height + width).integers(0, 256, (4, height, width, 3), dtype=np.uint8)
    shrunk = np.stack([shrink_frame(frame, config) for frame in frames])
    assert min(shrunk.shape[1:3]) < min(height, width) or max(height, width) < 100  # it did shrink a large frame
    assert torch.equal(prepare_clips(shrunk, config), prepare_clips(frames, config))
    # The float pipeline resizes without rounding, which uint8 frames cannot carry: no shrinking there.
    float_config = config.replace(pixel_pipeline="torchvision_float")
    first = frames[0]
    assert shrink_frame(first, float_config) is first
