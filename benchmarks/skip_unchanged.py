"""Doing nothing when nothing changes (perception's skip_unchanged_clips), measured side by side in one run (JSON).

    PYTHONPATH=. .venv/bin/python benchmarks/skip_unchanged.py --json benchmarks/results/skip-unchanged-<cpu>-<date>.json

1. check_cost: what the pixel test (stream/clip_reuse.py) costs per clip, against the shipped model's clip
   encoding, for the clips the node sees (the small model's 8 x 64 px, the demo bag's 8 x 128 px, 16 frames
   of a 640x480 camera); rounds interleaved so machine load hits all alike. `off` is the cost with the option off.
2. noise: the largest thumbnail-cell change a still camera's clip shows with Gaussian sensor noise only
   (sigma 2 and 4 grey levels), at those sizes: what the default threshold must stay above.
3. static_camera: a still camera (one demo-bag frame, 60 s at 10 Hz, sensor noise sigma 2) through the node's
   clip path (ClipAssembler, one clip at a time, 1 torch thread) with the option off and on, interleaved:
   clips inferred vs reused, CPU seconds of each.
4. model_card_streams: the pixel test alone over the model card's held-out streams: how many clips it reuses.
5. metrics: `vljepa-ros eval`'s metrics of the shipped model with the option off and on, side by side, on the
   demo bag, the eval's default stream (tabletop, seed 1,000,001, 8 episodes, 64 px), the Meta-World
   held-out bag and the model card's tabletop seed 1,000,002 (24 episodes); and, to exercise the option where it acts, on the demo bag and the default stream made to
   pause (every segment's last frame held 3 s, a robot waiting between actions) with sensor noise sigma 2,
   each with eight noise seeds, so the change the option makes stands beside what sensor noise alone does
   (`summary`: per metric the noise, the option's paired change, and whether its mean is within the noise).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from familiarity_cost import cpu_name

HEADLINE = ("classification_accuracy", "retrieval_r1", "inverse_dynamics_accuracy", "decode_reduction_vs_uniform_1hz",
            "uniform_1hz_cider_d", "uniform_1hz_caption_accuracy", "boundary_f1_1s", "boundary_f1_2s", "f1_at_10",
            "f1_at_25", "f1_at_50", "edit_score", "frame_accuracy")
COUNTS = {"classification_accuracy": "classification_clips", "retrieval_r1": "retrieval_queries",
          "inverse_dynamics_accuracy": "inverse_dynamics_items"}  # binomial standard error over these
PAUSE_S = 3.0
SIGMA = 2.0
NOISE_SEEDS = tuple(range(11, 19))


def noisy(frames: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty_like(frames)
    for index, frame in enumerate(frames):
        noise = rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(sigma)
        out[index] = np.clip(frame + noise, 0, 255).round().astype(np.uint8)
    return out


def still_clip(frame: np.ndarray, frames: int, sigma: float, seed: int) -> np.ndarray:
    return noisy(np.repeat(frame[None], frames, axis=0), sigma, seed)


def check_cost(engine, demo_frame: np.ndarray, rounds: int) -> dict:
    import cv2

    from vljepa_ros.stream.clip_reuse import ClipReuse
    from vljepa_ros.stream.clips import CAPTION_QUERY

    clips = {"8x64x64": still_clip(cv2.resize(demo_frame, (64, 64), interpolation=cv2.INTER_AREA), 8, SIGMA, 1),
             "8x128x128": still_clip(demo_frame, 8, SIGMA, 2),
             "8x480x640": still_clip(cv2.resize(demo_frame, (640, 480)), 8, SIGMA, 3),
             "16x480x640": still_clip(cv2.resize(demo_frame, (640, 480)), 16, SIGMA, 4)}
    rows = {f"encode_clip_{name}": lambda clip=clips[name]: engine.encode_clips_with_statistics(clip[None], CAPTION_QUERY)
            for name in ("8x64x64", "8x480x640")}  # the small model's node on its own size and on a VGA camera
    off = ClipReuse(enabled=False)
    rows["check_off"] = lambda: off.check(clips["8x64x64"], 0, "q")
    for name, clip in clips.items():
        reuse = ClipReuse(max_age_s=0.0)
        reuse.remember(reuse.check(clip, 0, "q"), None)
        rows[f"check_{name}"] = lambda reuse=reuse, clip=clip: reuse.check(clip, 1, "q")
    times = {name: [] for name in rows}
    for _ in range(5):
        for run in rows.values():
            run()
    for _ in range(rounds):
        for name, run in rows.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    result = {"p50_ms": {name: round(float(np.percentile(t, 50)) * 1e3, 4) for name, t in times.items()},
              "p95_ms": {name: round(float(np.percentile(t, 95)) * 1e3, 4) for name, t in times.items()}}
    for name in ("8x64x64", "8x480x640"):
        result[f"check_share_of_encode_{name}"] = round(
            result["p50_ms"][f"check_{name}"] / result["p50_ms"][f"encode_clip_{name}"], 4)
    return result


def noise_margin(demo_frame: np.ndarray, clips: int = 200) -> dict:
    import cv2

    from vljepa_ros.stream.clip_reuse import thumbnails

    sizes = {"8x64x64": (8, (64, 64)), "8x128x128": (8, (128, 128)), "16x480x640": (16, (640, 480))}
    result = {}
    for name, (length, size) in sizes.items():
        frame = cv2.resize(demo_frame, size, interpolation=cv2.INTER_AREA)
        count = clips if length == 8 else clips // 10
        for sigma in (2.0, 4.0):
            reference = thumbnails(still_clip(frame, length, sigma, 0))
            changes = [float(np.max(np.abs(thumbnails(still_clip(frame, length, sigma, seed)) - reference)))
                       for seed in range(1, count + 1)]
            result[f"{name}_sigma{sigma:g}"] = {"clips": count, "max_change_p50": round(float(np.median(changes)), 3),
                                                "max_change_max": round(max(changes), 3)}
    return result


def static_camera(engine, demo_frame: np.ndarray, seconds: float, rounds: int) -> dict:
    from vljepa_ros.evaluation.embedding import embed_frames
    from vljepa_ros.stream.clip_reuse import ReuseSettings
    from vljepa_ros.stream.clips import CAPTION_QUERY

    count = int(seconds * 10)
    frames = still_clip(demo_frame, count, SIGMA, 7)
    stamps = 1_000_000_000 + np.arange(count, dtype=np.int64) * 100_000_000
    settings = {"off": ReuseSettings(enabled=False), "on": ReuseSettings(enabled=True)}
    cpu = {name: [] for name in settings}
    reused = {}
    for _ in range(rounds):
        for name, reuse in settings.items():
            start = time.process_time()
            clips = embed_frames(engine, frames, stamps, CAPTION_QUERY, batch_size=1, reuse=reuse)
            cpu[name].append(time.process_time() - start)
            reused[name] = int(np.sum(clips.reused)) if clips.reused is not None else 0
            total = len(clips)
    return {"frames": count, "seconds": seconds, "sigma": SIGMA, "clips": total,
            "clips_inferred": {name: total - reused[name] for name in settings},
            "clips_reused": reused, "cpu_s": {name: [round(t, 3) for t in values] for name, values in cpu.items()},
            "cpu_ratio_on_over_off": round(float(np.median(cpu["on"]) / np.median(cpu["off"])), 4)}


def with_pauses(stream, hold_s: float):
    """The stream with every segment's last frame held `hold_s` longer (same segment): a robot that waits."""
    from vljepa_ros.world.types import ActionItem

    hold = int(round(hold_s * stream.fps))
    period_ns = int(round(1e9 / stream.fps))
    ends = sorted({segment.end_index for segment in stream.segments})
    new_index = np.arange(stream.frame_count) + hold * np.searchsorted(ends, np.arange(stream.frame_count), side="right")
    order = []
    for index in range(stream.frame_count):
        order.append(index)
        if index + 1 in ends:
            order.extend([index] * hold)
    frames = stream.frames[np.array(order)]
    stamps = int(stream.stamps_ns[0]) + np.arange(len(order), dtype=np.int64) * period_ns

    segments = []
    for segment in stream.segments:  # a segment keeps its frames and the hold after its last one
        start, end = int(new_index[segment.start_index]), int(new_index[segment.end_index - 1]) + 1 + hold
        end_ns = int(stamps[end]) if end < len(stamps) else int(stamps[-1]) + period_ns
        segments.append(dataclasses.replace(segment, start_index=start, end_index=end, start_ns=int(stamps[start]),
                                            end_ns=end_ns))
    items = [ActionItem(int(new_index[item.before_index]), int(new_index[item.after_index]), item.action,
                        list(item.candidates), item.answer_index) for item in stream.action_items]
    paused = dataclasses.replace(stream, name=f"{stream.name}+pauses{hold_s:g}s", frames=frames, stamps_ns=stamps,
                                 segments=segments, action_items=items)
    paused.validate()
    return paused


def reuse_counts(streams: dict) -> dict:
    """The pixel test alone (no model) over whole streams, as the node's worker runs it: clips it would reuse
    with the default settings, and the smallest changes it saw (a stream whose clips all change gives metrics
    identical with the option on and off)."""
    from vljepa_ros.evaluation.embedding import assemble_clips
    from vljepa_ros.stream.clip_reuse import ClipReuse

    result = {}
    for name, stream in streams.items():
        reuse = ClipReuse()
        changes, reused = [], 0
        for clip in assemble_clips(stream.frames, stream.stamps_ns, 8):
            check = reuse.check(clip.frames, clip.last_stamp_ns)
            if not check.reuse:
                reuse.remember(check, None)
            reused += check.reuse
            changes.append(check.change)
        finite = np.array([change for change in changes if np.isfinite(change)])
        result[name] = {"clips": len(changes), "clips_reused": reused,
                        "change_min": round(float(finite.min()), 3),
                        "change_p5": round(float(np.percentile(finite, 5)), 3)}
    return result


def evaluate(engine, stream, enabled: bool) -> dict:
    from vljepa_ros.evaluation import EvalOptions, run_eval
    from vljepa_ros.stream.clip_reuse import ReuseSettings

    start = time.process_time()
    report = run_eval(engine, stream, EvalOptions(reuse=ReuseSettings(enabled=enabled)))
    row = {key: report.get(key) for key in HEADLINE}
    row.update({key: report.get(key) for key in COUNTS.values()})
    row.update(clips=report["clips"]["count"], clips_reused=report["clips"]["reused"],
               eval_cpu_s=round(time.process_time() - start, 2))
    return row


def compare(off: dict, on: dict) -> dict:
    return {key: None if off[key] is None or on[key] is None else round(on[key] - off[key], 6) for key in HEADLINE}


def summarise(runs: dict, effect: dict) -> dict:
    """Per metric: what sensor noise alone moves it by (its standard deviation over the noise seeds with the
    option off; for an accuracy at least its binomial standard error) beside the option's paired change
    (on - off on the same noisy frames: mean, standard deviation, largest); within noise when the mean change
    is smaller than the noise."""
    floor = standard_errors(next(iter(runs.values()))["off"])
    summary = {}
    for key in HEADLINE:
        off = np.array([run["off"][key] for run in runs.values() if run["off"][key] is not None], dtype=float)
        changes = np.array([value[key] for value in effect.values() if value[key] is not None], dtype=float)
        if off.size < 2 or changes.size < 2:
            continue
        noise = max(float(np.std(off, ddof=1)), floor.get(key, 0.0))
        summary[key] = {"off_mean": round(float(off.mean()), 4), "noise": round(noise, 4),
                        "change_mean": round(float(changes.mean()), 4), "change_sd": round(float(np.std(changes, ddof=1)), 4),
                        "change_largest": round(float(changes[np.argmax(np.abs(changes))]), 4),
                        "within_noise": bool(abs(changes.mean()) <= noise + 1e-9)}
    return summary


def standard_errors(row: dict) -> dict:
    return {key: round(float(np.sqrt(row[key] * (1 - row[key]) / row[count])), 4) for key, count in COUNTS.items()
            if row.get(key) is not None and row.get(count)}


def metrics(engine, streams: dict, stressed: dict) -> dict:
    result = {}
    for name, stream in streams.items():
        off, on = evaluate(engine, stream, False), evaluate(engine, stream, True)
        result[name] = {"off": off, "on": on, "on_minus_off": compare(off, on), "binomial_se": standard_errors(off)}
        print(name, json.dumps(result[name]["on_minus_off"]), flush=True)
    for name, stream in stressed.items():
        paused = with_pauses(stream, PAUSE_S)
        runs = {}
        for seed in NOISE_SEEDS:
            noisy_stream = dataclasses.replace(paused, frames=noisy(paused.frames, SIGMA, seed))
            runs[seed] = {"off": evaluate(engine, noisy_stream, False), "on": evaluate(engine, noisy_stream, True)}
        effect = {seed: compare(run["off"], run["on"]) for seed, run in runs.items()}
        result[f"{name}+pauses+noise"] = {
            "pause_s": PAUSE_S, "sigma": SIGMA, "runs": {str(seed): run for seed, run in runs.items()},
            "on_minus_off": {str(seed): value for seed, value in effect.items()},
            "summary": summarise(runs, effect)}
        print(name, "+pauses+noise", json.dumps(result[f"{name}+pauses+noise"]["summary"]), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="timed rounds of the check cost")
    parser.add_argument("--static-seconds", type=float, default=60.0)
    parser.add_argument("--static-rounds", type=int, default=3)
    parser.add_argument("--skip-metrics", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from vljepa_ros.commands.eval import DEFAULT_EVAL_SEED
    from vljepa_ros.paths import default_model_dir
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.stream.clip_reuse import ReuseSettings
    from vljepa_ros.world import tabletop
    from vljepa_ros.world.annotations import read_annotated_bag

    torch.set_num_threads(1)  # as the nodes run (inference_threads: 1)
    engine = create_engine(default_model_dir())
    demo = read_annotated_bag("data/demo_tabletop")
    demo_frame = demo.frames[demo.frame_count // 2]
    result = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"), "model": engine.model_id,
              "torch_threads": 1, "settings_on": dataclasses.asdict(ReuseSettings(enabled=True))}
    result["check_cost"] = check_cost(engine, demo_frame, args.rounds)
    print(json.dumps(result["check_cost"], indent=2), flush=True)
    result["noise"] = noise_margin(demo_frame)
    print(json.dumps(result["noise"], indent=2), flush=True)
    result["static_camera"] = static_camera(engine, demo_frame, args.static_seconds, args.static_rounds)
    print(json.dumps(result["static_camera"], indent=2), flush=True)
    model_card = {"demo_tabletop": demo, "metaworld_eval": read_annotated_bag("data/metaworld/eval")}
    for seed in (DEFAULT_EVAL_SEED, DEFAULT_EVAL_SEED + 1):  # the model card's held-out tabletop streams
        model_card[f"tabletop_seed{seed}_24_episodes"] = tabletop.generate_stream(seed, 24, fps=10.0, image_size=64)
    result["model_card_streams"] = reuse_counts(model_card)
    print(json.dumps(result["model_card_streams"], indent=2), flush=True)
    if not args.skip_metrics:
        eval_stream = tabletop.generate_stream(DEFAULT_EVAL_SEED, 8, fps=10.0, image_size=64)
        streams = {"demo_tabletop": demo, f"tabletop_seed{DEFAULT_EVAL_SEED}": eval_stream,
                   "metaworld_eval": model_card["metaworld_eval"],
                   # the one model card stream with a clip the test reuses
                   f"tabletop_seed{DEFAULT_EVAL_SEED + 1}_24_episodes":
                       model_card[f"tabletop_seed{DEFAULT_EVAL_SEED + 1}_24_episodes"]}
        stressed = {"demo_tabletop": demo, f"tabletop_seed{DEFAULT_EVAL_SEED}": eval_stream}
        result["metrics"] = metrics(engine, streams, stressed)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
