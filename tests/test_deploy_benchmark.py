"""python -m pix2pix_tf.benchmark deploy: the --json shape on a tiny run (no timings asserted)."""

import json

from export_fixtures import make_run

from pix2pix_tf.benchmark import __main__ as benchmark

FIELDS = {"latency_ms_p50", "latency_ms_p95", "images_per_s", "file_mb"}


def test_deploy_benchmark_json_has_every_runtime(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    make_run(workdir, output_gain=20.0, data_dir=str(tmp_path / "tfrecords"))
    argv = ["deploy", "--workdir", workdir, "--json", "--rounds", "2", "--warmup", "1"]
    assert benchmark.main([*argv, "--parity", "val", "--max_examples", "2"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(results) == {"saved_model", "litert", "onnx"}
    for values in results.values():
        assert FIELDS <= set(values)
        assert values["threads"] == 2 and values["input"] == [1, 64, 64, 3]
        assert values["latency_ms_p95"] >= values["latency_ms_p50"] > 0
        assert values["file_mb"] > 0 and values["examples"] == 2
    assert results["saved_model"]["psnr_db"] is None
    assert results["litert"]["psnr_db"] >= 40.0 and results["onnx"]["psnr_db"] >= 40.0
