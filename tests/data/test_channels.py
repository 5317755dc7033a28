"""Gray and 16-bit images from prepare to the input pipeline and training:
--input_channels / --output_channels and --input_bits / --output_bits."""

import json
import os

import data_factory
import numpy as np
import pipeline_helpers
import pytest
from PIL import Image

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import prepare


def _write(path, image: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path)


def _gray(seed: int, size=(32, 48)) -> np.ndarray:
    return data_factory.random_pixels(seed, *size)[..., 0]


def _depth(seed: int, size=(32, 48)) -> np.ndarray:
    """A 16-bit depth map using all 16 bits (values that 8 bits cannot hold)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65536, size, dtype=np.uint16)


def _gray_to_depth(root, count=6):
    """A/ 8-bit gray PNGs, B/ 16-bit gray PNGs; returns {stem: (gray, depth)}."""
    pairs = {}
    for index in range(count):
        split = "val" if index == 0 else "train"
        gray, depth = _gray(index), _depth(index)
        _write(str(root / split / "A" / f"{index}.png"), gray)
        _write(str(root / split / "B" / f"{index}.png"), depth)
        pairs[f"{split}/{index}"] = (gray, depth)
    return pairs


def _data(tmp_path, source, **fields):
    fields = {"direction": "AtoB", "image_size": 32, **fields}
    return config_lib.DataConfig(
        dataset="folder", source_dir=str(source), data_dir=str(tmp_path / "tfrecords"), **fields
    )


def _native(data_config, split="val"):
    dataset = pipeline_helpers.build(
        data_config, split, training=False, batch_size=1, with_keys=True, native_size=True
    )
    return {key.numpy()[0].decode(): (a[0].numpy(), b[0].numpy()) for a, b, key in dataset}


def test_gray_and_16_bit_images_are_kept_and_read_exactly(tmp_path):
    pairs = _gray_to_depth(tmp_path / "src")
    data = _data(tmp_path, tmp_path / "src", input_channels=1, output_channels=1)
    report = prepare.prepare(data).report
    assert report.image_kinds["A"] == {"gray": {"count": 6, "example": "train/A/1.png"}}
    assert report.image_kinds["B"]["gray16"]["count"] == 6
    assert "images: A: 6 8-bit gray; B: 6 16-bit gray" in report.summary()
    assert not any(report.converted.values())  # The PNGs' own bytes are stored.
    bits, notes = pipeline_helpers.resolve_formats(data, report.image_kinds)
    assert bits == (8, 16)
    dataset = prepare.prepare(data)  # The same, resolved once for every reader.
    assert (dataset.input_format.bits, dataset.target_format.bits) == (8, 16)
    assert list(dataset.notes) == notes
    assert any("read and exported at 16 bits (--output_bits 16)" in note for note in notes)
    (key, (inputs, targets)), *_ = _native(data).items()
    gray, depth = pairs[key]
    assert inputs.shape == (32, 48, 1) and targets.shape == (32, 48, 1)
    np.testing.assert_allclose(inputs[..., 0], gray / 127.5 - 1.0, atol=1e-6)
    # All 16 bits survive: one 16-bit step is 3e-5 in [-1, 1].
    np.testing.assert_allclose(targets[..., 0], depth / 65535.0 * 2.0 - 1.0, atol=1e-6)


def test_8_bits_asked_for_16_bit_targets_reads_them_at_8_bits(tmp_path):
    pairs = _gray_to_depth(tmp_path / "src")
    data = _data(tmp_path, tmp_path / "src", output_channels=1, output_bits=8)
    prepare.prepare(data)
    _, notes = pipeline_helpers.resolve_formats(data, prepare.prepare(data).report.image_kinds)
    assert any("read at 8 bits (--output_bits 8)" in note for note in notes)
    (key, (_, targets)), *_ = _native(data).items()
    coarse = np.round(pairs[key][1] / 257.0)  # What an 8-bit reading keeps.
    np.testing.assert_allclose(targets[..., 0], coarse / 127.5 - 1.0, atol=1 / 127.5 + 1e-6)


def test_gray_images_are_read_as_rgb_for_three_channels(tmp_path):
    pairs = _gray_to_depth(tmp_path / "src")
    data = _data(tmp_path, tmp_path / "src")  # 3 channels each: the defaults.
    _, notes = pipeline_helpers.resolve_formats(data, prepare.prepare(data).report.image_kinds)
    assert "6 of 6 input images are grayscale; they are read as RGB (R = G = B) " in notes[0]
    assert "(--input_channels 1 trains on one channel)" in notes[0]
    (key, (inputs, targets)), *_ = _native(data).items()
    assert inputs.shape == (32, 48, 3) and targets.shape == (32, 48, 3)
    for channel in range(3):
        np.testing.assert_allclose(inputs[..., channel], pairs[key][0] / 127.5 - 1.0, atol=1e-6)
        np.testing.assert_allclose(targets[..., channel], pairs[key][1] / 32767.5 - 1, atol=1e-6)


def test_colour_images_for_one_channel_are_an_error_naming_a_file(tmp_path):
    source = tmp_path / "src"
    for index in range(4):
        split = "val" if index == 0 else "train"
        _write(str(source / split / "A" / f"{index}.png"), _gray(index))
        _write(str(source / split / "B" / f"{index}.jpg"), data_factory.random_pixels(index))
    kinds = prepare.prepare(_data(tmp_path, source)).report.image_kinds
    with pytest.raises(ValueError) as error:
        pipeline_helpers.resolve_formats(_data(tmp_path, source, output_channels=1), kinds)
    message = str(error.value)
    assert message.startswith("--output_channels 1, but 4 of 4 target images (B side) are colour")
    assert "e.g. train/B/1.jpg; pass --output_channels 3" in message
    # BtoA makes the colour side the input; the gray side may have one channel.
    flipped = _data(tmp_path, source, direction="BtoA", output_channels=1)
    with pytest.raises(ValueError, match="--input_channels 1"):
        flipped_gray = _data(tmp_path, source, direction="BtoA", input_channels=1)
        pipeline_helpers.resolve_formats(flipped_gray, kinds)
    assert pipeline_helpers.resolve_formats(flipped, kinds)[0][1] == 8
    with pytest.raises(ValueError, match="--output_channels 1, but 4 of 4 target images"):
        prepare.prepare(_data(tmp_path, source, output_channels=1))  # Checked when resolved.


def test_side_by_side_colourisation_reads_the_gray_half_as_one_channel(tmp_path):
    source = tmp_path / "src"
    color = {}
    for index in range(4):
        split = "val" if index == 0 else "train"
        pixels = data_factory.random_pixels(index, 32, 32)
        gray = np.repeat(pixels[..., :1], 3, axis=-1)  # Gray stored as RGB, left.
        _write(str(source / split / f"{index}.png"), np.concatenate([gray, pixels], axis=1))
        color[f"{split}/{index}.png"] = pixels
    data = _data(tmp_path, source, input_channels=1)
    report = prepare.prepare(data).report
    assert report.image_kinds == {
        "A": {"rgb_gray": {"count": 4, "example": "train/1.png"}},
        "B": {"rgb": {"count": 4, "example": "train/1.png"}},
    }
    _, notes = pipeline_helpers.resolve_formats(data, report.image_kinds)
    assert notes == [
        "4 of 4 input images are gray images stored as RGB; they are read as one channel."
    ]
    (key, (inputs, targets)), *_ = _native(data).items()
    np.testing.assert_allclose(inputs[..., 0], color[key][..., 0] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(targets, color[key] / 127.5 - 1.0, atol=1e-6)


@pytest.mark.parametrize("cache_decoded", [False, True])
def test_training_batches_have_the_asked_channels(tmp_path, cache_decoded):
    _gray_to_depth(tmp_path / "src", count=8)
    data = _data(
        tmp_path, tmp_path / "src", input_channels=1, output_channels=1, cache_decoded=cache_decoded
    )
    prepare.prepare(data)
    dataset = pipeline_helpers.build(data, "train", training=True, batch_size=2)
    inputs, targets = next(iter(dataset))
    assert inputs.shape == (2, 32, 32, 1) and targets.shape == (2, 32, 32, 1)
    # 16-bit targets: values between the 8-bit steps occur.
    steps = (targets.numpy() + 1.0) * 127.5
    assert np.abs(steps - np.round(steps)).max() > 0.01


def test_folder_prepared_before_kinds_were_recorded_is_prepared_again(tmp_path):
    _gray_to_depth(tmp_path / "src")
    data = _data(tmp_path, tmp_path / "src")
    report = prepare.prepare(data).report
    metadata_path = os.path.join(report.directory, "metadata.json")
    with open(metadata_path) as file:
        metadata = json.load(file)
    del metadata["image_kinds"]  # As an earlier version wrote it.
    with open(metadata_path, "w") as file:
        json.dump(metadata, file)
    assert prepare.prepare(data).report.image_kinds["B"]["gray16"]["count"] == 6


def test_a_dataset_without_kinds_is_rgb_and_refuses_one_channel(tmp_path):
    data = _data(tmp_path, tmp_path / "src")
    bits, notes = pipeline_helpers.resolve_formats(data, None)
    assert (bits, notes) == ((8, 8), [])
    with pytest.raises(ValueError, match="prepared by an earlier version of pix2pix-tf"):
        pipeline_helpers.resolve_formats(_data(tmp_path, tmp_path / "src", input_channels=1), None)
