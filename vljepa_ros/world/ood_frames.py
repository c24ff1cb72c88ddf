"""Out-of-distribution camera bags that need no download: noise, blank frames, and the tabletop world in
colours outside its language. `scripts/make_ood_data.sh` builds them (with the real videos and the
Meta-World camera the model never saw) under data/ood/; data/README.md lists the sets.

    python -m vljepa_ros.world.ood_frames noise --bag data/ood/noise --seconds 60 --seed 3100001
    python -m vljepa_ros.world.ood_frames blank --bag data/ood/blank --seconds 60 --seed 3100002
    python -m vljepa_ros.world.ood_frames tabletop-unseen-colours --bag data/ood/tabletop_unseen_colours --seed 1000003

Kinds:
  noise     every pixel uniform random, every frame fresh (a broken or unplugged camera's snow)
  blank     one flat colour for --hold-seconds at a time: black, grey, white, then random colours
            (a covered lens, an overexposed or dropped image)
  tabletop-unseen-colours   held-out tabletop episodes (same table, arm, shapes and motions) whose objects
            are purple, orange, cyan and pink instead of red, green, blue and yellow: near out-of-distribution,
            only the objects' colours are new. New shapes would need the renderer changed, so there are none.
Frames are written as the demo bag's: CompressedImage jpeg at --fps.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vljepa_ros.world.types import WorldStream
from vljepa_ros.world.video_bag import frames_stream, write_frames_bag

KINDS = ("noise", "blank", "tabletop-unseen-colours")
FIRST_BLANK_COLOURS = ((0, 0, 0), (128, 128, 128), (255, 255, 255))
# Each language colour (vljepa_ros/world/tabletop/language.py) becomes one the world never shows or names.
UNSEEN_COLOURS = {"red": (140, 40, 200), "green": (245, 130, 20), "blue": (30, 200, 210), "yellow": (240, 120, 180)}


def noise_frames(count: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


def blank_frames(count: int, size: int, seed: int, hold_frames: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spans = -(-count // max(hold_frames, 1))
    colours = list(FIRST_BLANK_COLOURS) + [tuple(rng.integers(0, 256, 3)) for _ in range(max(spans - 3, 0))]
    per_frame = np.repeat(np.asarray(colours[:spans], dtype=np.uint8), hold_frames, axis=0)[:count]
    return np.ascontiguousarray(np.broadcast_to(per_frame[:, None, None, :], (count, size, size, 3)))


def recoloured(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The unseen colour replacing the language colour nearest `rgb` (objects carry a jittered copy)."""
    from vljepa_ros.world.tabletop import COLOURS

    nearest = min(COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in zip(COLOURS[name], rgb)))
    return UNSEEN_COLOURS[nearest]


def tabletop_unseen_colour_frames(seed: int, episodes: int, size: int, fps: float) -> np.ndarray:
    """The tabletop world's own scenes and motions, drawn by its own renderer, with every object recoloured."""
    from vljepa_ros.world.tabletop import TabletopRenderer, simulate_episode
    from vljepa_ros.world.tabletop.simulation import Snapshot

    renderer = TabletopRenderer(size, noise_seed=seed)
    frames = []
    for episode_index in range(episodes):
        scene, snapshots, _ = simulate_episode(seed, episode_index, fps)
        for snapshot in snapshots:
            objects = []
            for shape, rgb, _, *placement in snapshot.objects:
                colour = recoloured(rgb)
                objects.append((shape, colour, tuple(int(c * 0.55) for c in colour), *placement))
            frames.append(renderer.render(scene, Snapshot(objects, snapshot.gripper)))
    return np.stack(frames)


def ood_stream(kind: str, seed: int, seconds: float, fps: float, size: int, episodes: int,
               hold_seconds: float) -> WorldStream:
    count = max(1, int(round(seconds * fps)))
    if kind == "noise":
        frames = noise_frames(count, size, seed)
    elif kind == "blank":
        frames = blank_frames(count, size, seed, int(round(hold_seconds * fps)))
    elif kind == "tabletop-unseen-colours":
        frames = tabletop_unseen_colour_frames(seed, episodes, size, fps)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return frames_stream(f"{kind}:{seed}", frames, fps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--bag", type=Path, required=True, help="rosbag2 directory to write")
    parser.add_argument("--seed", type=int, default=3_100_000,
                        help="random seed (tabletop: a held-out world seed, >= 1,000,000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="noise/blank stream length (default: 60)")
    parser.add_argument("--episodes", type=int, default=5, help="tabletop episodes (default: 5)")
    parser.add_argument("--fps", type=float, default=10.0, help="(default: 10)")
    parser.add_argument("--image-size", type=int, default=128, help="square frame side (default: 128, the demo bag's)")
    parser.add_argument("--hold-seconds", type=float, default=5.0, help="blank: seconds per colour (default: 5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    args = parser.parse_args(argv)
    stream = ood_stream(args.kind, args.seed, args.seconds, args.fps, args.image_size, args.episodes,
                        args.hold_seconds)
    write_frames_bag(args.bag, stream, overwrite=args.overwrite)
    print(json.dumps({"bag": str(args.bag), "kind": args.kind, "seed": args.seed, "frames": stream.frame_count,
                      "fps": stream.fps, "image_size": args.image_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
