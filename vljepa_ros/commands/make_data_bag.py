"""`vljepa-ros make-data --from-bag B [--labels L [--items I]]`: training examples from a real bag.

The bag's frames (optionally resized so the shorter side is --image-size, cv2 INTER_AREA, which keeps what
the X-encoder's shortest-side resize and centre crop see) and its ground truth (the annotation CSV + items
file, or the bag's groundtruth.json) go through the same example drawing as the generated worlds
(vljepa_ros.world.dataset.examples_from_stream): caption examples from the segments' captions, Q&A from the
questions, inverse-dynamics examples (two frames, the action and its distractors as hard negatives) from
the action items. Kinds the annotation lacks fall back to captions. --streaming-clips F cuts that share of
the caption and Q&A clips as the perception node does (the last frames up to a moment inside the segment).
Deterministic per --seed.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

_EXAMPLES_PER_CHUNK = 1000  # shards are written chunk by chunk (the bag's frames stay in memory once)


def load_annotated_stream(args: argparse.Namespace):
    """The bag as a WorldStream with its ground truth; a clear error when it has none."""
    from vljepa_ros.world.annotations import read_annotated_bag
    from vljepa_ros.world.bag_io import GROUNDTRUTH_FILE

    stream = read_annotated_bag(args.from_bag, args.labels, args.items, topic=args.topic)
    if args.labels is not None:
        return stream, f"{args.labels}" + (f" + {args.items}" if args.items else "")
    if not stream.segments:
        raise SystemExit(f"make-data --from-bag {args.from_bag}: the bag has no {GROUNDTRUTH_FILE} and no --labels "
                         "was given; write an annotation CSV (README: 'Annotating and evaluating your own bag', or "
                         "draft one with `vljepa-ros annotate`) and pass --labels")
    print(f"no --labels: using {args.from_bag / GROUNDTRUTH_FILE}")
    return stream, str(args.from_bag / GROUNDTRUTH_FILE)


def resize_stream(stream, size: int | None):
    """Frames resized (cv2 INTER_AREA) so their shorter side is `size`; unchanged when None or already so."""
    if size is None or min(stream.image_size) == size:
        return stream
    import cv2

    height, width = stream.image_size
    scale = size / min(height, width)
    target = (max(size, round(width * scale)), max(size, round(height * scale)))  # cv2 wants (width, height)
    frames = np.stack([cv2.resize(frame, target, interpolation=cv2.INTER_AREA) for frame in stream.frames])
    return replace(stream, frames=frames)


def iter_bag_examples(stream, seed: int, count: int, frames_per_clip: int, kind_weights: dict[str, float],
                      streaming_share: float = 0.0) -> Iterator:
    from vljepa_ros.world import dataset

    rng = np.random.default_rng([seed, 0xBA6])
    for start in range(0, count, _EXAMPLES_PER_CHUNK):
        yield from dataset.examples_from_stream(stream, rng, min(_EXAMPLES_PER_CHUNK, count - start), frames_per_clip,
                                                kind_weights, streaming_share)


def run_from_bag(args: argparse.Namespace) -> int:
    from vljepa_ros.world import dataset, shards

    if args.bag is not None:
        raise SystemExit("make-data: --bag writes a generated world's bag; with --from-bag give --examples/--shards")
    if args.examples is None and args.shards is None:
        raise SystemExit("make-data --from-bag: give --examples OUT.npz and/or --shards DIR")
    stream, truth = load_annotated_stream(args)
    stream = resize_stream(stream, args.image_size)
    weights = args.kind_weights or dataset.DEFAULT_KIND_WEIGHTS
    height, width = stream.image_size
    questions = sum(len(segment.qa_pairs) for segment in stream.segments)
    print(f"bag {args.from_bag}: {stream.frame_count} frames {width}x{height}, ground truth {truth}: "
          f"{len(stream.segments)} segments, {questions} questions, {len(stream.action_items)} action items")
    if args.examples is not None:
        examples = list(iter_bag_examples(stream, args.seed, args.count, args.frames_per_clip, weights,
                                           args.streaming_clips))
        dataset.save_examples(args.examples, examples)
        kinds = {kind: sum(e.kind == kind for e in examples) for kind in ("caption", "qa", "action")}
        print(f"examples {args.examples}: {len(examples)} clips of {args.frames_per_clip}x{height}x{width} {kinds}, "
              f"seed {args.seed}, {args.examples.stat().st_size / 1e6:.2f} MB")
    if args.shards is not None:
        examples = iter_bag_examples(stream, args.seed, args.count, args.frames_per_clip, weights, args.streaming_clips)
        paths = shards.write_shards(args.shards, examples, args.shard_size)
        megabytes = sum(path.stat().st_size for path in paths) / 1e6
        print(f"shards {args.shards}: {len(paths)} tar files, {args.count} clips of "
              f"{args.frames_per_clip}x{height}x{width}, seed {args.seed}, {megabytes:.2f} MB")
    return 0
