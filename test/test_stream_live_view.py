"""The live view renderer: its size, and that the banner and the strip show what they are given."""
from __future__ import annotations

import numpy as np
import pytest

from vljepa_ros.stream.live_view import (BANNER_HEIGHT, STRIP_HEIGHT, UNFAMILIAR_COLOUR, LiveViewContent,
                                         render_live_view)


def camera_frame(height: int = 120, width: int = 160) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)


def banner(image: np.ndarray) -> np.ndarray:
    return image[:BANNER_HEIGHT]


def strip(image: np.ndarray) -> np.ndarray:
    return image[-STRIP_HEIGHT:]


def has_colour(region: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool(np.all(region == np.asarray(colour, np.uint8), axis=-1).any())


@pytest.mark.parametrize("shape", [(120, 160), (40, 40), (480, 640)])
def test_the_frame_is_scaled_to_the_width_between_banner_and_strip(shape):
    frame = camera_frame(*shape)
    image = render_live_view(frame, LiveViewContent(), width=320)
    frame_height = round(shape[0] * 320 / shape[1])
    assert image.dtype == np.uint8 and image.shape == (BANNER_HEIGHT + frame_height + STRIP_HEIGHT, 320, 3)
    assert render_live_view(frame, LiveViewContent()).shape[1] == 480  # the default width


def test_the_scaled_frame_is_the_camera_frame():
    frame = np.zeros((40, 40, 3), np.uint8)
    frame[:20] = (255, 0, 0)  # red top half, blue bottom half
    frame[20:] = (0, 0, 255)
    middle = render_live_view(frame, LiveViewContent(), width=80)[BANNER_HEIGHT:-STRIP_HEIGHT]
    assert middle.shape[:2] == (80, 80)
    assert (middle[:40] == (255, 0, 0)).all() and (middle[40:] == (0, 0, 255)).all()


def test_the_banner_changes_with_the_text_and_the_strip_with_the_scores():
    frame = camera_frame()
    base = LiveViewContent(text="the robot reaches for the green cube", text_source="event", score=0.85,
                           familiarity=0.3, familiarity_threshold=0.05, shift_scores=[0.001, 0.002, 0.001],
                           shift_threshold=0.02)
    image = render_live_view(frame, base)
    other_text = render_live_view(frame, LiveViewContent(**{**base.__dict__, "text": "the gripper opens"}))
    other_scores = render_live_view(frame, LiveViewContent(**{**base.__dict__, "shift_scores": [0.001, 0.05, 0.001]}))
    assert not np.array_equal(banner(image), banner(other_text))
    assert np.array_equal(strip(image), strip(other_text))
    assert not np.array_equal(strip(image), strip(other_scores))
    assert np.array_equal(banner(image), banner(other_scores))
    assert np.array_equal(image[BANNER_HEIGHT:-STRIP_HEIGHT], other_text[BANNER_HEIGHT:-STRIP_HEIGHT])


def test_a_very_long_text_still_renders_at_the_same_size():
    content = LiveViewContent(text="word " * 200, text_source="label", score=0.5)
    assert render_live_view(camera_frame(), content).shape == render_live_view(camera_frame(), LiveViewContent()).shape


def test_the_unfamiliar_mark_appears_only_when_the_input_is_out_of_distribution():
    frame = np.zeros((60, 80, 3), np.uint8)  # black: no frame pixel has the mark's colour
    familiar = LiveViewContent(text="pick", text_source="label", score=0.6, familiarity=0.3,
                               familiarity_threshold=0.05, in_distribution=True, shift_scores=[0.01, 0.03],
                               shift_threshold=0.02)
    unfamiliar = LiveViewContent(**{**familiar.__dict__, "familiarity": 0.01, "in_distribution": False})
    assert not has_colour(render_live_view(frame, familiar), UNFAMILIAR_COLOUR)
    marked = render_live_view(frame, unfamiliar)
    assert has_colour(banner(marked), UNFAMILIAR_COLOUR)
    assert not has_colour(marked[BANNER_HEIGHT:], UNFAMILIAR_COLOUR)


def test_non_finite_scores_and_an_empty_history_are_drawn_without_error():
    content = LiveViewContent(shift_scores=[float("nan"), 0.01, float("inf")], shift_threshold=0.02)
    assert render_live_view(camera_frame(), content).shape[1] == 480
    assert render_live_view(camera_frame(), LiveViewContent(shift_scores=[])).shape[1] == 480


def test_a_frame_that_is_not_uint8_rgb_is_refused():
    with pytest.raises(ValueError, match="uint8 RGB"):
        render_live_view(np.zeros((10, 10), np.uint8), LiveViewContent())
    with pytest.raises(ValueError, match="uint8 RGB"):
        render_live_view(np.zeros((10, 10, 3), np.float32), LiveViewContent())
