"""The live view: what the model understands, drawn over what the camera sees (numpy + OpenCV only).

`render_live_view` stacks three parts into one RGB image a person watches in rqt_image_view or
Foxglove:

    +--------------------------------------------+
    | banner: newest text (event, else top label)|
    |         score . familiarity . UNFAMILIAR   |
    +--------------------------------------------+
    | the camera frame, scaled to `width`        |
    +--------------------------------------------+
    | strip: recent shift scores, threshold line |
    +--------------------------------------------+

Everything is drawn with cv2 primitives on one canvas: a render costs a few milliseconds of one
core at 480 px wide (benchmarks/README.md), far less than a clip's inference.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_WIDTH = 480
BANNER_HEIGHT = 48
STRIP_HEIGHT = 64
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_SCALE = 0.5
MARGIN = 6

# RGB colours. The unfamiliar mark must stand out from everything else drawn: orange-red on a dark banner.
BANNER_BACKGROUND = (24, 24, 32)
STRIP_BACKGROUND = (16, 16, 16)
TEXT_COLOUR = (240, 240, 240)
DETAIL_COLOUR = (170, 200, 230)
UNFAMILIAR_COLOUR = (255, 80, 0)
SCORE_COLOUR = (0, 200, 255)
THRESHOLD_COLOUR = (255, 210, 0)
UNFAMILIAR_MARK = "UNFAMILIAR"


@dataclass(frozen=True)
class LiveViewContent:
    """What the banner and the strip show. Negative score/familiarity: not known (nothing drawn for it)."""
    text: str = ""  # the newest event's decoded text, else the newest embedding's top label
    text_source: str = ""  # "event" or "label": says what kind of text the banner shows
    score: float = -1.0  # the event's text score, or the label's confidence
    familiarity: float = -1.0
    familiarity_threshold: float = 0.0
    in_distribution: bool = True
    shift_scores: Sequence[float] = ()  # oldest first
    shift_threshold: float = 0.0


def scaled_height(frame_shape: tuple[int, ...], width: int) -> int:
    height, frame_width = frame_shape[:2]
    return max(1, round(height * width / frame_width))


def render_live_view(frame_rgb: np.ndarray, content: LiveViewContent, width: int = DEFAULT_WIDTH) -> np.ndarray:
    """The live view image (uint8 RGB, `width` wide, banner + scaled frame + strip tall)."""
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 RGB (H, W, 3), got {frame_rgb.dtype} {frame_rgb.shape}")
    frame_height = scaled_height(frame_rgb.shape, width)
    canvas = np.empty((BANNER_HEIGHT + frame_height + STRIP_HEIGHT, width, 3), np.uint8)
    # Nearest neighbour when enlarging keeps small model-sized frames crisp; area when shrinking avoids aliasing.
    interpolation = cv2.INTER_NEAREST if width >= frame_rgb.shape[1] else cv2.INTER_AREA
    canvas[BANNER_HEIGHT:BANNER_HEIGHT + frame_height] = cv2.resize(frame_rgb, (width, frame_height),
                                                                    interpolation=interpolation)
    draw_banner(canvas[:BANNER_HEIGHT], content)
    draw_shift_strip(canvas[BANNER_HEIGHT + frame_height:], content.shift_scores, content.shift_threshold)
    return canvas


def fit_text(text: str, max_width: int, scale: float = TEXT_SCALE) -> str:
    """`text`, cut with an ellipsis so that it fits `max_width` pixels."""
    if cv2.getTextSize(text, FONT, scale, 1)[0][0] <= max_width:
        return text
    while text and cv2.getTextSize(text + "...", FONT, scale, 1)[0][0] > max_width:
        text = text[:-1]
    return text + "..."


def banner_details(content: LiveViewContent) -> str:
    """The second banner line: the score of the text and the familiarity against its threshold."""
    parts = []
    if content.score >= 0.0:
        parts.append(f"{'score' if content.text_source == 'event' else 'confidence'} {content.score:.2f}")
    if content.familiarity >= 0.0:
        parts.append(f"familiarity {content.familiarity:.3f} (threshold {content.familiarity_threshold:.3f})")
    return "  |  ".join(parts)


def draw_banner(banner: np.ndarray, content: LiveViewContent) -> None:
    banner[:] = BANNER_BACKGROUND
    width = banner.shape[1]
    mark_width = 0
    if not content.in_distribution:
        (text_width, text_height), _ = cv2.getTextSize(UNFAMILIAR_MARK, FONT, TEXT_SCALE, 2)
        mark_width = text_width + 2 * MARGIN
        left = width - mark_width
        cv2.rectangle(banner, (left, 2), (width - 2, BANNER_HEIGHT - 3), UNFAMILIAR_COLOUR, thickness=-1)
        cv2.putText(banner, UNFAMILIAR_MARK, (left + MARGIN - 1, (BANNER_HEIGHT + text_height) // 2), FONT,
                    TEXT_SCALE, TEXT_COLOUR, 2, cv2.LINE_AA)
    source = f"[{content.text_source}] " if content.text_source else ""
    headline = source + content.text if content.text else "(no label or event yet)"
    line_width = width - mark_width - 2 * MARGIN
    cv2.putText(banner, fit_text(headline, line_width), (MARGIN, 19), FONT, TEXT_SCALE, TEXT_COLOUR, 1, cv2.LINE_AA)
    details = banner_details(content)
    if details:
        cv2.putText(banner, fit_text(details, line_width, 0.4), (MARGIN, 40), FONT, 0.4,
                    UNFAMILIAR_COLOUR if not content.in_distribution else DETAIL_COLOUR, 1, cv2.LINE_AA)


def draw_shift_strip(strip: np.ndarray, scores: Sequence[float], threshold: float) -> None:
    """The recent shift scores as a line, oldest at the left, on a scale that always shows the threshold."""
    strip[:] = STRIP_BACKGROUND
    height, width = strip.shape[:2]
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    top = max(float(values.max()) if values.size else 0.0, 1.5 * threshold, 1e-9)
    plot_top, plot_bottom = 14, height - 4  # room for the caption above the plot

    def y_of(value: np.ndarray | float) -> np.ndarray:
        return np.round(plot_bottom - (plot_bottom - plot_top) * np.clip(np.asarray(value) / top, 0.0, 1.0))

    if threshold > 0.0:
        threshold_y = int(y_of(threshold))
        cv2.line(strip, (0, threshold_y), (width - 1, threshold_y), THRESHOLD_COLOUR, 1)
    if values.size >= 2:
        xs = np.linspace(0, width - 1, values.size)  # the kept history spans the strip
        points = np.stack([np.round(xs), y_of(values)], axis=1).astype(np.int32)
        cv2.polylines(strip, [points], isClosed=False, color=SCORE_COLOUR, thickness=1, lineType=cv2.LINE_AA)
    caption = "shift score"
    if values.size:
        caption += f" {values[-1]:.4f}"
    if threshold > 0.0:
        caption += f" (threshold {threshold:.4f})"
    cv2.putText(strip, caption, (MARGIN, 11), FONT, 0.35, DETAIL_COLOUR, 1, cv2.LINE_AA)
