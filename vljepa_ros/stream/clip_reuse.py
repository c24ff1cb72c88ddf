"""Do nothing when nothing changes: reuse the last embedding for a clip whose frames did not change.

A static camera (a robot waiting, a parked arm, a monitored shelf) sends the same picture again and again;
running the model on it gives the same embedding again and again. ClipReuse decides, before inference,
whether a clip's frames are unchanged from the last clip the model was *run on*, so the caller can
republish that clip's result instead (the perception node marks it `reused`, `vljepa-ros eval` copies it).

The test is cheap (measured in benchmarks/skip_unchanged.py): every frame becomes a small grey thumbnail
(`cv2.resize` INTER_AREA: each cell the mean of a block of pixels, which averages sensor noise away), and a
clip is unchanged when no cell of any of its frames differs by more than `threshold` grey levels (0-255) from
the same cell of the same frame of the last inferred clip.
  - the largest cell change, not the mean: a small object moving on a still background changes a few cells
    a lot and the mean of the picture hardly at all;
  - against the last *inferred* clip, not the previous one: a slow drift (light, a creeping object) adds up
    until it passes the threshold, and the model sees it then;
  - `max_age_s`: a clip whose last frame is more than this (camera time) after the inferred clip's is
    inferred anyway, so a reused result is never arbitrarily stale (0: no limit); a clock that went back
    (a bag loop) infers too;
  - `key` (the caller's: model id and query): a result is reused only for the same key;
  - a clip of another shape (frame size, clip length) is inferred.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

THUMBNAIL_SIDE = 16  # cells per side of the grey thumbnail of each frame (fewer when the frame is smaller)
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma, as cv2's RGB2GRAY

# The perception node's parameters and `vljepa-ros eval`'s options derive from these.
# Off: measured (benchmarks/skip_unchanged.py, README "Doing nothing when nothing changes"), eval's metrics are
# identical on the held-out streams (none of their clips is unchanged), but on them made to pause, where it reuses
# 38% of the clips, the segmentation metrics move beyond sensor noise (tabletop: edit -3.6, F1@10 -2.3 points).
DEFAULT_SKIP_UNCHANGED = False
# Grey levels: above what camera noise does to a cell (sigma 2 on a 64 px frame: at most ~2 in a clip's cells),
# far below what a moving object does (tens of grey levels in the cells it crosses).
DEFAULT_UNCHANGED_THRESHOLD = 6.0
DEFAULT_REUSE_MAX_AGE_S = 10.0

# Why a clip was (not) reused: ReuseCheck.reason
REUSED = "unchanged"
OFF = "off"
FIRST = "first"  # nothing inferred yet (or reset)
CHANGED = "changed"
TOO_OLD = "too_old"
OTHER_KEY = "other_key"
OTHER_SHAPE = "other_shape"


@dataclass(frozen=True)
class ReuseSettings:
    """The option's settings: the perception node's skip_unchanged_clips / unchanged_threshold /
    reuse_max_age_s, and `vljepa-ros eval`'s --skip-unchanged-clips / ... ."""
    enabled: bool = DEFAULT_SKIP_UNCHANGED
    threshold: float = DEFAULT_UNCHANGED_THRESHOLD
    max_age_s: float = DEFAULT_REUSE_MAX_AGE_S


@dataclass
class ReuseCheck:
    """The answer for one clip. `reuse`: publish `payload` (the inferred clip's result) instead of inferring."""
    reuse: bool
    reason: str
    change: float  # largest cell change in grey levels against the last inferred clip (inf: nothing to compare)
    stamp_ns: int
    key: Any = None
    thumbnails: np.ndarray | None = None  # (T, h, w) float32; None when the option is off
    frames_shape: tuple[int, ...] = ()  # of the clip's frames: a clip of another shape is never reused
    payload: Any = None  # when reuse: what remember() stored with the inferred clip


def thumbnails(frames: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """(T, h, w) float32 grey thumbnails of (T, H, W, 3) uint8 RGB frames, h = min(side, H), w = min(side, W)."""
    import cv2  # here, not at the top: `vljepa-ros --help` builds eval's parser from this module's defaults

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) RGB, got shape {frames.shape}")
    height, width = min(side, frames.shape[1]), min(side, frames.shape[2])
    small = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames])
    return small.astype(np.float32) @ GREY_WEIGHTS


class ClipReuse:
    """check(frames, stamp_ns, key) before inference; remember(check, payload) after an inference.

    Not thread-safe: one caller (the perception node's inference worker, or the eval loop) drives it.
    Changing `enabled`, `threshold` or `max_age_s` between checks is fine (the node's runtime parameters).
    """

    def __init__(self, enabled: bool = True, threshold: float = DEFAULT_UNCHANGED_THRESHOLD,
                 max_age_s: float = DEFAULT_REUSE_MAX_AGE_S, thumbnail_side: int = THUMBNAIL_SIDE) -> None:
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0 grey levels, got {threshold}")
        if max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0 (0: no limit), got {max_age_s}")
        if thumbnail_side < 1:
            raise ValueError(f"thumbnail_side must be >= 1, got {thumbnail_side}")
        self.enabled = bool(enabled)
        self.threshold = float(threshold)
        self.max_age_s = float(max_age_s)
        self.thumbnail_side = int(thumbnail_side)
        self.clips_checked = 0
        self.clips_reused = 0
        self.last_change = float("inf")
        self.reset()

    @classmethod
    def from_settings(cls, settings: ReuseSettings) -> ClipReuse:
        return cls(settings.enabled, settings.threshold, settings.max_age_s)

    def reset(self) -> None:
        """Forget the last inferred clip (a new model, a new calibration): the next clip is inferred."""
        self._reference: ReuseCheck | None = None
        self._payload: Any = None

    def check(self, frames: np.ndarray, stamp_ns: int, key: Any = None) -> ReuseCheck:
        """Is this clip (frames (T, H, W, 3) uint8 RGB, stamp of its last frame) unchanged from the last
        inferred one? When the option is off: no, at no cost (nothing is computed)."""
        stamp_ns = int(stamp_ns)
        if not self.enabled:
            return ReuseCheck(False, OFF, float("inf"), stamp_ns, key)
        self.clips_checked += 1
        small = thumbnails(frames, self.thumbnail_side)
        reference = self._reference
        change = float("inf")
        if reference is None:
            reason = FIRST
        elif reference.key != key:
            reason = OTHER_KEY
        elif reference.frames_shape != np.shape(frames):
            reason = OTHER_SHAPE
        else:
            change = float(np.max(np.abs(small - reference.thumbnails)))
            age_ns = stamp_ns - reference.stamp_ns
            if age_ns < 0 or (self.max_age_s and age_ns > self.max_age_s * 1e9):
                reason = TOO_OLD
            else:
                reason = REUSED if change <= self.threshold else CHANGED
        self.last_change = change
        check = ReuseCheck(reason == REUSED, reason, change, stamp_ns, key, small, np.shape(frames))
        if check.reuse:
            self.clips_reused += 1
            check.payload = self._payload
        return check

    def remember(self, check: ReuseCheck, payload: Any) -> None:
        """The clip of `check` was inferred and gave `payload`: later unchanged clips reuse it. A check made
        while the option was off is ignored (nothing to compare with)."""
        if check.thumbnails is None or check.reuse:
            return
        self._reference, self._payload = check, payload
