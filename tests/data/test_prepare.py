"""Preparing datasets: reuse, bad files, interruptions, offline use, downloads."""

import dataclasses
import functools
import http.server
import json
import os
import shutil
import threading

import data_factory
import fs_faults
import pytest
from conftest import CITYSCAPES_ARCHIVE, SHARED_DATASETS, requires_cityscapes

from pix2pix_tf import configs as config_lib
from pix2pix_tf.cli import prepare as prepare_cli
from pix2pix_tf.data import datasets, prepare, registry
from pix2pix_tf.data.datasets import archive, base, berkeley, synthetic

FACADES_SPLITS = {"train": 4, "val": 2, "test": 2}


@pytest.fixture(autouse=True)
def _no_user_environment(monkeypatch):
    monkeypatch.delenv(registry.MANUAL_DIR_ENV, raising=False)
    monkeypatch.delenv(registry.URL_ENV, raising=False)


def _config(tmp_path, **overrides) -> config_lib.DataConfig:
    values = {"data_dir": str(tmp_path / "tfrecords")}
    values.update(overrides)
    return config_lib.DataConfig(**values)


def _synthetic(tmp_path, **overrides):
    return _config(tmp_path, synthetic_train_examples=6, synthetic_val_examples=2, **overrides)


def test_synthetic_prepare_then_reuse(tmp_path):
    config = _synthetic(tmp_path)
    report = prepare.prepare(config).report
    assert not report.reused
    assert report.examples == {"train": 6, "val": 2}
    assert report.shards == {"train": 4, "val": 2}
    assert report.num_skipped == 0
    assert os.path.exists(os.path.join(report.directory, "dataset_info.json"))
    again = prepare.prepare(config).report
    assert again.reused and again.examples == report.examples
    assert again.directory == report.directory
    assert "Reused" in again.summary() and "train: 6 examples" in again.summary()


def test_other_synthetic_sizes_get_their_own_folder(tmp_path):
    first = prepare.prepare(_synthetic(tmp_path)).report
    bigger = prepare.prepare(
        dataclasses.replace(_synthetic(tmp_path), synthetic_val_examples=3)
    ).report
    reseeded = prepare.prepare(dataclasses.replace(_synthetic(tmp_path), synthetic_seed=1)).report
    assert len({first.directory, bigger.directory, reseeded.directory}) == 3
    assert bigger.examples["val"] == 3 and not bigger.reused


def test_interrupted_prepare_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    config = _synthetic(tmp_path)
    calls = []
    original = synthetic.encode_pair

    def failing(seed, split, index):
        calls.append(index)
        if len(calls) == 4:
            raise KeyboardInterrupt  # As if Ctrl-C arrived mid-generation.
        return original(seed, split, index)

    monkeypatch.setattr(synthetic, "encode_pair", failing)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare(config)
    assert not prepare.is_prepared(datasets.locate(config))
    monkeypatch.setattr(synthetic, "encode_pair", original)
    report = prepare.prepare(config).report
    assert not report.reused and report.examples == {"train": 6, "val": 2}


_SLOW_CHILD = """
import sys, time
from pix2pix_tf import configs as config
from pix2pix_tf.data import prepare
from pix2pix_tf.data.datasets import synthetic
render = synthetic.encode_pair
synthetic.encode_pair = lambda *args: (time.sleep(0.3), render(*args))[1]
prepare.prepare(config.DataConfig(
    data_dir=sys.argv[1], synthetic_train_examples=6, synthetic_val_examples=2))
"""


@pytest.mark.slow  # Starts a second Python with TensorFlow.
def test_killed_prepare_is_rebuilt(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    config = _synthetic(tmp_path)
    parent = os.path.dirname(datasets.locate(config).directory)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CHILD, config.data_dir],
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while not (
            os.path.isdir(parent) and any(n.startswith("incomplete.") for n in os.listdir(parent))
        ):
            assert child.poll() is None, "the child prepare ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # Mid-generation.
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not prepare.is_prepared(datasets.locate(config))
    report = prepare.prepare(config).report
    assert not report.reused and report.examples == {"train": 6, "val": 2}
    assert not [n for n in os.listdir(parent) if n.startswith("incomplete.")]


@pytest.mark.slow  # Starts two more Pythons with TensorFlow.
def test_concurrent_prepares_of_one_dataset_build_it_once(tmp_path):
    """Workers of a multi-worker run prepare the same shared data_dir at once."""
    import subprocess
    import sys

    config = _synthetic(tmp_path)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = [
        sys.executable,
        "-m",
        "pix2pix_tf.prepare",
        "--data_dir",
        config.data_dir,
        "--synthetic_train_examples",
        str(config.synthetic_train_examples),
        "--synthetic_val_examples",
        str(config.synthetic_val_examples),
    ]
    children = [
        subprocess.Popen(
            command,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    # One of them built it; the other waited for the lock and reused it.
    assert sum("Preparing synthetic" in output for output in outputs) == 1, outputs
    assert sum("Reused synthetic" in output for output in outputs) == 1, outputs
    report = prepare.prepare(config).report
    assert report.reused and report.examples == {"train": 6, "val": 2}


def test_leftovers_of_a_killed_prepare_are_removed(tmp_path):
    config = _synthetic(tmp_path)
    directory = datasets.locate(config).directory
    # What a killed run leaves: TFDS' temporary folder with partial shards.
    leftover = os.path.join(os.path.dirname(directory), "incomplete.ABC123_1.0.0")
    os.makedirs(leftover)
    with open(os.path.join(leftover, "synthetic_streets-train.tfrecord-00000-of-00004"), "w"):
        pass
    assert not prepare.is_prepared(datasets.locate(config))
    prepare.prepare(config)
    assert prepare.is_prepared(datasets.locate(config))
    assert not os.path.exists(leftover)


def _facades(tmp_path, extra=None, counts=FACADES_SPLITS):
    manual = tmp_path / "manual"
    files = data_factory.berkeley_archive(str(manual / "facades.tar.gz"), "facades", counts, extra)
    return _config(tmp_path, dataset="facades", manual_dir=str(manual)), files


def _records(report, split):
    """{key: stored image bytes} read straight from the split's TFRecord shards."""
    import glob

    import tensorflow as tf

    from pix2pix_tf.data import pipeline as input_pipeline

    files = sorted(glob.glob(os.path.join(report.directory, f"*-{split}.tfrecord-*")))
    assert len(files) == report.shards[split]
    out = {}
    for serialized in tf.data.TFRecordDataset(files):
        features = input_pipeline.parse(serialized, side_by_side=True)
        out[features["key"].numpy().decode()] = features["image"].numpy()
    return out


def test_manual_archive_bad_files_are_skipped_and_listed(tmp_path):
    extra = {f"facades/train/{name}": data for name, data in data_factory.bad_files().items()}
    converted = data_factory.convertible_files()
    extra.update({f"facades/train/{name}": data for name, data in converted.items()})
    extra["facades/train/.DS_Store"] = b"junk"  # Hidden: ignored, not listed.
    extra["facades/README.txt"] = b"not in a split"  # Outside the splits: ignored.
    extra["facades/train/notes.txt"] = b"in a split, not an image"  # Skipped and listed.
    # 4 good + 6 convertible + 6 bad in train: over a third is bad, which is tolerated.
    config, files = _facades(tmp_path, extra)
    report = prepare.prepare(config).report
    assert report.examples == {"train": 10, "val": 2, "test": 2}
    skipped = [*data_factory.bad_files(), "notes.txt"]
    assert sorted(report.skipped["train"]) == sorted(f"train/{name}" for name in skipped)
    assert "empty file" in report.skipped["train"]["train/empty.jpg"]
    assert "not an image" in report.skipped["train"]["train/notes.txt"]
    assert sorted(report.converted["train"]) == sorted(f"train/{n}" for n in converted)
    assert "6 files skipped" in report.summary()
    records = _records(report, "train")
    # Original JPEG bytes are kept exactly; converted files are PNGs.
    for index in range(1, 5):
        assert records[f"train/{index}.jpg"] == files[f"facades/train/{index}.jpg"]
    assert all(records[f"train/{name}"].startswith(b"\x89PNG") for name in converted)
    # The reused report lists the same files.
    assert prepare.prepare(config).report.skipped == report.skipped


def test_mostly_bad_archive_is_an_error(tmp_path):
    bad = data_factory.bad_files()
    extra = {f"facades/train/{index}-{name}": bad[name] for index in range(2) for name in bad}
    config, _ = _facades(tmp_path, extra, counts={"train": 2, "val": 1, "test": 1})
    with pytest.raises(base.BadDatasetError, match="10 of 12 files in the 'train' split"):
        prepare.prepare(config)
    assert not prepare.is_prepared(datasets.locate(config))


def test_manual_archive_is_checked_by_content(tmp_path):
    # A wrong Cityscapes archive: splits present but counts far off.
    manual = tmp_path / "manual"
    data_factory.berkeley_archive(
        str(manual / "cityscapes.tar.gz"), "cityscapes", {"train": 3, "val": 1}
    )
    config = _config(tmp_path, dataset="cityscapes", manual_dir=str(manual))
    with pytest.raises(base.BadDatasetError, match="3 images in cityscapes/train/, expected 2975"):
        prepare.prepare(config)
    # A facades archive without its test split.
    config, _ = _facades(tmp_path, counts={"train": 2, "val": 1})
    with pytest.raises(base.BadDatasetError, match="no files in facades/test/"):
        prepare.prepare(config)


def test_malicious_manual_archive_is_refused(tmp_path):
    import tarfile

    manual = tmp_path / "manual"
    manual.mkdir()
    with tarfile.open(manual / "facades.tar.gz", "w:gz") as tar:
        for split in FACADES_SPLITS:
            data_factory.add_file(tar, f"facades/{split}/1.jpg", data_factory.jpeg_pair(1))
        data_factory.add_link(tar, "facades/train/2.jpg", "/etc/passwd")
    config = _config(tmp_path, dataset="facades", manual_dir=str(manual))
    with pytest.raises(archive.UnsafeArchiveError, match="symbolic link"):
        prepare.prepare(config)
    assert not prepare.is_prepared(datasets.locate(config))


def test_manual_dir_from_environment(tmp_path, monkeypatch):
    config, _ = _facades(tmp_path)
    monkeypatch.setenv(registry.MANUAL_DIR_ENV, config.manual_dir)
    report = prepare.prepare(dataclasses.replace(config, manual_dir=None)).report
    assert report.examples["train"] == 4


def test_offline_error_names_the_url_and_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.URL_ENV, "http://127.0.0.1:1/{name}.tar.gz")
    config = _config(tmp_path, dataset="maps", manual_dir=str(tmp_path / "my archives"))
    with pytest.raises(berkeley.DatasetUnavailableError) as error:
        prepare.prepare(config)
    message = str(error.value)
    assert "http://127.0.0.1:1/maps.tar.gz" in message
    assert os.path.join(str(tmp_path / "my archives"), "maps.tar.gz") in message
    assert registry.MANUAL_DIR_ENV in message
    assert not prepare.is_prepared(datasets.locate(config))


def _downloaded(config) -> list[str]:
    downloads = os.path.join(config.data_dir, "downloads")
    return [name for _, _, files in os.walk(downloads) for name in files]


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path/served on 127.0.0.1; yields the URL template."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/{{name}}.tar.gz"
    server.shutdown()
    server.server_close()


def test_download_from_local_http_server_with_good_md5(tmp_path, monkeypatch, http_server):
    served, url = http_server
    path = str(served / "facades.tar.gz")
    data_factory.berkeley_archive(path, "facades", FACADES_SPLITS)
    info = dataclasses.replace(registry.DATASETS["facades"], md5=archive.file_md5(path))
    monkeypatch.setitem(registry.DATASETS, "facades", info)
    monkeypatch.setenv(registry.URL_ENV, url)
    config = _config(tmp_path, dataset="facades")
    report = prepare.prepare(config).report
    assert report.examples == FACADES_SPLITS
    with open(os.path.join(report.directory, "metadata.json")) as file:
        assert json.load(file)["source"]["verified_by"] == "md5"
    assert any(name.endswith(".tar.gz") for name in _downloaded(config))


def test_download_with_bad_md5_is_a_clear_error(tmp_path, monkeypatch, http_server):
    served, url = http_server
    data_factory.berkeley_archive(str(served / "facades.tar.gz"), "facades", FACADES_SPLITS)
    monkeypatch.setenv(registry.URL_ENV, url)
    config = _config(tmp_path, dataset="facades")
    with pytest.raises(berkeley.ChecksumError) as error:
        prepare.prepare(config)
    message = str(error.value)
    actual = archive.file_md5(str(served / "facades.tar.gz"))
    assert registry.DATASETS["facades"].md5 in message and actual in message
    assert "facades.tar.gz" in message and "manually supplied" in message
    assert not prepare.is_prepared(datasets.locate(config))
    assert any(name.endswith(".md5-mismatch") for name in _downloaded(config))


def test_command_line(tmp_path, capsys):
    argv = ["--data_dir", str(tmp_path / "tfrecords"), "--synthetic_train_examples", "5"]
    argv += ["--synthetic_val_examples", "2"]
    assert prepare_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "train: 5 examples" in out and "val: 2 examples" in out
    assert str(tmp_path / "tfrecords") in out
    missing = ["--dataset", "folder", "--source_dir", str(tmp_path / "no")]
    assert prepare_cli.main([*argv, *missing]) == 1
    assert "not a directory" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.real_data
@requires_cityscapes
def test_real_cityscapes_archive(tmp_path):
    config = _config(tmp_path, dataset="cityscapes", manual_dir=SHARED_DATASETS)
    report = prepare.prepare(config).report
    assert report.examples == {"train": 2975, "val": 500}
    assert report.num_skipped == 0
    assert os.path.exists(CITYSCAPES_ARCHIVE)
    assert prepare.prepare(config).report.reused


@pytest.mark.slow
@pytest.mark.real_data
@requires_cityscapes
def test_real_cityscapes_download_is_checked_against_the_published_md5(
    tmp_path, monkeypatch, http_server
):
    # The shared copy was repacked: served as a download, its MD5 must be refused.
    served, url = http_server
    os.symlink(CITYSCAPES_ARCHIVE, served / "cityscapes.tar.gz")
    monkeypatch.setenv(registry.URL_ENV, url)
    config = _config(tmp_path, dataset="cityscapes")
    with pytest.raises(berkeley.ChecksumError) as error:
        prepare.prepare(config)
    assert "expected 32569df708076e427e9cd02abbca7748" in str(error.value)
    assert archive.file_md5(CITYSCAPES_ARCHIVE) in str(error.value)
    # Put where the message says, the same file is accepted by its content.
    manual = os.path.join(config.data_dir, "downloads", "manual")
    os.makedirs(manual)
    os.symlink(CITYSCAPES_ARCHIVE, os.path.join(manual, "cityscapes.tar.gz"))
    assert prepare.prepare(config).report.examples == {"train": 2975, "val": 500}


def _cli(argv, capsys):
    """(exit code, error lines) of the command line; never a traceback."""
    code = prepare_cli.main(argv)
    err = capsys.readouterr().err  # Also holds TFDS' progress bars.
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error")]


def test_data_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    code, err = _cli(["--data_dir", str(tmp_path / "file")], capsys)
    assert code == 1 and len(err) == 1
    assert err[0].startswith(f"error: --data_dir {tmp_path / 'file'}: is a file")


def test_read_only_data_dir_is_one_line(tmp_path, capsys):
    data_dir = str(tmp_path / "readonly")
    with fs_faults.read_only_directory(data_dir):
        code, err = _cli(["--data_dir", data_dir, "--synthetic_train_examples", "2"], capsys)
    assert code == 1 and len(err) == 1, err
    assert f"--data_dir {data_dir}" in err[0] and "Read-only file system" in err[0]
    assert "writable --data_dir" in err[0]


def _noise_pairs(directory, count, start=0):
    import numpy as np

    for index in range(start, start + count):
        pixels = np.random.default_rng(index).integers(0, 256, (128, 256, 3), dtype=np.uint8)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"{index}.png"), "wb") as file:
            file.write(data_factory.encode(pixels, "PNG"))  # ~100 KB, incompressible.


def test_full_disk_is_one_line_and_keeps_the_previous_copy(tmp_path, capsys):
    source = str(tmp_path / "pairs")
    _noise_pairs(os.path.join(source, "train"), 3)
    _noise_pairs(os.path.join(source, "val"), 1, start=50)
    data_dir = str(tmp_path / "small")
    argv = ["--data_dir", data_dir, "--dataset", "folder", "--source_dir", source]
    config = _config(tmp_path, dataset="folder", source_dir=source, data_dir=data_dir)
    with fs_faults.small_filesystem(data_dir, 1 << 20):
        assert prepare_cli.main(argv) == 0
        capsys.readouterr()
        _noise_pairs(os.path.join(source, "train"), 12, start=3)  # 1.5 MB: no room.
        code, err = _cli(argv, capsys)
        assert code == 1 and len(err) == 1, err
        assert f"--data_dir {data_dir}" in err[0] and "No space left on device" in err[0]
        assert "previously prepared copy" in err[0]
        report = prepare.load_prepared(config).report  # Reads, never prepares.
        assert report.examples["train"] + report.examples.get("val", 0) == 4
        leftovers = [
            name
            for _, directories, _ in os.walk(data_dir)
            for name in directories
            if name.startswith("incomplete.") or name == prepare.STAGING_DIR
        ]
        assert leftovers in ([], [prepare.STAGING_DIR]), leftovers
        assert not os.listdir(os.path.join(data_dir, prepare.STAGING_DIR))
        # A first prepare that runs out of space leaves nothing that looks complete.
        shutil.rmtree(os.path.join(data_dir, "folder"))
        code, err = _cli(argv, capsys)
        assert code == 1 and len(err) == 1 and "No space left on device" in err[0], err
        assert not prepare.is_prepared(datasets.locate(config))


def test_help_does_not_import_tensorflow():
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys\nfrom pix2pix_tf import prepare\n"
        "try:\n    prepare.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'tensorflow_datasets' not in sys.modules, 'tfds imported'\n"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert "--pair_suffixes" in result.stdout and "--folder_layout" in result.stdout
    assert result.stderr == ""
    assert seconds < 1.5, seconds


def test_archive_member_over_the_cap_is_skipped_with_its_declared_size(tmp_path, monkeypatch):
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, (128, 256, 3), dtype=np.uint8)
    big = data_factory.encode(noise, "PNG")  # About 100 KB.
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 50_000)  # A real cap is 256 MiB.
    config, _ = _facades(tmp_path, {"facades/train/big.png": big})
    report = prepare.prepare(config).report
    assert report.examples == FACADES_SPLITS
    reason = report.skipped["train"]["train/big.png"]
    assert reason.startswith(f"too large ({len(big):,} bytes; files over 50,000 bytes")


def test_archive_declaring_a_huge_member_is_one_clear_error(tmp_path, capsys):
    manual = tmp_path / "manual"
    files = {f"facades/{split}/1.jpg": data_factory.jpeg_pair(1) for split in FACADES_SPLITS}
    path = str(manual / "facades.tar.gz")
    data_factory.write_tar(path, files, huge={"facades/train/huge.jpg": 100 << 30})
    argv = ["--dataset", "facades", "--manual_dir", str(manual)]
    code, err = _cli([*argv, "--data_dir", str(tmp_path / "tfrecords")], capsys)
    assert code == 1 and len(err) == 1, err
    assert "cannot read this archive" in err[0] and path in err[0]


def test_duplicates_across_archive_splits_are_reported(tmp_path):
    same = data_factory.jpeg_pair(1)
    extra = {"facades/train/copy.jpg": same, "facades/test/copy.jpg": same}
    config, _ = _facades(tmp_path, extra)
    report = prepare.prepare(config).report
    assert report.duplicates["train/test"]["count"] == 1
    assert report.duplicates["train/test"]["examples"] == [["train/copy.jpg", "test/copy.jpg"]]
    assert "warning: 1 train examples are byte-identical copies of test examples" in (
        report.summary()
    )


def test_the_prepared_location_is_the_tfds_builders(tmp_path):
    """datasets.locate derives the directory from the builder class (a Folder builder
    scans its source when made); it is the one TFDS' builder itself uses."""
    source = tmp_path / "pairs"
    for split in ("train", "val"):
        for index in range(2):
            path = source / split / f"{index}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data_factory.jpeg_pair(index))
    configs = [
        _synthetic(tmp_path),
        config_lib.DataConfig(dataset="facades", data_dir=str(tmp_path / "tfrecords")),
        config_lib.DataConfig(
            dataset="folder", source_dir=str(source), data_dir=str(tmp_path / "tfrecords")
        ),
    ]
    for config in configs:
        location = datasets.locate(config)
        builder = datasets.get_builder(config, location)
        assert location.directory == os.fspath(builder.data_dir)
        assert prepare.is_prepared(location) == builder.is_prepared() is False
    prepare.prepare(configs[0])
    location = datasets.locate(configs[0])
    assert prepare.is_prepared(location) == datasets.get_builder(configs[0], location).is_prepared()


def test_readers_take_the_resolved_dataset_without_looking_anything_up(tmp_path, monkeypatch):
    """Resolved once: building the pipeline opens no builder and re-reads no JSON."""
    from pix2pix_tf.data import pipeline as input_pipeline

    config = _synthetic(tmp_path)
    dataset = prepare.prepare(config)
    assert dataset.direction == "BtoA" and dataset.image_hw == (256, 256)
    assert dataset.identity()["train"]["examples"] == dataset.num_examples("train") == 6

    def refuse(*args, **kwargs):
        raise AssertionError("looked up again")

    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds, "builder_from_directory", refuse)
    monkeypatch.setattr(datasets, "locate", refuse)
    monkeypatch.setattr(registry, "dataset_info", refuse)
    monkeypatch.setattr("builtins.open", refuse)
    for training in (True, False):
        batches = input_pipeline.build_dataset(dataset, "train", training=training, batch_size=2)
        inputs, targets = next(iter(batches))
        assert inputs.shape == targets.shape == (2, 256, 256, 3)


def test_tfds_public_shard_sizes_cannot_give_our_shards():
    """Why datasets/base.py overrides ShardConfig: TFDS' public DownloadConfig fields
    do not reach its shard count (should a TFDS release fix that, use them instead)."""
    import tensorflow_datasets as tfds

    public = tfds.download.DownloadConfig(
        min_shard_size=base.TARGET_SHARD_BYTES, max_shard_size=2 * base.TARGET_SHARD_BYTES
    ).get_shard_config()
    cityscapes_bytes, cityscapes_examples = 90 << 20, 2975
    assert public.get_number_shards(cityscapes_bytes, cityscapes_examples) == 1
    assert public.get_number_shards(100 << 10, 8) == 1
    ours = base.DownloadConfig().get_shard_config()
    assert ours.get_number_shards(cityscapes_bytes, cityscapes_examples) == 23
    assert ours.get_number_shards(100 << 10, 8) == base.MIN_SHARDS
