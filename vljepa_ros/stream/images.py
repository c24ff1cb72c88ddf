"""ROS image payloads -> RGB uint8 arrays, with no ROS types in the signatures.

The nodes pass the fields of sensor_msgs/Image and CompressedImage; bag readers pass the same.
Colour conversion goes through rosbags.image (the same tables cv_bridge uses); row padding and
size checks are done here because rosbags.image assumes step == width * bytes per pixel.
"""
from __future__ import annotations

import cv2
import numpy as np
from rosbags.image import image as rosbags_image

from vljepa_ros.errors import ImageConversionError

# encoding -> (channels, numpy dtype of one channel)
SUPPORTED_ENCODINGS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "u1"),
    "bgr8": (3, "u1"),
    "rgba8": (4, "u1"),
    "bgra8": (4, "u1"),
    "mono8": (1, "u1"),
    "mono16": (1, "u2"),
}

COMPRESSED_FORMATS = ("jpeg", "jpg", "png")


def decode_image(encoding: str, height: int, width: int, step: int, data: bytes,
                 is_bigendian: bool | int = False) -> np.ndarray:
    """Decode a raw image into a contiguous RGB uint8 array (height, width, 3).

    mono16 is scaled linearly to 8 bits (x * 255 / 65535), as cv_bridge does.
    Raises ImageConversionError for an unknown encoding, zero size, or data that does not hold
    height * step bytes.
    """
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image has zero size ({width}x{height}, encoding {encoding})")
    channels, channel_type = SUPPORTED_ENCODINGS[encoding]
    itemsize = np.dtype(channel_type).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width*bytes_per_pixel = {row_bytes} for {width}x{height} {encoding}")
    data = bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data
    if len(data) != height * step:
        raise ImageConversionError(
            f"{encoding} image {width}x{height} with step {step} needs {height * step} bytes, got {len(data)}")

    # Drop the row padding, then view the bytes with the message's byte order.
    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row_bytes]
    byte_order = ">" if is_bigendian else "<"
    pixels = np.ascontiguousarray(rows).view(np.dtype(byte_order + channel_type))
    pixels = pixels.astype(np.dtype(channel_type).newbyteorder("="), copy=False)
    pixels = pixels.reshape(height, width) if channels == 1 else pixels.reshape(height, width, channels)

    try:
        rgb = rosbags_image.convert_color(pixels, encoding, "rgb8")
    except rosbags_image.ImageError as error:  # defensive: every supported encoding converts
        raise ImageConversionError(f"cannot convert {encoding} to rgb8: {error}") from error
    # Copy: a no-op conversion returns a read-only view of the message bytes.
    return np.array(rgb, dtype=np.uint8, copy=True, order="C")


def decode_compressed(format: str, data: bytes) -> np.ndarray:  # noqa: A002 (the ROS field is named format)
    """Decode a CompressedImage payload (JPEG or PNG) into RGB uint8 (H, W, 3).

    `format` is the ROS field ("jpeg", "png", "rgb8; jpeg compressed bgr8", ...); the payload's
    own magic bytes decide the decoder. Raises ImageConversionError for empty, truncated or
    corrupt data and for formats that are not JPEG/PNG (e.g. compressedDepth).
    """
    format_lower = (format or "").lower()
    if format_lower and not any(name in format_lower for name in COMPRESSED_FORMATS):
        raise ImageConversionError(f"unsupported compressed format {format!r}; supported: jpeg, png")
    if len(data) == 0:
        raise ImageConversionError(f"compressed image ({format or 'no format'}) has no data")
    buffer = np.frombuffer(data, dtype=np.uint8)
    # libjpeg decodes a truncated JPEG with a warning and grey fill; refuse it instead.
    if bytes(data[:2]) == b"\xff\xd8" and b"\xff\xd9" not in bytes(data[-64:]):
        raise ImageConversionError(f"JPEG data is truncated ({len(data)} bytes, no end-of-image marker)")
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageConversionError(f"corrupt compressed image ({format or 'no format'}, {len(data)} bytes): "
                                   "OpenCV could not decode it")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def encode_image(rgb: np.ndarray, encoding: str = "rgb8") -> tuple[int, int, int, bytes]:
    """RGB uint8 -> (height, width, step, data) for rgb8 or bgr8; the inverse used by publishers and tests."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageConversionError(f"expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if encoding == "bgr8":
        rgb = rgb[:, :, ::-1]
    elif encoding != "rgb8":
        raise ImageConversionError(f"encode_image supports rgb8 and bgr8, not {encoding!r}")
    height, width = rgb.shape[:2]
    return height, width, width * 3, np.ascontiguousarray(rgb).tobytes()
