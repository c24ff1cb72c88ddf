"""ClipAssembler: clip timing, stamps, subsampling, early clips, bad stamps and resolution changes."""
import numpy as np
import pytest

from vljepa_ros.stream.clip_assembler import ClipAssembler
from vljepa_ros.stream.clips import fill_clip


def frame(value: int, shape=(4, 6, 3)) -> np.ndarray:
    return np.full(shape, value % 256, dtype=np.uint8)


def push_stream(assembler: ClipAssembler, count: int, fps: float = 10.0, start_ns: int = 1_000_000_000):
    clips = []
    for index in range(count):
        clip = assembler.push(frame(index), start_ns + int(round(index * 1e9 / fps)))
        if clip is not None:
            clips.append((index, clip))
    return clips


def test_first_clip_when_ring_full_then_every_stride_with_first_and_last_stamps():
    assembler = ClipAssembler(frames_per_clip=4, stride_frames=2)
    clips = push_stream(assembler, 10)
    assert [index for index, _ in clips] == [3, 5, 7, 9]
    for index, clip in clips:
        assert clip.frames.shape == (4, 4, 6, 3) and clip.frame_count == 4
        # Frames are the last four in time order; stamps are those of the first and last frame.
        assert [int(f[0, 0, 0]) for f in clip.frames] == list(range(index - 3, index + 1))
        assert clip.first_stamp_ns == 1_000_000_000 + (index - 3) * 100_000_000
        assert clip.last_stamp_ns == 1_000_000_000 + index * 100_000_000
    assert assembler.clips_emitted == 4 and assembler.frames_sampled == 10


def test_subsampling_keeps_one_frame_per_period_despite_jitter():
    assembler = ClipAssembler(frames_per_clip=2, stride_frames=2, sample_period_s=0.1)
    jitter = np.random.default_rng(1).integers(-2_000_000, 2_000_000, size=60)
    clips = []
    for index in range(60):  # 30 fps with +-2 ms jitter, sampled at 10 Hz -> every third frame
        clip = assembler.push(frame(index), 1_000_000_000 + int(index * 1e9 / 30) + int(jitter[index]))
        if clip is not None:
            clips.append(clip)
    assert assembler.frames_sampled == 20 and assembler.frames_skipped == 40
    kept = [int(f[0, 0, 0]) for clip in clips for f in clip.frames]
    assert kept == list(range(0, 60, 3))


def test_early_clips_only_when_enabled_and_filled_by_repetition():
    assert push_stream(ClipAssembler(4, 2), 3) == []
    clips = push_stream(ClipAssembler(4, 2, emit_partial_clips=True), 4)
    assert [index for index, _ in clips] == [1, 3]
    early = clips[0][1]
    assert early.frame_count == 2
    assert [int(f[0, 0, 0]) for f in early.frames] == [0, 0, 1, 1]
    assert early.first_stamp_ns == 1_000_000_000 and early.last_stamp_ns == 1_100_000_000


def test_out_of_order_and_duplicate_stamps_are_dropped_and_counted():
    assembler = ClipAssembler(frames_per_clip=3, stride_frames=3)
    assert assembler.push(frame(0), 100) is None
    assert assembler.push(frame(1), 200) is None
    assert assembler.push(frame(99), 200) is None  # duplicate
    assert assembler.push(frame(98), 150) is None  # older
    clip = assembler.push(frame(2), 300)
    assert clip is not None and [int(f[0, 0, 0]) for f in clip.frames] == [0, 1, 2]
    assert assembler.dropped_out_of_order == 2


def test_resolution_change_resets_the_ring():
    assembler = ClipAssembler(frames_per_clip=3, stride_frames=1)
    assembler.push(frame(0), 100)
    assembler.push(frame(1), 200)
    assert assembler.push(frame(2, shape=(8, 8, 3)), 300) is None  # ring restarted with this frame
    assert assembler.resolution_resets == 1
    assembler.push(frame(3, shape=(8, 8, 3)), 400)
    clip = assembler.push(frame(4, shape=(8, 8, 3)), 500)
    assert clip.frames.shape == (3, 8, 8, 3) and clip.first_stamp_ns == 300


def test_fill_clip_repeats_in_order_and_samples_uniformly():
    frames = np.arange(3)[:, None, None, None]  # (T, H, W, C) with T = 3
    assert fill_clip(frames, 6)[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2, 2]
    assert fill_clip(np.arange(8)[:, None, None, None], 4)[:, 0, 0, 0].tolist() == [1, 3, 5, 7]
    assert fill_clip(frames[:1], 4)[:, 0, 0, 0].tolist() == [0, 0, 0, 0]


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        ClipAssembler(0)
    with pytest.raises(ValueError):
        ClipAssembler(4, stride_frames=0)
    with pytest.raises(ValueError):
        ClipAssembler(4, sample_period_s=-1)


def test_kept_frames_are_prepared_and_a_size_change_is_judged_on_the_frame_as_decoded():
    """The perception node shrinks frames for its engine as they arrive (prepare_frame); two camera sizes that
    shrink alike are still two sizes: the clip restarts."""
    assembler = ClipAssembler(2, 2, prepare_frame=lambda rgb: rgb[:4, :4] + 1)
    small, large = np.zeros((32, 32, 3), np.uint8), np.zeros((48, 48, 3), np.uint8)
    assert assembler.push(small, 1) is None
    clip = assembler.push(small, 2)
    assert clip is not None and clip.frames.shape == (2, 4, 4, 3) and (clip.frames == 1).all()
    assert assembler.push(large, 3) is None and assembler.resolution_resets == 1
    assert assembler.push(large, 4).frames.shape == (2, 4, 4, 3)
