"""Training loop and the `train` / `train-decoder` sub-commands on a tiny in-test dataset."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from vljepa_ros.errors import CheckpointError
from vljepa_ros.model.checkpoint import load_model, model_id
from vljepa_ros.model.config import get_preset
from vljepa_ros.model.training import ListSource, TrainSettings, parameter_groups, train
from vljepa_ros.model.vljepa import new_model

ANSWERS = ["pick up the red cube", "push the blue ball left", "place the green triangle", "the arm is idle"]


@dataclass
class Example:
    frames: np.ndarray
    query: str
    answer: str
    kind: str = "caption"
    negatives: tuple[str, ...] = ()


def tiny_examples(count: int = 24) -> list[Example]:
    rng = np.random.default_rng(0)
    examples = []
    for i in range(count):
        frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
        frames[..., i % 3] = 60 + 60 * (i % 4)  # the answer is visible in the colour
        frames += rng.integers(0, 20, frames.shape, dtype=np.uint8)
        examples.append(Example(frames, "What is happening?", ANSWERS[i % 4]))
    return examples


def test_parameter_groups_follow_the_config() -> None:
    model = new_model(get_preset("tiny"), ANSWERS)
    settings = TrainSettings(steps=1, learning_rate=1e-3)
    names = {g["name"]: g["lr"] for g in parameter_groups(model, settings)}
    assert names["x_encoder.decay"] == 1e-3  # tiny trains its X-encoder
    frozen = new_model(get_preset("tiny").replace(freeze_x_encoder=True, y_encoder_lr_multiplier=0.05), ANSWERS)
    names = {g["name"]: g["lr"] for g in parameter_groups(frozen, settings)}
    assert not any(n.startswith("x_encoder") for n in names)
    assert names["y_encoder.decay"] == pytest.approx(5e-5)
    assert not any(p.requires_grad for p in frozen.x_encoder.parameters())
    frozen.train()
    assert not frozen.x_encoder.training and frozen.predictor.training


def test_train_checkpoints_and_resumes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = new_model(get_preset("tiny"), ANSWERS + ["What is happening?"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = TrainSettings(steps=6, batch_size=8, warmup_steps=2, checkpoint_every=3, progress=False)
    result = train(model, ListSource(tiny_examples()), settings, out_dir=tmp_path, text_bank=ANSWERS)
    assert result.steps_done == 6 and len(result.losses) == 6 and np.isfinite(result.losses).all()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model_id(tmp_path) == model_id(model)
    assert (tmp_path / "training_state" / "state.pt").exists()

    resumed = load_model(tmp_path)
    settings.steps = 9
    result = train(resumed, ListSource(tiny_examples()), settings, out_dir=tmp_path, resume=True)
    assert result.start_step == 6 and len(result.losses) == 9
    assert torch.load(tmp_path / "training_state" / "state.pt", weights_only=True)["step"] == 9
    with pytest.raises(CheckpointError, match="state.pt"):
        train(resumed, ListSource(tiny_examples()), settings, out_dir=tmp_path / "elsewhere", resume=True)


def test_single_process_training_is_unchanged_by_distributed_support() -> None:
    """Losses and weights of a 1-process run, recorded with the code before torchrun support (byte-level BPE
    tokenizer): same seed, same numbers."""
    examples = tiny_examples(16)
    for index, example in enumerate(examples):
        example.negatives = (ANSWERS[(index + 1) % 4], "the arm waves")
    torch.manual_seed(0)
    model = new_model(get_preset("tiny"), ANSWERS + ["What is happening?", "the arm waves"])
    settings = TrainSettings(steps=4, batch_size=8, warmup_steps=1, progress=False, seed=1)
    result = train(model, ListSource(examples, seed=1), settings)
    expected = [4.53536319732666, 6.8985724449157715, 5.187067031860352, 4.277042388916016]
    assert result.losses == pytest.approx(expected, rel=1e-5)
    weight_sum = float(sum(p.detach().double().sum() for p in model.parameters()))
    assert weight_sum == pytest.approx(247.07587330669037, rel=1e-5)


def test_train_and_train_decoder_commands(tmp_path: Path) -> None:
    from vljepa_ros.cli import main
    from vljepa_ros.world.dataset import save_examples

    data = tmp_path / "train.npz"
    save_examples(data, tiny_examples())
    out = tmp_path / "model"
    assert main(["train", "--preset", "tiny", "--data", str(data), "--steps", "4", "--batch-size", "8",
                 "--out", str(out), "--warmup-steps", "1", "--checkpoint-every", "2"]) == 0
    assert (out / "model.safetensors").exists() and (out / "banks" / "answers.txt").exists()
    assert main(["train", "--preset", "tiny", "--data", str(data), "--steps", "6", "--batch-size", "8",
                 "--out", str(out), "--resume"]) == 0
    assert main(["train-decoder", "--model", str(out), "--steps", "3", "--batch-size", "4",
                 "--data", str(data), "--predicted", "8"]) == 0
    assert (out / "decoder" / "model.safetensors").exists()
    assert load_model(out).config.name == "tiny"


def test_tabletop_source_draws_training_seeds_only() -> None:
    from vljepa_ros.world.training_source import TabletopSource
    from vljepa_ros.world import dataset

    source = TabletopSource(frames_per_clip=4, image_size=32, seed=3, chunk=16)
    batch = source.batch(20)  # spans two generated chunks
    assert len(batch) == 20 and batch[0].frames.shape == (4, 32, 32, 3)
    assert not dataset.is_held_out_seed(source.next_world_seed - 1) and source.next_world_seed == 5
    source.reseed(dataset.HELD_OUT_SEED_START + 2)  # wraps into the training range
    assert not dataset.is_held_out_seed(source.next_world_seed)


def test_make_batch_collects_distinct_hard_negatives_in_one_group_numbering() -> None:
    from vljepa_ros.model.training import make_batch

    model = new_model(get_preset("tiny"), ANSWERS + ["What is happening?"])
    examples = tiny_examples(4)
    examples[0].negatives = (ANSWERS[1], "pick up the red cube")  # one of them is example 0's own answer
    examples[2].negatives = (ANSWERS[1],)
    batch = make_batch(model, examples)
    assert batch["negative_ids"].shape == (2, batch["text_ids"].shape[1])  # distinct texts only
    answer_groups, negative_groups = batch["answer_groups"].tolist(), batch["negative_groups"].tolist()
    assert sorted(negative_groups) == sorted([answer_groups[0], answer_groups[1]])
    plain = make_batch(model, tiny_examples(4))  # no negatives anywhere: empty tensors
    assert plain["negative_ids"].shape[0] == 0


def test_paraphrases_of_one_class_share_an_answer_group() -> None:
    """Caption examples are grouped by the class they paraphrase, so two paraphrases of one action are not
    each other's negatives; examples without a class are grouped by their answer text."""
    from vljepa_ros.model.training import make_batch

    model = new_model(get_preset("tiny"), ANSWERS + ["What is happening?", "the robot picks up the red cube"])
    examples = tiny_examples(4)
    examples[0].answer, examples[0].answer_class = "the robot picks up the red cube", "pick up the red cube"
    examples[1].answer, examples[1].answer_class = "pick up the red cube", "pick up the red cube"
    examples[2].answer = examples[3].answer = ANSWERS[2]  # no class: equal texts group as before
    groups = make_batch(model, examples)["answer_groups"].tolist()
    assert groups[0] == groups[1] != groups[2] == groups[3]
    del examples[0].answer_class  # an example type without the attribute: its answer text
    without = make_batch(model, examples)["answer_groups"].tolist()
    assert without[0] != without[1]


def test_train_uses_hard_negatives_unless_told_not_to() -> None:
    """Same model, same batch: the examples' negatives add terms to the loss only with hard_negatives on."""
    examples = tiny_examples(8)
    for example in examples:
        example.negatives = tuple(a for a in ANSWERS if a != example.answer)[:2] + ("the arm waves",)
    first_losses = {}
    for hard_negatives in (True, False):
        torch.manual_seed(0)
        model = new_model(get_preset("tiny"), ANSWERS + ["What is happening?", "the arm waves"])
        settings = TrainSettings(steps=1, batch_size=8, warmup_steps=1, progress=False, hard_negatives=hard_negatives)
        first_losses[hard_negatives] = train(model, ListSource(examples), settings).losses[0]
    assert first_losses[True] > first_losses[False] + 1e-3


def test_kind_weights_reach_the_tabletop_source_and_bad_ones_are_refused() -> None:
    import argparse

    from vljepa_ros.commands.train_data import kind_weights_arg as _kind_weights
    from vljepa_ros.world.training_source import TabletopSource

    weights = _kind_weights("caption=0, qa=0,action=1")
    assert weights == {"caption": 0.0, "qa": 0.0, "action": 1.0}
    source = TabletopSource(frames_per_clip=4, image_size=32, seed=3, chunk=8, kind_weights=weights)
    assert {e.kind for e in source.batch(8)} == {"action"}
    for bad in ("video=1", "action", "action=-1", "caption=0"):
        with pytest.raises(argparse.ArgumentTypeError):
            _kind_weights(bad)
