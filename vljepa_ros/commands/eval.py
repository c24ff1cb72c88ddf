"""`vljepa-ros eval`: score a model on a bag or a generated stream; JSON metrics + PNG plots.

    vljepa-ros eval --model models/small --world tabletop --seed 1000001 --episodes 8 --json out/eval.json
    vljepa-ros eval --bag data/demo_tabletop --json out/demo_eval.json --plots-dir out/plots
    vljepa-ros eval --bag my_bag --labels my_bag.csv --items my_bag_items.yaml --json out/my_eval.json
    vljepa-ros eval --bags data/bags/ --workers 4 --json out/fleet_eval.json --no-plots
    vljepa-ros eval --bag data/demo_tabletop --ood-video vtest.avi --ood-bag data/ood/noise --json out/ood.json

Metrics: zero-shot classification over the stream's label bank, text->clip retrieval R@1,
inverse-dynamics accuracy (4 candidates), the selective-decoding curve (CIDEr-D, and caption accuracy,
vs decodes per second for uniform, Ward and online decoding) with the decode reduction at uniform-1 Hz
CIDEr-D, and segmentation metrics (boundary F1 at +-1/2 s, F1@{10,25,50}, edit, frame accuracy).
Ground truth: --labels (the annotation CSV of vljepa_ros/world/annotations.py) or the bag's
groundtruth.json. Definitions: vljepa_ros/evaluation/run.py, selective_decoding.py, decoding_report.py.

Familiarity (--ood-bag/--ood-video, needs the model's familiarity.safetensors from `vljepa-ros calibrate`):
AUROC and FPR at 95% TPR of the familiarity between the evaluated stream (in distribution) and each
out-of-distribution stream, the false-alarm rate at the model's threshold, the share of each OOD stream
flagged, and the risk-coverage curve and calibration error (ECE) of the label confidence
(vljepa_ros/evaluation/familiarity_report.py, familiarity_metrics.py).
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from vljepa_ros.stream.clip_assembler import DEFAULT_SAMPLE_PERIOD_S, DEFAULT_STRIDE_FRAMES
from vljepa_ros.stream.clip_reuse import ReuseSettings
from vljepa_ros.stream.shift_detector import DetectorSettings
from vljepa_ros.world.types import HELD_OUT_SEED_START

WORLDS = ("tabletop",)
DEFAULT_EVAL_SEED = HELD_OUT_SEED_START + 1  # held out, and not the demo bag's seed (HELD_OUT_SEED_START)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a model on a bag or a generated stream (JSON + plots)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="", help="model directory (default: the shipped models/small)")
    model.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"), default="torch",
                       help="inference backend (default: torch)")
    model.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    model.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32", help="(default: fp32)")
    model.add_argument("--cache-dir", default=None, help="ONNX/TensorRT cache directory")
    data = parser.add_argument_group("data (a bag, or a generated world stream)")
    data.add_argument("--bag", type=Path, default=None, help="rosbag2 directory (with groundtruth.json for metrics)")
    data.add_argument("--labels", type=Path, default=None,
                      help="annotation CSV for --bag (start_s,end_s,label[,caption...]); replaces its groundtruth.json")
    data.add_argument("--items", type=Path, default=None,
                      help="annotation items YAML/JSON for --labels (questions, inverse-dynamics actions)")
    data.add_argument("--bags", type=Path, nargs="+", default=None, metavar="BAG",
                      help="several bags (or directories of bags): evaluated in parallel, one merged JSON with "
                           "per-bag and pooled metrics (vljepa_ros/evaluation/multi_bag.py)")
    data.add_argument("--workers", type=int, default=1, help="worker processes for --bags (default: 1)")
    data.add_argument("--topic", default=None, help="image topic in the bag (default: the only image topic)")
    data.add_argument("--world", choices=WORLDS, default="tabletop", help="world to generate when no --bag")
    data.add_argument("--seed", type=int, default=DEFAULT_EVAL_SEED,
                      help=f"world seed; >= {HELD_OUT_SEED_START} is held out from training (default: {DEFAULT_EVAL_SEED})")
    data.add_argument("--episodes", type=int, default=8, help="episodes in the generated stream (default: 8)")
    data.add_argument("--image-size", type=int, default=64, help="generated frame side in pixels (default: 64)")
    data.add_argument("--fps", type=float, default=10.0, help="generated stream frame rate (default: 10)")
    clips = parser.add_argument_group("clips (as the perception node)")
    clips.add_argument("--query", default=None, help="caption query (default: the perception node's)")
    clips.add_argument("--frames-per-clip", type=int, default=None, help="(default: the model's)")
    clips.add_argument("--stride-frames", type=int, default=DEFAULT_STRIDE_FRAMES,
                       help=f"one clip every N sampled frames (default: {DEFAULT_STRIDE_FRAMES})")
    clips.add_argument("--sample-period-s", type=float, default=DEFAULT_SAMPLE_PERIOD_S,
                       help=f"subsample frames (default: {DEFAULT_SAMPLE_PERIOD_S:g}, all)")
    reuse = ReuseSettings()
    clips.add_argument("--skip-unchanged-clips", action=argparse.BooleanOptionalAction, default=reuse.enabled,
                       help="a clip whose frames did not change since the last encoded one carries its embedding "
                            "(the node's skip_unchanged_clips; default: %(default)s)")
    clips.add_argument("--unchanged-threshold", type=float, default=reuse.threshold,
                       help="grey levels a thumbnail cell may move in an unchanged clip (default: %(default)g)")
    clips.add_argument("--reuse-max-age-s", type=float, default=reuse.max_age_s,
                       help="encode at least this often in stream time (0: no limit; default: %(default)g)")
    online = parser.add_argument_group("online detector (as the monitor node; the threshold is swept)")
    detector = DetectorSettings()
    for name, value in vars(detector).items():
        option = "--" + name.replace("_", "-")
        extra = " (included in the sweep)" if name == "shift_threshold" else ""
        online.add_argument(option, type=type(value), default=value, help=f"(default: {value:g}){extra}")
    familiarity = parser.add_argument_group("familiarity (out-of-distribution streams vs the evaluated one)")
    familiarity.add_argument("--ood-bag", type=Path, nargs="+", default=None, metavar="BAG",
                             help="rosbag2 directories of out-of-distribution frames (their only image topic)")
    familiarity.add_argument("--ood-video", type=Path, nargs="+", default=None, metavar="VIDEO",
                             help="video files as out-of-distribution streams (resampled to --ood-video-fps)")
    familiarity.add_argument("--ood-video-fps", type=float, default=10.0,
                             help="frame rate the --ood-video files are resampled to (default: 10)")
    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, default=None, help="write all metrics to this JSON file")
    output.add_argument("--plots-dir", type=Path, default=None,
                        help="directory for the PNGs (default: next to --json, else ./eval_plots)")
    output.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    output.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (default: 16)")
    parser.set_defaults(func=run)


def load_stream(args: argparse.Namespace):
    """(WorldStream, data_source dict) from --bag or the generated world."""
    if args.bag is not None:
        from vljepa_ros.world.annotations import read_annotated_bag

        stream = read_annotated_bag(args.bag, args.labels, args.items, topic=args.topic)
        source = {"kind": "bag", "path": str(args.bag), "topic": args.topic, "name": stream.name}
        if args.labels is not None:
            source.update(labels=str(args.labels), items=str(args.items) if args.items else None)
        return stream, source
    if args.labels is not None or args.items is not None:
        raise SystemExit("--labels and --items annotate a --bag; give --bag too")
    from vljepa_ros.world import tabletop

    stream = tabletop.generate_stream(args.seed, args.episodes, fps=args.fps, image_size=args.image_size)
    return stream, {"kind": "world", "world": args.world, "seed": args.seed, "episodes": args.episodes,
                    "image_size": args.image_size, "fps": args.fps, "name": stream.name}


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.evaluation import EvalOptions, run_eval, write_json
    from vljepa_ros.paths import resolve_model_dir
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.stream.clips import CAPTION_QUERY

    model_dir = resolve_model_dir(args.model)
    plots_dir = None
    if not args.no_plots:
        plots_dir = args.plots_dir or (args.json.parent if args.json else Path("eval_plots"))
    options = EvalOptions(
        query=args.query or CAPTION_QUERY, frames_per_clip=args.frames_per_clip, stride_frames=args.stride_frames,
        sample_period_s=args.sample_period_s,
        reuse=ReuseSettings(args.skip_unchanged_clips, args.unchanged_threshold, args.reuse_max_age_s),
        online=DetectorSettings(**{field.name: getattr(args, field.name) for field in fields(DetectorSettings)}),
        batch_size=args.batch_size, plots_dir=plots_dir, progress=True)
    with_familiarity = bool(args.ood_bag or args.ood_video)
    if args.bags:
        if with_familiarity:
            raise SystemExit("--ood-bag/--ood-video compare one evaluated stream with OOD data; not with --bags")
        from vljepa_ros.evaluation.multi_bag import run_bags_command
        return run_bags_command(args, model_dir, options)
    stream, data_source = load_stream(args)
    if with_familiarity:  # read before the long run, so a missing file or bad path fails at once
        from vljepa_ros.evaluation.familiarity_report import load_ood_streams
        from vljepa_ros.stream.familiarity import FamiliarityModel

        familiarity_model = FamiliarityModel.load(model_dir)  # its error names `vljepa-ros calibrate`
        ood_streams = load_ood_streams(args.ood_bag, args.ood_video, args.ood_video_fps)
    engine = create_engine(model_dir, backend=args.backend, device=args.device, precision=args.precision,
                           cache_dir=args.cache_dir)
    report = run_eval(engine, stream, options, data_source=data_source, model_dir=str(model_dir))
    if with_familiarity:
        add_familiarity(report, engine, familiarity_model, stream, ood_streams, options)
    print(format_summary(report))
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    return 0


def add_familiarity(report: dict, engine, familiarity_model, stream, ood_streams, options) -> None:
    """The report's `familiarity` section (and its plot beside the others)."""
    from vljepa_ros.evaluation.familiarity_report import familiarity_report
    from vljepa_ros.evaluation.run import json_ready

    plot_path = None
    if options.plots_dir is not None:
        Path(options.plots_dir).mkdir(parents=True, exist_ok=True)
        plot_path = Path(options.plots_dir) / "familiarity.png"
    section = json_ready(familiarity_report(engine, familiarity_model, stream, ood_streams, options, plot_path))
    report["familiarity"] = section
    if "plot" in section:
        report.setdefault("plots", {})["familiarity"] = section["plot"]


def format_summary(report: dict) -> str:
    def number(key: str, digits: int = 3) -> str:
        value = report.get(key)
        return "n/a" if value is None else f"{value:.{digits}f}"

    def times(value: float | None) -> str:
        return "never" if value is None else f"{value:.2f}x"

    reused = f" ({report['clips']['reused']} reused: unchanged)" if report["clips"].get("reused") else ""
    lines = [f"model {report['model_id']} ({report['backend']}, {report['device']}) on {report['stream']['name']}: "
             f"{report['clips']['count']} clips{reused}, {report['stream']['segments']} segments, "
             f"{report['stream']['action_items']} action items",
             f"  classification accuracy  {number('classification_accuracy')}  (chance {number('classification_chance')})",
             f"  retrieval R@1            {number('retrieval_r1')}  (chance {number('retrieval_chance')})",
             f"  inverse dynamics         {number('inverse_dynamics_accuracy')}  "
             f"(chance {number('inverse_dynamics_chance')})"]
    decoding = report.get("selective_decoding")
    if decoding:
        best = decoding["best_adaptive"]
        where = f" ({best['method']}, {best['decodes_per_s']:.3f} Hz, quality {best['quality']:.3f})" if best else ""
        lines.append(f"  decode reduction vs uniform 1 Hz  {number('decode_reduction_vs_uniform_1hz', 2)}x at equal "
                     f"CIDEr-D{where}; uniform 1 Hz CIDEr-D {number('uniform_1hz_cider_d')}, caption accuracy "
                     f"{number('uniform_1hz_caption_accuracy')}")
        ceiling = decoding["ceiling"]
        lines.append(f"    ceiling: {times(ceiling['decode_reduction'])} with the best text on any segments, "
                     f"{times(ceiling['ward_segments_decode_reduction'])} on Ward's (what the stream and the cuts "
                     f"allow)")
        lines.append(f"  segmentation ({report['segmentation_headline_from']}): boundary F1 +-1 s "
                     f"{number('boundary_f1_1s')}, +-2 s {number('boundary_f1_2s')}; F1@10/25/50 "
                     f"{number('f1_at_10', 1)}/{number('f1_at_25', 1)}/{number('f1_at_50', 1)}, edit "
                     f"{number('edit_score', 1)}, frame accuracy {number('frame_accuracy', 1)}")
        if not decoding["uniform_1hz_beats_constant_label"]:
            lines.append("    (uniform 1 Hz is no better than always showing the most frequent label "
                         f"({decoding['constant_label_quality']:.3f}): the reduction is not meaningful)")
    if report.get("familiarity"):
        from vljepa_ros.evaluation.familiarity_report import format_familiarity_summary

        lines.append(format_familiarity_summary(report["familiarity"]))
    for name, path in report.get("plots", {}).items():
        lines.append(f"  plot {name}: {path}")
    return "\n".join(lines)
