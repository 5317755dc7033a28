"""LiteRT int8 that keeps its quality: skip-range equalisation, sub-pixel transposed
convolutions, layers kept in float (serving/quantization.py, serving/subpixel.py)."""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import make_resnet_run, make_run

import export as export_script
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import deploy, deploy_runtimes, quantization, subpixel


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("unet"))
    make_run(
        workdir,
        output_gain=20.0,
        image_size="32x64",
        data_dir=str(tmp_path_factory.mktemp("tfrecords")),
    )
    return workdir


def _network(workdir):
    config, generator, _ = run_dir.restore_generator(workdir)
    return config, deploy.deploy_network(config, generator)


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def _psnr(a, b):
    return float(10.0 * np.log10(4.0 / np.mean((a - b) ** 2)))


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_subpixel_rewrite_equals_the_transposed_convolution(size, bias):
    inputs = keras.Input((None, None, 6))
    layer = keras.layers.Conv2DTranspose(5, size, strides=2, padding="same", use_bias=bias)
    network = keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(size)
    layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
    rewritten = subpixel.rewrite(network)
    assert rewritten is not network
    assert not any(isinstance(x, keras.layers.Conv2DTranspose) for x in rewritten.layers)
    # Odd and even sides, a 1x1 map, batch 2.
    for shape in [(1, 1, 1, 6), (2, 3, 4, 6), (1, 5, 5, 6), (1, 8, 6, 6)]:
        images = _images(shape, size)
        expected = network(images).numpy()
        actual = rewritten(images).numpy()
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, atol=1e-5)


def _rewritten_and_folded(network, shape, atol):
    """The rewritten network, checked to compute `network`'s function at `shape`, and
    how many batch norms it folded."""
    rewritten = subpixel.rewrite(network)
    images = _images(shape)
    np.testing.assert_allclose(
        rewritten(images, training=False).numpy(),
        network(images, training=False).numpy(),
        atol=atol,
    )
    return sum(isinstance(layer, subpixel.FoldedNorm) for layer in rewritten.layers)


def test_subpixel_rewrite_folds_batch_norm_and_keeps_the_unet(unet_run):
    _, network = _network(unet_run)
    folded = _rewritten_and_folded(network, (2, 32, 64, 3), atol=1e-5)
    # Every decoder level's batch norm reads only its transposed convolution.
    decoders = [layer for layer in network.layers if layer.name.endswith("_deconv")]
    assert folded == len(decoders) - 1  # The output layer has no norm.


def test_subpixel_rewrite_keeps_the_resnet(tmp_path):
    # Instance norm (not folded) after 3x3 transposed convolutions.
    make_resnet_run(str(tmp_path))
    _, network = _network(str(tmp_path))
    assert _rewritten_and_folded(network, (1, 32, 32, 3), atol=1e-4) == 0


def test_equalized_unet_is_the_same_function_with_balanced_skips(unet_run):
    config, network = _network(unet_run)
    images = _images((2, 32, 64, 3), 3)
    before = network(images, training=False).numpy()
    representative = deploy.representative_inputs(config, 4)
    records = quantization.equalize_skip_ranges(network, representative)
    depth = config.model.unet_depth
    assert [r["level"] for r in records] == list(range(1, depth))
    np.testing.assert_allclose(network(images, training=False).numpy(), before, atol=1e-5)
    # Both inputs of every skip concatenation now have the same largest magnitude.
    names = [f"encoder_{k}_lrelu" for k in range(1, depth)]
    names += [f"decoder_{depth - k}_relu" for k in range(1, depth)]
    maxima = quantization._activation_maxima(network, names, representative)
    for k in range(1, depth):
        assert maxima[f"encoder_{k}_lrelu"] == pytest.approx(
            maxima[f"decoder_{depth - k}_relu"], rel=1e-4
        )


def test_equalization_leaves_other_generators_alone(tmp_path):
    make_resnet_run(str(tmp_path))
    _, network = _network(str(tmp_path))
    weights = [w.copy() for w in network.get_weights()]
    assert quantization.equalize_skip_ranges(network, [_images((1, 32, 32, 3))]) == []
    for before, after in zip(weights, network.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def _layer_of(tensor_name: str) -> str:
    """The layer name a quantized model's tensor carries: the converter may append a
    digit to keep names unique ("encoder_2_conv1")."""
    return re.sub(r"(?<=[a-z])\d+$|(?<=_\d)\d+$", "", tensor_name)


def _op_dtypes(model: bytes) -> dict[str, str]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    dtypes = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("CONV_2D", "TRANSPOSE_CONV"):
            output = tensors[op["outputs"][0]]
            dtypes[output["name"]] = np.dtype(output["dtype"]).name
    return dtypes


def test_calibration_names_every_convolution_and_keeps_the_chosen_ones_float(unet_run):
    config, network = _network(unet_run)
    network = subpixel.rewrite(network)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    calibration = quantization.calibrate(network, spec, deploy.representative_inputs(config, 4))
    convolutions = [
        layer.name for layer in network.layers if layer.name.endswith(("_conv", "_deconv"))
    ]
    assert sorted(calibration.layers) == sorted(convolutions)
    all_int8 = _op_dtypes(calibration.quantize())
    assert sorted(all_int8.values()) == ["int8"] * len(convolutions)
    # A convolution and a (sub-pixel) transposed convolution kept in float32.
    chosen = ("encoder_2_conv", "output_deconv")
    mixed = _op_dtypes(calibration.quantize(chosen))
    floats = sorted(name for name, dtype in mixed.items() if dtype == "float32")
    assert [_layer_of(name) for name in floats] == sorted(chosen)
    with pytest.raises(ValueError, match="--float_layers nonexistent: not a convolution"):
        calibration.quantize(["nonexistent"])


def test_int8_export_records_how_it_was_quantized(unet_run, tmp_path):
    folder = deploy.export(
        unet_run,
        str(tmp_path / "q"),
        "litert",
        "int8",
        representative_examples=4,
        float_layers=("output_deconv",),
    )
    with open(os.path.join(folder, deploy.METADATA_FILE)) as file:
        record = json.load(file)
    int8 = record["int8"]
    assert int8["representative_examples"] == 4 and int8["per_channel_weights"]
    assert int8["float_layers"] == ["output_deconv"]
    assert int8["subpixel_transposed_convolutions"]
    assert [entry["level"] for entry in int8["equalized_skips"]] == [1, 2, 3]  # Depth 4.
    model = deploy_runtimes.load(folder)
    assert model.metadata == record
    images = _images((1, 32, 64, 3), 5)
    config, network = _network(unet_run)
    # Measured 53-57 dB on this tiny run; the bound of test_deploy_export.
    assert _psnr(model(images), network(images, training=False).numpy()) >= 40.0


def test_float_layers_needs_int8(unet_run, tmp_path, capsys):
    base = ["--workdir", unet_run, "--export_dir", str(tmp_path / "e")]
    assert export_script.main([*base, "--format", "litert", "--float_layers", "x"]) == 1
    assert "--float_layers applies to --format litert --quantize int8" in capsys.readouterr().err
    assert export_script.main([*base, "--float_layers", "x"]) == 1
    assert "--float_layers applies to --format litert --quantize int8" in capsys.readouterr().err
    assert not os.path.exists(str(tmp_path / "e-litert" / "1"))
    code = export_script.main(
        [*base, "--format", "litert", "--quantize", "int8", "--float_layers", "nonexistent"]
    )
    assert code == 1
    assert "--float_layers nonexistent: not a convolution" in capsys.readouterr().err


def test_calibration_names_the_convolutions_inside_residual_blocks(tmp_path):
    make_resnet_run(str(tmp_path))
    config, network = _network(str(tmp_path))
    network = subpixel.rewrite(network)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    calibration = quantization.calibrate(network, spec, deploy.representative_inputs(config, 2))
    blocks = [layer.name for layer in network.layers if layer.name.startswith("residual_")]
    assert blocks
    for block in blocks:
        assert f"{block}/conv_1" in calibration.layers and f"{block}/conv_2" in calibration.layers
    assert len(set(calibration.layers)) == len(calibration.layers)
    chosen = f"{blocks[0]}/conv_2"
    mixed = _op_dtypes(calibration.quantize([chosen]))
    floats = [name for name, dtype in mixed.items() if dtype == "float32"]
    assert [_layer_of(name) for name in floats] == [chosen]
