"""WebDataset shards of training examples: round trip, rank and worker splits, and `train --data SHARDS`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vljepa_ros.world import dataset, shards
from vljepa_ros.world.types import WorldDataError

COUNT, PER_SHARD = 10, 3  # 4 shards: 3 + 3 + 3 + 1


def key(example) -> tuple:
    return (example.frames.tobytes(), example.query, example.answer, example.kind, tuple(example.negatives),
            example.answer_class)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shards")
    examples = dataset.generate_examples(0, COUNT, frames_per_clip=4, image_size=32,
                                         kind_weights={"caption": 0.4, "qa": 0.3, "action": 0.3})
    return directory, examples, shards.write_shards(directory, iter(examples), PER_SHARD)


def read_epoch(urls, **options) -> list:
    """Every example this process (rank / workers) reads in one pass of a ShardSource."""
    return list(shards.ShardSource(urls, **options)._epoch())


def test_shards_round_trip_every_example(written):
    directory, examples, paths = written
    assert [p.name for p in paths] == [f"examples-{i:06d}.tar" for i in range(4)]
    back = read_epoch(shards.shard_urls(directory))
    assert sorted(map(key, back)) == sorted(map(key, examples))
    assert back[0].frames.dtype == np.uint8 and back[0].frames.shape == (4, 32, 32, 3)
    assert any(e.negatives for e in back)  # action and caption examples keep their hard negatives
    assert any(e.answer_class for e in back)  # caption examples keep the class they paraphrase
    texts = json.loads((directory / shards.TEXTS_FILE).read_text())
    assert texts["examples"] == COUNT and shards.shard_texts(paths) == (
        sorted({e.answer for e in examples}), sorted({e.query for e in examples}))


def test_two_ranks_read_disjoint_shards_that_cover_the_set(written, monkeypatch):
    directory, examples, _ = written
    urls = shards.shard_urls(directory)
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))  # what torchrun sets; webdataset's split_by_node reads it
        monkeypatch.setenv("WORLD_SIZE", "2")
        seen.append({key(e) for e in read_epoch(urls)})
    assert not seen[0] & seen[1] and seen[0] | seen[1] == {key(e) for e in examples}
    assert len(seen[0]) == 3 + 3 and len(seen[1]) == 3 + 1  # shards 0, 2 and 1, 3


def test_dataloader_workers_split_a_ranks_shards_without_repeats(written):
    directory, examples, _ = written
    back = read_epoch(shards.shard_urls(directory), workers=2)
    assert sorted(map(key, back)) == sorted(map(key, examples))


def test_a_source_reshuffles_per_epoch_and_repeats_per_seed(written):
    directory, _, _ = written
    urls = shards.shard_urls(directory)
    first = [key(e) for e in shards.ShardSource(urls, seed=4).batch(2 * COUNT)]
    assert first == [key(e) for e in shards.ShardSource(urls, seed=4).batch(2 * COUNT)]
    assert sorted(first[:COUNT]) == sorted(first[COUNT:]) and first[:COUNT] != first[COUNT:]


def test_shard_specs_directory_glob_and_braces(written):
    directory, _, paths = written
    names = [str(p) for p in paths]
    assert shards.shard_urls(directory) == names
    assert shards.shard_urls(f"{directory}/examples-*.tar") == names
    assert shards.shard_urls(f"{directory}/examples-{{000000..000001}}.tar") == names[:2]
    assert all(shards.is_shard_spec(spec) for spec in (str(directory), "a/*.tar", "s-{0..3}.tar", "one.tar"))
    assert not shards.is_shard_spec("train.npz")
    with pytest.raises(WorldDataError, match="no .tar shards"):
        shards.shard_urls(f"{directory}/nothing-*.tar")
    with pytest.raises(WorldDataError, match="already holds"):
        shards.write_shards(directory, iter([]), PER_SHARD)


def test_make_data_shards_then_train_on_them(tmp_path: Path):
    from vljepa_ros.cli import main

    out = tmp_path / "shards"
    assert main(["make-data", "--seed", "3", "--shards", str(out), "--count", "12", "--shard-size", "4",
                 "--image-size", "32", "--frames-per-clip", "4"]) == 0
    assert len(list(out.glob("*.tar"))) == 3
    model = tmp_path / "model"
    assert main(["train", "--preset", "tiny", "--data", f"{out}/*.tar", "--steps", "2", "--batch-size", "4",
                 "--warmup-steps", "1", "--out", str(model)]) == 0
    assert (model / "model.safetensors").is_file() and (model / "banks" / "answers.txt").is_file()
