"""World streams as rosbag2 bags (mcap or sqlite3) with `rosbags`: pure Python, no rclpy.

A bag written here is a normal rosbag2 directory holding one image topic (sensor_msgs/msg/Image rgb8, or
sensor_msgs/msg/CompressedImage jpeg) plus `groundtruth.json` beside the storage file: segments, action items
and the label bank, indexed by frame and by stamp. Any other image bag (a real robot's) can be read too;
it simply comes back without ground truth.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from vljepa_ros.errors import VLJepaError
from vljepa_ros.ros_distro import BAG_METADATA_VERSION, rosbags_store_name
from vljepa_ros.stream.images import decode_compressed, decode_image, encode_image
from vljepa_ros.world.types import ActionItem, Segment, WorldStream

GROUNDTRUTH_FILE = "groundtruth.json"
GROUNDTRUTH_FORMAT = 1
DEFAULT_TOPIC = "/camera/image_raw"
IMAGE_MSGTYPE = "sensor_msgs/msg/Image"
COMPRESSED_MSGTYPE = "sensor_msgs/msg/CompressedImage"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
FRAME_ID = "camera"
# The running distribution's message definitions (and type hashes), as its `ros2 bag` writes them.
_TYPESTORE = get_typestore(Stores(rosbags_store_name()))


class BagError(VLJepaError):
    """A bag is missing, has no usable image topic, or disagrees with its groundtruth.json."""


def _header(stamp_ns: int):
    Header = _TYPESTORE.types["std_msgs/msg/Header"]
    Time = _TYPESTORE.types["builtin_interfaces/msg/Time"]
    return Header(stamp=Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000)), frame_id=FRAME_ID)


def _image_message(rgb: np.ndarray, stamp_ns: int):
    Image = _TYPESTORE.types[IMAGE_MSGTYPE]
    height, width, step, data = encode_image(rgb, "rgb8")
    return Image(header=_header(stamp_ns), height=height, width=width, encoding="rgb8", is_bigendian=0, step=step,
                 data=np.frombuffer(data, dtype=np.uint8))


def _compressed_message(rgb: np.ndarray, stamp_ns: int, jpeg_quality: int):
    CompressedImage = _TYPESTORE.types[COMPRESSED_MSGTYPE]
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise BagError(f"OpenCV could not JPEG-encode a frame of shape {rgb.shape}")
    return CompressedImage(header=_header(stamp_ns), format="jpeg", data=encoded.reshape(-1))


def groundtruth_dict(stream: WorldStream, topic: str) -> dict:
    height, width = stream.image_size
    return {
        "format": GROUNDTRUTH_FORMAT,
        "name": stream.name,
        "seed": stream.seed,
        "fps": stream.fps,
        "topic": topic,
        "frame_count": stream.frame_count,
        "image_height": height,
        "image_width": width,
        "first_stamp_ns": int(stream.stamps_ns[0]),
        "label_bank": list(stream.label_bank),
        "segments": [segment.to_dict() for segment in stream.segments],
        # stamps beside the indices so a reader that only sees messages can find the frames
        "action_items": [
            {**item.to_dict(), "before_ns": int(stream.stamps_ns[item.before_index]),
             "after_ns": int(stream.stamps_ns[item.after_index])}
            for item in stream.action_items
        ],
    }


def write_stream_bag(
    path: str | Path,
    stream: WorldStream,
    topic: str = DEFAULT_TOPIC,
    compressed: bool = False,
    storage: str = "mcap",
    jpeg_quality: int = 90,
    overwrite: bool = False,
) -> Path:
    """Write `stream` as a rosbag2 bag directory at `path` (+ groundtruth.json inside it); returns the path.

    Raw frames go out as sensor_msgs/Image rgb8, or as CompressedImage jpeg when `compressed`. The bag's
    record timestamps equal the header stamps, so replay keeps the stream's timing.
    """
    path = Path(path)
    if storage not in STORAGES:
        raise BagError(f"unknown bag storage {storage!r}; expected one of {sorted(STORAGES)}")
    stream.validate()
    if path.exists():
        if not overwrite:
            raise BagError(f"bag {path} already exists; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(path)
    msgtype = COMPRESSED_MSGTYPE if compressed else IMAGE_MSGTYPE
    with Writer(path, version=BAG_METADATA_VERSION, storage_plugin=STORAGES[storage]) as writer:
        connection = writer.add_connection(topic, msgtype, typestore=_TYPESTORE)
        for rgb, stamp_ns in zip(stream.frames, stream.stamps_ns):
            stamp_ns = int(stamp_ns)
            message = _compressed_message(rgb, stamp_ns, jpeg_quality) if compressed else _image_message(rgb, stamp_ns)
            writer.write(connection, stamp_ns, _TYPESTORE.serialize_cdr(message, msgtype))
    with open(path / GROUNDTRUTH_FILE, "w") as file:
        json.dump(groundtruth_dict(stream, topic), file, indent=1)
    return path


def message_to_rgb(message, msgtype: str) -> np.ndarray:
    """A deserialised Image (any encoding decode_image supports) or CompressedImage -> RGB uint8 (H,W,3)."""
    if msgtype == COMPRESSED_MSGTYPE:
        return decode_compressed(message.format, message.data.tobytes())
    return decode_image(message.encoding, message.height, message.width, message.step, message.data.tobytes(),
                        message.is_bigendian)


def _image_connection(reader: AnyReader, path: Path, topic: str | None):
    images = [c for c in reader.connections if c.msgtype in (IMAGE_MSGTYPE, COMPRESSED_MSGTYPE)]
    if topic is not None:
        matches = [c for c in reader.connections if c.topic == topic]
        if not matches:
            raise BagError(f"topic {topic!r} is not in bag {path}; it has {sorted({c.topic for c in reader.connections})}")
        if matches[0].msgtype not in (IMAGE_MSGTYPE, COMPRESSED_MSGTYPE):
            raise BagError(f"topic {topic!r} in bag {path} has type {matches[0].msgtype}, not an image type")
        return matches
    topics = sorted({c.topic for c in images})
    if len(topics) != 1:
        raise BagError(f"bag {path} has {len(topics)} image topics {topics}; name one with topic=...")
    return [c for c in images if c.topic == topics[0]]


def iter_bag_images(path: str | Path, topic: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(stamp_ns, RGB uint8 (H,W,3)) for every image message of `topic` (default: the bag's only image topic).

    The stamp is the header stamp, or the record timestamp where a recorder left the header empty.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    with AnyReader([path], default_typestore=_TYPESTORE) as reader:
        connections = _image_connection(reader, path, topic)
        for connection, record_ns, raw in reader.messages(connections=connections):
            message = reader.deserialize(raw, connection.msgtype)
            stamp_ns = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
            yield (stamp_ns or record_ns), message_to_rgb(message, connection.msgtype)


def read_groundtruth(path: str | Path) -> dict | None:
    """The bag's groundtruth.json as a dict, or None when the bag has none (a recorded bag)."""
    file = Path(path) / GROUNDTRUTH_FILE
    if not file.is_file():
        return None
    with open(file) as handle:
        data = json.load(handle)
    if data.get("format") != GROUNDTRUTH_FORMAT:
        raise BagError(f"{file} has format {data.get('format')!r}; this reader understands {GROUNDTRUTH_FORMAT}")
    return data


def read_stream_bag(path: str | Path, topic: str | None = None) -> WorldStream:
    """Read an image bag into a WorldStream; ground truth comes from groundtruth.json when present.

    Without it (a real robot's bag) segments, action items and label bank are empty and fps is estimated
    from the stamps.
    """
    path = Path(path)
    truth = read_groundtruth(path)
    if topic is None and truth is not None:
        topic = truth["topic"]
    stamps: list[int] = []
    frames: list[np.ndarray] = []
    for stamp_ns, rgb in iter_bag_images(path, topic):
        stamps.append(stamp_ns)
        frames.append(rgb)
    if not frames:
        raise BagError(f"bag {path} has no image messages on topic {topic!r}")
    shapes = {frame.shape for frame in frames}
    if len(shapes) != 1:
        raise BagError(f"bag {path} mixes image sizes {sorted(shapes)}; a stream needs one size")
    stamps_ns = np.array(stamps, dtype=np.int64)
    if truth is None:
        period_s = float(np.median(np.diff(stamps_ns))) / 1e9 if len(stamps) > 1 else 0.1
        stream = WorldStream(name=path.name, seed=-1, fps=1.0 / period_s, frames=np.stack(frames), stamps_ns=stamps_ns,
                             segments=[], action_items=[], label_bank=[])
        stream.validate()
        return stream
    if truth["frame_count"] != len(frames):
        raise BagError(f"bag {path} has {len(frames)} frames but {GROUNDTRUTH_FILE} describes {truth['frame_count']}")
    stream = WorldStream(
        name=str(truth["name"]),
        seed=int(truth["seed"]),
        fps=float(truth["fps"]),
        frames=np.stack(frames),
        stamps_ns=stamps_ns,
        segments=[Segment.from_dict(segment) for segment in truth["segments"]],
        action_items=[ActionItem.from_dict(item) for item in truth["action_items"]],
        label_bank=[str(label) for label in truth["label_bank"]],
    )
    stream.validate()
    return stream
