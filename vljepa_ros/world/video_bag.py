"""A video file as a camera bag: its frames resampled to a camera rate, as sensor_msgs/CompressedImage (jpeg)
in a rosbag2 directory, replayable with `vljepa-ros demo --bag` and usable as `eval --ood-bag`.

    python -m vljepa_ros.world.video_bag /usr/share/doc/opencv-doc/examples/data/vtest.avi --bag data/ood/vtest --fps 10

The bag holds no ground truth (its groundtruth.json has no segments): what the video shows is not in any
world's language. Frames are shrunk so that their longer side is at most --max-side pixels (the model sees
64 px; a smaller bag replays and decodes faster), keeping the aspect ratio.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vljepa_ros.world.types import BASE_STAMP_NS, WorldStream

DEFAULT_MAX_SIDE = 256
DEFAULT_TOPIC = "/camera/image_raw/compressed"


def frames_stream(name: str, frames: np.ndarray, fps: float) -> WorldStream:
    """Frames at `fps` as a WorldStream without ground truth (what a recorded camera bag reads back as)."""
    stamps_ns = BASE_STAMP_NS + np.arange(len(frames), dtype=np.int64) * int(round(1e9 / fps))
    stream = WorldStream(name=name, seed=-1, fps=float(fps), frames=np.ascontiguousarray(frames), stamps_ns=stamps_ns,
                         segments=[], action_items=[], label_bank=[])
    stream.validate()
    return stream


def write_frames_bag(path: Path, stream: WorldStream, topic: str = DEFAULT_TOPIC, jpeg_quality: int = 90,
                     overwrite: bool = False) -> Path:
    from vljepa_ros.world.bag_io import write_stream_bag

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_stream_bag(path, stream, topic=topic, compressed=True, storage="mcap", jpeg_quality=jpeg_quality,
                            overwrite=overwrite)


def video_bag(video: Path, bag: Path, fps: float = 10.0, max_side: int = DEFAULT_MAX_SIDE,
              topic: str = DEFAULT_TOPIC, jpeg_quality: int = 90, overwrite: bool = False) -> WorldStream:
    """Write the video at `video` as a CompressedImage bag at `bag`; returns the stream written."""
    from vljepa_ros.world.calibration import video_stream

    source = video_stream(Path(video), fps, max_side=max_side)  # shrunk while read: a long video fits in memory
    stream = frames_stream(f"video:{Path(video).stem}", source.frames, fps)
    write_frames_bag(bag, stream, topic, jpeg_quality, overwrite)
    return stream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video", type=Path, help="a video file OpenCV can read (.avi, .mp4, ...)")
    parser.add_argument("--bag", type=Path, required=True, help="rosbag2 directory to write")
    parser.add_argument("--fps", type=float, default=10.0, help="camera rate the video is resampled to (default: 10)")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help=f"longest image side in pixels, 0 keeps the video's (default: {DEFAULT_MAX_SIDE})")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"(default: {DEFAULT_TOPIC})")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="(default: 90)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    args = parser.parse_args(argv)
    stream = video_bag(args.video, args.bag, args.fps, args.max_side, args.topic, args.jpeg_quality, args.overwrite)
    height, width = stream.image_size
    print(json.dumps({"bag": str(args.bag), "video": str(args.video), "frames": stream.frame_count, "fps": stream.fps,
                      "width": width, "height": height}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
