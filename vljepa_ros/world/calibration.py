"""In-distribution frame streams for `vljepa-ros calibrate` (the familiarity statistics of a model).

A calibration source is what the model should call familiar: the tabletop world as training draws
it, a bag of the robot's camera, a video file, or an examples file of `make-data` (its clips as they are).
Streams are cut into clips by the perception node's own clip assembler downstream, so the statistics
describe exactly the clips the node will score.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vljepa_ros.world.types import WorldDataError

# A training-range seed block no training run draws (runs start at seed % 1,000,000 = 0..few and take
# consecutive seeds; validation used 900,000+): calibration sees the training distribution, not its frames.
TABLETOP_CALIBRATION_SEED = 800_000
# The camera variants a tabletop clip reaches the node in: the generator's raw frames, and JPEG-compressed
# CompressedImage frames of other sizes (as the demo bag and a replayed camera are).
TABLETOP_VARIANTS = ((64, None), (96, 85), (128, 90), (128, None))
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")
DEFAULT_VIDEO_FPS = 10.0


@dataclass
class CalibrationStream:
    """Frames in stream order (cut into clips downstream), or ready clips (an examples file)."""
    name: str
    frames: np.ndarray | None = None  # uint8 (N, H, W, 3)
    stamps_ns: np.ndarray | None = None  # int64 (N,)
    clips: np.ndarray | None = None  # uint8 (M, T, H, W, 3): used as they are


def jpeg_round_trip(frames: np.ndarray, quality: int) -> np.ndarray:
    """What a CompressedImage camera delivers of these RGB frames."""
    import cv2

    from vljepa_ros.stream.images import decode_compressed

    def round_trip(frame: np.ndarray) -> np.ndarray:
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise WorldDataError(f"OpenCV could not JPEG-encode a frame of shape {frame.shape}")
        return decode_compressed("jpeg", encoded.tobytes())

    return np.stack([round_trip(frame) for frame in frames])


def tabletop_streams(episodes: int, seed: int = TABLETOP_CALIBRATION_SEED, fps: float = 10.0) -> Iterator[CalibrationStream]:
    """One stream per camera variant of the tabletop world, `episodes` episodes each, from training-range seeds."""
    from vljepa_ros.world import tabletop

    for index, (size, quality) in enumerate(TABLETOP_VARIANTS):
        stream = tabletop.generate_stream(seed + index, episodes, fps=fps, image_size=size)
        frames = stream.frames if quality is None else jpeg_round_trip(stream.frames, quality)
        yield CalibrationStream(f"tabletop:{size}px" + (f":jpeg{quality}" if quality else ""), frames, stream.stamps_ns)


def video_stream(path: Path, fps: float = DEFAULT_VIDEO_FPS, max_frames: int = 20_000,
                 max_side: int = 256) -> CalibrationStream:
    """A video file's frames resampled to `fps` (what a camera at that rate would have published), shrunk to at
    most `max_side` pixels (0: full size) (cv2 INTER_AREA): every model preset crops 256 px or less, and a minute of full-HD
    frames would otherwise take gigabytes."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise WorldDataError(f"cannot open video {path} (OpenCV could not read it)")
    source_fps = capture.get(cv2.CAP_PROP_FPS) or fps
    frames, source_index, next_time_s = [], 0, 0.0
    try:
        while len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            if source_index / source_fps + 1e-9 >= next_time_s:
                scale = max_side / max(frame.shape[:2]) if max_side else 1.0  # 0: full size
                if scale < 1.0:
                    frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
                                       interpolation=cv2.INTER_AREA)
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                next_time_s += 1.0 / fps
            source_index += 1
    finally:
        capture.release()
    if not frames:
        raise WorldDataError(f"video {path} has no readable frames")
    stamps = (np.arange(len(frames)) * (1e9 / fps)).astype(np.int64)
    return CalibrationStream(f"video:{path.name}", np.stack(frames), stamps)


def bag_stream(path: Path, topic: str | None = None) -> CalibrationStream:
    from vljepa_ros.world.bag_io import iter_bag_images

    stamps, frames = zip(*iter_bag_images(path, topic)) if path.exists() else ((), ())
    if not frames:
        raise WorldDataError(f"bag {path} has no image messages" if path.exists() else f"bag {path} does not exist")
    return CalibrationStream(f"bag:{path.name}", np.stack(frames), np.asarray(stamps, dtype=np.int64))


def examples_clips(path: Path) -> CalibrationStream:
    from vljepa_ros.world.dataset import load_examples

    examples = load_examples(path)
    if not examples:
        raise WorldDataError(f"examples file {path} holds no examples")
    return CalibrationStream(f"examples:{path.name}", clips=np.stack([e.frames for e in examples]))


def load_calibration_source(spec: str, tabletop_episodes: int = 12, video_fps: float = DEFAULT_VIDEO_FPS,
                            topic: str | None = None) -> list[CalibrationStream]:
    """`tabletop`, a rosbag2 directory, a video file or a make-data examples .npz -> its streams."""
    if spec == "tabletop":
        return list(tabletop_streams(tabletop_episodes))
    path = Path(spec).expanduser()
    if path.is_dir():
        return [bag_stream(path, topic)]
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return [video_stream(path, video_fps)]
    if path.suffix == ".npz":
        return [examples_clips(path)]
    raise WorldDataError(f"calibration data {spec!r} is not 'tabletop', a bag directory, a video file "
                         f"({', '.join(VIDEO_SUFFIXES)}) or a make-data examples .npz"
                         + ("" if path.exists() else " (no such file or directory)"))
