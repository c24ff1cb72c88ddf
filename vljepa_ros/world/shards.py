"""Training examples as WebDataset tar shards: written by `make-data --shards`, read by `train --data`.

One sample per example: frames.npy (uint8 T,H,W,3), query.txt, answer.txt, kind.txt, negatives.json and
class.txt (the label a caption paraphrases; shards written before it lack it).
texts.json beside the shards lists every query and answer, so `train` builds its tokenizer and retrieval
bank without reading a clip. Shards stream from disk: a data set need not fit in memory.

Reading under torchrun: webdataset's split_by_node gives rank r the shards r, r+W, r+2W, ... of the sorted
list (W = world size), split_by_worker then splits a rank's shards among its DataLoader workers, so ranks and
workers read disjoint shards. Every rank needs at least one shard (write at least W x workers shards).
"""
from __future__ import annotations

import glob
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch.utils.data
import webdataset as wds

from vljepa_ros.world.types import Example, WorldDataError

_LOG = logging.getLogger(__name__)
SHARD_PATTERN = "examples-%06d.tar"
TEXTS_FILE = "texts.json"
DEFAULT_SHUFFLE_BUFFER = 1000  # examples held to shuffle within a rank's stream


def write_shards(directory: str | Path, examples: Iterable[Example], examples_per_shard: int) -> list[Path]:
    """Write `examples` (any iterable: a generator keeps memory flat) as tar shards; returns the shard paths."""
    if examples_per_shard < 1:
        raise WorldDataError(f"examples_per_shard must be >= 1, got {examples_per_shard}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.glob("*.tar")):
        raise WorldDataError(f"{directory} already holds .tar shards; write into an empty directory")
    queries, answers, count = set(), set(), 0
    with wds.ShardWriter(str(directory / SHARD_PATTERN), maxcount=examples_per_shard, verbose=0) as sink:
        for count, example in enumerate(examples, start=1):
            sink.write({"__key__": f"{count - 1:09d}", "frames.npy": np.asarray(example.frames, dtype=np.uint8),
                        "query.txt": example.query, "answer.txt": example.answer, "kind.txt": example.kind,
                        "negatives.json": list(example.negatives), "class.txt": getattr(example, "answer_class", "")})
            queries.add(example.query)
            answers.add(example.answer)
    if count == 0:
        raise WorldDataError("no examples to write")
    (directory / TEXTS_FILE).write_text(json.dumps({"queries": sorted(queries), "answers": sorted(answers),
                                                    "examples": count}, indent=1) + "\n")
    return sorted(directory.glob("*.tar"))


def shard_urls(spec: str | Path) -> list[str]:
    """Shard paths from a directory (its *.tar), a glob ("data/*.tar") or a brace pattern ("s-{000..009}.tar")."""
    spec = str(spec)
    if Path(spec).is_dir():
        urls = sorted(str(path) for path in Path(spec).glob("*.tar"))
    elif _has_glob(spec):
        urls = sorted(glob.glob(spec))
    else:
        urls = wds.shardlists.expand_urls(spec)
    if not urls:
        raise WorldDataError(f"no .tar shards at {spec!r}: give a shard directory, a glob or a brace pattern")
    missing = [url for url in urls if not Path(url).is_file()]
    if missing:
        raise WorldDataError(f"{len(missing)} shard(s) of {spec!r} do not exist, e.g. {missing[0]}")
    return urls


def is_shard_spec(spec: str) -> bool:
    """Whether `train --data` names shards rather than an .npz file."""
    return Path(spec).is_dir() or spec.endswith(".tar") or _has_glob(spec) or "{" in spec


def _has_glob(spec: str) -> bool:
    return any(character in spec for character in "*?[")


def shard_texts(urls: list[str]) -> tuple[list[str], list[str]]:
    """(answers, queries) from the texts.json beside the shards (one per directory)."""
    answers, queries = set(), set()
    for directory in sorted({str(Path(url).parent) for url in urls}):
        path = Path(directory) / TEXTS_FILE
        if not path.is_file():
            raise WorldDataError(f"{path} is missing: write shards with `vljepa-ros make-data --shards`")
        texts = json.loads(path.read_text())
        answers.update(texts["answers"])
        queries.update(texts["queries"])
    return sorted(answers), sorted(queries)


def _to_example(sample: dict) -> Example:
    return Example(sample["frames.npy"], sample["query.txt"], sample["answer.txt"], sample["kind.txt"],
                   negatives=tuple(sample["negatives.json"]), answer_class=sample.get("class.txt", ""))


def _unchanged(sample):  # DataLoader(batch_size=None) passes single samples through this (picklable) function
    return sample


class ShardSource:
    """Examples streamed from shards, this rank's and this worker's only; reshuffled every pass (epoch).

    A training ExampleSource with per_rank = True: each rank draws its own batch (no global slicing).
    """

    per_rank = True

    def __init__(self, urls: list[str], seed: int = 0, workers: int = 0,
                 shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> None:
        self.urls, self.workers, self.shuffle_buffer = list(urls), workers, shuffle_buffer
        self.rank = wds.utils.pytorch_worker_info()[0]
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0
        self.stream: Iterator[Example] | None = None

    def dataset(self, epoch: int) -> wds.WebDataset:
        # Own seed per (seed, rank, epoch): ranks shuffle differently, runs repeat exactly.
        seed = int(np.random.SeedSequence([self.seed, self.rank, epoch]).generate_state(1)[0])
        return (wds.WebDataset(self.urls, shardshuffle=len(self.urls), detshuffle=True, seed=seed,
                               nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker,
                               empty_check=False)
                .shuffle(self.shuffle_buffer, seed=seed).decode().map(_to_example))

    def _epoch(self) -> Iterator[Example]:
        loader = torch.utils.data.DataLoader(self.dataset(self.epoch), batch_size=None, num_workers=self.workers,
                                             collate_fn=_unchanged)
        self.epoch += 1
        return iter(loader)

    def batch(self, size: int) -> list[Example]:
        picked: list[Example] = []
        fresh_epoch = False
        while len(picked) < size:
            if self.stream is None:
                self.stream, fresh_epoch = self._epoch(), True
            example = next(self.stream, None)
            if example is not None:
                picked.append(example)
                fresh_epoch = False
                continue
            if fresh_epoch:
                raise WorldDataError(f"rank {self.rank} read no example from its shards of {len(self.urls)}: "
                                     "write at least (ranks x workers) shards")
            _LOG.debug("rank %d: shards exhausted, epoch %d starts", self.rank, self.epoch)
            self.stream = None
        return picked
