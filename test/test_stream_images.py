"""decode_image / decode_compressed: every supported encoding, padding, byte order and bad input."""
import cv2
import numpy as np
import pytest

from vljepa_ros.errors import ImageConversionError
from vljepa_ros.stream.images import decode_compressed, decode_image, encode_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def padded(pixels: np.ndarray, pad_bytes: int) -> tuple[int, bytes]:
    """Row-major bytes with `pad_bytes` of junk after each row, as some drivers send."""
    rows = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad_bytes), 0xAB, dtype=np.uint8)
    return rows.shape[1] + pad_bytes, np.concatenate([rows, junk], axis=1).tobytes()


@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB),
    ("bgr8", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 77, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 77, np.uint8)])),
])
@pytest.mark.parametrize("pad_bytes", [0, 3])
def test_colour_encodings_round_trip_to_rgb(encoding, pixels, pad_bytes):
    step, data = padded(np.ascontiguousarray(pixels), pad_bytes)
    rgb = decode_image(encoding, 5, 7, step, data, False)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 7, 3) and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, RGB)


def test_mono8_is_replicated_to_three_channels():
    gray = RGB[:, :, 0].copy()
    step, data = padded(gray, 1)
    rgb = decode_image("mono8", 5, 7, step, data, 0)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], gray)


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_is_scaled_to_8_bits_in_either_byte_order(bigendian):
    values = np.array([[0, 65535, 32768, 257]], dtype=np.uint16)
    data = values.astype(">u2" if bigendian else "<u2").tobytes()
    rgb = decode_image("mono16", 1, 4, 8, data, bigendian)
    np.testing.assert_array_equal(rgb[0, :, 1], [0, 255, 127, 1])


def test_encode_then_decode_is_identity():
    for encoding in ("rgb8", "bgr8"):
        height, width, step, data = encode_image(RGB, encoding)
        np.testing.assert_array_equal(decode_image(encoding, height, width, step, data, False), RGB)


@pytest.mark.parametrize("kwargs, message", [
    (dict(encoding="yuv422"), "unsupported image encoding"),
    (dict(height=0), "zero size"),
    (dict(width=0), "zero size"),
    (dict(data=bytes(5 * 21 - 1)), "needs 105 bytes, got 104"),
    (dict(step=20), "step 20 is smaller"),
])
def test_bad_raw_images_raise_clear_errors(kwargs, message):
    args = dict(encoding="rgb8", height=5, width=7, step=21, data=bytes(5 * 21), is_bigendian=False) | kwargs
    with pytest.raises(ImageConversionError, match=message):
        decode_image(**args)


def test_png_is_lossless_and_jpeg_is_close():
    smooth = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_LINEAR)
    ok, png = cv2.imencode(".png", smooth[:, :, ::-1])
    assert ok
    np.testing.assert_array_equal(decode_compressed("png", png.tobytes()), smooth)
    ok, jpeg = cv2.imencode(".jpg", smooth[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = decode_compressed("rgb8; jpeg compressed bgr8", jpeg.tobytes())
    assert decoded.shape == (48, 64, 3)
    assert np.abs(decoded.astype(int) - smooth.astype(int)).mean() < 6  # RGB order kept (a swap would be far off)


def test_corrupt_truncated_and_empty_compressed_images_raise():
    ok, jpeg = cv2.imencode(".jpg", RGB)
    jpeg = jpeg.tobytes()
    with pytest.raises(ImageConversionError, match="truncated"):
        decode_compressed("jpeg", jpeg[: len(jpeg) // 2])
    with pytest.raises(ImageConversionError, match="corrupt"):
        decode_compressed("jpeg", b"\x00not a jpeg at all" * 10)
    with pytest.raises(ImageConversionError, match="no data"):
        decode_compressed("jpeg", b"")
    with pytest.raises(ImageConversionError, match="unsupported compressed format"):
        decode_compressed("16UC1; compressedDepth", jpeg)
