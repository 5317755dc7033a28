"""Gray and 16-bit runs end to end: prepare, train, resume, evaluate, export, serve."""

import io
import os

import data_factory
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pix2pix_tf import configs as config_lib
from pix2pix_tf.evaluation import evaluator
from pix2pix_tf.evaluation.options import EvalOptions
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.training import trainer as training

pytestmark = pytest.mark.slow


def _write(path, image: np.ndarray, fmt: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path, format=fmt)


def _source(root, make_a, make_b, ext_a, ext_b, count=8):
    for index in range(count):
        split = "val" if index < 2 else "train"
        _write(str(root / split / "A" / f"{index}.{ext_a.lower()}"), make_a(index), ext_a)
        _write(str(root / split / "B" / f"{index}.{ext_b.lower()}"), make_b(index), ext_b)


def _train(tmp_path, **overrides):
    config = config_lib.build_config(
        dataset="folder",
        preset="tiny",
        source_dir=str(tmp_path / "src"),
        data_dir=str(tmp_path / "tfrecords"),
        workdir=str(tmp_path / "run"),
        direction="AtoB",
        steps=2,
        **overrides,
    )
    result = training.train(config, periodic_evaluator=evaluator.periodic_evaluator)
    assert result["step"] == 2 and np.isfinite(result["gen_total"])
    return config


def _serve(tmp_path, image: np.ndarray):
    """(served PNG decoded by Pillow, `generate` on the same float input) of the export."""
    version_dir = export_lib.export(str(tmp_path / "run"), str(tmp_path / "exported"))
    loaded = tf.saved_model.load(version_dir)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    request = tf.constant([buffer.getvalue()])
    served = loaded.signatures["serving_default"](image_bytes=request)["image_bytes"]
    served = Image.open(io.BytesIO(served.numpy()[0]))
    top = 65535.0 if image.dtype == np.uint16 else 255.0
    pixels = image.astype(np.float32) / top * 2.0 - 1.0
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    generated = loaded.signatures["generate"](images=tf.constant(pixels[None]))["images"]
    return served, generated.numpy()[0], version_dir


def test_rgb_to_16_bit_depth_trains_resumes_evaluates_and_serves_16_bit_pngs(tmp_path):
    rng = np.random.default_rng(0)
    _source(
        tmp_path / "src",
        lambda index: data_factory.random_pixels(index, 64, 64),
        lambda index: rng.integers(0, 65536, (64, 64), dtype=np.uint16),
        "JPEG",
        "PNG",
    )
    config = _train(tmp_path, output_channels=1, eval_every=2, eval_examples=2)
    saved = config_lib.Config.from_json(str(tmp_path / "run" / "config.json"))
    assert (saved.data.input_bits, saved.data.output_bits) == (8, 16)
    # Rerunning with more steps resumes (the saved bit depths match the data's).
    resumed = training.train(config.replace(steps=3), evaluator.periodic_evaluator)
    assert resumed["step"] == 3
    results, _ = evaluator.evaluate(str(tmp_path / "run"), EvalOptions(fcn="off"))
    assert results["examples"] == 2 and np.isfinite(results["psnr"])
    # A 64x96 photo in, a 16-bit single-channel depth map of that size out.
    served, generated, _ = _serve(tmp_path, data_factory.random_pixels(9, 64, 96))
    assert served.mode == "I;16" and served.size == (96, 64)
    expected = np.round((generated[..., 0] + 1.0) * 32767.5)
    np.testing.assert_allclose(np.asarray(served, np.float64), expected, atol=1)


def test_gray_to_rgb_colourisation_trains_and_serves_rgb_pngs(tmp_path):
    _source(
        tmp_path / "src",
        lambda index: data_factory.random_pixels(index, 64, 64)[..., 0],
        lambda index: data_factory.random_pixels(index, 64, 64),
        "PNG",
        "JPEG",
    )
    _train(tmp_path, input_channels=1)
    gray = data_factory.random_pixels(11, 64, 64)[..., 1]
    served, generated, _ = _serve(tmp_path, gray)
    assert served.mode == "RGB" and served.size == (64, 64)
    expected = np.round((generated + 1.0) * 127.5)
    np.testing.assert_allclose(np.asarray(served, np.float64), expected, atol=1)
