"""`vljepa-ros make-data`: render a synthetic world into a rosbag2 bag (+ groundtruth.json) and/or training examples.

    vljepa-ros make-data --world tabletop --seed 1000000 --episodes 4 --bag data/demo_tabletop --compressed
    vljepa-ros make-data --world tabletop --seed 0 --examples train.npz --count 20000
    vljepa-ros make-data --world tabletop --seed 0 --shards data/train_shards --count 200000 --shard-size 1000
    vljepa-ros make-data --from-bag my_bag --labels my_bag.csv --items my_bag_items.yaml --examples my_bag.npz \
        --count 5000 --image-size 64

--from-bag draws the examples from a real bag and its annotation (vljepa_ros/world/annotations.py; without
--labels, the bag's groundtruth.json): caption examples from the segments' captions, Q&A from the items'
questions, inverse-dynamics examples from the items' actions (commands/make_data_bag.py).

Seeds below 1_000_000 are for training, seeds from 1_000_000 up are held out (vljepa_ros.world.dataset).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vljepa_ros.commands.train_data import kind_weights_arg

WORLDS = ("tabletop",)
DEFAULT_EXAMPLES_PER_SHARD = 1000  # ~100 MB per shard of 8x64x64 clips (tar stores them raw)
DEFAULT_FRAMES_PER_CLIP = 8
DEFAULT_TOPIC = "/camera/image_raw"


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
    real = parser.add_argument_group("examples from a real bag (instead of --world)")
    real.add_argument("--from-bag", type=Path, default=None, metavar="BAG",
                      help="draw the examples from this rosbag2 bag and its annotation")
    real.add_argument("--labels", type=Path, default=None,
                      help="annotation CSV of --from-bag (default: the bag's groundtruth.json)")
    real.add_argument("--items", type=Path, default=None, help="annotation items YAML/JSON for --labels")
    real.add_argument("--model", type=Path, default=None,
                      help="model directory whose frames_per_clip is the default of --frames-per-clip")
    real.add_argument("--kind-weights", type=kind_weights_arg, default=None, metavar="KIND=W,...",
                      help="example mix, e.g. caption=0.25,qa=0.25,action=0.5 (default: caption=0.5,qa=0.25,"
                           "action=0.25; kinds the annotation lacks fall back to captions)")
    real.add_argument("--streaming-clips", type=share_arg, default=0.0, metavar="F",
                      help="share of caption and Q&A clips cut as a live stream cuts them: the consecutive frames "
                           "ending at a random moment of the segment, the previous segment's frames included "
                           "(default: 0, every clip inside its segment)")
    bag = parser.add_argument_group("bag")
    bag.add_argument("--bag", type=Path, default=None, help="write a rosbag2 bag directory here")
    bag.add_argument("--episodes", type=int, default=4, help="episodes concatenated into the bag's stream (default: 4)")
    bag.add_argument("--compressed", action="store_true", help="CompressedImage jpeg instead of Image rgb8")
    bag.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality with --compressed (default: 90)")
    bag.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default: mcap)")
    bag.add_argument("--topic", default=None,
                     help=f"image topic (default: {DEFAULT_TOPIC} when writing; with --from-bag the bag's only "
                          "image topic)")
    bag.add_argument("--overwrite", action="store_true", help="replace an existing bag directory")
    examples = parser.add_argument_group("training examples")
    examples.add_argument("--examples", type=Path, default=None, help="write training examples to this .npz file")
    examples.add_argument("--shards", type=Path, default=None,
                          help="write training examples as WebDataset .tar shards (+ texts.json) into this "
                               "directory; memory stays flat whatever --count")
    examples.add_argument("--shard-size", type=int, default=DEFAULT_EXAMPLES_PER_SHARD,
                          help=f"examples per shard (default: {DEFAULT_EXAMPLES_PER_SHARD})")
    examples.add_argument("--count", type=int, default=1000, help="number of examples (default: 1000)")
    examples.add_argument("--frames-per-clip", type=int, default=None,
                          help=f"frames per example clip (default: --model's, else {DEFAULT_FRAMES_PER_CLIP})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.world import bag_io, dataset, tabletop  # OpenCV + rosbags: only when used

    if args.bag is None and args.examples is None and args.shards is None:
        raise SystemExit("make-data: nothing to do; give --bag PATH, --examples PATH and/or --shards DIR")
    args.frames_per_clip = frames_per_clip(args)
    if args.from_bag is not None:
        from vljepa_ros.commands.make_data_bag import run_from_bag

        return run_from_bag(args)
    if args.labels is not None or args.items is not None or args.kind_weights is not None or args.streaming_clips:
        raise SystemExit("make-data: --labels, --items, --kind-weights and --streaming-clips go with --from-bag")
    split = "held-out" if dataset.is_held_out_seed(args.seed) else "training"
    if args.bag is not None:
        size = args.image_size or 128
        stream = tabletop.generate_stream(args.seed, args.episodes, fps=args.fps, image_size=size)
        bag_io.write_stream_bag(args.bag, stream, topic=args.topic or DEFAULT_TOPIC, compressed=args.compressed,
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


def share_arg(text: str) -> float:
    """argparse type of a share in [0, 1]."""
    try:
        share = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return share


def frames_per_clip(args: argparse.Namespace) -> int:
    if args.frames_per_clip is not None:
        return args.frames_per_clip
    if args.model is not None:
        from vljepa_ros.model.checkpoint import load_config

        return load_config(args.model).frames_per_clip
    return DEFAULT_FRAMES_PER_CLIP
