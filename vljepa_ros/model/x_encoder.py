"""X-encoder: V-JEPA 2's video ViT (transformers VJEPA2Model), encoder path only.

VL-JEPA uses V-JEPA 2 ViT-L frozen: frames sampled uniformly at 256 px, an image repeated to fill the
clip, tubelets of 2 x 16 x 16 -> (T/2) * 16 * 16 tokens of width 1024. V-JEPA 2's own masked-latent
predictor is not part of VL-JEPA, so XEncoder drops it and parameter counts are the encoder's alone.

`prepare_clips` (fill + `preprocess_frames`) is the one preprocessing used for training and by every inference engine. By
default it reproduces transformers' VJEPA2VideoProcessor: resize the shortest side to crop * 256 / 224 (bilinear,
antialiased, uint8 result as torchvision gives for uint8 input), center crop, rescale 1/255, normalize
with ImageNet mean/std. The config's `resize_shortest_edge` and `pixel_pipeline="torchvision_float"` describe a
model trained with torchvision transforms on float frames instead (open-vljepa: frames / 255, Resize(256),
CenterCrop(256), Normalize): the resize then runs in float without rounding, and the crop anchor is rounded.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import VJEPA2Config, VJEPA2Model

from vljepa_ros.stream.clips import fill_clip

from .config import VLJepaConfig


def _shortest_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) scaled so the shortest side is `size`, the long side truncated as torchvision does."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (new_long, size) if width <= height else (size, new_long)


def _resize_shortest_side(video: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> uint8 with the shortest side = size, as torchvision's resize on uint8 tensors."""
    new_size = _shortest_side_size(*video.shape[-2:], size)
    if tuple(video.shape[-2:]) == new_size:
        return video
    if video.device.type == "cpu":
        # CPU interpolate accepts uint8 for antialiased bilinear and rounds exactly as torchvision does.
        return F.interpolate(video, size=new_size, mode="bilinear", antialias=True, align_corners=False)
    resized = F.interpolate(video.float(), size=new_size, mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def _resize_shortest_side_float(video: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) float -> float with the shortest side = size, as torchvision's Resize on float tensors."""
    new_size = _shortest_side_size(*video.shape[-2:], size)
    if tuple(video.shape[-2:]) == new_size:
        return video
    return F.interpolate(video, size=new_size, mode="bilinear", antialias=True, align_corners=False)


def _center_crop(video: torch.Tensor, crop: int, round_anchor: bool = False) -> torch.Tensor:
    height, width = video.shape[-2:]
    if height < crop or width < crop:
        pad_w, pad_h = max(crop - width, 0), max(crop - height, 0)
        video = F.pad(video, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        height, width = video.shape[-2:]
    # torchvision's CenterCrop rounds the anchor; the V-JEPA 2 path has always truncated it.
    anchor = round if round_anchor else int
    top = int(anchor((height - crop) / 2.0))
    left = int(anchor((width - crop) / 2.0))
    return video[..., top : top + crop, left : left + crop]


def _short_side(config: VLJepaConfig) -> int:
    return config.resize_shortest_edge or int(config.image_size * 256 / 224)


def shrink_frame(rgb: np.ndarray, config: VLJepaConfig) -> np.ndarray:
    """One uint8 RGB frame (H, W, 3) resized as `preprocess_frames` resizes it, short of the crop, so that a
    clip of shrunk frames preprocesses bit-identically to the clip of the originals (the resize then finds
    them at size), only faster: a node shrinks each camera frame once, as it arrives, instead of a whole
    clip at once when it is due (8 frames of 640x480: 6-25 ms, measured). The float pipeline
    (torchvision_float) resizes without rounding, which uint8 frames cannot hold: its frames pass unchanged."""
    if config.pixel_pipeline == "torchvision_float":
        return rgb
    frame = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].contiguous()  # as preprocess_frames lays it out
    resized = _resize_shortest_side(frame, _short_side(config))
    return rgb if resized is frame else resized[0].permute(1, 2, 0).contiguous().numpy()


def preprocess_frames(frames: np.ndarray | torch.Tensor, config: VLJepaConfig) -> torch.Tensor:
    """uint8 RGB frames (T, H, W, 3) or (B, T, H, W, 3) -> float32 (B, T, 3, S, S) ready for the X-encoder.

    Does not change the frame count: `prepare_clips` fills clips of another length first.
    """
    video = torch.as_tensor(frames)
    if video.dtype != torch.uint8:
        raise TypeError(f"frames must be uint8 RGB, got {video.dtype}")
    if video.ndim == 4:
        video = video[None]
    if video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) or (B, T, H, W, 3) RGB, got {tuple(video.shape)}")
    batch, count = video.shape[:2]
    crop = config.image_size
    video = video.reshape(batch * count, *video.shape[2:]).permute(0, 3, 1, 2).contiguous()
    short_side = _short_side(config)
    if config.pixel_pipeline == "torchvision_float":
        video = _resize_shortest_side_float(video.float() * (1.0 / 255.0), short_side)
        video = _center_crop(video, crop, round_anchor=True)
    else:
        video = _resize_shortest_side(video, short_side)
        video = _center_crop(video, crop).float() * (1.0 / 255.0)
    mean = torch.tensor(config.image_mean, dtype=torch.float32, device=video.device).view(1, 3, 1, 1)
    std = torch.tensor(config.image_std, dtype=torch.float32, device=video.device).view(1, 3, 1, 1)
    pixels = (video - mean) / std
    return pixels.reshape(batch, count, 3, crop, crop)


def prepare_clips(frames: np.ndarray | torch.Tensor | Sequence[np.ndarray], config: VLJepaConfig) -> torch.Tensor:
    """uint8 (T, H, W, 3), (B, T, H, W, 3) or a list of (T_i, H, W, 3) -> float32 pixels (B, T, 3, S, S),
    T = config.frames_per_clip: the one clip preprocessing of training and of every inference engine
    (an image or a short clip is filled by `fill_clip`, then `preprocess_frames`). Clips of different
    image sizes (a batch mixing two cameras or worlds) are preprocessed one by one, each exactly as
    inference would see it alone."""
    if isinstance(frames, (np.ndarray, torch.Tensor)) and frames.ndim in (3, 4):
        frames = [frames]
    clips = [torch.as_tensor(fill_clip(clip, config.frames_per_clip)) for clip in frames]
    if len({tuple(clip.shape) for clip in clips}) > 1:
        return torch.cat([preprocess_frames(clip[None], config) for clip in clips])
    return preprocess_frames(torch.stack(clips), config)


def visual_statistics(visual_tokens: torch.Tensor) -> torch.Tensor:
    """(B, N, H) visual tokens -> (B, 2H) float32: their mean and standard deviation over space and time.

    The clip's appearance as the frozen encoder sees it, before the predictor maps it into the shared
    space; the familiarity score (stream/familiarity.py) measures how far it lies from the training data.
    """
    tokens = visual_tokens.float()
    mean = tokens.mean(dim=1)
    spread = (tokens - mean.unsqueeze(1)).square().mean(dim=1).sqrt()
    return torch.cat([mean, spread], dim=-1)


class XEncoder(nn.Module):
    """Video clip (B, T, 3, S, S) -> visual tokens (B, (T / tubelet) * (S / patch)^2, hidden)."""

    def __init__(self, config: VLJepaConfig) -> None:
        super().__init__()
        self.vjepa2 = VJEPA2Model(VJEPA2Config(**config.x_encoder))
        self.vjepa2.predictor = None  # V-JEPA's masked-latent predictor is not part of VL-JEPA
        self.hidden_size = self.vjepa2.config.hidden_size
        self.frozen = bool(config.freeze_x_encoder)
        if self.frozen:
            self.requires_grad_(False)

    def train(self, mode: bool = True) -> "XEncoder":
        # A frozen encoder stays in eval mode (no dropout / drop-path) even when the model trains.
        return super().train(mode and not self.frozen)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.ndim != 5:
            raise ValueError(f"pixel_values must be (B, T, 3, S, S), got {tuple(pixel_values.shape)}")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.vjepa2.get_vision_features(pixel_values)
