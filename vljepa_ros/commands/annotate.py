"""`vljepa-ros annotate`: a first-draft annotation of a bag from the model's own segmentation and text.

    vljepa-ros annotate --bag data/demo_tabletop --out out/demo_draft.csv
    vljepa-ros annotate --bag my_bag --out my_bag.csv --method online --decoder retrieval

Replays the bag's frames offline through the model (as `eval` does), splits the embedding stream into
segments (Ward, one segment per --segment-seconds on average, or the monitor's online detector), decodes
each segment to text and writes the annotation CSV (format: vljepa_ros/world/annotations.py, README
"Annotating your own bag"). Correct its labels and times, then `vljepa-ros eval --bag B --labels L`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vljepa_ros.evaluation.draft import DECODERS, DEFAULT_SEGMENT_SECONDS, METHODS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "annotate", help="write a draft annotation CSV of a bag from the model's segmentation and decoded text",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bag", type=Path, required=True, help="rosbag2 directory")
    parser.add_argument("--out", type=Path, required=True, help="draft CSV to write")
    parser.add_argument("--model", default="", help="model directory (default: the shipped models/small)")
    parser.add_argument("--topic", default=None, help="image topic in the bag (default: the only image topic)")
    parser.add_argument("--method", choices=METHODS, default="ward",
                        help="segmentation: ward (offline, the paper's) or online (the monitor node's) (default: ward)")
    parser.add_argument("--segment-seconds", type=float, default=DEFAULT_SEGMENT_SECONDS,
                        help=f"ward: average segment length in s (default: {DEFAULT_SEGMENT_SECONDS})")
    parser.add_argument("--threshold", type=float, default=0.02,
                        help="online: the shift detector's threshold (default: 0.02, the monitor's)")
    parser.add_argument("--decoder", choices=DECODERS, default="auto",
                        help="prefix (the model's generative decoder), retrieval (nearest caption of its bank), "
                             "auto: prefix when the model has one (default: auto)")
    parser.add_argument("--time-base", choices=("relative", "absolute"), default="relative",
                        help="times from the bag's first frame, or header stamps (default: relative)")
    parser.add_argument("--stride-frames", type=int, default=4, help="one clip every N frames (default: 4)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"), default="torch")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.evaluation.draft import DraftSettings, annotate_stream
    from vljepa_ros.paths import resolve_model_dir
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.world.annotation_writer import write_annotations
    from vljepa_ros.world.bag_io import read_stream_bag

    if args.segment_seconds <= 0:
        raise SystemExit("--segment-seconds must be > 0")
    model_dir = resolve_model_dir(args.model)
    stream = read_stream_bag(args.bag, topic=args.topic)
    engine = create_engine(model_dir, backend=args.backend, device=args.device)
    settings = DraftSettings(args.method, args.segment_seconds, args.threshold, args.decoder, args.stride_frames)
    segments, decoder_name = annotate_stream(engine, stream, model_dir, settings)
    detail = f"{args.segment_seconds:g} s per segment" if args.method == "ward" else f"threshold {args.threshold:g}"
    comments = [f"DRAFT by vljepa-ros annotate: model {engine.model_id}, {args.method} segmentation ({detail}), "
                f"{decoder_name} decoding", "check every label and boundary before evaluating or training on it"]
    write_annotations(args.out, segments, stream.stamps_ns, time_base=args.time_base, comments=comments)
    print(f"wrote {args.out}: {len(segments)} segments over {stream.duration_s:.1f} s of {args.bag}")
    return 0
