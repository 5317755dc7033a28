"""The procedural street scenes: deterministic, Cityscapes palette, photo left."""

import io

import numpy as np
from PIL import Image

from pix2pix_tf.data import cityscapes_labels
from pix2pix_tf.data.datasets import streets, synthetic


def test_render_is_deterministic_and_seed_dependent():
    first = streets.render_pair([0, 0, 5], size=64)
    np.testing.assert_array_equal(first, streets.render_pair([0, 0, 5], size=64))
    assert not np.array_equal(first, streets.render_pair([0, 0, 6], size=64))
    assert first.shape == (64, 128, 3) and first.dtype == np.uint8


def test_label_map_uses_only_the_palette_and_shows_a_street():
    pair = streets.render_pair([1, 0, 0])
    labels = pair[:, 256:].reshape(-1, 3)
    palette = {tuple(color) for color in streets.PALETTE.tolist()}
    assert {tuple(color) for color in np.unique(labels, axis=0).tolist()} <= palette
    ids = cityscapes_labels.colors_to_labels(pair[None, :, 256:]).numpy()[0]
    present = {cityscapes_labels.CLASS_NAMES[i] for i in np.unique(ids) if i != 255}
    assert {"road", "sky", "building"} <= present or {"road", "sky", "vegetation"} <= present
    # Sky on top, road at the bottom (above the hood, if any).
    assert cityscapes_labels.CLASS_NAMES[ids[2, 128]] in ("sky", "building", "vegetation")
    assert "road" in {cityscapes_labels.CLASS_NAMES[i] for i in ids[200] if i != 255}


def test_photo_half_is_a_shaded_rendering_not_the_label_map():
    pair = streets.render_pair([2, 0, 0]).astype(np.float32)
    photo, labels = pair[:, :256], pair[:, 256:]
    assert np.abs(photo - labels).mean() > 20
    # Texture and noise: many more distinct colours than the label map.
    assert len(np.unique(photo.reshape(-1, 3), axis=0)) > 50 * len(
        np.unique(labels.reshape(-1, 3), axis=0)
    )


def test_many_classes_appear_across_scenes():
    seen = set()
    for index in range(8):
        pair = streets.render_pair([0, 0, index])
        ids = cityscapes_labels.colors_to_labels(pair[None, :, 256:]).numpy()
        seen |= {cityscapes_labels.CLASS_NAMES[i] for i in np.unique(ids) if i != 255}
    expected = {"road", "sidewalk", "building", "pole", "vegetation", "sky", "car", "person"}
    assert expected <= seen


def test_encoded_pair_is_a_512x256_jpeg_with_stable_bytes():
    data = synthetic.encode_pair(3, "train", 7)
    assert data == synthetic.encode_pair(3, "train", 7)
    assert data != synthetic.encode_pair(3, "val", 7)
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (512, 256)


def test_each_size_and_seed_is_its_own_config():
    names = {synthetic.config_name(16, 4, 0), synthetic.config_name(400, 50, 0)}
    names.add(synthetic.config_name(16, 4, 1))
    assert len(names) == 3
    config = synthetic.SyntheticStreets.get_builder_config(synthetic.config_name(16, 4, 1))
    assert config.name == "train16_val4_seed1"


def test_wide_scenes_render_at_the_aspect_of_a_non_square_image_size():
    """--image_size 64x128 renders 256x512 halves: the same street seen through a 2:1 frame."""
    assert synthetic.half_size(64) == synthetic.half_size("128x128") == (256, 256)
    assert synthetic.half_size("64x128") == synthetic.half_size("256x512") == (256, 512)
    assert synthetic.half_size("96x64") == (384, 256)
    wide = streets.render_pair([0, 0, 3], size=64, width=128)
    assert wide.shape == (64, 256, 3)
    np.testing.assert_array_equal(wide, streets.render_pair([0, 0, 3], size=64, width=128))
    labels = wide[:, 128:].reshape(-1, 3)
    palette = {tuple(color) for color in streets.PALETTE.tolist()}
    assert {tuple(color) for color in np.unique(labels, axis=0).tolist()} <= palette
    ids = cityscapes_labels.colors_to_labels(wide[None, :, 128:]).numpy()[0]
    assert cityscapes_labels.CLASS_NAMES[ids[1, 64]] in ("sky", "building", "vegetation")
    assert "road" in {cityscapes_labels.CLASS_NAMES[i] for i in ids[50] if i != 255}
    # Square scenes keep their pixels: the default width is the height.
    np.testing.assert_array_equal(
        streets.render_pair([0, 0, 5], size=64), streets.render_pair([0, 0, 5], 64, 64)
    )
    image = Image.open(io.BytesIO(synthetic.encode_pair(3, "train", 7, (256, 512))))
    assert image.size == (1024, 256)


def test_a_non_square_size_is_its_own_config_and_square_keeps_its_name():
    assert synthetic.config_name(16, 4, 0, (256, 256)) == "train16_val4_seed0"
    wide = synthetic.config_name(16, 4, 0, (256, 512))
    assert wide == "train16_val4_seed0_256x512"
    builder = synthetic.SyntheticStreets(config=wide, data_dir="/nonexistent")
    assert builder.sizes == (16, 4, 0) and builder.half == (256, 512)
    square = synthetic.SyntheticStreets(config="train16_val4_seed0", data_dir="/nonexistent")
    assert square.half == (256, 256)
