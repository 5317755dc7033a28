"""The six Berkeley pix2pix datasets as one TFDS builder with a config each.

Where the archive comes from, in order:

1. `<manual_dir>/<name>.tar.gz` if it exists (`--manual_dir`, $PIX2PIX_MANUAL_DIR,
   default `<data_dir>/downloads/manual`). It is checked by content (splits,
   counts, image sizes), not by checksum: repacked copies are fine.
2. Otherwise it is downloaded with TFDS' download manager from
   `registry.DatasetInfo.url` ($PIX2PIX_DATASET_URL overrides the host) into
   `<data_dir>/downloads`, and must match the published MD5.

The archive is scanned once (unsafe entries refuse the whole archive), then
streamed with `dl_manager.iter_archive`: nothing is extracted to disk.
"""

from __future__ import annotations

import io
import os
import posixpath
import urllib.error
import urllib.request

import tensorflow_datasets as tfds
from PIL import Image

from pix2pix_tf.data import registry
from pix2pix_tf.data.datasets import archive, base, images

_PROBE_TIMEOUT_SECONDS = 20


class DatasetUnavailableError(base.PrepareError):
    """Neither a manual archive nor a download is available."""


class ChecksumError(base.PrepareError):
    """A downloaded archive does not match its published MD5."""


def archive_name(name: str) -> str:
    return f"{name}.tar.gz"


class Berkeley(base.PairBuilder, skip_registration=True):
    """The Berkeley pix2pix archives: `<name>/<split>/N.jpg`, A left, B right."""

    name = "berkeley"
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name=info.name, description=info.description)
        for info in registry.DATASETS.values()
        if info.builder == registry.BERKELEY
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put <name>.tar.gz (from {registry.BERKELEY_INDEX_URL}) into the manual "
        f"directory: --manual_dir DIR or ${registry.MANUAL_DIR_ENV}."
    )

    def __init__(self, *, manual_dir: str, **kwargs):
        self._manual_dir = manual_dir
        super().__init__(**kwargs)

    def _description(self) -> str:
        return registry.DATASETS[self.builder_config.name].description

    def _homepage(self) -> str:
        return "https://phillipi.github.io/pix2pix/"

    def _split_generators(self, dl_manager):
        info = registry.DATASETS[self.builder_config.name]
        path, verified_by = self._archive(dl_manager, info)
        listing = archive.scan(path, samples_per_directory=2)
        members = check_content(info, listing)
        self.info.metadata["source"] = {"archive": os.fspath(path), "verified_by": verified_by}
        return {
            split: self._generate_examples(
                dl_manager, path, split, {name: listing.files[name] for name in names}
            )
            for split, names in members.items()
        }

    def _generate_examples(self, dl_manager, path, split: str, sizes: dict[str, int]):
        """Reads the split's members in archive order; `sizes` are the declared sizes."""

        def items():
            for name, handle in dl_manager.iter_archive(path):
                name = archive.normalize_name(name)
                if name not in sizes:
                    continue
                # A member over the cap is listed with its declared size, never read.
                too_large = sizes[name] > archive.MAX_MEMBER_BYTES
                data = b"" if too_large else archive.read_member(handle)
                size = sizes[name] if too_large else len(data)
                yield f"{split}/{posixpath.basename(name)}", _reader(data, size)

        yield from self._checked_examples(split, f"{path} ({split})", items())

    def _archive(self, dl_manager, info: registry.DatasetInfo) -> tuple[str, str]:
        """Returns (archive path, "content" or "md5")."""
        manual = os.path.join(self._manual_dir, archive_name(info.name))
        if os.path.isfile(manual):
            return manual, "content"
        url = info.url
        problem = probe(url)
        if problem is None:
            try:
                path = os.fspath(dl_manager.download(url))
            except Exception as error:  # TFDS raises several types for network errors.
                problem = f"{type(error).__name__}: {error}"
        if problem is not None:
            raise DatasetUnavailableError(
                f"Cannot download the {info.name} archive from {url} ({problem}).\n"
                f"Without network access, download {url} elsewhere and put it at\n"
                f"  {os.path.abspath(manual)}\n"
                f"(or pass --manual_dir DIR, or set ${registry.MANUAL_DIR_ENV}=DIR, for a "
                f"directory holding {archive_name(info.name)}), then run the same command "
                f"again. ${registry.URL_ENV} can point to a mirror, e.g. "
                "http://host/{name}.tar.gz."
            )
        actual = archive.file_md5(path)
        if actual != info.md5:
            aside = path + ".md5-mismatch"
            os.replace(path, aside)
            raise ChecksumError(
                f"The archive downloaded from {url} has MD5 {actual}, expected {info.md5} "
                f"(the published one). The download is corrupt or the server now serves a "
                f"different file; it was moved aside to {aside}. Run the command again to "
                f"retry the download, or download the archive yourself and put it at "
                f"{os.path.abspath(manual)} (a manually supplied archive is checked by its "
                "content instead of the MD5)."
            )
        return path, "md5"


def _reader(data: bytes, size: int):
    def read() -> tuple[bytes]:
        images.check_size(size, archive.MAX_MEMBER_BYTES)
        return (data,)

    return read


def probe(url: str) -> str | None:
    """Returns why `url` cannot be reached, or None (only http(s) is probed).

    TFDS downloads without a timeout; this quick request makes a machine
    without network fail in seconds with a clear message instead of hanging.
    """
    if not url.startswith(("http://", "https://")):
        return None
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_SECONDS):
            return None
    except urllib.error.HTTPError as error:
        if error.code in (403, 405, 501):  # Some servers refuse HEAD but serve GET.
            return None
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def check_content(info: registry.DatasetInfo, listing: archive.ArchiveListing) -> dict:
    """Returns {split: archive member names}; raises if the archive is not `info`'s.

    Images are `[<name>/]<split>/<file>`; hidden files (`.DS_Store`, `._1.jpg`)
    and files elsewhere are ignored. Every split must be present and non-empty;
    where the table lists expected counts and a pair size, they must match.
    """
    members: dict[str, set[str]] = {split: set() for split in info.splits}
    for name in listing.files:
        parts = name.split("/")
        if len(parts) not in (2, 3) or parts[-1].startswith("."):
            continue
        if len(parts) == 3 and parts[0] != info.name:
            continue
        if parts[-2] in members:
            members[parts[-2]].add(name)
    where = f"{listing.path}: this is not the Berkeley {info.name} archive, or it is incomplete"
    expected_counts, expected_size = info.expected_counts, info.pair_size
    for split, names in members.items():
        if not names:
            raise base.BadDatasetError(
                f"{where}: no files in {info.name}/{split}/ (expected {info.name}/{split}/N.jpg)."
            )
        # Other files in a split folder are skipped and listed later.
        image_count = sum(images.is_image_name(name) for name in names)
        if split in expected_counts and image_count != expected_counts[split]:
            raise base.BadDatasetError(
                f"{where}: {image_count} images in {info.name}/{split}/, expected "
                f"{expected_counts[split]}."
            )
    if expected_size is not None:
        for name, data in listing.samples.items():
            if posixpath.dirname(name).split("/")[-1] not in members:
                continue
            try:
                size = Image.open(io.BytesIO(data)).size
            except (OSError, ValueError):
                continue  # A bad file is skipped and listed later, not fatal here.
            if size != expected_size:
                raise base.BadDatasetError(
                    f"{where}: {name} is {size[0]}x{size[1]}, expected "
                    f"{expected_size[0]}x{expected_size[1]}."
                )
    return members
