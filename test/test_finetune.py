"""Bring your own bag into training: make-data --from-bag, train --init, and weighted --data mixtures."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vljepa_ros.cli import main
from vljepa_ros.model.checkpoint import load_model, model_id, read_safetensors, weights_digest
from vljepa_ros.stream.familiarity import FAMILIARITY_FILE, FamiliarityModel
from vljepa_ros.world import dataset, tabletop
from vljepa_ros.world.annotation_writer import write_bag_annotations
from vljepa_ros.world.bag_io import write_stream_bag
from vljepa_ros.world.training_source import MixtureSource

from model_fixtures import tiny_model_dir  # noqa: F401  (pytest fixture)


@pytest.fixture(scope="module")
def annotated_bag(tmp_path_factory):
    """A tiny tabletop bag, its annotation files (exported from its groundtruth.json) and the stream."""
    root = tmp_path_factory.mktemp("bag")
    stream = tabletop.generate_stream(dataset.DEMO_SEED + 7, 1, image_size=48)
    bag = write_stream_bag(root / "tiny_bag", stream)
    csv_path, _bank, items = write_bag_annotations(bag, root / "annotations")
    bare = root / "bare_bag"  # the same frames as a recorded bag: no groundtruth.json
    shutil.copytree(bag, bare)
    (bare / "groundtruth.json").unlink()
    return bag, bare, csv_path, items, stream


def test_from_bag_examples_come_from_the_annotation(annotated_bag, tmp_path):
    bag, bare, csv_path, items, stream = annotated_bag
    out = tmp_path / "bag.npz"
    assert main(["make-data", "--from-bag", str(bare), "--labels", str(csv_path), "--items", str(items),
                 "--examples", str(out), "--count", "60", "--image-size", "24", "--frames-per-clip", "4",
                 "--kind-weights", "caption=1,qa=1,action=1"]) == 0
    examples = dataset.load_examples(out)
    assert len(examples) == 60 and {e.frames.shape for e in examples} == {(4, 24, 24, 3)}
    captions = {c for s in stream.segments for c in s.captions}
    answers = {a for s in stream.segments for _, a in s.qa_pairs}
    actions = {item.action for item in stream.action_items}
    by_kind = {kind: {e.answer for e in examples if e.kind == kind} for kind in ("caption", "qa", "action")}
    assert all(by_kind.values())
    assert by_kind["caption"] <= captions and by_kind["qa"] <= answers and by_kind["action"] <= actions
    captions_of = {s.label: set(s.captions) for s in stream.segments}
    for example in examples:
        if example.kind == "action":
            (item,) = [i for i in stream.action_items if i.action == example.answer][:1]
            assert set(example.negatives) == set(item.candidates) - {item.action}
        if example.kind == "caption":  # grouped by the annotated label it paraphrases
            assert example.answer in captions_of[example.answer_class]
    again = tmp_path / "again.npz"
    main(["make-data", "--from-bag", str(bare), "--labels", str(csv_path), "--items", str(items),
          "--examples", str(again), "--count", "60", "--image-size", "24", "--frames-per-clip", "4",
          "--kind-weights", "caption=1,qa=1,action=1"])
    assert [e.answer for e in dataset.load_examples(again)] == [e.answer for e in examples]  # deterministic


def test_from_bag_uses_groundtruth_json_or_refuses_a_bare_bag(annotated_bag, tmp_path, capsys):
    bag, bare, *_ = annotated_bag
    assert main(["make-data", "--from-bag", str(bag), "--examples", str(tmp_path / "gt.npz"), "--count", "8",
                 "--frames-per-clip", "4"]) == 0
    assert "using" in capsys.readouterr().out and {e.frames.shape for e in dataset.load_examples(tmp_path / "gt.npz")} \
        == {(4, 48, 48, 3)}  # the bag's own size without --image-size
    with pytest.raises(SystemExit, match="no groundtruth.json and no --labels"):
        main(["make-data", "--from-bag", str(bare), "--examples", str(tmp_path / "x.npz")])


def test_items_without_labels_is_one_line_naming_the_command(annotated_bag, tiny_model_dir, tmp_path, capsys):  # noqa: F811
    """A VLJepaError (here the annotation reader's) reaches the user as `vljepa-ros COMMAND: message`, exit 2."""
    _, bare, _, items, _ = annotated_bag
    assert main(["make-data", "--from-bag", str(bare), "--items", str(items),
                 "--examples", str(tmp_path / "x.npz")]) == 2
    assert main(["eval", "--model", str(tiny_model_dir), "--bag", str(bare), "--items", str(items),
                 "--no-plots"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["vljepa-ros make-data", "vljepa-ros eval"]
    assert all("give the annotation CSV (--labels) too" in line for line in lines)
    assert not (tmp_path / "x.npz").exists()


def test_from_bag_shards_hold_the_same_examples(annotated_bag, tmp_path):
    bag, *_ = annotated_bag
    assert main(["make-data", "--from-bag", str(bag), "--shards", str(tmp_path / "shards"), "--count", "10",
                 "--shard-size", "4", "--frames-per-clip", "4", "--examples", str(tmp_path / "same.npz")]) == 0
    assert len(list((tmp_path / "shards").glob("*.tar"))) == 3


class Counter:
    """A source that yields (name, n) texts in order, to see what the mixture asked of it."""

    def __init__(self, name):
        self.name, self.drawn = name, 0

    def reseed(self, seed):
        self.drawn = 0

    def batch(self, size):
        picked = [f"{self.name}{self.drawn + i}" for i in range(size)]
        self.drawn += size
        return picked


def test_mixture_is_deterministic_weighted_and_identical_across_ranks():
    def draws(seed):
        mixture = MixtureSource([Counter("a"), Counter("b")], [0.75, 0.25], seed=seed)
        return [mixture.batch(16) for _ in range(50)]

    first = draws(3)
    assert first == draws(3) and first != draws(4)  # every rank (same seed) draws the same global batch
    flat = [text for batch in first for text in batch]
    share = sum(text.startswith("a") for text in flat) / len(flat)
    assert 0.7 < share < 0.8
    a_texts = [text for text in flat if text.startswith("a")]
    assert a_texts == [f"a{i}" for i in range(len(a_texts))]  # each source's own order is kept


def test_train_init_starts_from_the_model_and_mixes_sources(tiny_model_dir, annotated_bag, tmp_path):  # noqa: F811
    bag, *_ = annotated_bag
    data = tmp_path / "bag.npz"
    main(["make-data", "--from-bag", str(bag), "--examples", str(data), "--count", "16", "--image-size", "32",
          "--model", str(tiny_model_dir)])
    out = tmp_path / "ft"
    assert main(["train", "--init", str(tiny_model_dir), "--preset", "paper", "--data", "tabletop=0.5",
                 f"{data}=0.5", "--steps", "2", "--batch-size", "4", "--lr", "0", "--warmup-steps", "1",
                 "--out", str(out)]) == 0
    before = read_safetensors(tiny_model_dir / "model.safetensors")
    assert weights_digest(read_safetensors(out / "model.safetensors")) == weights_digest(before)
    assert load_model(out).config.name == "tiny" and not (out / "decoder").exists()
    answers = set((out / "banks" / "answers.txt").read_text().splitlines())
    bag_answers = {e.answer for e in dataset.load_examples(data)}
    assert bag_answers <= answers and set(tabletop.deployment_banks()["captions"]) <= answers
    labels = set((out / "banks" / "labels.txt").read_text().splitlines())
    assert set(tabletop.label_bank()) <= labels
    assert {e.answer for e in dataset.load_examples(data) if e.kind == "caption"} <= labels
    # What it was trained on is familiar to it: train calibrated it on its tabletop and .npz data.
    familiarity = FamiliarityModel.load(out)
    assert familiarity.info["model_id"] == model_id(out) and "examples:bag.npz" in familiarity.info["sources"]
    assert any(source.startswith("tabletop:") for source in familiarity.info["sources"])
    assert main(["train", "--init", str(tiny_model_dir), "--data", str(data), "--steps", "3", "--batch-size", "4",
                 "--warmup-steps", "1", "--out", str(out / "moved"), "--no-calibrate"]) == 0
    assert not (out / "moved" / FAMILIARITY_FILE).exists()
    moved = read_safetensors(out / "moved" / "model.safetensors")
    assert any(not np.array_equal(moved[k].numpy(), before[k].numpy()) for k in before)
    with pytest.raises(SystemExit, match="--resume continues"):
        main(["train", "--init", str(tiny_model_dir), "--resume", "--steps", "1", "--out", str(out)])
    with pytest.raises(SystemExit, match="needs a weight on each"):
        main(["train", "--preset", "tiny", "--data", "tabletop", str(data), "--steps", "1", "--out", str(tmp_path / "x")])


def test_streaming_clips_option_reaches_the_examples_and_is_checked(annotated_bag, tmp_path, capsys):
    bag, _bare, _csv, _items, stream = annotated_bag
    common = ["make-data", "--from-bag", str(bag), "--count", "24", "--image-size", "24", "--frames-per-clip", "4",
              "--kind-weights", "caption=1"]
    assert main(common + ["--examples", str(tmp_path / "inside.npz")]) == 0
    assert main(common + ["--examples", str(tmp_path / "live.npz"), "--streaming-clips", "1"]) == 0
    inside, live = (dataset.load_examples(tmp_path / name) for name in ("inside.npz", "live.npz"))
    captions = {c for s in stream.segments for c in s.captions}
    assert {e.answer for e in live} <= captions
    assert not all(np.array_equal(a.frames, b.frames) for a, b in zip(inside, live))
    with pytest.raises(SystemExit):
        main(common + ["--examples", str(tmp_path / "x.npz"), "--streaming-clips", "1.5"])
    assert "not in [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--streaming-clips go with --from-bag"):
        main(["make-data", "--examples", str(tmp_path / "y.npz"), "--streaming-clips", "0.5"])
