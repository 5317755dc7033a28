"""The exported SavedModel's serving contract, checked without a TF Serving binary.

What TF Serving relies on: the signatures and their tensor names (as
`saved_model_cli` lists them), loading in plain TensorFlow without this project's
code, the REST API's JSON/base64 encoding, and per-request errors on bad input.
"""

import base64
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import encoded_image, make_run

from pix2pix_tf import export_lib


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    workdir = str(root / "run")
    config, generator = make_run(workdir)
    version_dir = export_lib.export(workdir, str(root / "exported"))
    return config, generator, version_dir


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[2])


def test_saved_model_cli_lists_signatures_and_alias(exported):
    _, _, version_dir = exported
    result = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--all"]
        + ["--dir", version_dir],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    text = result.stdout
    for signature in ("serving_default", "serve_bytes", "generate"):
        assert f"signature_def['{signature}']" in text
    default = text.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "inputs['image_bytes']" in default
    assert "outputs['image_bytes']" in default
    assert "dtype: DT_STRING" in default
    assert "tensorflow/serving/predict" in default
    generate = text.split("signature_def['generate']")[1].split("signature_def[")[0]
    assert "inputs['images']" in generate and "outputs['images']" in generate
    assert "shape: (-1, 64, 64, 3)" in generate


def test_fresh_process_with_only_tensorflow_serves_jpeg_to_png(exported, tmp_path):
    _, _, version_dir = exported
    jpeg = tmp_path / "input.jpg"
    jpeg.write_bytes(encoded_image(48, 80, fmt="jpeg"))
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        import tensorflow as tf
        assert importlib.util.find_spec("pix2pix_tf") is None, "project code is importable"
        model = tf.saved_model.load({version_dir!r})
        serve = model.signatures["serving_default"]
        data = open({str(jpeg)!r}, "rb").read()
        out = serve(image_bytes=tf.constant([data, data]))["image_bytes"]
        image = tf.io.decode_image(out[0].numpy())
        assert out[0].numpy().startswith(b"\\x89PNG"), out[0].numpy()[:8]
        assert "pix2pix_tf" not in sys.modules
        print("SHAPE", *image.shape, "N", int(out.shape[0]))
        """
    )
    # Run from an empty directory with no PYTHONPATH, so the project is not importable.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SHAPE 48 80 3 N 2" in result.stdout


def test_float_signature_matches_keras_generator(exported, loaded):
    config, generator, _ = exported
    size = config.data.image_size
    images = tf.random.stateless_uniform([3, size, size, 3], seed=[7, 7], minval=-1.0)
    served = loaded.signatures["generate"](images=images)["images"]
    expected = generator(images, training=False)
    np.testing.assert_allclose(served.numpy(), expected.numpy(), atol=1e-5)
    assert float(tf.reduce_min(served)) >= -1.0 and float(tf.reduce_max(served)) <= 1.0


def test_bytes_signature_matches_float_signature_at_model_size(exported, loaded):
    config, generator, _ = exported
    size = config.data.image_size
    data = encoded_image(size, size)
    pixels = tf.io.decode_png(data)
    served = loaded.signatures["serving_default"](image_bytes=tf.constant([data]))
    output = tf.io.decode_png(served["image_bytes"][0]).numpy().astype(np.float32)
    expected = generator(tf.cast(pixels, tf.float32)[None] / 127.5 - 1.0, training=False)
    expected_pixels = np.clip(np.round((expected[0].numpy() + 1.0) * 127.5), 0, 255)
    assert np.abs(output - expected_pixels).max() <= 1.0


@pytest.mark.parametrize("channels", [1, 4])
def test_grayscale_and_rgba_inputs_become_rgb_at_input_size(loaded, channels):
    data = encoded_image(30, 50, channels=channels)
    served = loaded.signatures["serving_default"](image_bytes=tf.constant([data]))
    assert tuple(tf.io.decode_png(served["image_bytes"][0]).shape) == (30, 50, 3)


def test_mixed_sizes_in_one_batch_keep_their_sizes(loaded):
    batch = [encoded_image(64, 64), encoded_image(100, 20, fmt="jpeg"), encoded_image(7, 9)]
    served = loaded.signatures["serving_default"](image_bytes=tf.constant(batch))
    shapes = [tuple(tf.io.decode_png(item).shape) for item in served["image_bytes"]]
    assert shapes == [(64, 64, 3), (100, 20, 3), (7, 9, 3)]


def test_rest_json_round_trip(loaded):
    """A body in TF Serving's REST format, decoded the way the server does it."""
    data = encoded_image(40, 60, fmt="jpeg")
    body = json.dumps(
        {
            "signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(data).decode()}],
        }
    )
    # The server: {"b64": ...} becomes a DT_STRING element of the input tensor.
    request = json.loads(body)
    inputs = [base64.b64decode(instance["b64"]) for instance in request["instances"]]
    signature = loaded.signatures[request["signature_name"]]
    outputs = signature(image_bytes=tf.constant(inputs))["image_bytes"].numpy()
    # Binary string outputs are returned base64-encoded under "b64".
    response = json.dumps({"predictions": [{"b64": base64.b64encode(o).decode()} for o in outputs]})
    decoded = base64.b64decode(json.loads(response)["predictions"][0]["b64"])
    assert tuple(tf.io.decode_png(decoded).shape) == (40, 60, 3)


def test_bad_bytes_fail_that_call_only(loaded):
    serve = loaded.signatures["serving_default"]
    good = encoded_image(64, 64)
    with pytest.raises(tf.errors.InvalidArgumentError):
        serve(image_bytes=tf.constant([good, b"definitely not an image"]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        serve(image_bytes=tf.constant([good[: len(good) // 3]]))
    served = serve(image_bytes=tf.constant([good]))
    assert tuple(tf.io.decode_png(served["image_bytes"][0]).shape) == (64, 64, 3)


def test_serving_is_repeatable_and_never_writes_variables(loaded):
    before = [variable.numpy().copy() for variable in loaded.variables]
    data = tf.constant([encoded_image(64, 64), encoded_image(32, 32, seed=3)])
    first = loaded.signatures["serving_default"](image_bytes=data)["image_bytes"].numpy()
    second = loaded.signatures["serving_default"](image_bytes=data)["image_bytes"].numpy()
    assert list(first) == list(second)
    after = [variable.numpy() for variable in loaded.variables]
    assert len(before) > 0
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
