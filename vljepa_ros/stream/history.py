"""A short, time-ordered memory of stamped items (frames or embeddings) for looking up past world states."""
from __future__ import annotations

import bisect
from typing import Any


class FrameHistory:
    """Keeps items no older than max_age_s behind the newest, and at most max_frames of them.

    An item more than `max_backward_jump_s` older than the newest is a jump of the clock (a bag
    looping, /clock reset), not a late arrival: the history is cleared and starts over from it
    (time_jump_resets), instead of discarding every item until time catches up (0: never)."""

    def __init__(self, max_age_s: float = 10.0, max_frames: int = 300, max_backward_jump_s: float = 1.0) -> None:
        if max_age_s <= 0 or max_frames < 1:
            raise ValueError(f"max_age_s must be > 0 and max_frames >= 1, got {max_age_s}, {max_frames}")
        if max_backward_jump_s < 0:
            raise ValueError(f"max_backward_jump_s must be >= 0, got {max_backward_jump_s}")
        self.max_age_ns = int(round(max_age_s * 1e9))
        self.max_frames = max_frames
        self.max_backward_jump_ns = int(round(max_backward_jump_s * 1e9))
        self.time_jump_resets = 0
        self._stamps: list[int] = []
        self._items: list[Any] = []

    def clear(self) -> None:
        self._stamps, self._items = [], []

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp_ns: int, rgb: Any) -> bool:
        """Insert in stamp order (late arrivals are fine); an equal stamp replaces the old item.
        Returns True when a backward jump of the clock cleared the history first."""
        stamp_ns = int(stamp_ns)
        jumped = bool(self._stamps and self.max_backward_jump_ns
                      and self._stamps[-1] - stamp_ns > self.max_backward_jump_ns)
        if jumped:
            self.time_jump_resets += 1
            self.clear()
        position = bisect.bisect_left(self._stamps, stamp_ns)
        if position < len(self._stamps) and self._stamps[position] == stamp_ns:
            self._items[position] = rgb
        else:
            self._stamps.insert(position, stamp_ns)
            self._items.insert(position, rgb)
        oldest_kept = self._stamps[-1] - self.max_age_ns
        drop = max(bisect.bisect_left(self._stamps, oldest_kept), len(self._stamps) - self.max_frames)
        if drop > 0:
            del self._stamps[:drop]
            del self._items[:drop]
        return jumped

    def available_range_ns(self) -> tuple[int, int] | None:
        return (self._stamps[0], self._stamps[-1]) if self._stamps else None

    def nearest(self, stamp_ns: int, tolerance_s: float = 0.1) -> tuple[int, Any]:
        """(stamp_ns, item) closest to stamp_ns; LookupError if none lies within tolerance_s."""
        stamp_ns = int(stamp_ns)
        if not self._stamps:
            raise LookupError(f"no frames in history to look up stamp {stamp_ns} ns")
        position = bisect.bisect_left(self._stamps, stamp_ns)
        candidates = [i for i in (position - 1, position) if 0 <= i < len(self._stamps)]
        best = min(candidates, key=lambda i: abs(self._stamps[i] - stamp_ns))
        if abs(self._stamps[best] - stamp_ns) > tolerance_s * 1e9:
            first, last = self._stamps[0], self._stamps[-1]
            raise LookupError(
                f"no frame within {tolerance_s} s of stamp {stamp_ns} ns; history holds {len(self._stamps)} "
                f"frame(s) from {first} to {last} ns ({(last - first) / 1e9:.3f} s span)")
        return self._stamps[best], self._items[best]
