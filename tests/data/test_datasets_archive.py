"""Safe archive scanning and extraction, with archives the tests build."""

import os
import tarfile

import data_factory
import pytest

from pix2pix_tf.data.datasets import archive


def _malicious(path, kind):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        data_factory.add_file(tar, "facades/train/1.jpg", data_factory.jpeg_pair(0))
        if kind == "parent":
            data_factory.add_file(tar, "../evil.jpg", b"x")
        elif kind == "nested_parent":
            data_factory.add_file(tar, "facades/train/../../../evil.jpg", b"x")
        elif kind == "absolute":
            data_factory.add_file(tar, "/tmp/evil.jpg", b"x")
        elif kind == "symlink_absolute":
            data_factory.add_link(tar, "facades/train/2.jpg", "/etc/passwd")
        elif kind == "symlink_parent":
            data_factory.add_link(tar, "facades/train/2.jpg", "../../../outside.jpg")
        elif kind == "hardlink_parent":
            data_factory.add_link(tar, "facades/train/2.jpg", "../outside.jpg", hard=True)
        elif kind == "fifo":
            info = tarfile.TarInfo("facades/train/pipe")
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
    return path


KINDS = [
    "parent",
    "nested_parent",
    "absolute",
    "symlink_absolute",
    "symlink_parent",
    "hardlink_parent",
    "fifo",
]


@pytest.mark.parametrize("kind", KINDS)
def test_scan_refuses_unsafe_entries(tmp_path, kind):
    path = _malicious(str(tmp_path / "facades.tar.gz"), kind)
    with pytest.raises(archive.UnsafeArchiveError, match="refusing to extract") as error:
        archive.scan(path)
    assert path in str(error.value)


def test_links_inside_the_archive_are_allowed(tmp_path):
    path = str(tmp_path / "ok.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        data_factory.add_file(tar, "data/train/1.jpg", b"one")
        data_factory.add_link(tar, "data/train/2.jpg", "1.jpg")
    listing = archive.scan(path)
    assert listing.files == {"data/train/1.jpg": 3}


def test_scan_lists_files_and_reads_samples(tmp_path):
    files = data_factory.berkeley_archive(
        str(tmp_path / "maps.tar.gz"), "maps", {"train": 3, "val": 2}
    )
    listing = archive.scan(str(tmp_path / "maps.tar.gz"), samples_per_directory=1)
    assert set(listing.files) == set(files)
    assert len(listing.samples) == 2
    for name, data in listing.samples.items():
        assert files[name] == data


@pytest.mark.parametrize("content", [b"", b"not a tar file at all" * 10, "truncated"])
def test_unreadable_archives_raise_archive_error(tmp_path, content):
    path = tmp_path / "broken.tar.gz"
    if content == "truncated":
        good = data_factory.write_tar(str(tmp_path / "good.tar.gz"), {"a.jpg": os.urandom(5000)})
        with open(good, "rb") as file:
            content = file.read()[:-800]
    path.write_bytes(content)
    with pytest.raises(archive.ArchiveError, match="cannot read this archive"):
        archive.scan(str(path))


def test_entry_problem_names_the_problem():
    info = tarfile.TarInfo("a/../../x")
    assert "climbs out" in archive.entry_problem(info)
    assert archive.entry_problem(tarfile.TarInfo("a/./b/../c.jpg")) is None
    assert archive.normalize_name("./a//b/c.jpg") == "a/b/c.jpg"


def test_scan_never_reads_a_member_over_the_cap(tmp_path):
    # 100 GiB declared in a header of a tiny .tar.gz: reading it whole would
    # need 100 GiB of memory (a MemoryError, or the machine swapping).
    path = str(tmp_path / "huge.tar.gz")
    data_factory.write_tar(path, {}, huge={"facades/train/1.jpg": 100 << 30})
    assert os.path.getsize(path) < 200
    with pytest.raises(archive.ArchiveError, match="cannot read this archive"):
        archive.scan(path, samples_per_directory=2)


def test_scan_samples_skip_members_over_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 100)
    path = data_factory.write_tar(
        str(tmp_path / "a.tar.gz"), {"d/big.jpg": b"x" * 101, "d/small.jpg": b"y" * 100}
    )
    listing = archive.scan(path, samples_per_directory=2)
    assert listing.files == {"d/big.jpg": 101, "d/small.jpg": 100}
    assert listing.samples == {"d/small.jpg": b"y" * 100}
