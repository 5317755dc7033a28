"""Tiled inference (serving/tiling.py, predict.py --tile): planning, blending weights,
exactness with a purely local generator, the streamed PNG, the tiny U-Net through every
export kind, and the one-line errors."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import exif_image, make_resnet_run, make_run, write_image
from PIL import Image

import predict as predict_cli
from pix2pix_tf.serving import deploy, tiling
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import predict as predict_lib
from pix2pix_tf.serving.options import PredictOptions, parse_tile

# Tiled against whole-image outputs of the tiny textured U-Net (depth 4, batch norm,
# untrained), 150x200 input, 64-pixel tiles: measured 70 dB over the image with overlap
# 32 (66 dB with 0 and 16), no sample more than 1 level apart. (A trained model's
# numbers are in docs/tiling.md.)
UNET_TILED_BOUND_DB = 55.0


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(peak**2 / error)


# -- planning and weights ------------------------------------------------------------


@pytest.mark.parametrize(
    "length, tile, overlap, multiple",
    [(1, 16, 0, 16), (100, 32, 8, 8), (257, 64, 16, 16), (64, 64, 0, 16), (1000, 96, 40, 1),
     (130, 48, 47, 16), (33, 5, 0, 1), (500, 128, 0, 32)],
)  # fmt: skip
def test_plan_covers_every_pixel_on_the_grid(length, tile, overlap, multiple):
    starts, size, padded = tiling.plan_axis(length, tile, overlap, multiple)
    assert padded == tiling.round_up(length, multiple) and size % multiple == 0
    assert all(start % multiple == 0 for start in starts)
    assert starts[0] == 0 and starts[-1] + size == padded
    assert starts == sorted(set(starts))
    covered = np.zeros(padded, bool)
    for start in starts:
        covered[start : start + size] = True
    assert covered.all()
    for before, after in zip(starts, starts[1:], strict=False):
        # The effective overlap: at least --overlap, or tile - M when that is less.
        assert before + size - after >= min(overlap, size - multiple)


@pytest.mark.parametrize(
    "length, tile, overlap, multiple", [(300, 64, 16, 8), (1000, 96, 40, 1), (130, 48, 40, 16)]
)
def test_window_weights_positive_and_one_where_one_tile_covers(length, tile, overlap, multiple):
    starts, size, padded = tiling.plan_axis(length, tile, overlap, multiple)
    weights = tiling.axis_weights(starts, size)
    total = tiling.axis_total(starts, size, padded)
    assert (total > 0).all()
    count = np.zeros(padded, int)
    for start, weight in zip(starts, weights, strict=True):
        assert (weight > 0).all() and weight.max() <= 1.0
        count[start : start + size] += 1
    single = count == 1
    for start, weight in zip(starts, weights, strict=True):
        inside = single[start : start + size]
        np.testing.assert_array_equal(weight[inside], 1.0)
    if count.max() <= 2:  # complementary raised-cosine ramps: a partition of unity
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


# -- exactness with a purely local generator -----------------------------------------


def _local_model(in_channels, out_channels, multiple, input_bits=8, output_bits=8, seed=0):
    """A 1x1 convolution (a per-pixel mix of channels, then tanh): any tiling must give
    exactly the whole image's numbers."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 0.8, (in_channels, out_channels)).astype(np.float32)

    def generate(images):
        assert images.shape[1] % multiple == 0 and images.shape[2] % multiple == 0
        return np.tanh(images @ kernel)

    model = tiling.TiledModel(
        generate, in_channels, out_channels, multiple, input_bits=input_bits,
        output_bits=output_bits,
    )  # fmt: skip
    return model, generate


@pytest.mark.parametrize(
    "in_channels, out_channels, bits, shape, tile, overlap, multiple",
    [(3, 3, 8, (101, 77, 3), (32, 40), 8, 8), (1, 3, 8, (64, 130, 1), (48, 48), 16, 16),
     (3, 1, 16, (90, 61, 3), (20, 20), 5, 4), (1, 1, 16, (37, 300, 1), (64, 32), 31, 1),
     (3, 3, 8, (50, 50, 4), (200, 200), 0, 16)],
)  # fmt: skip
def test_local_generator_tiled_equals_whole_exactly(
    in_channels, out_channels, bits, shape, tile, overlap, multiple
):
    model, generate = _local_model(in_channels, out_channels, multiple, bits, bits)
    rng = np.random.default_rng(1)
    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    layout = tiling.plan(shape[:2], tile, overlap, model)
    rows = []
    tiling.run_tiles(model, pixels, layout, rows.append)
    tiled = tiling.to_samples(np.concatenate(rows), bits)
    network_input = tiling.prepare_input(pixels, in_channels, bits)
    height, width = shape[:2]
    padding = [(0, tiling.round_up(side, multiple) - side) for side in (height, width)]
    padded = np.pad(network_input, [*padding, (0, 0)], mode="reflect")
    whole = tiling.to_samples(generate(padded[None])[0, :height, :width], bits)
    assert tiled.shape == (*shape[:2], out_channels) and tiled.dtype == dtype
    np.testing.assert_array_equal(tiled, whole)


# -- the streamed PNG ----------------------------------------------------------------


@pytest.mark.parametrize("channels, bits", [(1, 8), (3, 8), (1, 16), (3, 16)])
def test_streamed_png_round_trips(tmp_path, channels, bits):
    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = np.random.default_rng(3).integers(0, np.iinfo(dtype).max + 1, (70, 45, channels))
    pixels = pixels.astype(dtype)
    path = str(tmp_path / "out.png")
    with tiling.StreamingPNG(path, 70, 45, channels, bits) as writer:
        for start in range(0, 70, 16):
            writer.write(pixels[start : start + 16])
    assert os.listdir(tmp_path) == ["out.png"]
    data = open(path, "rb").read()
    decoded = tf.io.decode_png(data, channels=0, dtype=tf.uint16 if bits == 16 else tf.uint8)
    np.testing.assert_array_equal(decoded.numpy(), pixels)
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # Pillow reads it too (its checksums and chunks are valid).
        assert image.size == (45, 70)


def test_failed_or_short_write_leaves_no_output(tmp_path):
    path = str(tmp_path / "out.png")
    with pytest.raises(RuntimeError):
        with tiling.StreamingPNG(path, 10, 10, 3, 8) as writer:
            writer.write(np.zeros((4, 10, 3), np.uint8))
            assert os.listdir(tmp_path) == ["out.png.incomplete"]
            raise RuntimeError("the generator failed")
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="4 of 10 rows"):
        with tiling.StreamingPNG(path, 10, 10, 3, 8) as writer:
            writer.write(np.zeros((4, 10, 3), np.uint8))
    assert os.listdir(tmp_path) == []


def test_tiled_run_that_fails_midway_leaves_no_output(tmp_path):
    model, generate = _local_model(3, 3, 8)
    calls = []

    def failing(images):
        calls.append(1)
        if len(calls) == 3:
            raise tf.errors.InvalidArgumentError(None, None, "the third tile failed")
        return generate(images)

    model.generate = failing
    source = write_image(str(tmp_path / "in" / "big.png"), 100, 100)
    output = str(tmp_path / "out" / "big.png")
    os.makedirs(os.path.dirname(output))
    with pytest.raises(tf.errors.InvalidArgumentError):
        tiling.run_file(model, source, output, (32, 32), 8)
    assert os.listdir(tmp_path / "out") == []


# -- the tiny U-Net through predict: run directory, SavedModel, LiteRT, ONNX ----------------


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiled")
    workdir = str(root / "run")
    make_run(workdir, output_gain=20.0, data_dir=str(root / "tfrecords"))
    saved_model = export_lib.export(workdir, str(root / "exported"), warmup=False)
    source = write_image(str(root / "inputs" / "scene.png"), 150, 200, seed=5)
    return workdir, saved_model, source


def _decode(path):
    """A PNG's samples at its own bit depth."""
    data = open(path, "rb").read()
    dtype = tf.uint16 if tiling.image_header(data)[3] == 16 else tf.uint8
    return tf.io.decode_png(data, channels=0, dtype=dtype).numpy()


def test_tiled_unet_close_to_whole_and_the_same_for_every_model_kind(unet, tmp_path):
    workdir, saved_model, source = unet
    whole_dir, outputs = tmp_path / "whole", {}
    predict_lib.predict(
        predict_lib.load_model(saved_model), [source], str(whole_dir), verbose=False
    )
    whole = _decode(whole_dir / "scene.png")
    paths = {
        "run": workdir,
        "saved_model": saved_model,
        "litert": deploy.export(workdir, str(tmp_path / "exports" / "litert"), "litert"),
        "onnx": deploy.export(workdir, str(tmp_path / "exports" / "onnx"), "onnx"),
    }
    for name, path in paths.items():
        model = predict_lib.load_model(path)
        summary = predict_lib.predict(
            model, [source], str(tmp_path / name), verbose=False, tile_hw=(64, 64), overlap=32
        )
        assert summary.written == ["scene"] and not summary.skipped, summary.skipped
        assert sorted(os.listdir(tmp_path / name)) == ["scene.png"]
        outputs[name] = _decode(tmp_path / name / "scene.png")
        assert outputs[name].shape == whole.shape == (150, 200, 3)
    assert psnr(outputs["saved_model"], whole, 255.0) > UNET_TILED_BOUND_DB
    for name in ("run", "litert", "onnx"):
        difference = np.abs(outputs[name].astype(int) - outputs["saved_model"].astype(int))
        assert difference.max() <= 1, name


def test_one_tile_covering_the_image_is_the_whole_image_run(unet, tmp_path):
    _, saved_model, source = unet
    model = predict_lib.load_model(saved_model)
    predict_lib.predict(model, [source], str(tmp_path / "whole"), verbose=False)
    predict_lib.predict(
        model, [source], str(tmp_path / "tiled"), verbose=False, tile_hw=(160, 208), overlap=0
    )
    np.testing.assert_array_equal(
        _decode(tmp_path / "tiled" / "scene.png"), _decode(tmp_path / "whole" / "scene.png")
    )


@pytest.mark.parametrize("channels, bits", [(1, 16), (3, 16), (1, 8)])
def test_tiled_output_channels_and_bits_match_the_model(tmp_path, channels, bits):
    workdir = str(tmp_path / "run")
    make_run(
        workdir, output_gain=20.0, input_channels=channels, output_channels=channels,
        input_bits=bits, output_bits=bits, data_dir=str(tmp_path / "tfrecords"),
    )  # fmt: skip
    rng = np.random.default_rng(7)
    dtype = np.uint16 if bits == 16 else np.uint8
    coarse = rng.uniform(0, np.iinfo(dtype).max, (6, 6, channels)).astype(np.float32)
    pixels = tf.image.resize(coarse, [90, 130]).numpy().round().astype(dtype)
    source = str(tmp_path / "in.png")
    with open(source, "wb") as file:
        file.write(tf.io.encode_png(pixels).numpy())
    model = predict_lib.load_model(workdir)
    predict_lib.predict(model, [source], str(tmp_path / "whole"), verbose=False)
    predict_lib.predict(
        model, [source], str(tmp_path / "tiled"), verbose=False, tile_hw=(48, 64), overlap=16
    )
    whole, tiled = (_decode(tmp_path / name / "in.png") for name in ("whole", "tiled"))
    with Image.open(tmp_path / "tiled" / "in.png") as image:
        assert image.mode == {(1, 8): "L", (1, 16): "I;16", (3, 8): "RGB", (3, 16): "RGB"}.get(
            (channels, bits), image.mode
        )
    assert tiled.shape == whole.shape == (90, 130, channels)
    peak = 2.0**bits - 1
    assert psnr(tiled, whole, peak) > UNET_TILED_BOUND_DB - 10


# -- predict.py --tile on the command line ---------------------------------------------------


def test_predict_cli_tile_end_to_end(unet, tmp_path, capsys):
    _, saved_model, source = unet
    output = tmp_path / "out"
    code = predict_cli.main(
        ["--model", saved_model, "--input", source, "--output", str(output), "--tile", "64x96",
         "--overlap", "16"]
    )  # fmt: skip
    assert code == 0
    assert sorted(os.listdir(output)) == ["scene.png"]
    assert _decode(output / "scene.png").shape == (150, 200, 3)
    assert "Wrote 1 images" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, flag",
    [(["--tile", "abc"], "--tile"), (["--tile", "0"], "--tile"), (["--tile", "64x"], "--tile"),
     (["--tile", "64", "--overlap", "-1"], "--overlap"),
     (["--tile", "64", "--overlap", "64"], "--overlap"),
     (["--tile", "8", "--overlap", "0"], "--tile"),
     (["--tile", "64", "--overlap", "8", "--strip"], "--tile"),
     (["--tile", "100000"], "--tile")],
)  # fmt: skip
def test_bad_tile_flags_one_line_naming_the_flag(unet, tmp_path, capsys, arguments, flag):
    _, saved_model, source = unet
    code = predict_cli.main(
        ["--model", saved_model, "--input", source, "--output", str(tmp_path / "o"), *arguments]
    )
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and flag in error[0] and error[0].startswith("predict.py: error:")
    assert not os.path.exists(tmp_path / "o" / "scene.png")


def test_parse_tile():
    assert parse_tile("512") == (512, 512) and parse_tile("256x1024") == (256, 1024)
    PredictOptions(model="m", input=("i",), output="o", tile="64x32", overlap=16).validate()
    with pytest.raises(ValueError, match="--overlap"):
        PredictOptions(model="m", input=("i",), output="o", tile="64x32", overlap=32).validate()


def test_undecodable_or_too_large_image_is_skipped_naming_the_file(unet, tmp_path):
    _, saved_model, _ = unet
    broken = tmp_path / "in" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    # A PNG header claiming 50000 x 50000 RGB: more than the decoder holds.
    huge = tmp_path / "in" / "huge.png"
    header = tiling.PNG_SIGNATURE + b"\x00\x00\x00\rIHDR" + (50000).to_bytes(4, "big") * 2
    huge.write_bytes(header + b"\x08\x02\x00\x00\x00" + b"\x00" * 8)
    model = predict_lib.load_model(saved_model)
    summary = predict_lib.predict(
        model, [str(tmp_path / "in")], str(tmp_path / "out"), verbose=False, tile_hw=(64, 64)
    )
    assert summary.written == []
    reasons = dict(summary.skipped)
    assert "cannot decode" in reasons[str(broken)]
    assert "more than the decoder holds" in reasons[str(huge)]
    assert all("\n" not in reason for reason in reasons.values())
    assert os.listdir(tmp_path / "out") == []


def test_tiled_input_is_turned_upright_by_its_exif_orientation(unet, tmp_path):
    _, saved_model, _ = unet
    pixels = np.asarray(Image.open(write_image(str(tmp_path / "src.png"), 40, 100, seed=8)))
    source = tmp_path / "in" / "turned.jpg"
    source.parent.mkdir()
    source.write_bytes(exif_image(pixels, 6))  # Orientation 6: shown turned 90 degrees.
    model = predict_lib.load_model(saved_model)
    summary = predict_lib.predict(
        model, [str(source)], str(tmp_path / "out"), verbose=False, tile_hw=(32, 32), overlap=8
    )
    assert summary.written == ["turned"]
    assert _decode(tmp_path / "out" / "turned.png").shape == (100, 40, 3)


# -- instance norm: the image's statistics (two passes) ----------------------------------


@pytest.fixture(scope="module")
def instance_norm_run(tmp_path_factory):
    workdir = make_resnet_run(str(tmp_path_factory.mktemp("instance")), seed=3).train.workdir
    source = write_image(str(tmp_path_factory.mktemp("in") / "scene.png"), 120, 150, seed=9)
    return workdir, source


def test_global_local_tiles_at_its_minimum_and_refuses_below(tmp_path):
    """pix2pixHD's generator (M = 32, smallest input 64): 64-pixel tiles work through the
    run directory and its ONNX export alike; 32 is refused naming --tile."""
    workdir = make_resnet_run(
        str(tmp_path / "run"), "global_local", "local_output_conv", seed=3
    ).train.workdir
    source = write_image(str(tmp_path / "in" / "scene.png"), 100, 130, seed=11)
    outputs = {}
    onnx = deploy.export(workdir, str(tmp_path / "exports" / "onnx"), "onnx")
    for name, path in (("run", workdir), ("onnx", onnx)):
        model = predict_lib.load_model(path)
        summary = predict_lib.predict(
            model, [source], str(tmp_path / name), verbose=False, tile_hw=(64, 64),
            overlap=32, tile_statistics="tile",
        )  # fmt: skip
        assert summary.written == ["scene"], summary.skipped
        outputs[name] = _decode(tmp_path / name / "scene.png")
        assert outputs[name].shape == (100, 130, 3)
        with pytest.raises(predict_lib.PredictUsageError, match="--tile 32x32: each side"):
            predict_lib.predict(
                model, [source], str(tmp_path / "o"), verbose=False, tile_hw=(32, 32), overlap=0
            )
    difference = np.abs(outputs["run"].astype(int) - outputs["onnx"].astype(int))
    assert difference.max() <= 1


def test_image_statistics_one_tile_is_the_whole_image_run(instance_norm_run, tmp_path):
    workdir, source = instance_norm_run
    model = predict_lib.load_model(workdir)
    predict_lib.predict(model, [source], str(tmp_path / "whole"), verbose=False)
    predict_lib.predict(
        model, [source], str(tmp_path / "tiled"), verbose=False, tile_hw=(120, 152),
        overlap=0, tile_statistics="image",
    )  # fmt: skip
    whole, tiled = (_decode(tmp_path / name / "scene.png") for name in ("whole", "tiled"))
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_image_statistics_bring_instance_norm_tiles_closer(instance_norm_run, tmp_path):
    workdir, source = instance_norm_run
    model = predict_lib.load_model(workdir)
    predict_lib.predict(model, [source], str(tmp_path / "whole"), verbose=False)
    whole = _decode(tmp_path / "whole" / "scene.png")
    scores = {}
    for mode in ("tile", "image", "auto"):
        predict_lib.predict(
            model, [source], str(tmp_path / mode), verbose=False, tile_hw=(32, 32),
            overlap=8, tile_statistics=mode,
        )  # fmt: skip
        scores[mode] = psnr(_decode(tmp_path / mode / "scene.png"), whole, 255.0)
    assert scores["image"] > scores["tile"] + 3 and scores["auto"] == scores["image"]
    # Back to each tile's own statistics: the wrapped layers are as before outside it.
    predict_lib.predict(
        model, [source], str(tmp_path / "again"), verbose=False, tile_hw=(32, 32), overlap=8,
        tile_statistics="tile",
    )  # fmt: skip
    again = _decode(tmp_path / "again" / "scene.png")
    assert psnr(again, whole, 255.0) == pytest.approx(scores["tile"])


def test_image_statistics_refused_for_exports_naming_the_flag(unet, tmp_path, capsys):
    _, saved_model, source = unet
    code = predict_cli.main(
        ["--model", saved_model, "--input", source, "--output", str(tmp_path / "o"),
         "--tile", "64", "--overlap", "16", "--tile_statistics", "image"]
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--tile_statistics" in error[0]


def test_killed_tiled_run_leaves_no_complete_looking_output(unet, tmp_path):
    """SIGKILL while rows are being streamed: only <stem>.png.incomplete is there."""
    import signal
    import subprocess
    import sys
    import time

    _, saved_model, _ = unet
    source = write_image(str(tmp_path / "in" / "large.png"), 2000, 2000, seed=10)
    output = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "predict.py", "--model", saved_model, "--input", source, "--output",
         str(output), "--tile", "32", "--overlap", "16"],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    partial = output / "large.png.incomplete"
    deadline = time.monotonic() + 120
    while not partial.exists() and time.monotonic() < deadline:
        assert process.poll() is None, "predict.py ended before it was killed"
        time.sleep(0.05)
    time.sleep(1.0)  # Some row bands into the file.
    assert process.poll() is None, "predict.py ended before it was killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert partial.exists() and not (output / "large.png").exists()


def test_training_size_export_tiles_only_at_its_size(unet, tmp_path):
    from pix2pix_tf.serving.options import ServingOptions

    workdir, _, source = unet
    options = ServingOptions(serving_size="training")
    version = export_lib.export(workdir, str(tmp_path / "exp"), options=options, warmup=False)
    model = predict_lib.load_model(version)
    summary = predict_lib.predict(
        model, [source], str(tmp_path / "out"), verbose=False, tile_hw=(64, 64), overlap=16
    )
    assert summary.written == ["scene"]
    with pytest.raises(predict_lib.PredictUsageError, match="--tile 32x32: this model runs only"):
        predict_lib.predict(
            model, [source], str(tmp_path / "o2"), verbose=False, tile_hw=(32, 32), overlap=8
        )
