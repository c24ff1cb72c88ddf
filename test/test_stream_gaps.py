"""Loss estimates and input rules of the stream core: gaps in stamp cadence and sequences, clock
jumps back, image size changes, and the loss counters behind /diagnostics. ROS-free except the last."""
from __future__ import annotations

import numpy as np
import pytest

from vljepa_ros.stream.clip_assembler import ClipAssembler
from vljepa_ros.stream.history import FrameHistory
from vljepa_ros.stream.stream_gaps import FrameGapEstimator, SequenceGapCounter

PERIOD_NS = 33_333_333  # 30 Hz


def test_frame_gaps_count_k_minus_one_per_gap_of_k_periods():
    estimator = FrameGapEstimator()
    rng = np.random.default_rng(0)
    sent = np.arange(400)
    lost = set(rng.choice(np.arange(10, 400), size=60, replace=False).tolist())  # 15% lost, some in runs
    received = [index for index in sent if index not in lost]
    jitter = rng.integers(-2_000_000, 2_000_000, size=len(sent))  # +-2 ms of a 33 ms period
    missing = [estimator.observe(1_000_000_000 + index * PERIOD_NS + int(jitter[index])) for index in received]
    assert sum(missing) == estimator.lost == len(lost)
    assert estimator.period_ns == pytest.approx(PERIOD_NS, rel=0.1)


def test_frame_gaps_survive_heavy_loss_and_ignore_duplicates_pauses_and_clock_jumps():
    estimator = FrameGapEstimator()
    stamps = [index * PERIOD_NS for index in range(0, 200) if index % 3 != 1]  # a third lost
    # 66 lost (indices 1, 4, ..., 196), those before the first estimate too (counted once it exists)
    assert sum(estimator.observe(stamp) for stamp in stamps) == 66
    assert estimator.observe(stamps[-1]) == 0 and estimator.observe(stamps[-5]) == 0  # duplicate, late
    assert estimator.not_newer == 2
    assert estimator.observe(stamps[-1] + 5_000_000_000) == 0 and estimator.pauses == 0  # decided at the next frame
    assert estimator.open_gap_frames == 149
    estimator.observe(1_000)  # a bag looped: starts over, no loss counted; the 5 s silence was a pause
    assert estimator.jumps == 1 and estimator.lost == 66 and estimator.pauses == 1
    assert estimator.longest_pause_ns == 5_000_000_000
    assert sum(estimator.observe(1_000 + index * PERIOD_NS) for index in range(1, 20)) == 0


def test_the_period_estimate_is_not_fooled_by_the_loss_it_estimates():
    """89% lost in bursts (a raw camera without the large-image profile), and a burst that overran the
    subscriber's queue (runs of consecutive frames between long gaps): every missing frame is counted."""
    rng = np.random.default_rng(1)
    kept, index = [], 0
    while index < 7200:
        kept.extend(range(index, index + int(rng.integers(1, 4))))  # a short run arrives ...
        index = kept[-1] + 1 + int(rng.integers(5, 29))  # ... then 5-28 frames are lost (< 1 s)
    estimator = FrameGapEstimator()
    missing = sum(estimator.observe(1_000_000_000 + i * PERIOD_NS) for i in kept)
    assert missing == kept[-1] + 1 - len(kept) and len(kept) / (kept[-1] + 1) < 0.2
    assert estimator.period_ns == pytest.approx(PERIOD_NS, rel=0.01)
    overrun = [i for start in range(0, 3000, 300) for i in range(start, start + 9)]  # 9 of every 300 taken
    estimator = FrameGapEstimator()  # published in 0.07 s: the frames arrive 1 ms apart
    counted = sum(estimator.observe(i * PERIOD_NS, arrival_ns=n * 1_000_000) for n, i in enumerate(overrun))
    assert counted == overrun[-1] + 1 - len(overrun) and estimator.pauses == 0
    paused = FrameGapEstimator()  # the same stamps arriving in real time: the long silences were pauses
    assert sum(paused.observe(i * PERIOD_NS, arrival_ns=i * PERIOD_NS) for i in overrun) == 0
    assert paused.pauses == 9


def test_a_steady_camera_is_re_estimated_rarely_and_a_rate_change_is_followed(monkeypatch):
    import vljepa_ros.stream.stream_gaps as stream_gaps
    calls = []
    real_estimate = stream_gaps.estimate_period_ns
    monkeypatch.setattr(stream_gaps, "estimate_period_ns", lambda deltas: calls.append(1) or real_estimate(deltas))
    estimator = FrameGapEstimator()
    stamp = 0
    for _ in range(1000):  # 30 Hz, nothing lost: the estimate holds, so it is taken at most every 32 frames
        stamp += 33_333_333
        assert estimator.observe(stamp) == 0
    assert len(calls) <= 1000 / stream_gaps.REESTIMATE_EVERY_STABLE + 8
    assert estimator.period_ns == pytest.approx(33_333_333, rel=0.01)
    for _ in range(200):  # the camera speeds up to 60 Hz: no frame is lost, and the estimate follows
        stamp += 16_666_667
        assert estimator.observe(stamp) == 0
    assert estimator.period_ns == pytest.approx(16_666_667, rel=0.01)
    assert estimator.lost == 0


def test_a_pause_is_reported_as_one_and_a_long_loss_the_middleware_saw_is_counted():
    estimator = FrameGapEstimator()
    stamps = [index * 100_000_000 for index in range(6)] + [1_600_000_000 + index * 100_000_000 for index in range(6)]
    assert sum(estimator.observe(stamp, middleware_lost=0) for stamp in stamps) == 0  # +1.1 s, nothing lost
    assert estimator.pauses == 1 and estimator.longest_pause_ns == 1_100_000_000
    # 2 s of frames lost that the middleware reported (message_lost): a loss, not a pause.
    estimator.observe(3_700_000_000, middleware_lost=0)
    assert estimator.observe(3_800_000_000, middleware_lost=15) == 15 and estimator.pauses == 1  # 1.6 s
    # A declared rate (expected_rate_hz) needs no estimate: the first gap already counts.
    declared = FrameGapEstimator(expected_period_s=0.1)
    assert [declared.observe(stamp) for stamp in (0, 100_000_000, 400_000_000)] == [0, 0, 2]


def test_sequence_gaps_per_publisher_with_restarts():
    counter = SequenceGapCounter()
    assert [counter.observe("a", sequence, "m1") for sequence in (0, 1, 2, 5, 6, 10)] == [0, 0, 0, 2, 0, 3]
    assert [counter.observe("b", sequence, "m1") for sequence in (7, 8, 9)] == [0, 0, 0]  # its own stream
    assert counter.observe("a", 0, "m1") == 0  # the publisher restarted
    assert counter.observe("a", 3, "m1") == 2
    assert counter.observe("a", 9, "m2") == 0  # a new model: a new stream
    assert counter.lost == 7 and counter.restarts == 2


def test_clip_assembler_restarts_on_a_clock_jump_back_and_counts_size_changes():
    frame = np.zeros((4, 4, 3), np.uint8)
    assembler = ClipAssembler(frames_per_clip=3, stride_frames=3, max_backward_jump_s=1.0)
    clips = [assembler.push(frame, 10_000_000_000 + index * PERIOD_NS) for index in range(6)]
    assert sum(clip is not None for clip in clips) == 2
    assert assembler.push(frame, 10_000_000_000) is None and assembler.dropped_out_of_order == 1  # late, not a jump
    clips = [assembler.push(frame, 1_000_000_000 + index * PERIOD_NS) for index in range(3)]  # the bag looped
    assert assembler.time_jump_resets == 1 and assembler.dropped_out_of_order == 1
    assert clips[-1] is not None and clips[-1].first_stamp_ns == 1_000_000_000
    assembler.push(np.zeros((8, 8, 3), np.uint8), 2_000_000_000)
    assert assembler.resolution_resets == 1
    never = ClipAssembler(frames_per_clip=3, max_backward_jump_s=0.0)
    never.push(frame, 10_000_000_000)
    assert never.push(frame, 1_000_000_000) is None and never.dropped_out_of_order == 1


def test_clip_assembler_keeps_its_state_when_a_jumped_frame_fails_to_decode():
    frame = np.zeros((4, 4, 3), np.uint8)
    assembler = ClipAssembler(frames_per_clip=3, stride_frames=1)
    assembler.push(frame, 10_000_000_000)
    assembler.push(frame, 10_100_000_000)

    def broken():
        raise ValueError("corrupt")

    with pytest.raises(ValueError):
        assembler.push_lazy(broken, 1_000_000_000)
    assert assembler.time_jump_resets == 0
    assert assembler.push(frame, 10_200_000_000) is not None  # the ring was kept


def test_frame_history_clears_on_a_clock_jump_back():
    history = FrameHistory(max_age_s=2.0, max_frames=1000, max_backward_jump_s=1.0)
    for index in range(30):
        assert not history.add(10_000_000_000 + index * 100_000_000, index)
    assert not history.add(12_000_000_000, "late but within 1 s")
    assert history.add(1_000_000_000, "looped") and history.time_jump_resets == 1
    assert len(history) == 1 and history.nearest(1_000_000_000) == (1_000_000_000, "looped")


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, text: str) -> None:
        self.lines.append(text)


class _Node:
    def __init__(self) -> None:
        self.logger = _Logger()

    def get_logger(self) -> _Logger:
        return self.logger


def test_loss_counters_rise_log_throttled_with_the_remedy_and_clear():
    pytest.importorskip("rclpy")
    from vljepa_ros.nodes.common import LossCounters

    now = [100.0]
    node = _Node()
    losses = LossCounters(node, window_s=5.0, log_period_s=5.0, clock=lambda: now[0])
    losses.define("images_rejected", "images that could not be decoded", "fix the encoding parameter")
    losses.define("frames_lost_in_transport", "frames that never arrived", "raise image_queue_depth")
    assert losses.rising() == {}
    losses.count("images_rejected", 1, "bad encoding 'x'")
    losses.count("images_rejected", 2)
    assert losses.rising() == {"images_rejected": 3} and losses["images_rejected"] == 3
    assert len(node.logger.lines) == 1
    assert "images_rejected +1" in node.logger.lines[0] and "fix the encoding parameter" in node.logger.lines[0]
    now[0] += 5.5  # nothing for longer than the window: back to OK; the next log says what it missed
    assert losses.rising() == {}
    losses.count("images_rejected", 1)
    assert "images_rejected +3 (total 4)" in node.logger.lines[-1]
    assert losses.values() == {"images_rejected": 4, "frames_lost_in_transport": 0}
