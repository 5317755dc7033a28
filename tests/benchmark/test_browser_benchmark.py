"""python -m pix2pix_tf.benchmark browser: on a tiny run at one small size, one round."""

import json

import pytest
from browser_helpers import chromium_path, launched_chromium
from export_fixtures import make_run

from pix2pix_tf.benchmark import browser_benchmark


def test_browser_benchmark_reports_both_demos_and_the_download(tmp_path, capsys):
    with launched_chromium():  # Skips without a Chromium (fails under CI).
        pass
    workdir = str(tmp_path / "run")
    make_run(workdir, data_dir=str(tmp_path / "tfrecords"))
    argv = ["--workdir", workdir, "--sizes", "64x64", "--rounds", "1", "--images", "1"]
    argv += ["--quantize", "float16", "--chromium", chromium_path(), "--json"]
    assert browser_benchmark.main(argv) == 0
    results = json.loads(capsys.readouterr().out)
    entry = results["64x64"]
    assert entry["server"]["backend"] == "server" and entry["browser"]["backend"] == "wasm"
    assert entry["ratio_latency"] > 0 and entry["ratio_first_image"] > 0
    download = results["download"]
    assert download["float16"]["model_mb"] < 0.6 * download["float32"]["model_mb"]
    assert download["float32"]["runtime_mb"] == pytest.approx(14.2, abs=0.1)
