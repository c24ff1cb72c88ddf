"""Estimates of data lost before it reached a node: gaps in a camera's stamp cadence and in a
publisher's sequence numbers. Best-effort transport (and a subscription queue that overflows) drops
samples without telling anyone; the gaps they leave are the only trace.
"""
from __future__ import annotations

from collections import deque

import numpy as np

# Period estimate: a low quantile of the recent stamp deltas. A gap makes a delta a multiple of the
# period, so the estimate stays right as long as fewer than (1 - quantile) of the deltas hold gaps;
# the median would follow a stream that loses every other frame to twice its period.
PERIOD_QUANTILE = 25.0
PERIOD_WINDOW = 32  # recent deltas the estimate is taken over
MIN_DELTAS = 4  # no loss is counted before this many deltas were seen
MAX_GAP_S = 1.0  # a longer silence is a pause of the stream (or a jump of its clock), not lost frames


class FrameGapEstimator:
    """Frames lost between received ones, from their header stamps.

    `observe(stamp_ns)` -> frames missing just before this one: with a running estimate P of the
    camera's frame period, a delta of k periods (k = round(delta / P) >= 2) counts k - 1 lost frames.
    Stamps not newer than the newest seen (out of order, duplicates) and silences over `max_gap_s`
    count nothing; a stamp more than `max_backward_jump_s` older than the newest is a jump of the
    clock (a bag looping, /clock reset) and starts the estimate over from it (`jumps`)."""

    def __init__(self, window: int = PERIOD_WINDOW, min_deltas: int = MIN_DELTAS, max_gap_s: float = MAX_GAP_S,
                 max_backward_jump_s: float = 1.0) -> None:
        self.window, self.min_deltas = window, min_deltas
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.max_backward_jump_ns = int(max_backward_jump_s * 1e9)
        self.lost = 0
        self.pauses = 0
        self.jumps = 0
        self.reset()

    def reset(self) -> None:
        self._deltas: deque[int] = deque(maxlen=self.window)
        self._last_ns: int | None = None

    @property
    def period_ns(self) -> float | None:
        if len(self._deltas) < self.min_deltas:
            return None
        return float(np.percentile(self._deltas, PERIOD_QUANTILE))

    def observe(self, stamp_ns: int) -> int:
        stamp_ns = int(stamp_ns)
        if (self._last_ns is not None and self.max_backward_jump_ns
                and self._last_ns - stamp_ns > self.max_backward_jump_ns):
            self.jumps += 1
            self.reset()
        last, self._last_ns = self._last_ns, stamp_ns if self._last_ns is None else max(self._last_ns, stamp_ns)
        if last is None or stamp_ns <= last:
            return 0
        delta = stamp_ns - last
        if delta > self.max_gap_ns:
            self.pauses += 1
            return 0
        period = self.period_ns
        self._deltas.append(delta)
        if period is None or period <= 0:
            return 0
        missing = max(int(round(delta / period)) - 1, 0)
        self.lost += missing
        return missing


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
