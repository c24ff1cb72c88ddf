"""`vljepa-ros eval --bags`: bags evaluated in parallel worker processes equal the sequential evaluation."""
from __future__ import annotations

import json

import pytest
import torch

from vljepa_ros.evaluation.multi_bag import (BagSelectionError, EngineSettings, evaluate_bags, find_bags,
                                             pooled_metrics)
from vljepa_ros.evaluation.run import EvalOptions

BAG_SEEDS = (1_000_002, 1_000_003, 1_000_004)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A tiny saved model and a directory of three one-episode bags with ground truth."""
    from vljepa_ros.model.checkpoint import save_model
    from vljepa_ros.model.config import get_preset
    from vljepa_ros.model.vljepa import new_model
    from vljepa_ros.world.bag_io import write_stream_bag
    from vljepa_ros.world.dataset import text_corpus
    from vljepa_ros.world.tabletop import generate_stream

    root = tmp_path_factory.mktemp("fleet")
    torch.manual_seed(0)
    save_model(new_model(get_preset("tiny"), text_corpus()), root / "model")
    for seed in BAG_SEEDS:
        write_stream_bag(root / "bags" / f"bag_{seed}", generate_stream(seed, 1, image_size=64))
    return root


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "elapsed_s"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def test_parallel_command_equals_sequential_evaluation(fleet, tmp_path):
    from vljepa_ros.cli import main

    out = tmp_path / "fleet.json"
    assert main(["eval", "--model", str(fleet / "model"), "--bags", str(fleet / "bags"), "--workers", "2",
                 "--json", str(out), "--no-plots"]) == 0
    parallel = json.loads(out.read_text())
    bags = find_bags([fleet / "bags"])
    sequential = evaluate_bags(bags, EngineSettings(str(fleet / "model")), EvalOptions(), workers=1)
    assert without_timings(parallel) == without_timings(sequential)
    assert [r["data_source"]["path"] for r in parallel["bags"]] == [str(b) for b in bags]
    assert parallel["bag_count"] == 3
    assert parallel["pooled"]["clips"] == sum(report["clips"]["count"] for report in parallel["bags"])


def test_pooled_metrics_sum_counts():
    reports = [
        {"classification_accuracy": 0.5, "classification_clips": 10, "retrieval_r1": 1.0, "retrieval_queries": 2,
         "inverse_dynamics_accuracy": None, "clips": {"count": 10},
         "stream": {"frames": 40, "duration_s": 4.0, "segments": 3, "action_items": 0},
         "selective_decoding": {"uniform_1hz_decodes": 4, "best_adaptive": {"decodes": 2}}},
        {"classification_accuracy": 1.0, "classification_clips": 30, "retrieval_r1": 0.0, "retrieval_queries": 6,
         "inverse_dynamics_accuracy": 0.75, "inverse_dynamics_items": 4, "clips": {"count": 30},
         "stream": {"frames": 120, "duration_s": 12.0, "segments": 5, "action_items": 4},
         "selective_decoding": {"uniform_1hz_decodes": 12, "best_adaptive": {"decodes": 6}}},
    ]
    pooled = pooled_metrics(reports)
    assert pooled["classification_accuracy"] == pytest.approx((5 + 30) / 40)
    assert pooled["retrieval_r1"] == pytest.approx(2 / 8) and pooled["retrieval_queries"] == 8
    assert pooled["inverse_dynamics_accuracy"] == 0.75 and pooled["inverse_dynamics_items"] == 4
    assert pooled["decode_reduction_vs_uniform_1hz"] == pytest.approx(16 / 8)
    assert pooled["clips"] == 40 and pooled["frames"] == 160 and pooled["segments"] == 8
    reports[0]["selective_decoding"]["best_adaptive"] = None  # one bag never matches uniform 1 Hz
    assert pooled_metrics(reports)["decode_reduction_vs_uniform_1hz"] is None


def test_bags_are_bag_directories_or_directories_of_bags(fleet, tmp_path):
    bags = find_bags([fleet / "bags"])
    assert [b.name for b in bags] == [f"bag_{seed}" for seed in BAG_SEEDS]
    assert find_bags([bags[1], bags[0]]) == [bags[1], bags[0]]
    with pytest.raises(BagSelectionError, match="neither"):
        find_bags([tmp_path])
