"""The input benchmark runs end to end on a tiny dataset (no timing assertions)."""

import json
import os

from pix2pix_tf import configs as config_lib
from pix2pix_tf.benchmark import input_benchmark
from pix2pix_tf.data.datasets import synthetic


def test_benchmark_prints_one_json_object(tmp_path, capsys):
    data_dir = str(tmp_path / "tfrecords")
    argv = ["--dataset", "synthetic", "--preset", "tiny", "--data_dir", data_dir]
    argv += ["--rounds", "2", "--pairs", "3", "--warmup", "1", "--json"]
    assert input_benchmark.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("pairs_per_s", "baseline_pairs_per_s", "ratio", "ratio_vs_parallel"):
        assert summary[key] > 0
    assert summary["examples"] == 16 and summary["image_size"] == 64
    assert len(summary["rounds_pairs_per_s"]["ours"]) == 2
    # Resumed at the first epoch's last step (the default) against a fresh start.
    assert summary["resume_step"] == 15
    assert summary["first_batch_ms"] > 0 and summary["resumed_first_batch_ms"] > 0
    # The baselines read the records' original bytes as files.
    exported = os.path.join(data_dir, "downloads", "benchmark", "train16_val4_seed0-train")
    with open(os.path.join(exported, "000003.jpg"), "rb") as file:
        assert file.read() == synthetic.encode_pair(0, "train", 3)
    assert len(os.listdir(exported)) == 16


def test_baseline_batches_match_the_pipeline_contract(tmp_path):
    config = config_lib.build_config(preset="tiny", data_dir=str(tmp_path / "tfrecords")).data
    from pix2pix_tf.data import prepare

    prepared = prepare.prepare(config)
    directory = input_benchmark.export_jpegs(prepared, "train", str(tmp_path / "jpegs"))
    for parallel in (False, True):
        dataset = input_benchmark.baseline_dataset(directory, config, 0, parallel=parallel)
        inputs, targets = next(iter(dataset))
        assert inputs.shape == targets.shape == (1, 64, 64, 3)
        assert -1.0 <= float(inputs.numpy().min()) and float(inputs.numpy().max()) <= 1.0
