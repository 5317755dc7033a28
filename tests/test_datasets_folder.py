"""The user's own folders: side-by-side pairs, or A/ and B/ paired by name."""

import os
import shutil

import data_factory
import numpy as np
import pytest

from pix2pix_tf import config as config_lib
from pix2pix_tf import input_pipeline, prepare
from pix2pix_tf.datasets import base, folder


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
    report = prepare.prepare(_config(tmp_path, source))
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
    report = prepare.prepare(_config(tmp_path, source))
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
    report = prepare.prepare(config)
    assert report.examples == {"train": 3, "val": 3}
    assert set(report.skipped["train"]) == {"train/lonely", "train/twin"}
    assert "no file with the same name in B/" in report.skipped["train"]["train/lonely"]
    assert "ambiguous" in report.skipped["train"]["train/twin"]
    # A and B of different sizes come out at image_size, in the right order.
    config = config_lib.DataConfig(**{**config.__dict__, "image_size": 16, "load_size": 18})
    dataset = input_pipeline.build_dataset(
        config, "val", training=False, batch_size=3, with_keys=True
    )
    inputs, targets, keys = next(iter(dataset))
    assert inputs.shape == targets.shape == (3, 16, 16, 3)
    assert sorted(keys.numpy().tolist()) == [b"val/img0", b"val/img1", b"val/img2"]
    training = input_pipeline.build_dataset(config, "train", training=True, batch_size=2)
    assert next(iter(training))[0].shape == (2, 16, 16, 3)


def test_changed_source_files_are_prepared_again(tmp_path):
    source = tmp_path / "pairs"
    for index in range(4):
        _write(str(source / "train" / f"{index}.jpg"), data_factory.jpeg_pair(index))
        _write(str(source / "val" / f"{index}.jpg"), data_factory.jpeg_pair(index))
    config = _config(tmp_path, source)
    assert prepare.prepare(config).examples["train"] == 4
    assert prepare.prepare(config).reused
    _write(str(source / "train" / "new.jpg"), data_factory.jpeg_pair(9))
    report = prepare.prepare(config)
    assert not report.reused and report.examples["train"] == 5
    # Without its source, the prepared copy is still used.
    shutil.rmtree(source)
    assert prepare.prepare(config).reused
    assert input_pipeline.num_examples(config, "train") == 5


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
