"""`vljepa-ros make-data`: render a synthetic world into a rosbag2 bag (+ groundtruth.json) and/or training examples.

    vljepa-ros make-data --world tabletop --seed 1000000 --episodes 4 --bag data/demo_tabletop --compressed
    vljepa-ros make-data --world tabletop --seed 0 --examples train.npz --count 20000
    vljepa-ros make-data --world tabletop --seed 0 --shards data/train_shards --count 200000 --shard-size 1000

Seeds below 1_000_000 are for training, seeds from 1_000_000 up are held out (vljepa_ros.world.dataset).
"""
from __future__ import annotations

import argparse
from pathlib import Path

WORLDS = ("tabletop",)
DEFAULT_EXAMPLES_PER_SHARD = 1000  # ~100 MB per shard of 8x64x64 clips (tar stores them raw)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-data", help="render a synthetic robot world into a bag and/or training examples",
        description="Render episodes of a synthetic world (deterministic per seed) into a rosbag2 image bag with "
                    "groundtruth.json, and/or (clip, query, answer) training examples: a compressed .npz "
                    "(--examples) or WebDataset tar shards streamed from disk (--shards).")
    parser.add_argument("--world", choices=WORLDS, default="tabletop", help="which world to render (default: tabletop)")
    parser.add_argument("--seed", type=int, default=0,
                        help="world seed; < 1000000 for training data, >= 1000000 for held-out data (default: 0)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="frame side in pixels (default: 128 for --bag, 64 for --examples)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of the stream (default: 10)")
    bag = parser.add_argument_group("bag")
    bag.add_argument("--bag", type=Path, default=None, help="write a rosbag2 bag directory here")
    bag.add_argument("--episodes", type=int, default=4, help="episodes concatenated into the bag's stream (default: 4)")
    bag.add_argument("--compressed", action="store_true", help="CompressedImage jpeg instead of Image rgb8")
    bag.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality with --compressed (default: 90)")
    bag.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default: mcap)")
    bag.add_argument("--topic", default="/camera/image_raw", help="image topic (default: /camera/image_raw)")
    bag.add_argument("--overwrite", action="store_true", help="replace an existing bag directory")
    examples = parser.add_argument_group("training examples")
    examples.add_argument("--examples", type=Path, default=None, help="write training examples to this .npz file")
    examples.add_argument("--shards", type=Path, default=None,
                          help="write training examples as WebDataset .tar shards (+ texts.json) into this "
                               "directory; memory stays flat whatever --count")
    examples.add_argument("--shard-size", type=int, default=DEFAULT_EXAMPLES_PER_SHARD,
                          help=f"examples per shard (default: {DEFAULT_EXAMPLES_PER_SHARD})")
    examples.add_argument("--count", type=int, default=1000, help="number of examples (default: 1000)")
    examples.add_argument("--frames-per-clip", type=int, default=8, help="frames per example clip (default: 8)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.world import bag_io, dataset, tabletop  # OpenCV + rosbags: only when used

    if args.bag is None and args.examples is None and args.shards is None:
        raise SystemExit("make-data: nothing to do; give --bag PATH, --examples PATH and/or --shards DIR")
    split = "held-out" if dataset.is_held_out_seed(args.seed) else "training"
    if args.bag is not None:
        size = args.image_size or 128
        stream = tabletop.generate_stream(args.seed, args.episodes, fps=args.fps, image_size=size)
        bag_io.write_stream_bag(args.bag, stream, topic=args.topic, compressed=args.compressed,
                                storage=args.storage, jpeg_quality=args.jpeg_quality, overwrite=args.overwrite)
        bytes_on_disk = sum(f.stat().st_size for f in args.bag.iterdir())
        print(f"bag {args.bag}: {stream.frame_count} frames ({stream.duration_s:.1f} s at {stream.fps:g} Hz, "
              f"{size}x{size}), {len(stream.segments)} segments, {len(stream.action_items)} action items, "
              f"label bank {len(stream.label_bank)}, seed {args.seed} ({split}), {bytes_on_disk / 1e6:.2f} MB")
    if args.examples is not None:
        size = args.image_size or 64
        examples = dataset.generate_examples(args.seed, args.count, args.frames_per_clip, image_size=size, fps=args.fps)
        dataset.save_examples(args.examples, examples)
        kinds = {kind: sum(e.kind == kind for e in examples) for kind in ("caption", "qa", "action")}
        print(f"examples {args.examples}: {len(examples)} clips of {args.frames_per_clip}x{size}x{size} "
              f"{kinds}, seed {args.seed} ({split}), {args.examples.stat().st_size / 1e6:.2f} MB")
    if args.shards is not None:
        write_example_shards(args, split)
    return 0


def write_example_shards(args: argparse.Namespace, split: str) -> None:
    from vljepa_ros.world import dataset, shards

    size = args.image_size or 64
    examples = dataset.iter_examples(args.seed, args.count, args.frames_per_clip, image_size=size, fps=args.fps)
    paths = shards.write_shards(args.shards, examples, args.shard_size)
    megabytes = sum(path.stat().st_size for path in paths) / 1e6
    print(f"shards {args.shards}: {len(paths)} tar files, {args.count} clips of {args.frames_per_clip}x{size}x{size}, "
          f"seed {args.seed} ({split}), {megabytes:.2f} MB")
