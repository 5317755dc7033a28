"""--keep_best METRIC: the best checkpoint by the periodic evaluation, beside the rolling ones."""

import json
import os

import pytest
import tensorflow as tf

from pix2pix_tf import configs as config_lib
from pix2pix_tf.evaluation import evaluator
from pix2pix_tf.evaluation.options import EvalOptions
from pix2pix_tf.runs import best
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.training import trainer


def _tiny(**overrides):
    return config_lib.build_config(preset="tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from pix2pix_tf.data import prepare

    data_dir = str(tmp_path_factory.mktemp("tfrecords"))
    prepare.prepare(_tiny(data_dir=data_dir).data)
    return data_dir


def _series(directory: str, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(
        directory, size_guidance={event_accumulator.TENSORS: 0}
    )
    events.Reload()
    return {event.step: float(tf.make_ndarray(event.tensor_proto)) for event in events.Tensors(tag)}


def _train(tiny_data, workdir, steps, metric="psnr", **overrides):
    config = _tiny(
        data_dir=tiny_data,
        workdir=str(workdir),
        steps=steps,
        eval_every=2,
        eval_examples=2,
        eval_fid="off",
        keep_best=metric,
        checkpoint_every=100,
        keep_checkpoints=1,
        learning_rate=2e-3,
        **overrides,
    )
    return trainer.train(config, periodic_evaluator=evaluator.periodic_evaluator)


def test_the_best_checkpoint_is_kept_restorable_and_survives_resume(tiny_data, tmp_path):
    workdir = tmp_path / "run"
    _train(tiny_data, workdir, steps=6)
    values = _series(str(workdir / "eval"), "val/psnr")
    assert sorted(values) == [2, 4, 6]
    record = json.loads((workdir / best.BEST_FILE).read_text())
    best_step = max(values, key=values.get)
    assert record["metric"] == "psnr" and record["higher_is_better"] is True
    assert record["step"] == best_step
    assert record["value"] == pytest.approx(values[best_step], rel=1e-6)
    # The rolling checkpoints (--keep_checkpoints 1) keep only the latest; the best stays.
    assert tf.train.latest_checkpoint(str(workdir)).endswith("ckpt-6")
    assert os.listdir(workdir / "best") == [f"step-{best_step}"]
    # TensorBoard's best/psnr is the best so far at each evaluation.
    so_far = _series(str(workdir / "eval"), "best/psnr")
    assert so_far == pytest.approx(
        {step: max(v for s, v in values.items() if s <= step) for step in values}, rel=1e-6
    )
    # `--checkpoint best` names it: the evaluation of it gives the recorded value.
    options = EvalOptions(max_examples=2, eval_size="training", fid="off")
    results, output_dir = evaluator.evaluate(str(workdir), options, best.BEST)
    assert results["psnr"] == pytest.approx(record["value"], rel=1e-5)
    assert results["step"] == best_step and output_dir.endswith(f"val_step{best_step:07d}")

    # Resumed further, the record is compared with what it kept, not started over.
    _train(tiny_data, workdir, steps=10)
    values.update(_series(str(workdir / "eval"), "val/psnr"))
    record = json.loads((workdir / best.BEST_FILE).read_text())
    assert record["step"] == max(values, key=values.get)
    assert os.listdir(workdir / "best") == [f"step-{record['step']}"]
    config, generator, path = run_dir.restore_generator(str(workdir), best.BEST)
    assert path == str(workdir / record["checkpoint"])


def _fake_checkpoint(workdir, step):
    prefix = os.path.join(workdir, f"ckpt-{step}")
    for suffix in (".index", ".data-00000-of-00001"):
        with open(prefix + suffix, "w") as file:
            file.write(f"step {step}")
    return prefix


def test_lower_is_better_and_a_kill_while_keeping_leaves_the_previous_best(tmp_path, monkeypatch):
    workdir = str(tmp_path)
    keeper = best.BestKeeper(workdir, "l1", log=lambda line: None)
    assert keeper.offer(2, {"l1": 0.5}) == 0.5
    assert keeper.keep(2, _fake_checkpoint(workdir, 2))
    assert keeper.offer(4, {"l1": 0.7}) == 0.5  # Worse: nothing pending.
    assert not keeper.keep(4, _fake_checkpoint(workdir, 4))
    assert keeper.offer(6, {"l1": 0.3}) == 0.3

    def killed(source, target):
        raise KeyboardInterrupt  # The process dies while the new best is moved into place.

    monkeypatch.setattr(os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        keeper.keep(6, _fake_checkpoint(workdir, 6))
    monkeypatch.undo()
    record = best.read(workdir)
    assert record["step"] == 2 and record["value"] == 0.5
    assert best.resolve_checkpoint(workdir, best.BEST).endswith("best/step-2/ckpt-2")
    # The next run removes the leftover and keeps comparing against 0.5.
    resumed = best.BestKeeper(workdir, "l1", log=lambda line: None)
    assert os.listdir(os.path.join(workdir, "best")) == ["step-2"]
    assert resumed.value == 0.5
    assert resumed.offer(8, {"l1": float("nan")}) == 0.5  # Not finite: never the best.


def test_another_metric_on_resume_starts_a_new_best(tmp_path):
    workdir = str(tmp_path)
    keeper = best.BestKeeper(workdir, "l1", log=lambda line: None)
    keeper.offer(2, {"l1": 0.5})
    keeper.keep(2, _fake_checkpoint(workdir, 2))
    lines = []
    switched = best.BestKeeper(workdir, "ssim", log=lines.append)
    assert switched.value is None and "keeps the best ssim" in lines[0]
    assert best.read(workdir) is None and not os.listdir(os.path.join(workdir, "best"))
    with pytest.raises(ValueError, match="--keep_best ssim: the evaluation at step 4 has no ssim"):
        switched.offer(4, {"l1": 0.4})


def test_bad_settings_are_one_line_errors(tmp_path, tiny_data):
    with pytest.raises(ValueError, match="--keep_best psnr needs --eval_every N"):
        _tiny(keep_best="psnr")
    with pytest.raises(ValueError, match="--keep_best must be one of"):
        _tiny(keep_best="accuracy", eval_every=2)
    with pytest.raises(ValueError, match="--keep_best fid needs FID/KID"):
        _tiny(keep_best="fid", eval_every=2, eval_fid="off")
    # The synthetic streets have no trained segmenter here: refused before step 1.
    with pytest.raises(ValueError, match="--keep_best fcn_per_pixel_accuracy: the periodic"):
        _train(tiny_data, tmp_path / "fcn", steps=2, metric="fcn_per_pixel_accuracy")
    assert not (tmp_path / "fcn" / "ckpt-1.index").exists()
    with pytest.raises(best.BestCheckpointError, match="--checkpoint best: .* has no best.json"):
        best.resolve_checkpoint(str(tmp_path), best.BEST)
    assert best.resolve_checkpoint(str(tmp_path), None) is None


def test_the_metric_choices_are_the_keepers():
    from pix2pix_tf.configs import choices

    assert tuple(best.METRICS) == choices.KEEP_BEST_METRICS
    assert [metric.higher_is_better for metric in best.METRICS.values()] == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]
    assert best.METRICS["psnr"].better(1.0, None) and not best.METRICS["l1"].better(1.0, 0.5)
