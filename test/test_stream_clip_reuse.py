"""ClipReuse: a static camera's clips are reused despite sensor noise; motion, drift, age, another
query or frame size and a missing inference all make the model run."""
import numpy as np
import pytest

from vljepa_ros.stream.clip_reuse import (CHANGED, FIRST, OFF, OTHER_KEY, OTHER_SHAPE, REUSED, TOO_OLD, ClipReuse,
                                          ReuseSettings, thumbnails)

SECOND_NS = 1_000_000_000
FRAMES = 8


def scene(height: int = 64, width: int = 64) -> np.ndarray:
    """A still tabletop-like picture: a shaded table and two blocks."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([90 + 60 * x / width, 80 + 40 * y / height, np.full((height, width), 60.0)], axis=-1)
    rgb[height // 4:height // 2, width // 5:width // 3] = (200, 40, 40)
    rgb[height // 2:3 * height // 4, width // 2:2 * width // 3] = (40, 60, 210)
    return rgb.astype(np.uint8)


def noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    noise = rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(frame + noise, 0, 255).round().astype(np.uint8)


def clip_of(frames: list[np.ndarray]) -> np.ndarray:
    return np.stack(frames)


def run(reuse: ClipReuse, clips: list[np.ndarray], period_s: float = 0.4, key="query") -> list[bool]:
    """Feed clips like the node does (check; infer and remember unless reused); the reuse flag of each."""
    flags = []
    for index, clip in enumerate(clips):
        check = reuse.check(clip, index * int(period_s * SECOND_NS), key)
        if not check.reuse:
            reuse.remember(check, index)
        flags.append(check.reuse)
    return flags


@pytest.mark.parametrize("height,width", [(64, 64), (480, 640)])
def test_a_static_camera_with_sensor_noise_is_reused_and_gives_the_inferred_clips_payload(height, width):
    rng = np.random.default_rng(0)
    base = scene(height, width)
    reuse = ClipReuse(threshold=6.0, max_age_s=0.0)
    first = reuse.check(clip_of([noisy(base, rng) for _ in range(FRAMES)]), 0, "query")
    assert not first.reuse and first.reason == FIRST
    reuse.remember(first, "embedding of clip 0")
    clips = 30 if height < 100 else 6
    for index in range(1, clips):
        check = reuse.check(clip_of([noisy(base, rng) for _ in range(FRAMES)]), index * SECOND_NS, "query")
        assert check.reuse and check.reason == REUSED, (index, check.change)
        assert check.payload == "embedding of clip 0"
        assert check.change < 3.0  # noise sigma 2 stays well under the 6 grey-level default
    assert reuse.clips_checked == clips and reuse.clips_reused == clips - 1


def test_a_small_moving_object_is_inferred_although_the_mean_change_is_tiny():
    base = scene()
    reuse = ClipReuse(threshold=6.0)
    still = clip_of([base] * FRAMES)
    reuse.remember(reuse.check(still, 0, "query"), "still")
    moving = []
    for index in range(FRAMES):  # a 3 x 3 px ball rolling one pixel per frame over the table
        frame = base.copy()
        frame[50:53, 5 + index:8 + index] = 255
        moving.append(frame)
    moving = clip_of(moving)
    check = reuse.check(moving, SECOND_NS, "query")
    assert not check.reuse and check.reason == CHANGED and check.change > 6.0
    # The mean absolute difference of the picture would have called it unchanged: why the test takes the max.
    assert float(np.mean(np.abs(thumbnails(moving) - thumbnails(still)))) < 1.0


def test_slow_drift_adds_up_against_the_last_inferred_clip():
    """The light brightens by one grey level per clip: no step passes the threshold, but the sum does."""
    base = scene().astype(np.int16)
    clips = [clip_of([np.clip(base + step, 0, 255).astype(np.uint8)] * FRAMES) for step in range(16)]
    reuse = ClipReuse(threshold=6.5, max_age_s=0.0)
    flags = run(reuse, clips)
    # Inferred at 0; 1..6 are within 6.5 grey levels of clip 0; 7 is 7 away: inferred, then 8..13 reused ...
    assert flags == [False] + [True] * 6 + [False] + [True] * 6 + [False, True]


def test_max_age_re_infers_a_still_scene_and_a_clock_going_back_infers():
    still = clip_of([scene()] * FRAMES)
    reuse = ClipReuse(threshold=6.0, max_age_s=2.5)
    flags = run(reuse, [still] * 8, period_s=1.0)
    assert flags == [False, True, True, False, True, True, False, True]  # at most 2.5 s after an inferred clip
    check = reuse.check(still, 5 * SECOND_NS, "query")  # before the last inferred clip (6 s): a bag loop
    assert not check.reuse and check.reason == TOO_OLD


def test_another_query_or_frame_size_is_inferred_and_off_computes_nothing():
    still = clip_of([scene()] * FRAMES)
    reuse = ClipReuse()
    reuse.remember(reuse.check(still, 0, ("model", "What is happening?")), "a")
    assert reuse.check(still, 1, ("model", "What is happening?")).reuse
    other = reuse.check(still, 2, ("model", "Where is the cube?"))
    assert not other.reuse and other.reason == OTHER_KEY
    larger = reuse.check(clip_of([scene(72, 72)] * FRAMES), 3, ("model", "What is happening?"))
    assert not larger.reuse and larger.reason == OTHER_SHAPE
    longer = reuse.check(clip_of([scene()] * (FRAMES * 2)), 4, ("model", "What is happening?"))
    assert not longer.reuse and longer.reason == OTHER_SHAPE

    reuse.enabled = False  # a runtime parameter change: from now on every clip is inferred
    off = reuse.check(still, 5, ("model", "What is happening?"))
    assert not off.reuse and off.reason == OFF and off.thumbnails is None
    reuse.remember(off, "ignored")
    reuse.enabled = True
    assert reuse.check(still, 6, ("model", "What is happening?")).payload == "a"


def test_nothing_is_reused_without_an_inference_to_reuse():
    """A clip whose inference failed (remember() never called) leaves nothing to reuse; reset() forgets."""
    still = clip_of([scene()] * FRAMES)
    reuse = ClipReuse()
    assert [reuse.check(still, index, "q").reason for index in range(3)] == [FIRST] * 3
    reuse.remember(reuse.check(still, 3, "q"), "inferred")
    assert reuse.check(still, 4, "q").reuse
    reuse.reset()  # a new model or calibration
    assert reuse.check(still, 5, "q").reason == FIRST


def test_thumbnails_average_blocks_and_never_upscale():
    frames = clip_of([scene(480, 640), scene(480, 640)])
    small = thumbnails(frames)
    assert small.shape == (2, 16, 16) and small.dtype == np.float32
    assert thumbnails(clip_of([scene(8, 12)])).shape == (1, 8, 12)
    with pytest.raises(ValueError):
        thumbnails(np.zeros((4, 8, 8), np.uint8))


def test_settings_and_validation():
    reuse = ClipReuse.from_settings(ReuseSettings(enabled=True, threshold=3.0, max_age_s=4.0))
    assert (reuse.enabled, reuse.threshold, reuse.max_age_s) == (True, 3.0, 4.0)
    for arguments in ({"threshold": -1.0}, {"max_age_s": -1.0}, {"thumbnail_side": 0}):
        with pytest.raises(ValueError):
            ClipReuse(**arguments)
