"""Estimates of data lost before it reached a node: gaps in a camera's stamp cadence and in a
publisher's sequence numbers. Best-effort transport (and a subscription queue that overflows) drops
samples without telling anyone; the gaps they leave are the only trace.
"""
from __future__ import annotations

from collections import deque

import numpy as np

# Period estimate: the longest period of which (nearly) every recent stamp delta is a whole multiple,
# refined to the median of delta / k. Loss only makes deltas longer multiples of the period, so it
# cannot fool the estimate: with 90% of frames lost, deltas of 3, 7 and 12 periods still have the
# period as their longest common measure (twice the period would not explain the odd ones), and no
# delta of a single period needs to be left. A few odd deltas (a stamping glitch, a pause) are
# tolerated (EXPLAINED_FRACTION). A declared period (a node's `expected_rate_hz`) is used instead when given.
PERIOD_WINDOW = 128  # recent deltas the estimate is taken over
MULTIPLE_TOLERANCE = 0.15  # a delta within this many periods of k periods is a multiple
EXPLAINED_FRACTION = 0.9  # of the deltas that must be multiples of the period
REESTIMATE_EVERY = 4  # new deltas between estimates while the estimate moves (each costs ~0.1-3 ms) ...
REESTIMATE_EVERY_STABLE = 32  # ... doubling up to this while it holds: every 4 frames it took a fifth of a
# node's Python time at 30 Hz (py-spy), and a steady camera's period does not change
MIN_DELTAS = 4  # deltas seen before the first estimate; they are counted once it exists
MAX_GAP_S = 1.0  # a longer silence may be a pause of the stream, not lost frames (see FrameGapEstimator)
PAUSE_PERIODS = 10  # ... and so may a silence of more than this many periods (slow cameras)


class FrameGapEstimator:
    """Frames lost between received ones, from their header stamps (and what the middleware reports).

    `observe(stamp_ns, middleware_lost)` -> frames newly counted as missing: with an estimate P of the
    camera's frame period, a delta of k periods (k = round(delta / P) >= 2) counts k - 1 lost frames.
    Deltas seen before the first estimate are counted once it exists. A silence longer than MAX_GAP_S
    and PAUSE_PERIODS periods is lost frames when the frame after it arrived (`arrival_ns`, a monotonic
    clock) less than half the silence after the latest one received, newer or not (a backlog drains: a
    burst overran the queue), or, decided at the next frame, when the middleware's count of lost samples
    (`middleware_lost`, cumulative: rclpy's message_lost event) rose by at least half its k - 1
    meanwhile; else it is a pause of the stream (`pauses`, `longest_pause_ns`, `last_pause_ns`), which
    counts nothing (a bag replayed faster than 2x shows its pauses as losses). Stamps not newer than the newest (`not_newer`: out of order, duplicates) count
    nothing; a stamp more than `max_backward_jump_s` older than the newest is a jump of the clock (a bag
    looping, /clock reset) and starts the estimate over from it (`jumps`)."""

    def __init__(self, window: int = PERIOD_WINDOW, min_deltas: int = MIN_DELTAS, max_gap_s: float = MAX_GAP_S,
                 max_backward_jump_s: float = 1.0, expected_period_s: float = 0.0) -> None:
        self.window, self.min_deltas = window, min_deltas
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.max_backward_jump_ns = int(max_backward_jump_s * 1e9)
        self.expected_period_ns = int(expected_period_s * 1e9)
        self.lost = 0
        self.pauses = 0
        self.longest_pause_ns = 0
        self.last_pause_ns = 0  # the pause the latest observe() decided on (0: none)
        self.jumps = 0
        self.not_newer = 0
        self._appended = 0
        self.reset()

    def reset(self) -> None:
        self._deltas: deque[int] = deque(maxlen=self.window)
        self._pending: list[int] = []  # deltas not counted yet (no estimate yet)
        self._open_gap: tuple[int, int, int | None] | None = None  # (delta, k - 1, middleware count before it)
        self._period_estimate: float | None = None
        self._next_estimate_at = 0  # self._appended at which the estimate is taken again
        self._estimate_interval = REESTIMATE_EVERY
        self._last_ns: int | None = None
        self._last_arrival_ns: int | None = None
        self._middleware_mark: int | None = None

    @property
    def newest_ns(self) -> int | None:
        return self._last_ns

    @property
    def open_gap_frames(self) -> int:
        """Frames missing in the newest silence over the pause threshold, until the next frame decides
        whether they were lost or the stream paused (0: none open)."""
        return self._open_gap[1] if self._open_gap is not None else 0

    @property
    def period_ns(self) -> float | None:
        if self.expected_period_ns:
            return float(self.expected_period_ns)
        if len(self._deltas) < self.min_deltas:
            return None
        if self._period_estimate is None or self._appended >= self._next_estimate_at:
            estimate, previous = estimate_period_ns(list(self._deltas)), self._period_estimate
            held = previous is not None and abs(estimate - previous) <= 0.01 * previous
            self._estimate_interval = min(2 * self._estimate_interval, REESTIMATE_EVERY_STABLE) if held else REESTIMATE_EVERY
            self._period_estimate, self._next_estimate_at = estimate, self._appended + self._estimate_interval
        return self._period_estimate

    def observe(self, stamp_ns: int, middleware_lost: int | None = None, arrival_ns: int | None = None) -> int:
        stamp_ns = int(stamp_ns)
        self.last_pause_ns = 0
        if (self._last_ns is not None and self.max_backward_jump_ns
                and self._last_ns - stamp_ns > self.max_backward_jump_ns):
            self.jumps += 1
            self._decide_open_gap(None)  # a pause: nothing after it tells otherwise
            self.reset()
        last = self._last_ns
        if last is not None and stamp_ns <= last:
            self.not_newer += 1
            self._last_arrival_ns = arrival_ns  # the camera was heard from: a drain is measured from here
            return 0
        self._last_ns = stamp_ns
        counted = 0
        if last is not None:
            counted += self._decide_open_gap(middleware_lost)
            self._deltas.append(stamp_ns - last)
            self._appended += 1
            self._pending.append(stamp_ns - last)
            # Frames arriving much faster than their stamps advance: a backlog drains (a burst, a queue
            # that overflowed), so a long silence in the stamps is frames dropped, not a pause.
            draining = (arrival_ns is not None and self._last_arrival_ns is not None
                        and (arrival_ns - self._last_arrival_ns) * 2 < stamp_ns - last)
            counted += self._count_pending(draining)
        self._middleware_mark = middleware_lost
        self._last_arrival_ns = arrival_ns
        self.lost += counted
        return counted

    def _count_pending(self, draining: bool = False) -> int:
        period = self.period_ns
        if period is None or period <= 0:
            return 0
        long_gap_ns = max(self.max_gap_ns, PAUSE_PERIODS * period)
        counted = 0
        for position, delta in enumerate(self._pending):
            missing = max(int(round(delta / period)) - 1, 0)
            if delta <= long_gap_ns or (draining and position == len(self._pending) - 1):
                counted += missing
            elif position == len(self._pending) - 1:  # the newest delta: decided at the next frame
                self._open_gap = (delta, missing, self._middleware_mark)
            else:
                self._pause(delta)
        self._pending = []
        return counted

    def _decide_open_gap(self, middleware_lost: int | None) -> int:
        if self._open_gap is None:
            return 0
        delta, missing, mark = self._open_gap
        self._open_gap = None
        if middleware_lost is not None and mark is not None and middleware_lost - mark >= max(1, missing // 2):
            return missing
        self._pause(delta)
        return 0

    def _pause(self, delta_ns: int) -> None:
        self.pauses += 1
        self.longest_pause_ns = max(self.longest_pause_ns, delta_ns)
        self.last_pause_ns = delta_ns


def estimate_period_ns(deltas: list[int]) -> float:
    """The frame period behind `deltas` (positive stamp spacings, some of several periods): see PERIOD_WINDOW.
    Candidates are low quantiles of the deltas divided by 1..16, each refined, tried longest first."""
    values = np.asarray(deltas, dtype=np.float64)
    starts = np.unique(np.percentile(values, (0, 5, 10, 25, 50)))
    for candidate in sorted({float(start / k) for start in starts for k in range(1, 17)}, reverse=True):
        period = candidate
        for _ in range(2):  # the median period over every delta, each divided by its k
            period = float(np.median(values / np.maximum(np.round(values / period), 1.0)))
        ratios = values / period
        if np.mean(np.abs(ratios - np.round(ratios)) <= MULTIPLE_TOLERANCE) >= EXPLAINED_FRACTION:
            return period
    return float(values.min())


class SequenceGapCounter:
    """Messages lost between received ones, from the publisher's sequence numbers (0, 1, 2, ...).

    `observe(source, sequence, stream_id)` -> messages missing just before this one. Each source
    (publisher) is counted on its own; a new `stream_id` (model id) or a sequence that goes back
    (the publisher restarted) starts the source over, counting nothing."""

    def __init__(self) -> None:
        self.lost = 0
        self.restarts = 0
        self._last: dict[object, tuple[str, int]] = {}

    def observe(self, source: object, sequence: int, stream_id: str = "") -> int:
        previous = self._last.get(source)
        self._last[source] = (stream_id, int(sequence))
        if previous is None:
            return 0
        previous_id, previous_sequence = previous
        if stream_id != previous_id or sequence <= previous_sequence:
            self.restarts += 1
            return 0
        missing = int(sequence) - previous_sequence - 1
        self.lost += missing
        return missing
