"""Frame stream -> fixed-length clips for the X-encoder.

The perception node and `vljepa-ros eval` both use this class, so the clips a robot sees live
are exactly the clips the evaluation scores.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vljepa_ros.stream.clips import fill_clip

# The perception node's clip defaults (config/vljepa.yaml and `vljepa-ros eval` derive from these):
# one clip every 4 sampled frames, no subsampling, a clock jump back of more than 1 s restarts the clip.
DEFAULT_STRIDE_FRAMES = 4
DEFAULT_SAMPLE_PERIOD_S = 0.0
DEFAULT_TIME_JUMP_RESET_S = 1.0
# Subsampling accepts a frame this fraction of a period early, so stamp jitter does not make
# the sampler skip to the next frame and drift.
SAMPLE_JITTER_FRACTION = 0.1


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, T = frames_per_clip
    first_stamp_ns: int  # stamp of the first real frame in the clip
    last_stamp_ns: int  # stamp of the last (newest) frame
    frame_count: int  # real frames in the clip; < T for an early clip that was filled by repetition


class ClipAssembler:
    """Subsample frames, keep a ring of the newest ones, and emit a clip every `stride_frames`.

    push(rgb, stamp_ns) -> Clip | None.
      - sample_period_s: keep one frame per period (0 keeps every frame); frames in between are skipped.
      - the first clip is emitted once frames_per_clip sampled frames are in the ring, then one
        every stride_frames sampled frames (stride < T gives overlapping clips).
      - emit_partial_clips: also emit clips before the ring is full (on the same stride grid,
        once at least min_partial_frames are there), filled by repetition; frame_count says how many are real.
      - a frame whose stamp is not newer than the last accepted one is dropped (dropped_out_of_order),
        unless it is more than `max_backward_jump_s` older: that is a jump of the clock (a bag
        looping, /clock reset), which clears the ring (time_jump_resets) and starts a new clip from
        that frame, instead of dropping every frame until time catches up (0: never).
      - a frame of a different shape clears the ring (resolution_resets) and starts a new clip.
    """

    def __init__(self, frames_per_clip: int, stride_frames: int | None = None, sample_period_s: float = 0.0,
                 emit_partial_clips: bool = False, min_partial_frames: int = 1,
                 max_backward_jump_s: float = DEFAULT_TIME_JUMP_RESET_S,
                 prepare_frame: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """`prepare_frame`: applied to each sampled frame before it is kept (a node shrinks frames for its engine
        as they arrive); a size change is still judged on the frame as decoded."""
        if frames_per_clip < 1:
            raise ValueError(f"frames_per_clip must be >= 1, got {frames_per_clip}")
        stride_frames = frames_per_clip if stride_frames is None else stride_frames
        if stride_frames < 1:
            raise ValueError(f"stride_frames must be >= 1, got {stride_frames}")
        if sample_period_s < 0:
            raise ValueError(f"sample_period_s must be >= 0, got {sample_period_s}")
        if not 1 <= min_partial_frames <= frames_per_clip:
            raise ValueError(f"min_partial_frames must be in [1, {frames_per_clip}], got {min_partial_frames}")
        self.frames_per_clip = frames_per_clip
        self.stride_frames = stride_frames
        self.sample_period_ns = int(round(sample_period_s * 1e9))
        self.emit_partial_clips = emit_partial_clips
        self.min_partial_frames = min_partial_frames
        if max_backward_jump_s < 0:
            raise ValueError(f"max_backward_jump_s must be >= 0, got {max_backward_jump_s}")
        self.max_backward_jump_ns = int(round(max_backward_jump_s * 1e9))
        self.prepare_frame = prepare_frame

        self.frames_received = 0
        self.frames_sampled = 0
        self.frames_skipped = 0  # by subsampling (not an error)
        self.dropped_out_of_order = 0  # stamp older than or equal to the last accepted frame
        self.resolution_resets = 0
        self.time_jump_resets = 0
        self.clips_emitted = 0
        self.reset()

    def reset(self) -> None:
        """Forget buffered frames and the sampling grid (counters are kept)."""
        self._ring: deque[tuple[int, np.ndarray]] = deque(maxlen=self.frames_per_clip)
        self._sampled_since_reset = 0
        self._frame_shape: tuple[int, ...] | None = None
        self._last_stamp_ns: int | None = None
        self._next_sample_ns: int | None = None

    def push(self, rgb: np.ndarray, stamp_ns: int) -> Clip | None:
        """Offer one RGB frame; returns a Clip when one is due, else None."""
        return self.push_lazy(lambda: rgb, stamp_ns)

    def push_lazy(self, decode: Callable[[], np.ndarray], stamp_ns: int) -> Clip | None:
        """push(), calling `decode()` for the frame only if it is sampled: a node never spends time
        decoding a camera image that subsampling or an old stamp would throw away. A frame whose
        decode raises leaves the assembler as it was."""
        self.frames_received += 1
        stamp_ns = int(stamp_ns)
        if self._last_stamp_ns is not None and stamp_ns <= self._last_stamp_ns:
            if not self.max_backward_jump_ns or self._last_stamp_ns - stamp_ns <= self.max_backward_jump_ns:
                self.dropped_out_of_order += 1
                return None
            rgb, kept = self._decode(decode)  # the clock jumped back: start over from this frame (if it decodes)
            self.time_jump_resets += 1
            self.reset()
        elif not self._sample_due(stamp_ns):
            self._last_stamp_ns = stamp_ns
            self.frames_skipped += 1
            return None
        else:
            rgb, kept = self._decode(decode)
        if self._frame_shape is not None and rgb.shape != self._frame_shape:
            # A clip mixing resolutions cannot be stacked; start over at the new size, sampled from here.
            self.resolution_resets += 1
            self.reset()
        self._frame_shape = rgb.shape
        self._last_stamp_ns = stamp_ns
        self._advance_sample_grid(stamp_ns)
        self.frames_sampled += 1
        self._sampled_since_reset += 1
        self._ring.append((stamp_ns, kept))
        if not self._clip_due():
            return None
        self.clips_emitted += 1
        return self._make_clip()

    def _decode(self, decode: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(the frame as decoded, the frame as kept); raises before any state changed."""
        rgb = decode()
        return rgb, (self.prepare_frame(rgb) if self.prepare_frame is not None else rgb)

    def _sample_due(self, stamp_ns: int) -> bool:
        if self.sample_period_ns == 0 or self._next_sample_ns is None:
            return True
        return stamp_ns >= self._next_sample_ns - int(self.sample_period_ns * SAMPLE_JITTER_FRACTION)

    def _advance_sample_grid(self, stamp_ns: int) -> None:
        """Move the grid past a sampled frame; after a gap it jumps instead of firing a burst."""
        if self.sample_period_ns == 0:
            return
        tolerance_ns = int(self.sample_period_ns * SAMPLE_JITTER_FRACTION)
        next_sample_ns = stamp_ns if self._next_sample_ns is None else self._next_sample_ns
        while next_sample_ns - tolerance_ns <= stamp_ns:
            next_sample_ns += self.sample_period_ns
        self._next_sample_ns = next_sample_ns

    def _clip_due(self) -> bool:
        count = self._sampled_since_reset
        on_grid = (count - self.frames_per_clip) % self.stride_frames == 0
        if count >= self.frames_per_clip:
            return on_grid
        return self.emit_partial_clips and count >= self.min_partial_frames and on_grid

    def _make_clip(self) -> Clip:
        stamps = [stamp for stamp, _ in self._ring]
        frames = np.stack([frame for _, frame in self._ring])
        return Clip(frames=fill_clip(frames, self.frames_per_clip), first_stamp_ns=stamps[0],
                    last_stamp_ns=stamps[-1], frame_count=len(stamps))
