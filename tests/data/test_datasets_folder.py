"""The user's own folders: side-by-side pairs, or A/ and B/ paired by name."""

import dataclasses
import io
import json
import os
import shutil

import data_factory
import numpy as np
import pipeline_helpers
import pytest

from pix2pix_tf import configs as config_lib
from pix2pix_tf.data import datasets, prepare
from pix2pix_tf.data.datasets import base, folder, images


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)


def _config(tmp_path, source):
    return config_lib.DataConfig(
        dataset="folder", source_dir=str(source), data_dir=str(tmp_path / "tfrecords")
    )


def test_side_by_side_without_splits_holds_out_val(tmp_path):
    source = tmp_path / "pairs"
    for index in range(30):
        fmt = "PNG" if index % 3 == 0 else "JPEG"
        data = data_factory.encode(data_factory.random_pixels(index, 32, 64 + index % 2), fmt)
        _write(str(source / f"pair{index:02d}.{fmt.lower()}"), data)
    _write(str(source / "notes.txt"), b"ignored: not an image name")
    report = prepare.prepare(_config(tmp_path, source)).report
    assert report.examples["train"] + report.examples["val"] == 30
    assert report.examples["val"] >= 1
    held_out = {f"pair{i:02d}.{'png' if i % 3 == 0 else 'jpeg'}" for i in range(30)}
    held_out = {key for key in held_out if folder._held_out(key)}
    assert report.examples["val"] == max(1, len(held_out))
    assert report.num_skipped == 0 and not any(report.converted.values())


def test_split_folders_are_used_as_splits(tmp_path):
    source = tmp_path / "pairs"
    for split, count in (("train", 3), ("val", 2), ("test", 1)):
        for index in range(count):
            _write(str(source / split / f"{index}.jpg"), data_factory.jpeg_pair(index))
    report = prepare.prepare(_config(tmp_path, source)).report
    assert report.examples == {"train": 3, "val": 2, "test": 1}


def test_a_and_b_folders_pair_by_name(tmp_path):
    source = tmp_path / "ab"
    for split in ("train", "val"):
        for index in range(3):
            a = data_factory.encode(data_factory.random_pixels(index, 40, 30), "JPEG")
            b = data_factory.encode(data_factory.random_pixels(index + 9, 20, 20), "PNG")
            _write(str(source / split / "A" / f"img{index}.jpg"), a)
            _write(str(source / split / "B" / f"img{index}.png"), b)
    _write(str(source / "train" / "A" / "lonely.jpg"), data_factory.jpeg_pair(5))
    _write(str(source / "train" / "B" / "twin.jpg"), data_factory.jpeg_pair(6))
    _write(str(source / "train" / "B" / "twin.png"), data_factory.jpeg_pair(7))
    _write(str(source / "train" / "A" / "twin.jpg"), data_factory.jpeg_pair(8))
    config = _config(tmp_path, source)
    report = prepare.prepare(config).report
    assert report.examples == {"train": 3, "val": 3}
    assert set(report.skipped["train"]) == {"train/lonely", "train/twin"}
    assert "no file with the same name in B/" in report.skipped["train"]["train/lonely"]
    assert "ambiguous" in report.skipped["train"]["train/twin"]
    # A and B of different sizes come out at image_size, in the right order.
    config = config_lib.DataConfig(**{**config.__dict__, "image_size": 16, "load_size": 18})
    dataset = pipeline_helpers.build(config, "val", training=False, batch_size=3, with_keys=True)
    inputs, targets, keys = next(iter(dataset))
    assert inputs.shape == targets.shape == (3, 16, 16, 3)
    assert sorted(keys.numpy().tolist()) == [b"val/img0", b"val/img1", b"val/img2"]
    training = pipeline_helpers.build(config, "train", training=True, batch_size=2)
    assert next(iter(training))[0].shape == (2, 16, 16, 3)


def test_changed_source_files_are_prepared_again(tmp_path):
    source = tmp_path / "pairs"
    for index in range(4):
        _write(str(source / "train" / f"{index}.jpg"), data_factory.jpeg_pair(index))
        _write(str(source / "val" / f"{index}.jpg"), data_factory.jpeg_pair(index))
    config = _config(tmp_path, source)
    assert prepare.prepare(config).report.examples["train"] == 4
    assert prepare.prepare(config).report.reused
    _write(str(source / "train" / "new.jpg"), data_factory.jpeg_pair(9))
    report = prepare.prepare(config).report
    assert not report.reused and report.examples["train"] == 5
    # Without its source, the prepared copy is still used.
    shutil.rmtree(source)
    assert prepare.prepare(config).report.reused
    assert pipeline_helpers.num_examples(config, "train") == 5


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(base.PrepareError, match="not a directory"):
        prepare.prepare(_config(tmp_path, tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(base.PrepareError, match="found no side-by-side images"):
        prepare.prepare(_config(tmp_path, tmp_path / "empty"))
    mixed = tmp_path / "mixed"
    _write(str(mixed / "train" / "1.jpg"), data_factory.jpeg_pair(1))
    _write(str(mixed / "val" / "A" / "1.jpg"), data_factory.jpeg_pair(1))
    _write(str(mixed / "val" / "B" / "1.jpg"), data_factory.jpeg_pair(1))
    with pytest.raises(base.PrepareError, match="one layout"):
        prepare.prepare(_config(tmp_path, mixed))


def test_config_names_are_readable_and_unique():
    first = folder.config_name("/data/My Pairs")
    assert first.startswith("my_pairs-")
    assert first != folder.config_name("/other/My Pairs")
    assert np.all([c.isalnum() or c in "_-" for c in first])


def _records(report, split, features=("image_a", "image_b")):
    """{key: (stored bytes per feature)} read from the split's TFRecord shards."""
    import glob

    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(report.directory, f"*-{split}.tfrecord-*")))
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in (*features, "key")}
    out = {}
    for serialized in tf.data.TFRecordDataset(files):
        parsed = tf.io.parse_single_example(serialized, spec)
        out[parsed["key"].numpy().decode()] = tuple(parsed[n].numpy() for n in features)
    return out


def _metadata(report):
    with open(os.path.join(report.directory, "metadata.json")) as file:
        return json.load(file)


def test_bad_file_hashed_into_val_is_skipped_not_held_out(tmp_path):
    # Names whose hash keeps them in train, plus one empty file that the hash holds out.
    names = [f"pair{i:02d}.jpg" for i in range(80) if not folder._held_out(f"pair{i:02d}.jpg")]
    assert folder._held_out("bad59.jpg")
    source = tmp_path / "pairs"
    for index, name in enumerate(names[:30]):
        _write(str(source / name), data_factory.jpeg_pair(index))
    _write(str(source / "bad59.jpg"), b"")
    report = prepare.prepare(_config(tmp_path, source)).report
    assert report.examples["train"] + report.examples["val"] == 30
    assert report.examples["val"] == 1
    assert report.skipped == {"train": {"bad59.jpg": "empty file (0 bytes)"}, "val": {}}


def test_unpaired_files_are_not_held_out(tmp_path):
    source = tmp_path / "ab"
    for index in range(8):
        _write(str(source / "A" / f"img{index}.jpg"), data_factory.jpeg_pair(index))
        _write(str(source / "B" / f"img{index}.jpg"), data_factory.jpeg_pair(index + 20))
    for index in range(4):
        _write(str(source / "A" / f"extra{index}.jpg"), data_factory.jpeg_pair(index + 40))
    assert folder._held_out("extra1")
    report = prepare.prepare(_config(tmp_path, source)).report
    assert report.examples == {"train": 7, "val": 1}
    assert sorted(report.skipped["train"]) == [f"extra{index}" for index in range(4)]


def test_failed_rebuild_keeps_the_previous_copy(tmp_path):
    source = tmp_path / "pairs"
    for index in range(6):
        _write(str(source / "train" / f"{index}.jpg"), data_factory.jpeg_pair(index))
        _write(str(source / "val" / f"{index}.jpg"), data_factory.jpeg_pair(index + 9))
    config = _config(tmp_path, source)
    first = prepare.prepare(config).report
    # The user adds files that make the train split mostly unusable.
    for index in range(8):
        _write(str(source / "train" / f"broken{index}.jpg"), b"")
    with pytest.raises(base.BadDatasetError) as error:
        prepare.prepare(config)
    assert f"previously prepared copy in {first.directory} is unchanged" in str(error.value)
    assert prepare.is_prepared(datasets.locate(config))
    assert prepare.load_prepared(config).num_examples("train") == 6
    assert not os.path.exists(os.path.join(config.data_dir, prepare.STAGING_DIR, "folder"))
    assert os.listdir(os.path.dirname(first.directory)) == ["1.0.0"]
    # Fixed, the next prepare rebuilds and swaps the new copy in.
    for index in range(8):
        os.remove(source / "train" / f"broken{index}.jpg")
    _write(str(source / "train" / "new.jpg"), data_factory.jpeg_pair(30))
    report = prepare.prepare(config).report
    assert not report.reused and report.examples["train"] == 7
    assert report.directory == first.directory
    assert os.listdir(os.path.dirname(first.directory)) == ["1.0.0"]


def _suffix_pairs(root, count, suffixes=("_input", "_target"), seed=0):
    files = {}
    for index in range(count):
        stem = f"city_{index:06d}"
        a = data_factory.encode(data_factory.random_pixels(seed + index, 32, 32), "JPEG")
        b = data_factory.encode(data_factory.random_pixels(seed + index + 99, 32, 32), "PNG")
        _write(str(root / f"{stem}{suffixes[0]}.jpg"), a)
        _write(str(root / f"{stem}{suffixes[1]}.png"), b)
        files[stem] = (a, b)
    return files


def test_suffix_paired_files_are_pairs_not_side_by_side(tmp_path):
    source = tmp_path / "cityscapes_pix2pix"
    train = _suffix_pairs(source / "train", 20)
    _suffix_pairs(source / "val", 3, seed=50)
    _write(str(source / "train" / "lonely_input.jpg"), data_factory.jpeg_pair(1))
    report = prepare.prepare(_config(tmp_path, source)).report
    assert report.examples == {"train": 20, "val": 3}
    assert report.skipped["train"] == {
        "train/lonely": "pairs with nothing: no lonely_target.* file"
    }
    assert "layout: suffix-paired files NAME_input (A) + NAME_target (B)" in report.summary()
    assert _metadata(report)["source"]["layout"] == {
        "kind": "suffix",
        "pair_suffixes": ["_input", "_target"],
    }
    records = _records(report, "train")
    assert records["train/city_000003"] == train["city_000003"]  # IN is A, OUT is B.


def test_longest_suffix_wins(tmp_path):
    source = tmp_path / "results"
    _suffix_pairs(source, 4, suffixes=("_real_A", "_real_B"))
    report = prepare.prepare(_config(tmp_path, source)).report
    assert sum(report.examples.values()) == 4 and report.num_skipped == 0
    assert "NAME_real_A (A) + NAME_real_B (B)" in report.summary()


def test_ambiguous_layouts_are_refused_with_the_options(tmp_path):
    mixed = tmp_path / "mixed"
    _suffix_pairs(mixed, 3)
    _write(str(mixed / "plain.jpg"), data_factory.jpeg_pair(1))
    with pytest.raises(base.PrepareError, match="ambiguous layout") as error:
        prepare.prepare(_config(tmp_path, mixed))
    assert "--pair_suffixes IN,OUT" in str(error.value) and "--folder_layout" in str(error.value)
    assert "\n" not in str(error.value)
    two = tmp_path / "two"
    _suffix_pairs(two, 1)
    _suffix_pairs(two, 3, suffixes=("_label", "_photo"), seed=20)
    with pytest.raises(base.PrepareError, match="more than one suffix pair"):
        prepare.prepare(_config(tmp_path, two))
    # Told how to read them, both folders prepare.
    config = dataclasses.replace(_config(tmp_path, mixed), folder_layout="suffix")
    report = prepare.prepare(config).report
    assert sum(report.examples.values()) == 3 and list(report.skipped["train"]) == ["plain.jpg"]
    config = dataclasses.replace(_config(tmp_path, two), pair_suffixes="_label,_photo")
    report = prepare.prepare(config).report
    assert sum(report.examples.values()) == 3
    assert report.skipped["train"]["city_000000_input.jpg"] == (
        "name ends in neither _label nor _photo"
    )


def test_layout_options_decide_staleness(tmp_path):
    source = tmp_path / "sketches"
    _suffix_pairs(source, 4, suffixes=("_sketch", "_render"))
    config = _config(tmp_path, source)
    first = prepare.prepare(config).report  # No known suffix: side-by-side images.
    assert sum(first.examples.values()) == 8 and "side-by-side" in first.layout
    config = dataclasses.replace(config, pair_suffixes="_sketch,_render")
    second = prepare.prepare(config).report
    assert not second.reused and sum(second.examples.values()) == 4
    assert second.directory == first.directory
    assert prepare.prepare(config).report.reused


def test_pair_suffixes_flag_is_validated():
    for text in ("_input", "_a,_A", ",_b", "_a,_b,_c"):
        with pytest.raises(ValueError, match="--pair_suffixes"):
            config_lib.build_config("folder", source_dir="x", pair_suffixes=text)
    with pytest.raises(ValueError, match="--folder_layout"):
        config_lib.build_config("folder", source_dir="x", folder_layout="grid")
    config = config_lib.build_config("folder", source_dir="x", pair_suffixes="_in,_gt")
    assert config.data.pair_suffixes == "_in,_gt"


def test_exif_rotated_pair_is_split_upright(tmp_path):
    from PIL import Image

    source = tmp_path / "phone"
    for index in range(3):
        _write(str(source / "train" / f"{index}.jpg"), data_factory.jpeg_pair(index))
    upright = data_factory.random_pixels(7, 32, 64)  # A left, B right.
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # 32 wide, 64 high.
    exif = Image.Exif()
    exif[0x0112] = 6  # "Rotate 90 degrees clockwise to display".
    _write(str(source / "val" / "rotated.jpg"), data_factory.encode(stored, "JPEG", exif=exif))
    report = prepare.prepare(_config(tmp_path, source)).report
    assert report.converted["val"] == {"val/rotated.jpg": "EXIF orientation 6 applied"}
    assert "1 images converted to PNG (1 EXIF orientation 6 applied)" in report.summary()
    (png,) = _records(report, "val", features=("image",))["val/rotated.jpg"]
    assert Image.open(io.BytesIO(png)).size == (64, 32)


def test_duplicates_across_splits_are_reported(tmp_path):
    source = tmp_path / "copies"
    for index in range(5):
        _write(str(source / "val" / f"v{index}.jpg"), data_factory.jpeg_pair(index))
    for index in range(6):
        _write(str(source / "train" / f"t{index}.jpg"), data_factory.jpeg_pair(index + 2))
    report = prepare.prepare(_config(tmp_path, source)).report
    duplicates = {
        "count": 3,
        "examples": [
            ["train/t0.jpg", "val/v2.jpg"],
            ["train/t1.jpg", "val/v3.jpg"],
            ["train/t2.jpg", "val/v4.jpg"],
        ],
    }
    assert report.duplicates == {"train/val": duplicates}
    assert _metadata(report)["duplicates"] == {"train/val": duplicates}
    assert "warning: 3 train examples are byte-identical copies of val examples" in (
        report.summary()
    )


def test_ab_duplicates_need_both_files_equal(tmp_path):
    source = tmp_path / "ab"
    for split, b_seed in (("train", 0), ("val", 0), ("test", 5)):
        for index in range(2):
            _write(str(source / split / "A" / f"{index}.jpg"), data_factory.jpeg_pair(index))
            b = data_factory.jpeg_pair(index + b_seed + 10)
            _write(str(source / split / "B" / f"{index}.jpg"), b)
    report = prepare.prepare(_config(tmp_path, source)).report
    assert set(report.duplicates) == {"train/val"}  # test's B files differ.
    assert report.duplicates["train/val"]["count"] == 2


def test_broken_links_and_huge_files_are_skipped_and_listed(tmp_path):
    source = tmp_path / "pairs"
    for index in range(4):
        _write(str(source / "train" / f"{index}.jpg"), data_factory.jpeg_pair(index))
        _write(str(source / "val" / f"{index}.jpg"), data_factory.jpeg_pair(index))
    os.symlink(str(tmp_path / "gone.jpg"), source / "train" / "link.jpg")
    with open(source / "train" / "huge.jpg", "wb") as file:
        file.truncate(images.MAX_IMAGE_BYTES + 1)  # Sparse: no disk or memory used.
    report = prepare.prepare(_config(tmp_path, source)).report
    assert report.examples == {"train": 4, "val": 4}
    assert "broken symbolic link" in report.skipped["train"]["train/link.jpg"]
    assert report.skipped["train"]["train/huge.jpg"].startswith("too large (268,435,457 bytes")
