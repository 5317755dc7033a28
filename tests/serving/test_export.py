"""export.py and pix2pix_tf.serving.export: versions, atomic writes, errors, warmup,
precision and the paper's test-time mode."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO_ROOT
from export_fixtures import encoded_image, make_run
from fs_faults import read_only_directory, small_filesystem

import export as export_cli
from pix2pix_tf import models
from pix2pix_tf.configs import build_config, generator_arguments
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import graph as serving
from pix2pix_tf.serving import paper_mode as test_time


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run"))
    config, generator = make_run(workdir)
    return workdir, config, generator


def _entries(directory):
    return sorted(os.listdir(directory))


# -- versions and atomicity ---------------------------------------------------


def test_versions_increase_and_are_never_overwritten(run, tmp_path):
    workdir, _, _ = run
    export_dir = str(tmp_path / "exported")
    first = export_lib.export(workdir, export_dir, warmup=False)
    assert first == os.path.join(export_dir, "1")
    assert export_lib.export(workdir, export_dir, version=5, warmup=False).endswith("5")
    assert export_lib.export(workdir, export_dir, warmup=False).endswith("6")
    marker = os.path.join(export_dir, "5", "saved_model.pb")
    stamp = os.stat(marker).st_mtime_ns
    with pytest.raises(export_lib.ExportError, match="already exists"):
        export_lib.export(workdir, export_dir, version=5, warmup=False)
    assert os.stat(marker).st_mtime_ns == stamp
    # Only complete versions are visible: no staging directory is left behind.
    assert _entries(export_dir) == ["1", "5", "6"]
    for version in ("1", "5", "6"):
        assert {"saved_model.pb", "variables"} <= set(_entries(os.path.join(export_dir, version)))


def test_failure_while_writing_leaves_nothing(run, tmp_path, monkeypatch):
    workdir, _, _ = run
    export_dir = str(tmp_path / "exported")

    def broken_warmup(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_lib, "write_warmup", broken_warmup)
    with pytest.raises(export_lib.ExportError, match=f"--export_dir {export_dir}: .*disk full"):
        export_lib.export(workdir, export_dir)
    assert _entries(export_dir) == []


def _one_line_error(capfd) -> str:
    """The one line export.py wrote to stderr (C++ logs included), without a traceback."""
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_full_disk_leaves_nothing_and_says_to_free_space(run, tmp_path, capfd):
    workdir, _, _ = run
    export_dir = str(tmp_path / "exported")
    # Room for the staging folder but not for the SavedModel (about 1 MB here).
    with small_filesystem(export_dir, 64 * 1024):
        code = export_cli.main(["--workdir", workdir, "--export_dir", export_dir])
        line = _one_line_error(capfd)
        assert code == 1
        assert line.startswith(f"export.py: error: --export_dir {export_dir}: no space left")
        assert "Free some space" in line
        # No version directory, and no staging folder.
        assert _entries(export_dir) == []


def test_interrupt_removes_the_staging_folder_and_exits_130(run, tmp_path, capfd, monkeypatch):
    workdir, _, _ = run
    export_dir = tmp_path / "exported"

    def interrupted_warmup(model_dir, *args, **kwargs):
        # Ctrl-C after the SavedModel was written into the staging folder.
        assert os.path.exists(os.path.join(model_dir, "saved_model.pb"))
        raise KeyboardInterrupt

    monkeypatch.setattr(export_lib, "write_warmup", interrupted_warmup)
    try:
        code = export_cli.main(["--workdir", workdir, "--export_dir", str(export_dir)])
    except KeyboardInterrupt:
        # Escaping, it would stop pytest itself.
        pytest.fail("KeyboardInterrupt escaped export.py's main")
    line = _one_line_error(capfd)
    assert code == 130
    assert line == (
        f"export.py: interrupted; nothing was exported to {export_dir} "
        "(the staging folder was removed)."
    )
    assert _entries(export_dir) == []


def test_stale_staging_folders_are_removed(run, tmp_path, capsys):
    workdir, _, _ = run
    export_dir = tmp_path / "exported"
    stale = export_dir / ".writing-1-k2j3h4"
    (stale / "variables").mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"half")
    (export_dir / "notes").mkdir()
    path = export_lib.export(workdir, str(export_dir), warmup=False)
    assert path == str(export_dir / "1")
    assert _entries(export_dir) == ["1", "notes"]
    assert f"Removed {stale}, left by an interrupted export." in capsys.readouterr().out


def test_an_export_waits_for_a_concurrent_one_and_keeps_its_staging(run, tmp_path):
    workdir, _, _ = run
    export_dir = tmp_path / "exported"
    live = export_dir / ".writing-7-live"
    live.mkdir(parents=True)
    results = []
    with export_lib._locked(str(export_dir)):
        # Another export holds the lock: this one waits and leaves its folder alone.
        thread = threading.Thread(
            target=lambda: results.append(export_lib.export(workdir, str(export_dir), warmup=False))
        )
        thread.start()
        thread.join(timeout=3)
        assert thread.is_alive() and live.exists() and results == []
    thread.join(timeout=120)
    assert results == [str(export_dir / "1")]
    # Once the lock is free, a leftover folder is stale.
    assert _entries(export_dir) == ["1"]


def test_killed_export_leaves_staging_that_the_next_export_removes(run, tmp_path):
    """A real export process killed with SIGKILL while writing."""
    workdir, _, _ = run
    export_dir = tmp_path / "exported"
    marker = tmp_path / "writing"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {REPO_ROOT!r})
        import export
        from pix2pix_tf.serving import export as export_lib

        def stuck_warmup(model_dir, *args, **kwargs):
            open({str(marker)!r}, "w").write(model_dir)
            time.sleep(600)

        export_lib.write_warmup = stuck_warmup
        export.main(["--workdir", {workdir!r}, "--export_dir", {str(export_dir)!r}])
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the export never reached the warmup file"
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    staging = marker.read_text()
    assert os.path.basename(staging).startswith(".writing-1-") and os.path.isdir(staging)
    assert _entries(export_dir) == [os.path.basename(staging)]
    assert export_lib.export(workdir, str(export_dir), warmup=False).endswith("1")
    assert _entries(export_dir) == ["1"]


def test_export_records_what_it_was_made_from(run, tmp_path):
    workdir, config, _ = run
    options = serving.ServingOptions(png_compression=3)
    version_dir = export_lib.export(workdir, str(tmp_path / "e"), options=options, warmup=False)
    with open(os.path.join(version_dir, "assets.extra", "pix2pix_export.json")) as file:
        record = json.load(file)
    assert record["checkpoint"] == os.path.join(workdir, "ckpt-1")
    assert record["config"] == config.to_dict()
    assert record["precision"] == "float32" and record["image_size"] == 64
    assert record["serving_options"]["png_compression"] == 3
    # Native size by default, inputs padded to multiples of 2^unet_depth, the bound.
    assert record["serving_options"]["serving_size"] == "native"
    assert record["serving_options"]["max_pixels"] == 2048 * 2048
    assert record["training_size"] == [64, 64] and record["pad_multiple"] == 16


def test_non_square_run_exports_and_serves_at_native_and_training_size(tmp_path):
    """A 2:1 run (32x64): served at each input's own size like the float signature, or
    with --serving_size training resized to 32x64 and back."""
    workdir = str(tmp_path / "run")
    config, generator = make_run(workdir, output_gain=20.0, image_size="32x64")
    multiple = 2 ** generator_arguments(config)["depth"]
    native_dir = export_lib.export(workdir, str(tmp_path / "native"))
    with open(os.path.join(native_dir, export_lib.METADATA_FILE)) as file:
        record = json.load(file)
    assert record["image_size"] == [32, 64] and record["training_size"] == [32, 64]
    assert record["pad_multiple"] == multiple
    loaded = tf.saved_model.load(native_dir)
    images = tf.random.stateless_uniform([2, 2 * multiple, 3 * multiple, 3], seed=[1, 5])
    at_size = models.build_generator(**generator_arguments(config), input_shape=(None, None, 3))
    at_size.set_weights(generator.get_weights())
    np.testing.assert_allclose(
        loaded.signatures["generate"](images=images)["images"].numpy(),
        at_size(images, training=False).numpy(),
        atol=1e-5,
    )
    data = encoded_image(32, 64, seed=2)
    floats = tf.io.decode_png(data).numpy().astype(np.float32)[None] / 127.5 - 1.0
    expected = generator(floats, training=False)[0].numpy()
    expected = np.clip(np.round((expected + 1.0) * 127.5), 0, 255)
    served = loaded.signatures["serving_default"](image_bytes=tf.constant([data]))
    output = tf.io.decode_png(served["image_bytes"][0]).numpy().astype(np.float32)
    assert np.abs(output - expected).max() <= 1.0
    options = serving.ServingOptions(serving_size="training")
    training_dir = export_lib.export(
        workdir, str(tmp_path / "training"), options=options, warmup=False
    )
    generate = tf.saved_model.load(training_dir).signatures["generate"]
    assert generate(images=tf.zeros([1, 32, 64, 3]))["images"].shape == (1, 32, 64, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[N, 32, 64, 3\]"):
        generate(images=tf.zeros([1, 64, 64, 3]))


@pytest.mark.parametrize("overrides", [{}, {"unet_depth": 3}, {"arch": "tutorial"}])
def test_pad_multiple_is_two_to_the_unet_depth(overrides):
    config = build_config(preset="tiny", **overrides)
    generator = models.build_generator(**generator_arguments(config))
    functions = serving.ServingFunctions(generator)
    assert functions.pad_multiple == serving.sizes.downsampling_factor(generator)
    assert functions.pad_multiple == 2 ** generator_arguments(config)["depth"]


def test_staging_name_is_ignored_by_version_scan(tmp_path):
    export_dir = tmp_path / "exported"
    for name in ("3", ".writing-9-abc", "notes", "10"):
        (export_dir / name).mkdir(parents=True)
    assert export_lib.next_version(str(export_dir)) == 11
    assert export_lib.next_version(str(tmp_path / "missing")) == 1


# -- clear errors -------------------------------------------------------------


def test_missing_workdir(tmp_path):
    with pytest.raises(export_lib.ExportError, match="no such run directory"):
        export_lib.export(str(tmp_path / "nope"), str(tmp_path / "exported"))
    assert not (tmp_path / "exported").exists()


def test_workdir_without_config(tmp_path):
    with pytest.raises(export_lib.ExportError, match="no config.json"):
        export_lib.export(str(tmp_path), str(tmp_path / "exported"))


def test_workdir_without_checkpoint(tmp_path):
    build_config(preset="tiny").save(str(tmp_path))
    with pytest.raises(export_lib.ExportError, match="no checkpoint"):
        export_lib.export(str(tmp_path), str(tmp_path / "exported"))
    assert not (tmp_path / "exported").exists()


def test_named_checkpoint_missing(run, tmp_path):
    workdir, _, _ = run
    with pytest.raises(export_lib.ExportError, match="ckpt-42"):
        export_lib.export(workdir, str(tmp_path / "e"), checkpoint=os.path.join(workdir, "ckpt-42"))


def test_named_checkpoint_is_used(run, tmp_path):
    workdir, _, _ = run
    path = export_lib.export(
        workdir, str(tmp_path / "e"), checkpoint=os.path.join(workdir, "ckpt-1"), warmup=False
    )
    assert os.path.exists(os.path.join(path, "saved_model.pb"))


def test_incompatible_checkpoint(run, tmp_path):
    workdir, _, _ = run
    other = tmp_path / "other"
    shutil.copytree(workdir, other)
    # The checkpoint was written for ngf=8: a config asking for ngf=16 cannot restore it.
    build_config(preset="tiny", ngf=16).save(str(other))
    with pytest.raises(export_lib.ExportError, match="does not hold the generator"):
        export_lib.export(str(other), str(tmp_path / "exported"))
    assert not (tmp_path / "exported").exists()


def test_checkpoint_without_generator(tmp_path):
    build_config(preset="tiny").save(str(tmp_path))
    checkpoint = tf.train.Checkpoint(step=tf.Variable(3, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=1).save()
    with pytest.raises(export_lib.ExportError, match="does not hold the generator"):
        export_lib.export(str(tmp_path), str(tmp_path / "exported"))


def test_export_dir_under_a_file(run, tmp_path):
    workdir, _, _ = run
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(export_lib.ExportError, match="--export_dir"):
        export_lib.export(workdir, str(blocker / "exported"))


def test_read_only_export_dir(run, tmp_path, capfd):
    workdir, _, _ = run
    export_dir = str(tmp_path / "exported")
    with read_only_directory(export_dir):
        assert export_cli.main(["--workdir", workdir, "--export_dir", export_dir]) == 1
        line = _one_line_error(capfd)
        assert line == (
            f"export.py: error: --export_dir {export_dir}: not writable; pass a writable directory."
        )


def test_cli_reports_errors_and_success(run, tmp_path, capsys):
    workdir, _, _ = run
    assert export_cli.main(["--workdir", str(tmp_path / "missing")]) == 1
    assert f"{tmp_path / 'missing'}: no such run directory" in capsys.readouterr().err
    export_dir = str(tmp_path / "exported")
    args = ["--workdir", workdir, "--export_dir", export_dir, "--no-warmup", "--version", "3"]
    assert export_cli.main(args) == 0
    assert os.path.join(export_dir, "3") in capsys.readouterr().out
    assert export_cli.main(args) == 1
    assert "already exists" in capsys.readouterr().err


# -- warmup -------------------------------------------------------------------


def test_warmup_records_replay_like_tf_serving(run, tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    workdir, config, _ = run
    version_dir = export_lib.export(workdir, str(tmp_path / "exported"))
    path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    loaded = tf.saved_model.load(version_dir)
    replayed = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name]
        inputs = {key: tf.constant(tf.make_ndarray(value)) for key, value in request.inputs.items()}
        outputs = signature(**inputs)
        replayed.append(
            (request.model_spec.signature_name, int(next(iter(outputs.values())).shape[0]))
        )
    assert replayed == [("serving_default", 1), ("serving_default", 8), ("generate", 1)]


# -- precision ----------------------------------------------------------------


def test_mixed_precision_run_exports_float32_compute(tmp_path):
    workdir = str(tmp_path / "run")
    config, _ = make_run(workdir, precision="mixed_bfloat16")
    size = config.data.image_size
    images = tf.random.stateless_uniform([2, size, size, 3], seed=[1, 2], minval=-1.0)
    _, float32_generator, _ = run_dir.restore_generator(workdir)
    default = tf.saved_model.load(export_lib.export(workdir, str(tmp_path / "e"), warmup=False))
    served = default.signatures["generate"](images=images)["images"].numpy()
    np.testing.assert_allclose(served, float32_generator(images).numpy(), atol=1e-5)
    # Asking for bfloat16 compute is honoured: same weights, visibly different rounding.
    bf16 = export_lib.export(workdir, str(tmp_path / "e"), precision="mixed_bfloat16", warmup=False)
    low = tf.saved_model.load(bf16).signatures["generate"](images=images)["images"]
    assert low.dtype == tf.float32
    difference = np.abs(low.numpy() - served).max()
    assert 0.0 < difference < 0.2


# -- the paper's test-time behaviour --------------------------------------------


def test_paper_mode_uses_per_image_statistics_without_dropout_noise(tmp_path):
    config, generator = make_run(str(tmp_path), dropout=0.0)
    size = config.data.image_size
    images = tf.random.stateless_uniform([3, size, size, 3], seed=[4, 4], minval=-1.0)
    paper = test_time.paper_test_time_model(generator)
    outputs = paper(images).numpy()
    # Reference: training-mode calls on batches of one, on a throwaway copy of the weights.
    reference_generator = models.build_generator(**generator_arguments(config))
    reference_generator.set_weights(generator.get_weights())
    for index in range(3):
        expected = reference_generator(images[index : index + 1], training=True).numpy()
        np.testing.assert_allclose(outputs[index : index + 1], expected, atol=2e-5)


def test_paper_mode_is_stateless_repeatable_and_noisy(run, tmp_path):
    workdir, config, _ = run
    size = config.data.image_size
    _, generator, _ = run_dir.restore_generator(workdir)
    before = [variable.numpy().copy() for variable in generator.variables]
    functions = serving.ServingFunctions(generator, serving.ServingOptions(test_time_mode="paper"))
    images = tf.random.stateless_uniform([3, size, size, 3], seed=[5, 5], minval=-1.0)
    first = functions.generate(images)["images"].numpy()
    second = functions.generate(images)["images"].numpy()
    np.testing.assert_array_equal(first, second)
    # Each image's output does not depend on the rest of the batch.
    alone = functions.generate(images[1:2])["images"].numpy()
    np.testing.assert_allclose(alone, first[1:2], atol=1e-5)
    # Dropout is live: another seed gives other noise, and it differs from inference mode.
    reseeded = serving.ServingFunctions(
        generator, serving.ServingOptions(test_time_mode="paper", seed=1)
    ).generate(images)["images"]
    assert np.abs(reseeded.numpy() - first).max() > 1e-3
    assert np.abs(generator(images, training=False).numpy() - first).max() > 1e-3
    for old, variable in zip(before, generator.variables, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())


def test_paper_mode_export_round_trip(run, tmp_path):
    workdir, config, _ = run
    options = serving.ServingOptions(test_time_mode="paper", seed=3)
    version_dir = export_lib.export(workdir, str(tmp_path / "e"), options=options, warmup=False)
    loaded = tf.saved_model.load(version_dir)
    before = [variable.numpy().copy() for variable in loaded.variables]
    data = tf.constant([encoded_image(64, 64), encoded_image(20, 30, fmt="jpeg")])
    first = loaded.signatures["serving_default"](image_bytes=data)["image_bytes"].numpy()
    second = loaded.signatures["serving_default"](image_bytes=data)["image_bytes"].numpy()
    assert list(first) == list(second)
    assert tuple(tf.io.decode_png(first[1]).shape) == (20, 30, 3)
    for old, variable in zip(before, loaded.variables, strict=True):
        np.testing.assert_array_equal(old, variable.numpy())


def test_invalid_serving_options():
    with pytest.raises(ValueError, match="--resize_method"):
        serving.ServingOptions(resize_method="cubic").validate()
    with pytest.raises(ValueError, match="--png_compression"):
        serving.ServingOptions(png_compression=10).validate()
    with pytest.raises(ValueError, match="--test_time_mode"):
        serving.ServingOptions(test_time_mode="train").validate()
    with pytest.raises(ValueError, match="--serving_size"):
        serving.ServingOptions(serving_size="full").validate()
    with pytest.raises(ValueError, match="--max_pixels"):
        serving.ServingOptions(max_pixels=0).validate()


def test_paper_mode_at_native_sizes(run, tmp_path):
    """Per-image statistics and content-seeded dropout at each input's own size: an odd
    size is padded, generated and cropped like the float signature at the padded size."""
    workdir, _, _ = run
    options = serving.ServingOptions(test_time_mode="paper", seed=3)
    loaded = tf.saved_model.load(
        export_lib.export(workdir, str(tmp_path / "e"), options=options, warmup=False)
    )
    serve = loaded.signatures["serving_default"]
    data = [encoded_image(37, 53, seed=1), encoded_image(48, 80, seed=2)]
    together = serve(image_bytes=tf.constant(data))["image_bytes"].numpy()
    outputs = [tf.io.decode_png(item).numpy().astype(np.float32) for item in together]
    assert [output.shape for output in outputs] == [(37, 53, 3), (48, 80, 3)]
    alone = serve(image_bytes=tf.constant(data[:1]))["image_bytes"].numpy()[0]
    np.testing.assert_array_equal(tf.io.decode_png(alone).numpy(), outputs[0])
    floats = tf.io.decode_png(data[0]).numpy().astype(np.float32) / 127.5 - 1.0
    padded = np.pad(floats, ((0, 11), (0, 11), (0, 0)), mode="reflect")
    generated = loaded.signatures["generate"](images=tf.constant(padded[None]))["images"]
    expected = np.clip(np.round((generated[0, :37, :53].numpy() + 1.0) * 127.5), 0, 255)
    assert np.abs(outputs[0] - expected).max() <= 1.0


@pytest.mark.slow
def test_full_size_paper_generator_exports_and_serves(tmp_path):
    """The default 256x256 paper generator (about 54M parameters) through the export."""
    config = build_config(workdir=str(tmp_path / "run"))
    generator = models.build_generator(**generator_arguments(config))
    version_dir = export_lib.write_model(generator, str(tmp_path / "exported"))
    loaded = tf.saved_model.load(version_dir)
    images = tf.random.stateless_uniform([1, 256, 256, 3], seed=[9, 9], minval=-1.0)
    np.testing.assert_allclose(
        loaded.signatures["generate"](images=images)["images"].numpy(),
        generator(images, training=False).numpy(),
        atol=1e-5,
    )
    data = encoded_image(256, 512, fmt="jpeg")
    served = loaded.signatures["serving_default"](image_bytes=tf.constant([data]))
    assert tuple(tf.io.decode_png(served["image_bytes"][0]).shape) == (256, 512, 3)


@pytest.mark.parametrize("overrides", [{"norm": "instance"}, {"arch": "tutorial"}])
def test_paper_mode_other_architectures(tmp_path, overrides):
    workdir = str(tmp_path / "run")
    config, generator = make_run(workdir, **overrides)
    options = serving.ServingOptions(test_time_mode="paper")
    version_dir = export_lib.export(workdir, str(tmp_path / "e"), options=options, warmup=False)
    loaded = tf.saved_model.load(version_dir)
    size = config.data.image_size
    images = tf.random.stateless_uniform([2, size, size, 3], seed=[3, 1], minval=-1.0)
    first = loaded.signatures["generate"](images=images)["images"].numpy()
    np.testing.assert_array_equal(first, loaded.signatures["generate"](images=images)["images"])
    # Dropout noise makes paper mode differ from the deterministic inference graph.
    assert np.abs(first - generator(images, training=False).numpy()).max() > 1e-3
