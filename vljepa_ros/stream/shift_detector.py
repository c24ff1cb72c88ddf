"""Online selective decoding: decide, embedding by embedding, when the meaning of the stream changed.

The paper's online idea: smooth the embedding stream and decode when the local-window variance
passes a threshold. Here:
  smoothed_t = mean of the last `smoothing_window` embeddings (moving average; damps per-clip noise)
  variance_t = mean over the last `variance_window` smoothed embeddings of ||s_i - mean(s)||^2
A window inside one semantic segment has a variance near the (smoothed) noise floor; a window that
straddles a change holds two clusters and its variance rises — for two unit vectors a, b split half
and half it is ||a - b||^2 / 4 = (1 - cos(a, b)) / 2. A shift fires on the rising edge of
variance_t > threshold, at least `min_interval_s` after the previous event.

Because the variance needs a few embeddings of the new meaning to rise, the detector fires a bit
after the true change. It therefore places the boundary inside its recent history at the split
that best separates the two sides (the Ward criterion: max n_l*n_r/n * ||mean_l - mean_r||^2), ends
the segment there, and carries the embeddings after the split into the next segment.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from vljepa_ros.stream.embedding_checks import l2_normalize, validate_embedding
from vljepa_ros.stream.familiarity import NOT_COMPUTED, segment_familiarity

TRIGGER_SHIFT = "shift"
TRIGGER_MAX_SEGMENT = "max_segment"
TRIGGER_FLUSH = "flush"


@dataclass
class SegmentEvent:
    """A segment of the embedding stream that just ended; the monitor decodes `embedding`."""
    start_ns: int  # start stamp of the segment's first embedding (its clip's first frame)
    end_ns: int  # end stamp of the segment's last embedding (its clip's last frame)
    embedding: np.ndarray  # (D,) float32, mean of the segment's embeddings, re-normalised to unit length
    count: int  # embeddings in the segment
    shift_score: float  # variance_t when the event was emitted
    threshold: float
    trigger: str  # "shift" | "max_segment" | "flush"
    start_index: int = 0  # index (0-based, counting update() calls) of the segment's first embedding
    end_index: int = 0  # exclusive
    familiarity: float = NOT_COMPUTED  # median familiarity of the segment's embeddings (stream/familiarity.py)


@dataclass(frozen=True)
class DetectorSettings:
    """The online detector's settings. These defaults are the one definition of the monitor node's
    parameters (config/vljepa.yaml is checked against them) and of `vljepa-ros eval`'s."""
    smoothing_window: int = 2  # embeddings averaged before the variance test
    variance_window: int = 3  # smoothed embeddings in the local-variance window
    shift_threshold: float = 0.02  # local variance that counts as a change of meaning
    min_interval_s: float = 1.0  # no two events closer than this
    max_segment_s: float = 20.0  # close a segment after this long even without a shift (0: never)


def best_split(embeddings: np.ndarray) -> int:
    """Split point k in [1, n-1] maximising the Ward merge cost between embeddings[:k] and embeddings[k:]."""
    count = embeddings.shape[0]
    if count < 2:
        return count
    prefix = np.cumsum(embeddings, axis=0, dtype=np.float64)
    total = prefix[-1]
    sizes_left = np.arange(1, count, dtype=np.float64)
    mean_left = prefix[:-1] / sizes_left[:, None]
    mean_right = (total - prefix[:-1]) / (count - sizes_left)[:, None]
    cost = sizes_left * (count - sizes_left) / count * np.sum((mean_left - mean_right) ** 2, axis=1)
    return int(np.argmax(cost)) + 1


class OnlineShiftDetector:
    def __init__(self, smoothing_window: int = DetectorSettings.smoothing_window,
                 variance_window: int = DetectorSettings.variance_window,
                 threshold: float = DetectorSettings.shift_threshold,
                 min_interval_s: float = DetectorSettings.min_interval_s,
                 max_segment_s: float = DetectorSettings.max_segment_s, dimension: int | None = None) -> None:
        if smoothing_window < 1:
            raise ValueError(f"smoothing_window must be >= 1, got {smoothing_window}")
        if variance_window < 2:
            raise ValueError(f"variance_window must be >= 2, got {variance_window}")
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if min_interval_s < 0 or max_segment_s < 0:
            raise ValueError("min_interval_s and max_segment_s must be >= 0 (max_segment_s 0 disables it)")
        self.smoothing_window = smoothing_window
        self.variance_window = variance_window
        self.threshold = float(threshold)
        self.min_interval_ns = int(round(min_interval_s * 1e9))
        self.max_segment_ns = int(round(max_segment_s * 1e9))
        self.dimension = dimension
        self.reset()

    @classmethod
    def from_settings(cls, settings: DetectorSettings, threshold: float | None = None,
                      dimension: int | None = None) -> OnlineShiftDetector:
        """A detector with `settings` (and another threshold, for a sweep)."""
        return cls(settings.smoothing_window, settings.variance_window,
                   settings.shift_threshold if threshold is None else threshold,
                   settings.min_interval_s, settings.max_segment_s, dimension)

    def reset(self) -> None:
        """Start a new stream (counters included)."""
        self._raw_window: deque[np.ndarray] = deque(maxlen=self.smoothing_window)
        self._smoothed_window: deque[np.ndarray] = deque(maxlen=self.variance_window)
        # The open segment: embeddings, their stamps and familiarity since the last event.
        self._segment: list[tuple[np.ndarray, int, int, float]] = []
        self._segment_start_index = 0
        self._next_index = 0
        self._above_threshold = False
        self._last_event_ns: int | None = None
        self.last_score = 0.0
        self.embeddings_seen = 0
        self.events_emitted = 0
        self.shifts_suppressed = 0  # rising edges ignored because of min_interval_s

    def update(self, embedding, start_ns: int, end_ns: int, familiarity: float = NOT_COMPUTED) -> SegmentEvent | None:
        """Add one embedding (its clip's first/last frame stamps and, if known, its familiarity); returns the
        segment that just ended, if any.

        Raises InvalidEmbeddingError for NaN/Inf, a zero vector or a dimension change; the
        detector's state is unchanged in that case.
        """
        vector = validate_embedding(embedding, self.dimension)
        if self.dimension is None:
            self.dimension = vector.shape[0]
        start_ns, end_ns = int(start_ns), int(end_ns)
        self.embeddings_seen += 1
        self._next_index += 1
        self._segment.append((vector, start_ns, end_ns, float(familiarity)))

        self._raw_window.append(vector)
        self._smoothed_window.append(np.mean(self._raw_window, axis=0))
        score = self._window_variance()
        self.last_score = score
        rising_edge = score > self.threshold and not self._above_threshold
        self._above_threshold = score > self.threshold

        if rising_edge and len(self._segment) >= 2:
            if self._last_event_ns is None or end_ns - self._last_event_ns >= self.min_interval_ns:
                return self._end_segment_at_best_split(score, end_ns)
            self.shifts_suppressed += 1
        if self.max_segment_ns and end_ns - self._segment[0][1] >= self.max_segment_ns:
            return self._close(len(self._segment), score, TRIGGER_MAX_SEGMENT, end_ns)
        return None

    def flush(self) -> SegmentEvent | None:
        """End of stream: return the open segment (trigger "flush") and start over."""
        event = None
        if self._segment:
            event = self._close(len(self._segment), self.last_score, TRIGGER_FLUSH, self._segment[-1][2])
        counters = (self.embeddings_seen, self.events_emitted, self.shifts_suppressed)
        self.reset()
        self.embeddings_seen, self.events_emitted, self.shifts_suppressed = counters
        return event

    def _window_variance(self) -> float:
        # Only a full window is comparable to the threshold; a partial one at start-up is noisier.
        if len(self._smoothed_window) < self.variance_window:
            return 0.0
        window = np.stack(self._smoothed_window)
        return float(np.mean(np.sum((window - window.mean(axis=0)) ** 2, axis=1)))

    def _end_segment_at_best_split(self, score: float, now_ns: int) -> SegmentEvent:
        # Search only the recent history the variance window has seen (plus the smoothing lag).
        lookback = min(len(self._segment), self.variance_window + self.smoothing_window)
        recent = np.stack([entry[0] for entry in self._segment[-lookback:]])
        split = len(self._segment) - lookback + best_split(recent)
        split = min(max(split, 1), len(self._segment))
        return self._close(split, score, TRIGGER_SHIFT, now_ns)

    def _close(self, count: int, score: float, trigger: str, now_ns: int) -> SegmentEvent:
        ended, self._segment = self._segment[:count], self._segment[count:]
        vectors = np.stack([entry[0] for entry in ended])
        familiarities = [entry[3] for entry in ended]
        event = SegmentEvent(
            start_ns=ended[0][1], end_ns=ended[-1][2],
            embedding=l2_normalize(vectors.mean(axis=0)),
            count=count, shift_score=float(score), threshold=self.threshold, trigger=trigger,
            start_index=self._segment_start_index, end_index=self._segment_start_index + count,
            familiarity=segment_familiarity(familiarities))
        self._segment_start_index += count
        self._last_event_ns = now_ns
        self.events_emitted += 1
        return event
