"""`bench --pipeline --find-limits`: the search for each topology's limit, with fake deterministic probes,
the verdict of one probe from its numbers, and one short run of the whole path on the tiny model (its
report checked for structure and internal consistency only: the machine's speed decides no test)."""
from __future__ import annotations

import pytest

from vljepa_ros.commands.pipeline_limits import (LIMIT_SIZES, LimitOptions, parse_sizes, probe_verdict,
                                                 search_highest, search_rate, search_size)


class FakeProbe:
    """Passes up to a threshold, records what it was asked."""

    def __init__(self, passes) -> None:
        self.passes, self.asked = passes, []

    def __call__(self, candidate) -> bool:
        self.asked.append(candidate)
        return self.passes(candidate)


def test_the_rate_search_sweeps_up_then_bisects_to_the_boundary():
    probe = FakeProbe(lambda rate: rate <= 47.0)
    found = search_rate(probe, 5.0, 120.0, resolution=0.1)
    assert probe.asked[:6] == [5.0, 10.0, 20.0, 40.0, 80.0, 60.0]  # doubling, then the middle of 40..80
    assert found.stopped == "resolved"
    assert found.limit <= 47.0 < found.first_failing
    assert found.first_failing - found.limit <= 0.1 * found.limit  # within the resolution
    assert found.limit == max(rate for rate, passed in found.probed if passed)
    assert found.probed == [(rate, rate <= 47.0) for rate in probe.asked]


def test_a_finer_resolution_gets_closer_with_more_probes():
    coarse, fine = FakeProbe(lambda rate: rate <= 47.0), FakeProbe(lambda rate: rate <= 47.0)
    coarse_found = search_rate(coarse, 5.0, 120.0, resolution=0.2)
    fine_found = search_rate(fine, 5.0, 120.0, resolution=0.01)
    assert len(fine.asked) > len(coarse.asked)
    assert coarse_found.first_failing - coarse_found.limit <= 0.2 * coarse_found.limit
    assert fine_found.first_failing - fine_found.limit <= 0.47
    assert 46.5 <= fine_found.limit <= 47.0 < fine_found.first_failing


def test_the_rate_search_never_probes_above_the_maximum():
    probe = FakeProbe(lambda rate: True)
    found = search_rate(probe, 5.0, 120.0, resolution=0.1)
    assert probe.asked == [5.0, 10.0, 20.0, 40.0, 80.0, 120.0]  # the last doubling capped at the maximum
    assert (found.limit, found.first_failing, found.stopped) == (120.0, None, "highest_passed")


def test_a_failing_lowest_rate_ends_the_search_without_a_limit():
    probe = FakeProbe(lambda rate: False)
    found = search_rate(probe, 5.0, 120.0, resolution=0.1)
    assert probe.asked == [5.0]
    assert (found.limit, found.first_failing, found.stopped) == (None, 5.0, "lowest_failed")


def test_a_search_from_the_maximum_probes_it_once():
    probe = FakeProbe(lambda rate: True)
    assert search_rate(probe, 30.0, 30.0, resolution=0.1).limit == 30.0 and probe.asked == [30.0]


def test_rates_are_probed_in_tenths_of_a_hertz_and_never_twice():
    probe = FakeProbe(lambda rate: rate <= 7.33)
    found = search_rate(probe, 5.0, 9.0, resolution=0.001)  # finer than 0.1 Hz: the steps end it
    assert all(rate == round(rate, 1) for rate in probe.asked)
    assert len(set(probe.asked)) == len(probe.asked)
    assert (found.limit, found.first_failing) == (7.3, 7.4)


def test_the_size_search_finds_the_largest_passing_size():
    for largest_passing in range(len(LIMIT_SIZES)):
        probe = FakeProbe(lambda size, limit=LIMIT_SIZES[largest_passing]: size[0] * size[1] <= limit[0] * limit[1])
        found = search_size(probe, LIMIT_SIZES)
        assert found.limit == LIMIT_SIZES[largest_passing]
        assert found.first_failing == (LIMIT_SIZES[largest_passing + 1] if largest_passing + 1 < len(LIMIT_SIZES)
                                       else None)
        assert len(probe.asked) <= 4 and len(set(probe.asked)) == len(probe.asked)
    probe = FakeProbe(lambda size: False)
    assert search_size(probe, LIMIT_SIZES).stopped == "lowest_failed" and probe.asked == [LIMIT_SIZES[0]]


def test_the_sizes_are_swept_by_doubling_index_then_bisected():
    probe = FakeProbe(lambda size: size[0] <= 960)
    found = search_size(probe, LIMIT_SIZES)
    assert probe.asked == [(320, 240), (640, 480), (1280, 720), (960, 540)]
    assert (found.limit, found.first_failing, found.stopped) == ((960, 540), (1280, 720), "resolved")


def test_the_generic_search_trusts_each_verdict_it_gets():
    """Noise can make a lower candidate fail after a higher one passed: the limit stays the highest pass
    below the first failure, never a candidate that was not probed."""
    verdicts = {1: True, 2: True, 4: False, 3: True}
    found = search_highest(verdicts.__getitem__, 1, lambda value: value * 2 if value < 8 else None,
                           lambda low, high: None if high - low <= 1 else (low + high) // 2)
    assert [value for value, _ in found.probed] == [1, 2, 4, 3]
    assert (found.limit, found.first_failing) == (3, 4)


def row(frames_lost=0, clips_dropped=0, p95=30.0, engine_p95=12.0) -> dict:
    return {"frames_lost": frames_lost, "clips_dropped": clips_dropped, "latency_p95_ms": p95,
            "engine_p95_ms": engine_p95}


def test_a_probe_passes_within_the_bound_with_nothing_lost():
    assert probe_verdict(row(p95=34.0)) == {"latency_bound_ms": 34.0, "passed": True, "failed_because": []}


@pytest.mark.parametrize(("numbers", "reason"), [
    ({"frames_lost": 3}, "3 frames lost"),
    ({"frames_lost": -1}, "-1 frames lost"),  # more received than published: the books do not balance
    ({"clips_dropped": 1}, "1 clips dropped"),
    ({"p95": 34.01}, "p95 34.01 ms > 34.0 ms"),
    ({"p95": None}, "no embedding received"),
    ({"engine_p95": None}, "no engine timing for this frame size"),
])
def test_a_probe_fails_and_says_why(numbers, reason):
    verdict = probe_verdict(row(**numbers))
    assert verdict["passed"] is False and verdict["failed_because"] == [reason]


def test_every_failure_of_a_probe_is_named():
    verdict = probe_verdict(row(frames_lost=2, clips_dropped=1, p95=80.0))
    assert len(verdict["failed_because"]) == 3


def test_sizes_parse_and_sort_by_pixels():
    assert parse_sizes("1280x720, 320X240,640x480") == ((320, 240), (640, 480), (1280, 720))
    for text in ("", "640", "640x480x3", "axb"):
        with pytest.raises(ValueError):
            parse_sizes(text)


def test_limit_options_refuse_a_search_that_cannot_run():
    LimitOptions()  # the defaults are valid
    for bad in ({"probe_s": 0}, {"min_rate_hz": 0}, {"min_rate_hz": 50, "max_rate_hz": 40}, {"resolution": 0},
                {"sizes": ()}, {"sizes": ((640, 480), (320, 240))}):
        with pytest.raises(ValueError):
            LimitOptions(**bad)
    assert LimitOptions().report()["sizes"][0] == "320x240"


def check_search(search: dict, value_of, probe_s: float) -> tuple[list, list]:
    """Each verdict agrees with its probe's own numbers; returns the passing and the failing values."""
    for probe in search["probes"]:
        bound = round(2 * probe["engine_p95_ms"] + 10, 2) if probe["engine_p95_ms"] is not None else None
        assert probe["latency_bound_ms"] == bound
        within = probe["latency_p95_ms"] is not None and bound is not None and probe["latency_p95_ms"] <= bound
        assert probe["passed"] == (probe["frames_lost"] == 0 and probe["clips_dropped"] == 0 and within), probe
        assert probe["passed"] == (probe["failed_because"] == [])
        assert probe["frames_published"] == max(1, round(probe["rate_hz"] * probe_s))  # every frame went out
        assert probe["frames_lost"] == probe["frames_published"] - probe["frames_received"]
        if probe["clips_published"]:
            assert 0 < probe["latency_p50_ms"] <= probe["latency_p95_ms"]
    values = [value_of(probe) for probe in search["probes"]]
    assert len(set(values)) == len(values)  # nothing probed twice
    passing = [value_of(probe) for probe in search["probes"] if probe["passed"]]
    failing = [value_of(probe) for probe in search["probes"] if not probe["passed"]]
    return passing, failing


@pytest.mark.ros
@pytest.mark.slow
def test_the_bench_reports_limits_that_agree_with_their_probes(tiny_model_dir, tmp_path):
    """The whole --find-limits path on the running bring-up, probes of 2 s: the report's structure, each
    verdict against its own numbers, each limit against the probes (the values found are the machine's)."""
    import json

    pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")
    from test_pipeline_bench import run_bench

    report_path = tmp_path / "pipeline.json"
    output = run_bench(["--json", str(report_path), "--model", str(tiny_model_dir), "--topologies", "single_process",
                        "--cameras", "demo_bag", "--backends", "torch", "--duration-s", "1", "--idle-s", "1",
                        "--find-limits", "--limit-probe-s", "2", "--limit-min-hz", "10", "--limit-max-hz", "20",
                        "--limit-resolution", "0.5", "--limit-sizes", "640x480,320x240", "--limit-size-rate-hz", "10"])
    report = json.loads(report_path.read_text())
    assert "limits (probes of 2 s" in output  # the table beside the fixed-rate rows
    assert len(report["pipeline"]) == 1  # the fixed-rate row is still there
    options = report["config"]["limits"]
    assert (options["probe_s"], options["min_rate_hz"], options["max_rate_hz"], options["resolution"]) == \
        (2.0, 10.0, 20.0, 0.5)
    assert options["sizes"] == ["320x240", "640x480"] and options["size_rate_hz"] == 10.0
    [limits] = report["limits"]
    assert (limits["topology"], limits["backend"]) == ("single_process", "torch")

    rate = limits["rate"]
    assert (rate["width"], rate["height"]) == (640, 480)
    passing, failing = check_search(rate, lambda probe: probe["rate_hz"], 2.0)
    assert rate["probes"][0]["rate_hz"] == 10.0 and all(10.0 <= value <= 20.0 for value in passing + failing)
    assert rate["limit_hz"] == (max(passing) if passing else None)  # the highest passing probe
    assert rate["first_failing_hz"] == (min(failing) if failing else None)
    if not passing:
        assert rate["stopped"] == "lowest_failed" and len(rate["probes"]) == 1
    elif not failing:
        assert rate["stopped"] == "highest_passed" and rate["limit_hz"] == 20.0
    else:
        assert rate["stopped"] == "resolved" and all(value > rate["limit_hz"] for value in failing)
        assert rate["first_failing_hz"] - rate["limit_hz"] <= 0.5 * rate["limit_hz"]
    assert len({probe["engine_p95_ms"] for probe in rate["probes"]}) == 1  # one engine timing at 640x480

    size = limits["size"]
    assert size["rate_hz"] == 10.0 and all(probe["rate_hz"] == 10.0 for probe in size["probes"])
    passing, failing = check_search(size, lambda probe: f"{probe['width']}x{probe['height']}", 2.0)
    assert size["probes"][0]["width"] == 320  # the smallest first
    assert size["limit"] == (passing[-1] if passing else None)
    assert size["first_failing"] == (failing[0] if failing else None)
    assert size["stopped"] == ("lowest_failed" if not passing else "highest_passed" if not failing else "resolved")
