"""How frames become the clips and queries the model answers: the one definition of the clip protocol.

Training (`model/`), every inference engine (`runtime/`), the nodes and the evaluation all build their
clips here, so a clip a robot sees live is the clip the model was trained and scored on:
  - `fill_clip`: an image, or a clip of the wrong length, becomes exactly `frames_per_clip` frames
    by uniform sampling (the paper's "frames sampled uniformly; an image is repeated to fill the clip");
  - `make_action_clip`: an inverse-dynamics (before, after) pair becomes one clip, asked `ACTION_QUERY`;
  - `CAPTION_QUERY`: the query of the caption / classification stream (the perception node's default).

numpy only (torch tensors are indexed the same way), so this module and its tests need no torch.
"""
from __future__ import annotations

import numpy as np

from vljepa_ros.errors import InvalidClipError

CAPTION_QUERY = "What is happening?"
ACTION_QUERY = "What action turns the first state into the second?"


def fill_indices(count: int, frames_per_clip: int) -> np.ndarray:
    """Indices of `frames_per_clip` frames sampled from `count`: the centres of equal-width bins
    (repeating frames when count is smaller)."""
    if count <= 0:
        raise InvalidClipError("cannot fill a clip from zero frames")
    indices = np.floor((np.arange(frames_per_clip) + 0.5) * count / frames_per_clip).astype(np.int64)
    return np.clip(indices, 0, count - 1)


def fill_clip(frames, frames_per_clip: int):
    """Exactly `frames_per_clip` frames from (T, H, W, 3) or one image (H, W, 3), numpy or torch alike."""
    if frames.ndim == 3:  # a single image
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise InvalidClipError(f"expected frames of shape (T, H, W, 3) with T >= 1, got {tuple(frames.shape)}")
    if frames.shape[0] == frames_per_clip:
        return frames
    return frames[fill_indices(frames.shape[0], frames_per_clip)]


def make_action_clip(before: np.ndarray, after: np.ndarray, frames_per_clip: int) -> np.ndarray:
    """Inverse-dynamics clip: the first half copies of `before`, the second half copies of `after` -> (T,H,W,3)."""
    if before.shape != after.shape or before.ndim != 3:
        raise InvalidClipError(f"before/after must be two (H,W,3) images of one size, got {before.shape} and {after.shape}")
    if frames_per_clip < 2:
        raise InvalidClipError(f"an action clip needs at least 2 frames, got frames_per_clip={frames_per_clip}")
    half = frames_per_clip // 2
    return np.stack([before] * half + [after] * (frames_per_clip - half))
