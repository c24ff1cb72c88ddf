"""`vljepa-ros eval --bags`: many bags evaluated in parallel worker processes, merged into one JSON report.

Each worker process (concurrent.futures, spawn start method: safe with torch and CUDA) makes its own engine
with one torch thread and runs run_eval on one bag at a time. The merged report holds every bag's report
under "bags" and "pooled" metrics over all bags. A bag's headline metrics are means over counted things,
so each is pooled by summing those counts (POOLING names the count per metric):

    classification_accuracy             sum(accuracy x classification_clips) / sum(classification_clips)
    classification_accuracy_pure_clips  likewise over classification_pure_clips
    classification_chance               the same clip weighting (a uniform guess's expected pooled accuracy)
    retrieval_r1, retrieval_chance      weighted by retrieval_queries (per bag a mean over its queries)
    inverse_dynamics_accuracy, _chance  weighted by inverse_dynamics_items
    decode_reduction_vs_uniform_1hz     sum of uniform 1 Hz decodes / sum of decodes of each bag's best
                                        adaptive point (each at least as good as its uniform 1 Hz on its own
                                        time steps); null when a bag has no such point
Bags without the count (no ground truth) are left out of that metric; clip, segment, frame, action-item
counts and durations are summed.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from vljepa_ros.errors import VLJepaError
from vljepa_ros.evaluation.run import EvalOptions, json_ready, run_eval, write_json

POOLING = {
    "classification_accuracy": "classification_clips",
    "classification_accuracy_pure_clips": "classification_pure_clips",
    "classification_chance": "classification_clips",
    "retrieval_r1": "retrieval_queries",
    "retrieval_chance": "retrieval_queries",
    "inverse_dynamics_accuracy": "inverse_dynamics_items",
    "inverse_dynamics_chance": "inverse_dynamics_items",
}
SUMMED_STREAM_COUNTS = ("frames", "duration_s", "segments", "action_items")
BAG_METADATA = "metadata.yaml"  # every rosbag2 directory has one


class BagSelectionError(VLJepaError):
    """--bags names something that is neither a bag nor a directory of bags."""


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    """What each worker needs to make its own engine (engines do not cross processes)."""
    model_dir: str
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    cache_dir: str | None = None


def find_bags(paths: Sequence[str | Path]) -> list[Path]:
    """Bag directories from bags and directories holding bags (one level down, sorted by name)."""
    bags: list[Path] = []
    for path in map(Path, paths):
        if (path / BAG_METADATA).is_file():
            bags.append(path)
            continue
        inside = sorted(child for child in path.iterdir() if (child / BAG_METADATA).is_file()) if path.is_dir() else []
        if not inside:
            raise BagSelectionError(f"{path} is neither a rosbag2 directory ({BAG_METADATA}) nor holds any")
        bags += inside
    return bags


def evaluate_bag(bag: Path, engine_settings: EngineSettings, options: EvalOptions, topic: str | None) -> dict:
    """run_eval of one bag with an engine of its own (what a worker process does)."""
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.world.bag_io import read_stream_bag

    stream = read_stream_bag(bag, topic=topic)
    engine = create_engine(engine_settings.model_dir, backend=engine_settings.backend, device=engine_settings.device,
                           precision=engine_settings.precision, cache_dir=engine_settings.cache_dir)
    data_source = {"kind": "bag", "path": str(bag), "topic": topic, "name": stream.name}
    return run_eval(engine, stream, options, data_source=data_source, model_dir=engine_settings.model_dir)


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)  # N workers share the cores; each thread pool would oversubscribe them


def evaluate_bags(bags: Sequence[Path], engine_settings: EngineSettings, options: EvalOptions,
                  topic: str | None = None, workers: int = 1) -> dict[str, Any]:
    """Every bag's report (in `bags` order) and the pooled metrics; workers > 1 runs bags in parallel."""
    per_bag_options = [dataclasses.replace(options, progress=False, plots_dir=None if options.plots_dir is None
                                           else Path(options.plots_dir) / f"{index:03d}_{bag.name}")
                       for index, bag in enumerate(bags)]
    arguments = (bags, [engine_settings] * len(bags), per_bag_options, [topic] * len(bags))
    if workers <= 1:
        reports = list(map(evaluate_bag, *arguments))
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_one_torch_thread) as pool:
            reports = list(pool.map(evaluate_bag, *arguments))
    return merge_reports(reports)


def pooled_metrics(reports: Sequence[dict]) -> dict[str, Any]:
    pooled: dict[str, Any] = {}
    for metric, count_key in POOLING.items():
        counted = [(r[metric], r[count_key]) for r in reports if r.get(metric) is not None and r.get(count_key)]
        total = sum(count for _, count in counted)
        pooled[metric] = sum(value * count for value, count in counted) / total if total else None
    for count_key in set(POOLING.values()):
        pooled[count_key] = sum(r.get(count_key) or 0 for r in reports)
    decoding = [r.get("selective_decoding") for r in reports]
    usable = all(d and d["best_adaptive"] for d in decoding)
    pooled["decode_reduction_vs_uniform_1hz"] = (
        sum(d["uniform_1hz_decodes"] for d in decoding) / sum(d["best_adaptive"]["decodes"] for d in decoding)
        if usable and decoding else None)
    pooled["clips"] = sum(r["clips"]["count"] for r in reports)
    pooled.update({key: sum(r["stream"][key] for r in reports) for key in SUMMED_STREAM_COUNTS})
    return pooled


def merge_reports(reports: Sequence[dict]) -> dict[str, Any]:
    return json_ready({"bags": list(reports), "bag_count": len(reports), "pooled": pooled_metrics(reports),
                       "pooling": {metric: f"weighted by {count}" for metric, count in POOLING.items()}
                       | {"decode_reduction_vs_uniform_1hz": "sum of uniform 1 Hz decodes / sum of best adaptive "
                                                             "decodes"}})


def run_bags_command(args, model_dir: Path, options: EvalOptions) -> int:
    """`vljepa-ros eval --bags ...`: evaluate, print one line per bag and the pooled metrics, write --json."""
    bags = find_bags(args.bags)
    settings = EngineSettings(str(model_dir), args.backend, args.device, args.precision, args.cache_dir)
    merged = evaluate_bags(bags, settings, options, topic=args.topic, workers=args.workers)
    for bag, report in zip(bags, merged["bags"]):
        print(f"{bag}: {_headline(report)}")
    print(f"pooled over {len(bags)} bags: {_headline(merged['pooled'])}")
    if args.json:
        print(f"wrote {write_json(merged, args.json)}")
    return 0


def _headline(metrics: dict) -> str:
    def number(key: str) -> str:
        value = metrics.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    return (f"classification {number('classification_accuracy')}, retrieval R@1 {number('retrieval_r1')}, "
            f"inverse dynamics {number('inverse_dynamics_accuracy')}, "
            f"decode reduction {number('decode_reduction_vs_uniform_1hz')}")
