"""The exported SavedModel's serving contract, checked without a TF Serving binary.

What TF Serving relies on: the signatures and their tensor names (as
`saved_model_cli` lists them), loading in plain TensorFlow without this project's
code, the REST API's JSON/base64 encoding, and per-request errors on bad input.
"""

import base64
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import EXIF_TRANSPOSE, encoded_image, exif_image, make_run, png_bytes
from PIL import Image, ImageOps

from pix2pix_tf.cli import serving_client as client_cli
from pix2pix_tf.serving import client as serving_client
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import graph as serving

# The contract tests' export bounds inputs to 128x128 pixels, so a refusal is cheap to test.
MAX_PIXELS = 128 * 128


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A native-size export (the default) of a tiny run: 64x64, unet_depth 4, M = 16."""
    root = tmp_path_factory.mktemp("contract")
    workdir = str(root / "run")
    config, generator = make_run(workdir, output_gain=20.0)
    options = serving.ServingOptions(max_pixels=MAX_PIXELS)
    version_dir = export_lib.export(workdir, str(root / "exported"), options=options)
    return config, generator, version_dir


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[2])


@pytest.fixture(scope="module")
def exported_training(exported, tmp_path_factory):
    """The same run exported with --serving_size training (the behaviour before #12)."""
    workdir = os.path.join(os.path.dirname(os.path.dirname(exported[2])), "run")
    root = tmp_path_factory.mktemp("contract_training")
    options = serving.ServingOptions(serving_size="training")
    return export_lib.export(workdir, str(root / "exported"), options=options, warmup=False)


@pytest.fixture(scope="module")
def loaded_training(exported_training):
    return tf.saved_model.load(exported_training)


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
    # Native size: any height and width (multiples of 16, checked in the graph).
    assert "shape: (-1, -1, -1, 3)" in generate and "64, 64" not in generate


def test_saved_model_cli_training_size_signature(exported_training):
    result = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show"]
        + ["--dir", exported_training, "--tag_set", "serve", "--signature_def", "generate"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert "shape: (-1, 64, 64, 3)" in result.stdout


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
    result = _run_tensorflow_only(script, tmp_path)
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


def _error_message(call) -> str:
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        call()
    return error.value.message


def test_empty_batches_return_empty_batches(exported, loaded):
    config, _, _ = exported
    size = config.data.image_size
    served = loaded.signatures["serving_default"](image_bytes=tf.zeros([0], tf.string))
    assert served["image_bytes"].shape == (0,) and served["image_bytes"].dtype == tf.string
    generated = loaded.signatures["generate"](images=tf.zeros([0, size, size, 3]))
    assert generated["images"].shape == (0, size, size, 3)


def test_undecodable_image_is_named_by_its_position(loaded):
    serve = loaded.signatures["serving_default"]
    good = encoded_image(64, 64)
    jpeg = encoded_image(30, 40, fmt="jpeg")
    message = _error_message(lambda: serve(image_bytes=tf.constant([good, b"nope!", good])))
    assert "image_bytes[1] (5 bytes) is not a decodable JPEG, PNG, GIF or BMP image" in message
    assert "1 of 3 images in this request failed" in message
    truncated = [good, jpeg, jpeg[: len(jpeg) // 3], b""]
    message = _error_message(lambda: serve(image_bytes=tf.constant(truncated)))
    assert "image_bytes[2]" in message and "2 of 4 images" in message
    message = _error_message(lambda: serve(image_bytes=tf.constant([b"", b"x"])))
    assert "image_bytes[0] (0 bytes)" in message and "2 of 2 images" in message


@pytest.mark.parametrize(
    "shape",
    [[1, 40, 64, 3], [2, 64, 64, 1], [1, 64, 24, 3], [1, 0, 16, 3], [64, 64, 3], [1, 1, 64, 64, 3]],
)
def test_generate_names_the_expected_multiple(loaded, shape):
    generate = loaded.signatures["generate"]
    message = _error_message(lambda: generate(images=tf.zeros(shape)))
    expected = "images must be [N, H, W, 3] float32 in [-1, 1] with H and W positive "
    expected += "multiples of 16, got "
    assert expected + "[" + ", ".join(str(dim) for dim in shape) + "]" in message


@pytest.mark.parametrize(
    "shape", [[1, 32, 32, 3], [2, 64, 64, 1], [1, 64, 32, 3], [64, 64, 3], [1, 1, 64, 64, 3]]
)
def test_training_size_generate_names_the_expected_shape(exported, loaded_training, shape):
    config, _, _ = exported
    size = config.data.image_size
    generate = loaded_training.signatures["generate"]
    message = _error_message(lambda: generate(images=tf.zeros(shape)))
    expected = f"images must be [N, {size}, {size}, 3] float32 in [-1, 1], got "
    assert expected + "[" + ", ".join(str(dim) for dim in shape) + "]" in message


def test_fresh_process_gets_the_same_errors_and_empty_batches(exported, tmp_path):
    """The checks are graph ops: a process with only TensorFlow gets them too."""
    _, _, version_dir = exported
    good = tmp_path / "good.png"
    good.write_bytes(encoded_image(64, 64))
    script = textwrap.dedent(
        f"""
        import sys
        import tensorflow as tf
        model = tf.saved_model.load({version_dir!r})
        serve, generate = model.signatures["serving_default"], model.signatures["generate"]
        good = open({str(good)!r}, "rb").read()
        print("EMPTY", serve(image_bytes=tf.zeros([0], tf.string))["image_bytes"].shape[0])
        print("EMPTY", generate(images=tf.zeros([0, 64, 64, 3]))["images"].shape[0])
        for call in (
            lambda: serve(image_bytes=tf.constant([good, b"bad"])),
            lambda: generate(images=tf.zeros([1, 40, 64, 3])),
        ):
            try:
                call()
            except tf.errors.InvalidArgumentError as error:
                print("ERROR", error.message.splitlines()[-2])
        assert "pix2pix_tf" not in sys.modules
        """
    )
    result = _run_tensorflow_only(script, tmp_path)
    assert result.stdout.count("EMPTY 0") == 2
    assert "ERROR assertion failed: [image_bytes[1] (3 bytes) is not a decodable" in result.stdout
    assert "got [1, 40, 64, 3]" in result.stdout


# -- native size ---------------------------------------------------------------------


def _serve_pixels(loaded, batch) -> list[np.ndarray]:
    served = loaded.signatures["serving_default"](image_bytes=tf.constant(batch))
    return [tf.io.decode_png(item).numpy() for item in served["image_bytes"].numpy()]


def _generated_pixels(loaded, floats: np.ndarray) -> np.ndarray:
    generated = loaded.signatures["generate"](images=tf.constant(floats[None]))["images"]
    return np.clip(np.round((generated[0].numpy() + 1.0) * 127.5), 0, 255)


@pytest.mark.parametrize("size", [(48, 80), (64, 128), (37, 53), (7, 9)])
def test_inputs_are_served_at_their_own_size_like_the_float_signature(loaded, size):
    """Padded by reflection to multiples of 16, generated, cropped back: never squashed."""
    height, width = size
    data = encoded_image(height, width, seed=height)
    [output] = _serve_pixels(loaded, [data])
    assert output.shape == (height, width, 3)
    floats = tf.io.decode_png(data).numpy().astype(np.float32) / 127.5 - 1.0
    padded_height, padded_width = -(-height // 16) * 16, -(-width // 16) * 16
    if height > padded_height - height and width > padded_width - width:
        pads = ((0, padded_height - height), (0, padded_width - width), (0, 0))
        padded = np.pad(floats, pads, mode="reflect")
    else:
        # Longer padding than the image: reflected back and forth (7: 0..6, 5..0, 1, ...).
        rows = [abs((i + height - 1) % (2 * height - 2) - height + 1) for i in range(padded_height)]
        columns = [abs((i + width - 1) % (2 * width - 2) - width + 1) for i in range(padded_width)]
        padded = floats[rows][:, columns]
    expected = _generated_pixels(loaded, padded)[:height, :width]
    assert np.abs(output.astype(np.float32) - expected).max() <= 1.0


def test_two_sizes_in_one_request_match_each_served_alone(loaded):
    batch = [encoded_image(48, 80), encoded_image(64, 128, seed=1), encoded_image(48, 80, seed=2)]
    together = _serve_pixels(loaded, batch)
    assert [image.shape for image in together] == [(48, 80, 3), (64, 128, 3), (48, 80, 3)]
    for data, output in zip(batch, together, strict=True):
        [alone] = _serve_pixels(loaded, [data])
        assert np.abs(alone.astype(int) - output.astype(int)).max() <= 1


def test_pixels_over_the_bound_are_refused_by_position(loaded):
    serve = loaded.signatures["serving_default"]
    big = encoded_image(130, 130)
    message = _error_message(lambda: serve(image_bytes=tf.constant([encoded_image(64, 64), big])))
    assert (
        f"image_bytes[1] is 130x130 = 16900 pixels, over the bound of {MAX_PIXELS} "
        "pixels per image set at export (export.py --max_pixels)"
    ) in message
    assert _serve_pixels(loaded, [encoded_image(128, 128)])[0].shape == (128, 128, 3)
    generate = loaded.signatures["generate"]
    message = _error_message(lambda: generate(images=tf.zeros([1, 144, 144, 3])))
    assert f"images are 144x144 = 20736 pixels each, over the bound of {MAX_PIXELS}" in (message)


def test_training_size_export_resizes_as_before(loaded, loaded_training):
    """--serving_size training: resized to 64x64 and back, antialiased when shrinking."""
    data = encoded_image(48, 80, seed=4)
    [output] = _serve_pixels(loaded_training, [data])
    assert output.shape == (48, 80, 3)
    pixels = tf.cast(tf.io.decode_png(data), tf.float32)
    floats = tf.image.resize(pixels, [64, 64], antialias=True).numpy() / 127.5 - 1.0
    generated = loaded_training.signatures["generate"](images=tf.constant(floats[None]))
    back = tf.image.resize((generated["images"][0] + 1.0) * 127.5, [48, 80], antialias=True)
    expected = np.clip(np.round(back.numpy()), 0, 255)
    assert np.abs(output.astype(np.float32) - expected).max() <= 1.0
    # The native export does not squash this 48x80 input: its output differs.
    [native] = _serve_pixels(loaded, [data])
    assert np.abs(native.astype(int) - output.astype(int)).max() > 8


def test_square_input_at_training_size_is_served_as_before(loaded, loaded_training):
    data = encoded_image(64, 64, seed=5)
    [native] = _serve_pixels(loaded, [data])
    [before] = _serve_pixels(loaded_training, [data])
    assert np.abs(native.astype(int) - before.astype(int)).max() <= 1


def test_fresh_process_serves_native_sizes_and_refuses_over_the_bound(
    exported, exported_training, tmp_path
):
    """Native sizes, two sizes in one request, the bound and the training-size export,
    in a process with only TensorFlow."""
    _, _, version_dir = exported
    for name, (height, width) in {
        "wide": (48, 80),
        "cityscapes": (64, 128),
        "odd": (37, 53),
    }.items():
        (tmp_path / f"{name}.png").write_bytes(encoded_image(height, width, seed=height))
    (tmp_path / "big.png").write_bytes(encoded_image(130, 130))
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        def read(name):
            return open(name + ".png", "rb").read()
        def pixels(outputs):
            return [tf.io.decode_png(item).numpy() for item in outputs["image_bytes"].numpy()]
        model = tf.saved_model.load({version_dir!r})
        serve, generate = model.signatures["serving_default"], model.signatures["generate"]
        wide, cityscapes, odd = read("wide"), read("cityscapes"), read("odd")
        outputs = pixels(serve(image_bytes=tf.constant([wide, cityscapes, odd, wide])))
        print("SHAPES", *[image.shape[:2] for image in outputs])
        floats = tf.cast(tf.io.decode_png(odd), tf.float32)[None] / 127.5 - 1.0
        padded = tf.pad(floats, [[0, 0], [0, 11], [0, 11], [0, 0]], mode="REFLECT")
        generated = generate(images=padded)["images"][0, :37, :53]
        expected = np.clip(np.round((generated.numpy() + 1.0) * 127.5), 0, 255)
        print("ODD_DIFF", np.abs(outputs[2].astype(np.float32) - expected).max())
        [alone] = pixels(serve(image_bytes=tf.constant([odd])))
        print("ALONE_DIFF", np.abs(alone.astype(int) - outputs[2].astype(int)).max())
        try:
            serve(image_bytes=tf.constant([wide, read("big")]))
        except tf.errors.InvalidArgumentError as error:
            print("ERROR", error.message.splitlines()[-2])
        training = tf.saved_model.load({exported_training!r})
        [resized] = pixels(training.signatures["serving_default"](image_bytes=tf.constant([wide])))
        print("TRAINING", resized.shape[:2], np.abs(resized.astype(int) - outputs[0]).max() > 8)
        assert "pix2pix_tf" not in sys.modules
        """
    )
    result = _run_tensorflow_only(script, tmp_path)
    assert "SHAPES (48, 80) (64, 128) (37, 53) (48, 80)" in result.stdout
    assert "ODD_DIFF 0.0" in result.stdout or "ODD_DIFF 1.0" in result.stdout
    assert "ALONE_DIFF 0" in result.stdout or "ALONE_DIFF 1" in result.stdout
    assert "ERROR assertion failed: [image_bytes[1] is 130x130 = 16900 pixels, over" in (
        result.stdout
    )
    assert "TRAINING (48, 80) True" in result.stdout


# -- EXIF orientation ---------------------------------------------------------------


def _pixels(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("byte_order", ["MM", "II"])
def test_exif_orientation_is_read_in_the_graph_like_pillow(byte_order):
    pixels = _pixels(20, 30)
    for orientation in range(1, 9):
        data = exif_image(pixels, orientation, byte_order=byte_order)
        read = serving.exif_orientation(tf.constant(data))
        assert int(read) == Image.open(io.BytesIO(data)).getexif()[0x0112] == orientation
        # The pixels as TensorFlow decodes them (it ignores EXIF), turned by the graph and
        # by Pillow's exif_transpose: identical.
        raw = tf.io.decode_jpeg(data, channels=3)
        turned = serving.orient(raw, read).numpy()
        carrier = exif_image(raw.numpy(), orientation, fmt="PNG", byte_order=byte_order)
        expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(carrier))))
        np.testing.assert_array_equal(turned, expected)


def test_exif_orientation_defaults_to_upright_for_anything_else():
    jpeg = encoded_image(20, 30, fmt="jpeg")
    exif = exif_image(_pixels(8, 8), 6)
    for data in (b"", b"\xff\xd8", encoded_image(20, 30), jpeg, exif[:30], exif[:60], b"Exif"):
        assert int(serving.exif_orientation(tf.constant(data))) == 1, data[:40]


def test_served_outputs_are_upright_like_exif_transpose(loaded):
    """A JPEG with orientation N is served exactly like the upright pixels as a PNG."""
    serve = loaded.signatures["serving_default"]
    pixels = _pixels(40, 64, seed=3)
    batch, upright = [], []
    for orientation in range(1, 9):
        data = exif_image(pixels, orientation)
        raw = tf.io.decode_jpeg(data, channels=3).numpy()
        batch.append(data)
        turned = (
            raw if orientation == 1 else Image.fromarray(raw).transpose(EXIF_TRANSPOSE[orientation])
        )
        upright.append(png_bytes(np.asarray(turned)))
    served = serve(image_bytes=tf.constant(batch))["image_bytes"].numpy()
    expected = serve(image_bytes=tf.constant(upright))["image_bytes"].numpy()
    for orientation, (got, want) in enumerate(zip(served, expected, strict=True), start=1):
        size = tuple(tf.io.decode_png(got).shape)
        assert size == ((40, 64, 3) if orientation <= 4 else (64, 40, 3)), orientation
        np.testing.assert_array_equal(tf.io.decode_png(got), tf.io.decode_png(want))


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


# -- the clients, against in-process stand-ins for TF Serving's two APIs ------------
#
# The stand-ins follow TF Serving's rules (model_servers/http_rest_api_handler and
# util/json_tensor): REST row format, {"b64": ...} for binary inputs, and base64
# only for string outputs whose name ends in `_bytes`; gRPC PredictRequest in,
# PredictResponse out, INVALID_ARGUMENT for op errors. They run the real SavedModel.


class _FakePredictionService:
    def __init__(self, loaded, model_name="pix2pix"):
        self.loaded = loaded
        self.model_name = model_name

    def run(self, name, signature_name, inputs):
        if name != self.model_name:
            raise LookupError(f"Servable not found for request: Latest({name})")
        signature = self.loaded.signatures[signature_name or "serving_default"]
        outputs = signature(**{key: tf.constant(value) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}


@pytest.fixture(scope="module")
def grpc_address(loaded):
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    service = _FakePredictionService(loaded)

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
            try:
                outputs = service.run(
                    request.model_spec.name, request.model_spec.signature_name, inputs
                )
            except tf.errors.InvalidArgumentError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)
            except LookupError as error:
                context.abort(grpc.StatusCode.NOT_FOUND, str(error))
            response = predict_pb2.PredictResponse()
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


@pytest.fixture(scope="module")
def rest_url(loaded):
    import http.server
    import threading

    service = _FakePredictionService(loaded)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            name = self.path.removeprefix("/v1/models/").removesuffix(":predict")
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            signature_name = request.get("signature_name", "serving_default")
            signature = loaded.signatures[signature_name]
            (input_key,) = signature.structured_input_signature[1]
            values = [
                base64.b64decode(item["b64"]) if isinstance(item, dict) else item
                for item in request["instances"]
            ]
            try:
                outputs = service.run(name, signature_name, {input_key: np.array(values)})
            except (tf.errors.InvalidArgumentError, LookupError) as error:
                message = getattr(error, "message", str(error))
                return self._reply(400 if "Servable" not in message else 404, {"error": message})
            (output_key, value) = next(iter(outputs.items()))
            if value.dtype == object and output_key.endswith("_bytes"):
                predictions = [{"b64": base64.b64encode(item).decode()} for item in value]
            else:
                predictions = value.tolist()
            self._reply(200, {"predictions": predictions})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_string_outputs_are_named_for_base64_in_rest(loaded):
    # TF Serving base64-encodes a string output in JSON only if its name ends in _bytes.
    outputs = loaded.signatures["serving_default"].structured_outputs
    assert list(outputs) == ["image_bytes"]


def test_grpc_client_round_trip_and_errors(grpc_address):
    import grpc

    data = encoded_image(50, 70, fmt="jpeg")
    outputs = serving_client.grpc_generate(grpc_address, [data, encoded_image(64, 64)])
    shapes = [tuple(tf.io.decode_png(output).shape) for output in outputs]
    assert shapes == [(50, 70, 3), (64, 64, 3)]
    with pytest.raises(grpc.RpcError) as error:
        serving_client.grpc_generate(grpc_address, [b"not an image"])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The server keeps serving after a bad request.
    assert len(serving_client.grpc_generate(grpc_address, [data])) == 1


def test_rest_client_round_trip_and_errors(rest_url):
    import urllib.error

    data = encoded_image(20, 36, fmt="jpeg")
    (output,) = serving_client.rest_generate(rest_url, [data])
    assert tuple(tf.io.decode_png(output).shape) == (20, 36, 3)
    with pytest.raises(urllib.error.HTTPError) as error:
        serving_client.rest_generate(rest_url, [b"not an image"])
    assert error.value.code == 400
    assert "image" in json.loads(error.value.read())["error"].lower()
    assert len(serving_client.rest_generate(rest_url, [data, data])) == 2


def test_client_command_line(rest_url, tmp_path, capsys):
    source = tmp_path / "label.png"
    source.write_bytes(encoded_image(24, 40))
    args = ["--rest", rest_url, "--input", str(source), "--output", str(tmp_path / "out")]
    assert client_cli.main(args) == 0
    written = tmp_path / "out" / "label.png"
    assert str(written) in capsys.readouterr().out
    assert tuple(tf.io.decode_png(written.read_bytes()).shape) == (24, 40, 3)


def _run_tensorflow_only(script: str, directory) -> subprocess.CompletedProcess:
    """Runs `script` in a fresh Python that cannot import this project (no PYTHONPATH,
    another working directory), as a TF Serving host would load the export."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=directory, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result
