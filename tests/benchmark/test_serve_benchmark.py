"""The serve benchmark runs end to end on a tiny export (no timing assertions)."""

import json

import pytest
from export_fixtures import make_run

from pix2pix_tf.benchmark import __main__ as dispatcher
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import graph as serving


def test_serve_benchmark_json(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    make_run(workdir)
    export_dir = str(tmp_path / "exported")
    export_lib.export(workdir, export_dir, warmup=False)
    args = ["serve", "--model", export_dir, "--repeats", "2", "--warmup", "1", "--json"]
    args += ["--batch_sizes", "1", "3", "--input_size", "40", "72"]
    assert dispatcher.main(args) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["model"].endswith("/1") and results["image_size"] == 64
    assert results["input_size"] == [40, 72]
    # A native-size export runs the generator at the input padded to multiples of 16.
    assert results["serving_size"] == "native" and results["network_size"] == [48, 80]
    assert sorted(results["batch_sizes"]) == ["1", "3"]
    for entry in results["batch_sizes"].values():
        for stats in (entry, entry["generator"]):
            assert stats["images_per_s"] > 0
            assert 0 < stats["p50_ms"] <= stats["p95_ms"]
        # The ratio of the reported medians (both rounded to 0.01 ms).
        ratio = entry["p50_ms"] / entry["generator"]["p50_ms"]
        assert entry["overhead_ratio_p50"] == pytest.approx(ratio, rel=0.02)
        # The bytes signature runs the same generator plus decoding, resizing and PNG
        # encoding of every image: it takes more CPU time than the generator alone.
        assert entry["cpu_overhead"] > 0.0


def test_serve_benchmark_bad_model(tmp_path, capsys):
    assert dispatcher.main(["serve", "--model", str(tmp_path)]) == 2
    assert "no saved_model.pb" in capsys.readouterr().err


def test_serve_benchmark_training_size_export(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    make_run(workdir)
    export_dir = str(tmp_path / "exported")
    options = serving.ServingOptions(serving_size="training")
    export_lib.export(workdir, export_dir, options=options, warmup=False)
    args = ["serve", "--model", export_dir, "--repeats", "1", "--warmup", "0", "--json"]
    assert dispatcher.main(args + ["--batch_sizes", "1", "--input_size", "40", "72"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["serving_size"] == "training" and results["network_size"] == [64, 64]
