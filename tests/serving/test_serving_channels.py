"""Serving 1- and 3-channel, 8- and 16-bit models (#12 item 2): the export's signatures,
its metadata and warmup, predict.py, and the conversions of serving/codec.py.

Two tiny runs with random weights: `colourise` maps gray to RGB (8-bit), `depth`
maps 16-bit gray to 16-bit gray. The default RGB 8-bit model is covered, unchanged,
by test_serving_contract.py, test_export.py, test_predict.py and test_compatibility.py.
"""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import encoded_image, make_run
from PIL import Image

import predict as predict_cli
from pix2pix_tf.serving import codec
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import graph as serving
from pix2pix_tf.serving import predict as predict_lib

# Textured outputs (a fresh generator's are nearly flat grey), so differences show.
OUTPUT_GAIN = 20.0
BT601 = np.array([0.299, 0.587, 0.114], np.float32)


@pytest.fixture(scope="module")
def colourise(tmp_path_factory):
    """A gray -> RGB run (8-bit both sides), exported at native size with warmup."""
    root = tmp_path_factory.mktemp("colourise")
    workdir = str(root / "run")
    make_run(workdir, output_gain=OUTPUT_GAIN, input_channels=1, output_channels=3)
    version_dir = export_lib.export(workdir, str(root / "exported"))
    return workdir, version_dir, tf.saved_model.load(version_dir)


@pytest.fixture(scope="module")
def depth(tmp_path_factory):
    """A 16-bit gray -> 16-bit gray run (e.g. a depth map from a depth map)."""
    root = tmp_path_factory.mktemp("depth")
    workdir = str(root / "run")
    make_run(
        workdir,
        output_gain=OUTPUT_GAIN,
        input_channels=1,
        output_channels=1,
        input_bits=16,
        output_bits=16,
    )
    export_dir = str(root / "exported")
    version_dir = export_lib.export(workdir, export_dir, warmup=False)
    return workdir, export_dir, version_dir, tf.saved_model.load(version_dir)


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
    """uint8 or uint16 [H, W] / [H, W, C] pixels encoded by Pillow (16-bit gray: I;16)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, format=fmt)
    return buffer.getvalue()


def _gray16(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth 16-bit gray image whose low bytes are not all zero."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 65535, size=(3, 4, 1)).astype(np.float32)
    smooth = tf.image.resize(coarse, [height, width]).numpy()
    noise = rng.integers(0, 256, size=(height, width, 1))
    return np.clip(np.round(smooth) + noise, 0, 65535).astype(np.uint16)


def _luma(rgb: np.ndarray, levels: int = 255) -> np.ndarray:
    """[H, W, 3] uint8 -> [H, W, 1] float32 on a 0..levels scale: R where R = G = B,
    else the BT.601 luma rounded to `levels`."""
    values = rgb.astype(np.float32)
    luma = values[..., 0] * BT601[0] + values[..., 1] * BT601[1] + values[..., 2] * BT601[2]
    scale = levels / 255.0  # 1 or 257: exact.
    luma = np.round(luma * scale)
    gray = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    return np.where(gray, values[..., 0] * scale, luma)[..., None]


def _generate(loaded, floats: np.ndarray) -> np.ndarray:
    return loaded.signatures["generate"](images=tf.constant(floats[None]))["images"][0].numpy()


def _serve(loaded, batch: list[bytes]) -> list[bytes]:
    outputs = loaded.signatures["serving_default"](image_bytes=tf.constant(batch))
    return list(outputs["image_bytes"].numpy())


def _error_message(call) -> str:
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        call()
    return error.value.message


# -- conversions (serving/codec.py) ---------------------------------------------------


def test_colour_to_gray_keeps_gray_pixels_exactly_and_takes_luma_elsewhere():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    rgb[:3] = rng.integers(0, 256, (3, 8, 1), dtype=np.uint8)  # Gray pixels stored as RGB.
    expected = _luma(rgb).astype(np.uint8)
    assert np.array_equal(expected[:3], rgb[:3, :, :1])
    rgba = np.concatenate([rgb, rng.integers(0, 256, (6, 8, 1), dtype=np.uint8)], axis=-1)
    for pixels in (rgb, rgba):
        decoded = codec.decode(tf.io.encode_png(pixels), channels=1, bits=8).numpy()
        assert decoded.dtype == np.uint8 and np.array_equal(decoded, expected)
    # A 16-bit model: gray pixels exactly, luma rounded to 16-bit levels.
    decoded16 = codec.decode(tf.io.encode_png(rgb), channels=1, bits=16).numpy()
    assert decoded16.dtype == np.float32
    assert np.abs(decoded16[:3] * 255.0 - rgb[:3, :, :1]).max() < 1e-4
    luma = (rgb.astype(np.float32) @ BT601)[..., None] / 255.0
    assert np.abs(decoded16 - luma).max() <= 0.6 / 65535


def test_gray_with_alpha_keeps_its_gray_for_either_channel_count():
    rng = np.random.default_rng(1)
    gray_alpha = rng.integers(0, 256, (5, 7, 2), dtype=np.uint8)
    data = tf.io.encode_png(gray_alpha)
    assert np.array_equal(codec.decode(data, 1, 8).numpy(), gray_alpha[..., :1])
    assert np.array_equal(codec.decode(data, 3, 8).numpy(), np.repeat(gray_alpha[..., :1], 3, -1))


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "GIF", "JPEG"])
def test_gray_is_replicated_into_rgb_and_read_back_as_it_was(fmt):
    gray = np.tile(np.arange(0, 240, 3, dtype=np.uint8), (10, 1))
    data = _encode(gray, fmt)
    expected = tf.io.decode_image(data, channels=0, expand_animations=False).numpy()[..., :1]
    if fmt != "JPEG":
        assert np.array_equal(expected[..., 0], gray)
    rgb = codec.decode(tf.constant(data), channels=3, bits=8).numpy()
    assert np.array_equal(rgb, np.repeat(expected, 3, axis=-1))
    assert np.array_equal(codec.decode(tf.constant(data), channels=1, bits=8).numpy(), expected)


def test_sixteen_bit_png_keeps_its_low_byte_for_a_sixteen_bit_model():
    pixels = _gray16(12, 20)
    data = _encode(pixels, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    decoded = codec.decode(tf.constant(data), channels=1, bits=16).numpy()
    assert np.abs(decoded * 65535.0 - pixels).max() < 0.01
    # Replicated to RGB for a 3-channel 16-bit model, scaled by 1/255 from 8 bits.
    assert np.abs(codec.decode(data, 3, 16).numpy() * 65535.0 - pixels).max() < 0.01
    eight = encoded_image(12, 20)
    assert np.array_equal(
        np.round(codec.decode(eight, 3, 16).numpy() * 255.0), tf.io.decode_png(eight).numpy()
    )
    # An 8-bit model reads it at its high byte, as documented.
    assert np.array_equal(codec.decode(data, 1, 8).numpy(), pixels >> 8)


def test_sixteen_bit_encoding_rounds_and_clips():
    generated = tf.constant([[[-1.5], [-1.0], [0.0], [0.5], [1.0], [1.2]]])
    png = codec.encode_png(codec.to_pixels(generated, 16), 16, compression=1)
    decoded = tf.io.decode_png(png, dtype=tf.uint16).numpy()[0, :, 0]
    assert decoded.tolist() == [0, 0, 32768, 49151, 65535, 65535]


# -- gray in, RGB out ---------------------------------------------------------------


def test_gray_png_rgb_jpeg_and_gray_bmp_are_colourised_like_generate(colourise):
    _, _, loaded = colourise
    rng = np.random.default_rng(1)
    gray = np.round(tf.image.resize(rng.uniform(0, 255, (4, 4, 1)), [48, 64]).numpy())
    gray = gray.astype(np.uint8)
    jpeg = encoded_image(48, 64, fmt="jpeg", seed=2)
    inputs = {
        "gray png": (_encode(gray, "PNG"), gray),
        "rgb jpeg": (jpeg, _luma(tf.io.decode_jpeg(jpeg).numpy()).astype(np.uint8)),
        "gray bmp": (_encode(gray[:, ::-1], "BMP"), gray[:, ::-1]),
    }
    outputs = _serve(loaded, [data for data, _ in inputs.values()])
    for (name, (_, pixels)), output in zip(inputs.items(), outputs, strict=True):
        served = tf.io.decode_png(output).numpy()
        assert served.shape == (48, 64, 3) and served.dtype == np.uint8, name
        generated = _generate(loaded, pixels.astype(np.float32) / 127.5 - 1.0)
        expected = np.clip(np.round((generated + 1.0) * 127.5), 0, 255)
        assert np.abs(served.astype(np.float32) - expected).max() <= 1.0, name
        assert served.std() > 2, name  # Not flat: a mismatch would show.


def test_colourise_export_records_channels_and_replays_its_warmup(colourise):
    from tensorflow_serving.apis import prediction_log_pb2

    _, version_dir, loaded = colourise
    with open(os.path.join(version_dir, export_lib.METADATA_FILE)) as file:
        record = json.load(file)
    assert (record["input_channels"], record["output_channels"]) == (1, 3)
    assert (record["input_bits"], record["output_bits"]) == (8, 8)
    replayed = []
    for item in tf.data.TFRecordDataset(os.path.join(version_dir, export_lib.WARMUP_FILE)):
        request = prediction_log_pb2.PredictionLog.FromString(item.numpy()).predict_log.request
        inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        replayed.append(tuple(next(iter(outputs.values())).shape))
    assert replayed == [(1,), (8,), (1, 64, 64, 3)]


@pytest.mark.parametrize("shape", [[1, 64, 64, 3], [2, 48, 48, 2], [48, 48, 1]])
def test_generate_names_the_channel_count(colourise, shape):
    _, _, loaded = colourise
    generate = loaded.signatures["generate"]
    message = _error_message(lambda: generate(images=tf.zeros(shape)))
    expected = "images must be [N, H, W, 1] float32 in [-1, 1] with H and W positive "
    assert expected + "multiples of 16, got [" + ", ".join(map(str, shape)) + "]" in message


def test_training_size_generate_names_the_channel_count(colourise, tmp_path):
    workdir, _, _ = colourise
    options = serving.ServingOptions(serving_size="training")
    version_dir = export_lib.export(workdir, str(tmp_path / "e"), options=options, warmup=False)
    generate = tf.saved_model.load(version_dir).signatures["generate"]
    assert generate(images=tf.zeros([1, 64, 64, 1]))["images"].shape == (1, 64, 64, 3)
    message = _error_message(lambda: generate(images=tf.zeros([1, 64, 64, 3])))
    assert "images must be [N, 64, 64, 1] float32 in [-1, 1], got [1, 64, 64, 3]" in message


# -- 16-bit gray in, 16-bit gray out --------------------------------------------------


def test_sixteen_bit_gray_is_served_at_sixteen_bits_like_generate(depth):
    _, _, version_dir, loaded = depth
    with open(os.path.join(version_dir, export_lib.METADATA_FILE)) as file:
        record = json.load(file)
    assert [record[key] for key in ("input_channels", "output_channels")] == [1, 1]
    assert [record[key] for key in ("input_bits", "output_bits")] == [16, 16]
    pixels = _gray16(48, 64, seed=3)
    [output] = _serve(loaded, [_encode(pixels, "PNG")])
    image = Image.open(io.BytesIO(output))
    assert image.mode == "I;16" and image.size == (64, 48)
    served = np.asarray(image).astype(np.float64)
    generated = _generate(loaded, pixels.astype(np.float32) / 65535.0 * 2.0 - 1.0)[..., 0]
    expected = np.clip(np.round((generated.astype(np.float64) + 1.0) * 32767.5), 0, 65535)
    assert np.abs(served - expected).max() <= 1.0
    # The low byte matters: from the input's high byte alone the output is elsewhere.
    truncated = (pixels >> 8 << 8).astype(np.float32) / 65535.0 * 2.0 - 1.0
    coarse = np.round((_generate(loaded, truncated)[..., 0] + 1.0) * 32767.5)
    assert np.abs(served - coarse).max() > 16
    # And the output uses its 16 bits: not 8-bit values scaled up.
    assert np.any(served.astype(np.int64) % 257 != 0)


def test_sixteen_bit_model_serves_eight_bit_and_rgb_inputs_on_its_scale(depth):
    """An 8-bit RGB JPEG: v / 255 on the model's scale, luma rounded to 16-bit levels."""
    _, _, _, loaded = depth
    jpeg = encoded_image(32, 48, fmt="jpeg", seed=4)
    gray = _luma(tf.io.decode_jpeg(jpeg).numpy(), levels=65535)
    [output] = _serve(loaded, [jpeg])
    served = np.asarray(Image.open(io.BytesIO(output))).astype(np.float64)
    generated = _generate(loaded, gray / 65535.0 * 2.0 - 1.0)[..., 0]
    expected = np.clip(np.round((generated + 1.0) * 32767.5), 0, 65535)
    assert np.abs(served - expected).max() <= 1.0
    # Luma rounded to 8 bits first would be another input: the test can tell.
    coarse = _luma(tf.io.decode_jpeg(jpeg).numpy()) / 127.5 - 1.0
    coarse = np.round((_generate(loaded, coarse)[..., 0] + 1.0) * 32767.5)
    assert np.abs(served - coarse).max() > 4


def test_predict_writes_sixteen_bit_pngs_from_export_and_run(depth, tmp_path, capsys):
    workdir, export_dir, _, loaded = depth
    pixels = _gray16(40, 56, seed=5)
    source = tmp_path / "inputs" / "scan.png"
    source.parent.mkdir()
    source.write_bytes(_encode(pixels, "PNG"))
    [reference] = _serve(loaded, [source.read_bytes()])
    reference_pixels = np.asarray(Image.open(io.BytesIO(reference))).astype(int)
    for model in (export_dir, workdir):
        output = tmp_path / os.path.basename(model)
        args = ["--model", model, "--input", str(source), "--output", str(output), "--strip"]
        assert predict_cli.main(args) == 0, capsys.readouterr().err
        written = Image.open(output / "scan.png")
        assert written.mode == "I;16" and written.size == (56, 40)
        assert np.abs(np.asarray(written).astype(int) - reference_pixels).max() <= 1
        strip = tf.io.decode_png((output / "strips" / "scan.png").read_bytes()).numpy()
        assert strip.shape == (40, 112, 3) and strip.dtype == np.uint8
        assert np.abs(strip[:, :56, 0].astype(int) - np.round(pixels[..., 0] / 257)).max() <= 1


def test_predict_splits_a_sixteen_bit_pair_without_losing_bits(depth, tmp_path):
    _, export_dir, _, loaded = depth
    pair = np.concatenate([_gray16(32, 32, seed=6), _gray16(32, 32, seed=7)], axis=1)
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "pair.png").write_bytes(_encode(pair, "PNG"))
    model = predict_lib.load_model(export_dir)
    predict_lib.predict(
        model, [str(tmp_path / "pairs")], str(tmp_path / "out"), pairs=True, verbose=False
    )
    written = np.asarray(Image.open(tmp_path / "out" / "pair.png")).astype(int)
    # The run's direction is BtoA: the right half is the input.
    [alone] = _serve(loaded, [_encode(pair[:, 32:], "PNG")])
    assert np.abs(written - np.asarray(Image.open(io.BytesIO(alone))).astype(int)).max() <= 1


def test_fresh_process_with_only_tensorflow_serves_sixteen_bit_gray(depth, tmp_path):
    """The conversions are TensorFlow ops: TF Serving runs them without this project."""
    _, _, version_dir, loaded = depth
    source = tmp_path / "depth.png"
    source.write_bytes(_encode(_gray16(32, 48, seed=8), "PNG"))
    [reference] = _serve(loaded, [source.read_bytes()])
    script = textwrap.dedent(
        f"""
        import sys
        import tensorflow as tf
        model = tf.saved_model.load({version_dir!r})
        data = open({str(source)!r}, "rb").read()
        [png] = model.signatures["serving_default"](image_bytes=tf.constant([data]))[
            "image_bytes"
        ].numpy()
        open("served.png", "wb").write(png)
        assert "pix2pix_tf" not in sys.modules
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = Image.open(tmp_path / "served.png")
    assert served.mode == "I;16" and served.size == (48, 32)
    expected = np.asarray(Image.open(io.BytesIO(reference))).astype(int)
    assert np.abs(np.asarray(served).astype(int) - expected).max() <= 1


def test_paper_mode_serves_a_gray_input_model(colourise, tmp_path):
    workdir, _, _ = colourise
    options = serving.ServingOptions(test_time_mode="paper", seed=3)
    version_dir = export_lib.export(workdir, str(tmp_path / "e"), options=options, warmup=False)
    loaded = tf.saved_model.load(version_dir)
    data = encoded_image(37, 53, channels=1, seed=9)
    first, second = _serve(loaded, [data, data])
    assert first == second  # Seeded by the content: repeatable, batch-independent.
    assert tf.io.decode_png(first).shape == (37, 53, 3)
