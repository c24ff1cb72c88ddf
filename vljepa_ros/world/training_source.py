"""The `--data tabletop` source of `vljepa-ros train`: examples generated on the fly from training seeds.

It lives with the world (model/ imports nothing from world/); `vljepa-ros train` hands it to
vljepa_ros.model.training.train, which only needs its batch() and reseed().
"""
from __future__ import annotations

import random

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
