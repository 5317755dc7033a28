"""Checking and converting single source images."""

import io

import data_factory
import numpy as np
import pytest
from PIL import Image

from pix2pix_tf.data import formats
from pix2pix_tf.data.datasets import images


def _decoded(data: bytes, mode: str = "RGB") -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.mode == mode
    return np.asarray(image)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_rgb_jpeg_and_png_keep_their_bytes(fmt):
    data = data_factory.encode(data_factory.random_pixels(1), fmt)
    checked = images.check_image(data, side_by_side=True)
    assert checked.data == data
    assert not checked.converted
    assert (checked.width, checked.height) == (64, 32)
    assert checked.kinds == (formats.RGB, formats.RGB)


@pytest.mark.parametrize("name", sorted(data_factory.convertible_files()))
def test_other_modes_and_formats_become_png(name):
    data = data_factory.convertible_files()[name]
    checked = images.check_image(data, side_by_side=True)
    assert checked.converted
    assert checked.data.startswith(b"\x89PNG")
    gray = name.startswith("gray")
    shape = (32, 64) if gray else (32, 64, 3)
    assert _decoded(checked.data, "L" if gray else "RGB").shape == shape
    kind = formats.GRAY if gray else formats.RGB
    assert checked.kinds == (kind, kind)


@pytest.mark.parametrize("name", sorted(data_factory.gray_files()))
def test_gray_jpeg_and_png_keep_their_bytes_and_bits(name):
    import tensorflow as tf

    data = data_factory.gray_files()[name]
    checked = images.check_image(data, side_by_side=False)
    assert checked.data == data and not checked.converted
    deep = name == "gray16.png"
    assert checked.kinds == ((formats.GRAY16,) if deep else (formats.GRAY,))
    # TensorFlow reads the pixels Pillow does, all 16 bits of them (JPEG decoders
    # round their inverse DCT differently, as for RGB JPEGs).
    dtype = tf.uint16 if deep else tf.uint8
    decoded = tf.io.decode_image(data, channels=1, dtype=dtype).numpy()[..., 0]
    expected = np.asarray(Image.open(io.BytesIO(data)))
    atol = 2 if name.endswith(".jpg") else 0
    np.testing.assert_allclose(decoded.astype(int), expected.astype(int), atol=atol, rtol=0)


def test_sixteen_bit_rgb_png_is_converted_and_scaled():
    import tensorflow as tf

    pixels = data_factory.random_pixels(2).astype(np.uint16) * 257
    data = tf.io.encode_png(tf.constant(pixels)).numpy()
    checked = images.check_image(data, side_by_side=True)
    assert checked.converted and checked.reason == "16-bit RGB PNG reduced to 8 bits"
    np.testing.assert_array_equal(_decoded(checked.data), (pixels // 257).astype(np.uint8))


def test_deep_single_channel_images_become_16_bit_png():
    # A floating-point depth map (TIFF mode F): the deepest point becomes 65535.
    depth = np.linspace(0.0, 12.5, 16 * 32, dtype=np.float32).reshape(16, 32)
    checked = images.check_image(data_factory.encode(depth, "TIFF"), side_by_side=False)
    assert checked.converted and checked.reason == "F TIFF scaled to 16 bits"
    assert checked.kinds == (formats.GRAY16,)
    stored = _decoded(checked.data, "I;16")
    expected = np.round(depth.astype(np.float64) * (65535.0 / float(depth.max())))
    np.testing.assert_array_equal(stored, expected.astype(np.uint16))
    # 32-bit integers within 16 bits keep their values.
    values = (np.arange(16 * 32, dtype=np.int32).reshape(16, 32) * 97) % 60000
    checked = images.check_image(data_factory.encode(values, "TIFF"), side_by_side=False)
    np.testing.assert_array_equal(_decoded(checked.data, "I;16"), values)


def test_gray_content_in_rgb_files_is_recognised_per_half():
    color = data_factory.random_pixels(5, 64, 128)
    gray = np.repeat(color[..., :1], 3, axis=-1)
    # Colourisation pairs: gray left, colour right; exact in PNG, near in JPEG (whose
    # chroma subsampling mixes colour into the gray half next to the seam).
    pair = np.concatenate([gray[:, :64], color[:, 64:]], axis=1)
    for fmt in ("PNG", "JPEG"):
        checked = images.check_image(data_factory.encode(pair, fmt), side_by_side=True)
        assert checked.kinds == (formats.RGB_GRAY, formats.RGB), fmt
    # One channel off by one in a PNG is colour: lossless files must be exact.
    almost = gray.copy()
    almost[3, 5, 1] += 1
    checked = images.check_image(data_factory.encode(almost, "PNG"), side_by_side=False)
    assert checked.kinds == (formats.RGB,)


def test_transparency_is_composited_over_white():
    rgba = np.zeros((16, 32, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 255)  # Opaque red, then fully transparent black.
    checked = images.check_image(data_factory.encode(rgba, "PNG"), side_by_side=True)
    rgb = _decoded(checked.data)
    np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(rgb[0, -1], [255, 255, 255])


@pytest.mark.parametrize("name", sorted(data_factory.bad_files()))
def test_unusable_files_raise_with_a_reason(name):
    with pytest.raises(images.BadImageError) as error:
        images.check_image(data_factory.bad_files()[name], side_by_side=True)
    expected = {
        "empty.jpg": "empty file",
        "text.jpg": "not an image",
        "truncated.jpg": "truncated",
        "truncated.png": "truncated",
        "tiny.jpg": "too small",
    }[name]
    assert expected in str(error.value)


def test_size_limits_depend_on_layout():
    data = data_factory.encode(data_factory.random_pixels(3, 16, 24), "PNG")
    # 24 pixels wide: too narrow for two 16-pixel halves, fine as one image.
    with pytest.raises(images.BadImageError, match="each half"):
        images.check_image(data, side_by_side=True)
    assert images.check_image(data, side_by_side=False).width == 24


def test_odd_width_pairs_are_kept():
    data = data_factory.encode(data_factory.random_pixels(4, 32, 65), "JPEG")
    checked = images.check_image(data, side_by_side=True)
    assert checked.width == 65 and checked.data == data


def test_image_names():
    assert images.is_image_name("a/b/1.JPG")
    assert not images.is_image_name("a/.hidden.jpg")
    assert not images.is_image_name("notes.txt")


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_before_splitting(orientation):
    upright = data_factory.random_pixels(3, 32, 64)  # A left, B right.
    # What a camera stores for each orientation: the pixels before the tag's turn.
    stored = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = data_factory.encode(Image.fromarray(upright).transpose(stored), "PNG", exif=exif)
    checked = images.check_image(data, side_by_side=True)
    assert checked.converted and checked.reason == f"EXIF orientation {orientation} applied"
    assert (checked.width, checked.height) == (64, 32)
    pixels = np.asarray(Image.open(io.BytesIO(checked.data)))
    np.testing.assert_array_equal(pixels, upright)


def test_conversions_say_why():
    converted = data_factory.convertible_files()
    assert images.check_image(converted["cmyk.jpg"], side_by_side=True).reason == "CMYK JPEG"
    assert images.check_image(data_factory.jpeg_pair(0), side_by_side=True).reason == ""
