"""export.py --format litert|onnx: parity with the Keras generator, metadata, quantized
bounds, unsupported ops, and predict.py on .tflite/.onnx exports."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import make_resnet_run, make_run, write_image

import export as export_script
from pix2pix_tf import configs as config_lib
from pix2pix_tf import models
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import deploy, deploy_runtimes, litert
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import predict as predict_lib

# float32 exports must match the Keras generator to at least this PSNR (dB, range 2).
FLOAT_BOUND_DB = 40.0
# Measured on the tiny unet run below (32x64, output gain 20): float16 95 dB,
# dynamic_int8 96 dB, int8 (8 representative examples) 53-55 dB; the bounds leave room.
QUANTIZED_BOUNDS_DB = {"float16": 70.0, "dynamic_int8": 70.0, "int8": 40.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    unet = str(tmp_path_factory.mktemp("unet"))
    data_dir = str(tmp_path_factory.mktemp("tfrecords"))
    make_run(unet, output_gain=20.0, image_size="32x64", data_dir=data_dir)
    resnet = str(tmp_path_factory.mktemp("resnet"))
    make_resnet_run(resnet)
    # pix2pixHD's global network plus local enhancer (joint stage): the local output.
    global_local = str(tmp_path_factory.mktemp("global_local"))
    make_resnet_run(global_local, "global_local", "local_output_conv")
    return {"unet": unet, "resnet": resnet, "global_local": global_local}


def _keras_outputs(workdir: str, images: np.ndarray) -> np.ndarray:
    config, generator, _ = run_dir.restore_generator(workdir)
    network = models.build_generator(
        **config_lib.generator_arguments(config), input_shape=(None, None, images.shape[-1])
    )
    network.set_weights(generator.get_weights())
    return network(images, training=False).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10.0 * np.log10(4.0 / np.mean((a - b) ** 2)))


@pytest.mark.parametrize("fmt", ["litert", "onnx"])
@pytest.mark.parametrize("generator", ["unet", "resnet", "global_local"])
def test_float32_export_matches_keras_at_several_sizes(runs, generator, fmt, tmp_path):
    workdir = runs[generator]
    folder = deploy.export(workdir, str(tmp_path / "export"), fmt)
    assert folder == str(tmp_path / "export" / "1")
    assert sorted(os.listdir(folder)) == sorted([deploy.FILE_NAMES[fmt], deploy.METADATA_FILE])
    with open(os.path.join(folder, deploy.METADATA_FILE)) as file:
        record = json.load(file)
    assert record["format"] == fmt and record["step"] == 1 and record["precision"] == "float32"
    assert record["contract"]["layout"] == "NHWC" and record["contract"]["range"] == [-1.0, 1.0]
    model = deploy_runtimes.load(folder)
    assert model.kind == fmt and model.metadata == record
    config = config_lib.Config.from_dict(record["config"])
    multiple = models.pad_multiple(**config_lib.pad_multiple_arguments(config))
    # Residual blocks reflection-pad their innermost map, which needs 2 pixels a side.
    assert record["contract"]["min_side"] == multiple * (1 if generator == "unet" else 2)
    height, width = config_lib.image_hw(config.data)
    rng = np.random.default_rng(0)
    # The training size, batch 2 at another size (a multiple of the pad multiple), then back.
    for shape in [(1, height, width, 3), (2, 2 * multiple, 3 * multiple, 3), (1, height, width, 3)]:
        images = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        outputs = model(images)
        expected = _keras_outputs(workdir, images)
        assert outputs.shape == expected.shape
        assert expected.std() > 0.05  # Textured, so the PSNR means something.
        assert psnr(outputs, expected) >= FLOAT_BOUND_DB


@pytest.mark.parametrize("quantize", ["float16", "dynamic_int8", "int8"])
def test_quantized_litert_within_measured_bounds(runs, quantize, tmp_path):
    folder = deploy.export(
        runs["unet"], str(tmp_path / "q"), "litert", quantize, representative_examples=8
    )
    model = deploy_runtimes.load(folder)
    assert model.metadata["quantize"] == quantize
    float_size = len(
        deploy.convert(*run_dir.restore_generator(runs["unet"])[:2], "litert", record={})
    )
    # float16 halves the weights, int8 quarters them (plus the graph and metadata).
    assert os.path.getsize(model.path) < 0.6 * float_size
    images = np.random.default_rng(1).uniform(-1.0, 1.0, (1, 32, 64, 3)).astype(np.float32)
    assert (
        psnr(model(images), _keras_outputs(runs["unet"], images)) >= QUANTIZED_BOUNDS_DB[quantize]
    )


def _with_unsupported_op(config, generator):
    """The deploy network behind ExtractImagePatches, which neither format can express here."""
    network = deploy.deploy_network(config, generator)
    inputs = keras.Input((None, None, 3))
    patches = keras.layers.Lambda(
        lambda images: tf.image.extract_patches(
            images, [1, 2, 2, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME"
        )[..., :3]
    )(inputs)
    return keras.Model(inputs, network(patches))


@pytest.mark.parametrize("fmt", ["litert", "onnx"])
def test_unsupported_op_fails_in_one_line_and_writes_nothing(runs, fmt, tmp_path):
    export_dir = tmp_path / "export"
    with pytest.raises(ValueError) as raised:
        deploy.export(runs["unet"], str(export_dir), fmt, network_builder=_with_unsupported_op)
    message = str(raised.value)
    assert "\n" not in message
    assert f"--format {fmt}" in message and "ExtractImagePatches" in message
    assert os.listdir(export_dir) == []


def test_export_cli_formats_and_bad_flags(runs, tmp_path, capsys):
    export_dir = str(tmp_path / "out")
    args = ["--workdir", runs["unet"], "--export_dir", export_dir]
    assert export_script.main([*args, "--format", "onnx", "--precision", "mixed_float16"]) == 1
    assert "applies to --format saved_model" in capsys.readouterr().err
    assert export_script.main([*args, "--format", "onnx", "--quantize", "int8"]) == 1
    assert "--format litert only" in capsys.readouterr().err
    assert export_script.main([*args, "--quantize", "float16"]) == 1
    assert "applies to --format litert" in capsys.readouterr().err
    # The serving graph's options are refused with the other formats, not ignored.
    for flag, value in (("--test_time_mode", "paper"), ("--serving_size", "training")):
        assert export_script.main([*args, "--format", "litert", flag, value]) == 2
        error = capsys.readouterr().err
        assert f"{flag} {value} applies to --format saved_model" in error
        assert error.count("\n") == 1
    assert not os.path.exists(os.path.join(export_dir, "1"))
    # A TF Serving base path is not mixed with other formats.
    assert export_script.main([*args, "--no-warmup"]) == 0
    assert export_script.main([*args, "--format", "litert"]) == 1
    assert f"{export_dir}-litert" in capsys.readouterr().err
    assert (
        export_script.main(
            [*args[:2], "--export_dir", export_dir + "-litert", "--format", "litert"]
        )
        == 0
    )
    assert os.path.exists(os.path.join(export_dir + "-litert", "1", litert.FILE_NAME))


def test_predict_serves_litert_and_onnx_like_the_saved_model(runs, tmp_path):
    workdir = runs["unet"]
    saved_model = export_lib.export(workdir, str(tmp_path / "sm"), warmup=False)
    inputs = [write_image(str(tmp_path / "in" / "odd.png"), 37, 75, seed=3)]
    inputs.append(write_image(str(tmp_path / "in" / "photo.jpg"), 32, 64, seed=4))
    outputs = {}
    paths = {
        "saved_model": saved_model,
        "litert": deploy.export(workdir, str(tmp_path / "litert"), "litert"),
        "onnx": os.path.join(deploy.export(workdir, str(tmp_path / "onnx"), "onnx"), "model.onnx"),
    }
    for name, path in paths.items():
        model = predict_lib.load_model(path)
        assert model.direction == "BtoA"
        summary = predict_lib.predict(
            model, [str(tmp_path / "in")], str(tmp_path / name), verbose=False
        )
        assert summary.written == ["odd", "photo"] and not summary.skipped
        outputs[name] = [
            tf.io.decode_png(open(tmp_path / name / f"{stem}.png", "rb").read()).numpy()
            for stem in summary.written
        ]
    for name in ("litert", "onnx"):
        for got, expected in zip(outputs[name], outputs["saved_model"], strict=True):
            assert got.shape == expected.shape
            assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_predict_skips_inputs_below_the_min_side_like_the_saved_model(runs, tmp_path):
    """global_local (min side 64): a 20x50 input pads to 32x64, too short for its
    bottleneck; it is skipped with the reason and the others are still written."""
    workdir = runs["global_local"]
    write_image(str(tmp_path / "in" / "small.png"), 20, 50, seed=5)
    write_image(str(tmp_path / "in" / "wide.png"), 40, 70, seed=6)
    paths = {
        "saved_model": export_lib.export(workdir, str(tmp_path / "sm"), warmup=False),
        "onnx": deploy.export(workdir, str(tmp_path / "onnx"), "onnx"),
    }
    for name, path in paths.items():
        summary = predict_lib.predict(
            predict_lib.load_model(path),
            [str(tmp_path / "in")],
            str(tmp_path / name),
            verbose=False,
        )
        assert summary.written == ["wide"], name
        assert [os.path.basename(path) for path, _ in summary.skipped] == ["small.png"], name
    assert "at least 64" in summary.skipped[0][1]


def test_predict_refuses_files_that_are_not_pix2pix_exports(tmp_path):
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    plain(np.zeros((1, 8, 8, 3), np.float32))
    plain.export(str(tmp_path / "plain.tflite"), format="litert", verbose=False)
    plain.export(str(tmp_path / "plain.onnx"), format="onnx", verbose=False)
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer")
    for name in ("plain.tflite", "plain.onnx", "junk.tflite", "missing.onnx"):
        with pytest.raises(predict_lib.PredictError) as raised:
            predict_lib.load_model(str(tmp_path / name))
        message = str(raised.value)
        assert "\n" not in message and name in message
        assert "not a pix2pix export" in message or "no such file" in message


def test_predict_skips_litert_and_onnx_inputs_over_the_recorded_pixel_bound(runs, tmp_path):
    """Like the SavedModel: an input over export.py --max_pixels (recorded in the export)
    and an undecodable one are skipped with their reasons; the network never sees them."""
    workdir = runs["unet"]
    inputs = tmp_path / "in"
    write_image(str(inputs / "small.png"), 40, 64, seed=7)
    write_image(str(inputs / "large.png"), 80, 96, seed=8)
    png = open(inputs / "small.png", "rb").read()
    (inputs / "truncated.png").write_bytes(png[: len(png) // 2])
    for fmt in ("litert", "onnx"):
        folder = deploy.export(workdir, str(tmp_path / fmt), fmt, max_pixels=48 * 80)
        with open(os.path.join(folder, deploy.METADATA_FILE)) as file:
            assert json.load(file)["serving_options"] == {"max_pixels": 3840}
        summary = predict_lib.predict(
            predict_lib.load_model(folder),
            [str(inputs)],
            str(tmp_path / f"out-{fmt}"),
            verbose=False,
        )
        assert summary.written == ["small"], fmt
        reasons = {os.path.basename(path): reason for path, reason in summary.skipped}
        assert reasons["large.png"].startswith(
            "80x96 = 7680 pixels, over the bound of 3840 pixels per image set at export "
            "(export.py --max_pixels)"
        )
        assert "not a decodable JPEG, PNG, GIF or BMP image" in reasons["truncated.png"]


def test_exports_without_a_recorded_bound_serve_at_most_the_default(runs):
    """Exports written before the bound was recorded: the default --max_pixels, checked
    before the network runs (a 3000x2000 input would need gigabytes)."""
    calls = []
    record = {"input_channels": 3, "output_channels": 3, "pad_multiple": 16}
    model = deploy_runtimes.FloatModel("onnx", "model.onnx", record, calls.append)
    serve = deploy_runtimes.serve_bytes(model)
    large = tf.io.encode_png(np.zeros((2000, 3000, 3), np.uint8)).numpy()
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="2000x3000 = 6000000 pixels, over "
        "the bound of 4194304 pixels per image of exports that record none",
    ):
        serve([large])
    assert calls == []


@pytest.mark.parametrize("fmt", ["litert", "onnx"])
def test_a_truncated_export_is_named_damaged_not_foreign(runs, fmt, tmp_path):
    folder = deploy.export(runs["unet"], str(tmp_path / fmt), fmt)
    path = os.path.join(folder, deploy.FILE_NAMES[fmt])
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)
    with pytest.raises(predict_lib.PredictError) as raised:
        predict_lib.load_model(folder)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"--model {path}: a damaged or truncated")
    assert f"export it again with `python export.py --workdir RUN --format {fmt}`" in message
