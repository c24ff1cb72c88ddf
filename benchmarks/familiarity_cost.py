"""What knowing-when-it-does-not-know costs per clip, measured side by side in one run (JSON).

    .venv/bin/python benchmarks/familiarity_cost.py --json benchmarks/results/familiarity-cost-<cpu>-<date>.json

Rows, interleaved round by round so machine load hits all alike: the shipped model's clip encoding as the
nodes ran it before (`encode_clips`), the same with the visual statistics the familiarity needs
(`encode_clips_with_statistics`: the extra graph output), and scoring one clip's statistics against the
shipped calibration (256 values) and against a paper-size one (2048 values, random statistics).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def cpu_name() -> dict:
    info = {"machine": platform.machine()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for key, name in (("model name", "model"), ("cpu family", "family"), ("model\t", "model_number")):
        line = next((line for line in text.splitlines() if line.startswith(key)), "")
        info[name] = line.split(":", 1)[-1].strip()
    return info


def paper_size_familiarity():
    from vljepa_ros.stream.familiarity import fit_familiarity

    rng = np.random.default_rng(0)
    return fit_familiarity([rng.normal(size=(3000, 2048))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from vljepa_ros.paths import default_model_dir
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.stream.familiarity import FamiliarityModel

    torch.set_num_threads(1)  # as the nodes run (inference_threads: 1)
    engine = create_engine(default_model_dir())
    shipped = FamiliarityModel.load(default_model_dir())
    paper = paper_size_familiarity()
    clip = np.random.default_rng(1).integers(0, 256, (1, engine.frames_per_clip, 64, 64, 3), dtype=np.uint8)
    statistics = engine.encode_clips_with_statistics(clip, "What is happening?")[1][0]
    paper_statistics = np.random.default_rng(2).normal(size=2048)
    rows = {
        "encode_clip": lambda: engine.encode_clips(clip, "What is happening?"),
        "encode_clip_with_statistics": lambda: engine.encode_clips_with_statistics(clip, "What is happening?"),
        "familiarity_small_256": lambda: shipped.score(statistics),
        "familiarity_paper_2048": lambda: paper.score(paper_statistics),
    }
    times = {name: [] for name in rows}
    for _ in range(10):  # warm-up
        for run in rows.values():
            run()
    for _ in range(args.rounds):
        for name, run in rows.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    result = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "model": engine.model_id,
              "p50_ms": {name: round(float(np.percentile(t, 50)) * 1e3, 4) for name, t in times.items()},
              "p95_ms": {name: round(float(np.percentile(t, 95)) * 1e3, 4) for name, t in times.items()}}
    p50 = result["p50_ms"]
    result["familiarity_share_of_clip_small"] = round(p50["familiarity_small_256"] / p50["encode_clip"], 4)
    result["statistics_output_overhead"] = round(p50["encode_clip_with_statistics"] / p50["encode_clip"] - 1.0, 4)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
