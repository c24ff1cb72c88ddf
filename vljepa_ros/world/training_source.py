"""Training sources of `vljepa-ros train`: `--data tabletop` (examples generated on the fly from training seeds)
and the weighted mixture of several sources (`--data tabletop=0.5 data/mw.npz=0.5`).

It lives with the world (model/ imports nothing from world/); `vljepa-ros train` hands it to
vljepa_ros.model.training.train, which only needs its batch() and reseed().
"""
from __future__ import annotations

import random

import numpy as np

from vljepa_ros.world import dataset
from vljepa_ros.world.types import Example, WorldDataError


class TabletopSource:
    """Examples generated on the fly from tabletop training seeds (below the world's held-out range).

    Chunks of `chunk` examples come from consecutive world seeds, are shuffled, and each example is used once.
    Under torchrun every rank draws the same global batch and keeps its slice (training.draw_examples).
    """

    def __init__(self, frames_per_clip: int, image_size: int, seed: int = 0, chunk: int = 512,
                 kind_weights: dict[str, float] | None = None) -> None:
        self.frames_per_clip, self.image_size, self.chunk = frames_per_clip, image_size, chunk
        self.kind_weights = dict(kind_weights or dataset.DEFAULT_KIND_WEIGHTS)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.next_world_seed = seed % dataset.HELD_OUT_SEED_START
        self.rng = random.Random(seed)
        self.pending: list[Example] = []

    def batch(self, size: int) -> list[Example]:
        while len(self.pending) < size:
            world_seed = self.next_world_seed
            if dataset.is_held_out_seed(world_seed):
                raise WorldDataError(f"world seed {world_seed} is held out; training never draws it")
            self.next_world_seed = (world_seed + 1) % dataset.HELD_OUT_SEED_START
            chunk = dataset.generate_examples(world_seed, self.chunk, self.frames_per_clip, self.image_size,
                                              kind_weights=self.kind_weights)
            self.rng.shuffle(chunk)
            self.pending += chunk
        picked, self.pending = self.pending[:size], self.pending[size:]
        return picked


class MixtureSource:
    """A weighted mixture of training sources (`train --data tabletop=0.5 data/mw.npz=0.5`).

    Every example of a batch picks its source with probability weight / sum(weights) from this source's
    own RNG; each source then draws its share in one call, and the examples keep the order of the picks.
    Deterministic per seed: reseed(seed) reseeds the mixture and, with seeds derived from (seed, index),
    every source. The mixture is drawn alike on every rank (per_rank False) as long as its sources are;
    a sharded source (per_rank) yields this rank's own examples, of which the rank keeps those in its slice.
    """

    per_rank = False

    def __init__(self, sources: list, weights: list[float], seed: int = 0) -> None:
        if not sources or len(sources) != len(weights):
            raise WorldDataError(f"a mixture needs one weight per source, got {len(sources)} sources and "
                                 f"{len(weights)} weights")
        if min(weights) <= 0:
            raise WorldDataError(f"mixture weights must be positive, got {weights}")
        self.sources, self.weights = list(sources), [float(w) for w in weights]
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = random.Random(seed)
        for index, source in enumerate(self.sources):
            source.reseed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))

    def batch(self, size: int) -> list[Example]:
        picks = self.rng.choices(range(len(self.sources)), weights=self.weights, k=size)
        drawn = [iter(source.batch(picks.count(index)) if index in picks else [])
                 for index, source in enumerate(self.sources)]
        return [next(drawn[index]) for index in picks]
