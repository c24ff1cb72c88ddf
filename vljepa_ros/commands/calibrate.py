"""`vljepa-ros calibrate`: teach a model directory what is familiar (its familiarity.safetensors).

    vljepa-ros calibrate --model models/small --data tabletop data/metaworld-train/val
    vljepa-ros calibrate --model models/my_robot --data my_robot_bag/ --false-alarm-rate 0.02
    vljepa-ros calibrate --model models/my_robot --data tabletop my_robot_bag/ kitchen_video.mp4

--data names in-distribution data: "tabletop" (the tabletop world from training-range seeds, in the
camera variants the node meets: raw and JPEG, 64-128 px), a rosbag2 directory (its image topic, or
--topic), a video file (resampled to --video-fps) or a make-data examples .npz. Every clip the perception
node would cut from it goes through the model once; the Gaussian of their visual statistics is fitted
on each source's first clips and the threshold set on its last --held-out-share of clips, so that
--false-alarm-rate of in-distribution clips are called unfamiliar (stream/familiarity.py). Give data
of everything the robot should call familiar: after `train --init` on your bag, that bag (and the
worlds you mixed in) — not held-out data you will report on.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vljepa_ros.stream.familiarity import DEFAULT_FALSE_ALARM_RATE, DEFAULT_HELD_OUT_SHARE, FAMILIARITY_FILE


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="fit a model's familiarity statistics and threshold on in-distribution data",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="model directory (default: the shipped models/small)")
    parser.add_argument("--data", nargs="+", required=True, metavar="SOURCE",
                        help='"tabletop", bag directories, video files or examples .npz files')
    parser.add_argument("--false-alarm-rate", type=float, default=DEFAULT_FALSE_ALARM_RATE,
                        help=f"share of in-distribution clips called unfamiliar (default: {DEFAULT_FALSE_ALARM_RATE})")
    parser.add_argument("--held-out-share", type=float, default=DEFAULT_HELD_OUT_SHARE,
                        help="last share of each source's clips that sets the threshold instead of the fit "
                             f"(default: {DEFAULT_HELD_OUT_SHARE})")
    parser.add_argument("--tabletop-episodes", type=int, default=12,
                        help="episodes per tabletop camera variant (default: 12)")
    parser.add_argument("--video-fps", type=float, default=10.0, help="frame rate videos are resampled to (default: 10)")
    parser.add_argument("--topic", default=None, help="image topic of the bags (default: their only image topic)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch", help="(default: torch)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (default: 16)")
    parser.add_argument("--out", type=Path, default=None, help=f"where to write (default: MODEL/{FAMILIARITY_FILE})")
    parser.set_defaults(func=run)


def clip_statistics(engine, stream, batch_size: int = 16):
    """(N, F) visual statistics of the clips the perception node would cut from a CalibrationStream."""
    import numpy as np

    from vljepa_ros.evaluation.embedding import embed_frames
    from vljepa_ros.stream.clips import CAPTION_QUERY

    if stream.clips is not None:
        parts = [engine.encode_clips_with_statistics(stream.clips[start:start + batch_size], CAPTION_QUERY)[1]
                 for start in range(0, len(stream.clips), batch_size)]
        return np.concatenate(parts)
    return embed_frames(engine, stream.frames, stream.stamps_ns, CAPTION_QUERY, batch_size=batch_size).statistics


def calibrate(engine, specs: list[str], false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
              held_out_share: float = DEFAULT_HELD_OUT_SHARE, tabletop_episodes: int = 12, video_fps: float = 10.0,
              topic: str | None = None, batch_size: int = 16, log=print):
    """Fit a FamiliarityModel for `engine`'s model on the calibration sources `specs`."""
    import numpy as np

    from vljepa_ros.stream.familiarity import fit_familiarity, split_held_out
    from vljepa_ros.world.calibration import load_calibration_source

    names, statistics = [], []
    for spec in specs:
        for stream in load_calibration_source(spec, tabletop_episodes, video_fps, topic):
            values = clip_statistics(engine, stream, batch_size)
            names.append(stream.name)
            statistics.append(values)
            log(f"  {stream.name}: {len(values)} clips")
    model = fit_familiarity(statistics, false_alarm_rate, held_out_share,
                            info={"model_id": engine.model_id, "sources": names, "data": list(specs)})
    per_source = {}
    for name, values in zip(names, statistics):
        held = split_held_out(values, held_out_share)[1]
        per_source[name] = round(float(np.mean(model.familiarity(held) < model.false_alarm_rate)), 4)
    model.info["held_out_false_alarms"] = per_source
    return model


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.paths import resolve_model_dir
    from vljepa_ros.runtime import create_engine

    model_dir = resolve_model_dir(args.model)
    engine = create_engine(model_dir, backend=args.backend, device=args.device)
    print(f"calibrating the familiarity of {engine.model_id} on {len(args.data)} source(s):")
    model = calibrate(engine, args.data, args.false_alarm_rate, args.held_out_share, args.tabletop_episodes,
                      args.video_fps, args.topic, args.batch_size)
    path = model.save(args.out or model_dir)
    print(f"wrote {path}: {model.info['fit_clips']} clips fitted, {model.info['held_out_clips']} held out; "
          f"unfamiliar below familiarity {model.false_alarm_rate:g} (distance > {model.distance_threshold:.3f})")
    print("held-out false alarms per source: " + json.dumps(model.info["held_out_false_alarms"]))
    return 0
