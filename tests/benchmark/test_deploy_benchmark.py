"""python -m pix2pix_tf.benchmark deploy: the --json shape on a tiny run (no timings
asserted), and the FCN-score of each export with a tiny segmenter."""

import json

import pytest
from export_fixtures import make_run

from pix2pix_tf.benchmark import __main__ as benchmark
from pix2pix_tf.evaluation import segmenter as segmentation

FIELDS = {"latency_ms_p50", "latency_ms_p95", "images_per_s", "file_mb"}
FCN_FIELDS = {"fcn_per_pixel_accuracy", "fcn_per_class_accuracy", "fcn_class_iou"}
# The float32 exports' outputs are within 1e-5 of the SavedModel's (PSNR > 100 dB on
# this run), far below the segmenter's usual logit gaps, so its labels can change only
# at near-ties: measured identical. 1e-3 of per-pixel accuracy is 8 of the 8192 pixels
# scored; the class means, over the few classes present, may move 1e-2 for that.
FCN_TOLERANCE = {
    "fcn_per_pixel_accuracy": 1e-3,
    "fcn_per_class_accuracy": 1e-2,
    "fcn_class_iou": 1e-2,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy_benchmark")
    workdir = str(root / "run")
    config, _ = make_run(workdir, output_gain=20.0, data_dir=str(root / "tfrecords"))
    return workdir, config


def _deploy_json(capsys, workdir, *extra):
    argv = ["deploy", "--workdir", workdir, "--json", "--rounds", "2", "--warmup", "1"]
    assert benchmark.main([*argv, "--parity", "val", "--max_examples", "2", *extra]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def test_deploy_benchmark_json_has_every_runtime(run, tmp_path, capsys):
    results, err = _deploy_json(capsys, run[0], "--segmenter_root", str(tmp_path))
    assert set(results) == {"saved_model", "litert", "onnx"}
    for values in results.values():
        assert FIELDS <= set(values)
        assert values["threads"] == 2 and values["input"] == [1, 64, 64, 3]
        assert values["latency_ms_p95"] >= values["latency_ms_p50"] > 0
        assert values["file_mb"] > 0 and values["examples"] == 2
        assert not FCN_FIELDS & set(values)
    assert results["saved_model"]["psnr_db"] is None
    assert results["litert"]["psnr_db"] >= 40.0 and results["onnx"]["psnr_db"] >= 40.0
    # No segmenter of the run's size: one line says so and names the command.
    skipped = [line for line in err.splitlines() if line.startswith("FCN-score skipped")]
    assert len(skipped) == 1 and "synthetic-64" in skipped[0]


def test_deploy_benchmark_fcn_score_of_float32_exports_equals_the_saved_models(
    run, tmp_path, capsys
):
    workdir, config = run
    root = str(tmp_path / "segmenters")
    seg_config = segmentation.SegmenterConfig(
        dataset="synthetic",
        image_size=64,
        filters=4,
        depth=2,
        batch_size=4,
        steps=20,
        steps_per_epoch=10,
    )
    segmentation.train_segmenter(seg_config, root, config.data)
    results, err = _deploy_json(capsys, workdir, "--segmenter_root", root)
    assert "FCN-score skipped" not in err
    reference = results["saved_model"]
    real = reference["fcn_real"]
    for values in [*results.values(), real]:
        assert FCN_FIELDS <= set(values)
        assert 0.0 <= values["fcn_class_iou"] <= values["fcn_per_class_accuracy"] <= 1.0
        assert 0.0 < values["fcn_per_pixel_accuracy"] <= 1.0
    for name in ("litert", "onnx"):
        for field, tolerance in FCN_TOLERANCE.items():
            assert abs(results[name][field] - reference[field]) <= tolerance, (name, field)


def test_deploy_benchmark_sensitivity_ranks_every_convolution(run, tmp_path, capsys):
    results, _ = _deploy_json(
        capsys,
        run[0],
        "--segmenter_root",
        str(tmp_path),
        "--quantize",
        "int8",
        "--representative_examples",
        "4",
        "--sensitivity",
    )
    sweep = results.pop("int8_sensitivity")
    assert set(results) == {"saved_model", "litert", "onnx", "litert_int8"}
    assert sweep["examples"] == 2 and sweep["int8"]["psnr_db"] >= 40.0
    rows = sweep["layers"]
    # The tiny U-Net (depth 4): 4 encoder convolutions, 3 decoder ones and the output.
    names = sorted(row["layer"] for row in rows)
    assert names == sorted(
        [f"encoder_{k}_conv" for k in range(1, 5)]
        + [f"decoder_{k}_deconv" for k in range(1, 4)]
        + ["output_deconv"]
    )
    gains = [row["gain_db"] for row in rows]
    assert gains == sorted(gains, reverse=True)
    for row in rows:
        assert row["gain_db"] == pytest.approx(row["psnr_db"] - sweep["int8"]["psnr_db"], abs=0.02)
        assert row["latency_ms_p50"] > 0


def test_deploy_benchmark_sensitivity_needs_a_run(tmp_path, capsys):
    assert benchmark.main(["deploy", "--model", str(tmp_path), "--sensitivity"]) == 2
    assert "--sensitivity needs --workdir" in capsys.readouterr().err
