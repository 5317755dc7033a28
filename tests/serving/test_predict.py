"""predict.py and pix2pix_tf.serving.predict: batches of files in, one PNG per input out."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import exif_image, make_run, truncate_checkpoint, write_image
from fs_faults import small_filesystem
from PIL import Image, ImageOps

import predict as predict_cli
from pix2pix_tf.runs import directory as run_dir
from pix2pix_tf.serving import export as export_lib
from pix2pix_tf.serving import graph as serving
from pix2pix_tf.serving import predict as predict_lib


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    workdir = str(root / "run")
    make_run(workdir)
    export_dir = str(root / "exported")
    export_lib.export(workdir, export_dir, warmup=False)
    latest = export_lib.export(workdir, export_dir, warmup=False)
    return workdir, export_dir, latest


@pytest.fixture
def inputs(tmp_path):
    directory = tmp_path / "inputs"
    write_image(str(directory / "first.png"), 64, 64)
    write_image(str(directory / "second.jpg"), 40, 90, seed=1)
    write_image(str(directory / "third.png"), 33, 17, seed=2)
    (directory / "notes.txt").write_text("not an image, and not listed")
    return directory


def _read(path):
    return tf.io.decode_png(open(path, "rb").read()).numpy()


def test_one_png_per_input_at_input_size(exported, inputs, tmp_path):
    _, export_dir, _ = exported
    model = predict_lib.load_model(export_dir)
    output = tmp_path / "out"
    summary = predict_lib.predict(model, [str(inputs)], str(output), batch_size=2, verbose=False)
    assert summary.written == ["first", "second", "third"] and summary.skipped == []
    assert sorted(os.listdir(output)) == ["first.png", "second.png", "third.png"]
    assert _read(output / "second.png").shape == (40, 90, 3)
    assert _read(output / "third.png").shape == (33, 17, 3)


def test_model_paths_agree(exported, inputs, tmp_path):
    workdir, export_dir, latest = exported
    assert predict_lib.load_model(export_dir).description == f"SavedModel {latest}"
    results = []
    for path in (export_dir, latest, workdir):
        output = tmp_path / os.path.basename(path)
        model = predict_lib.load_model(path)
        predict_lib.predict(model, [str(inputs / "second.jpg")], str(output), verbose=False)
        results.append(_read(output / "second.png").astype(int))
    for result in results[1:]:
        assert np.abs(result - results[0]).max() <= 1


def test_run_directory_and_export_write_at_native_size(tmp_path):
    """Both serve each input at its own size: a 37x53 input is padded to 48x64 by
    reflection, generated and cropped back, never squashed to the 64x64 training size."""
    workdir = str(tmp_path / "run")
    make_run(workdir, output_gain=20.0)
    export_dir = str(tmp_path / "exported")
    version_dir = export_lib.export(workdir, export_dir, warmup=False)
    source = write_image(str(tmp_path / "inputs" / "odd.png"), 37, 53, seed=6)
    floats = _read(source).astype(np.float32) / 127.5 - 1.0
    padded = np.pad(floats, ((0, 11), (0, 11), (0, 0)), mode="reflect")
    generate = tf.saved_model.load(version_dir).signatures["generate"]
    generated = generate(images=tf.constant(padded[None]))["images"][0, :37, :53].numpy()
    expected = np.clip(np.round((generated + 1.0) * 127.5), 0, 255)
    for path in (workdir, export_dir):
        output = tmp_path / os.path.basename(path)
        predict_lib.predict(predict_lib.load_model(path), [source], str(output), verbose=False)
        written = _read(output / "odd.png").astype(np.float32)
        assert written.shape == (37, 53, 3)
        assert np.abs(written - expected).max() <= 1.0


def test_inputs_over_the_pixel_bound_are_skipped_with_the_bound(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    make_run(workdir)
    options = serving.ServingOptions(max_pixels=64 * 64)
    export_dir = str(tmp_path / "exported")
    export_lib.export(workdir, export_dir, options=options, warmup=False)
    inputs = tmp_path / "inputs"
    write_image(str(inputs / "small.png"), 48, 80)
    write_image(str(inputs / "large.png"), 80, 96)
    output = tmp_path / "out"
    args = ["--model", export_dir, "--input", str(inputs), "--output", str(output)]
    assert predict_cli.main(args) == 0
    err = capsys.readouterr().err
    assert "Skipped 1 inputs" in err
    assert "large.png: image_bytes[0] is 80x96 = 7680 pixels, over the bound of 4096" in err
    assert os.listdir(output) == ["small.png"]


def test_unreadable_inputs_are_skipped_and_listed(exported, inputs, tmp_path, capsys):
    _, export_dir, _ = exported
    (inputs / "broken.png").write_bytes(b"\x89PNG but truncated")
    output = tmp_path / "out"
    missing = str(tmp_path / "missing.jpg")
    args = ["--model", export_dir, "--input", str(inputs), missing, "--output", str(output)]
    assert predict_cli.main(args + ["--batch_size", "8"]) == 0
    err = capsys.readouterr().err
    assert "Skipped 2 inputs" in err
    assert f"{missing}: no such file or directory" in err
    assert "broken.png" in err
    # The good images in the same batch as the broken one were still written.
    assert sorted(os.listdir(output)) == ["first.png", "second.png", "third.png"]


def test_nothing_processed_exits_non_zero(exported, tmp_path, capsys):
    _, export_dir, _ = exported
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    args = ["--model", export_dir, "--input", str(bad), "--output", str(tmp_path / "out")]
    assert predict_cli.main(args) == 1
    assert "Wrote 0 images" in capsys.readouterr().err


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_pairs_strips_and_gallery(exported, tmp_path, direction):
    _, export_dir, _ = exported
    pair = write_image(str(tmp_path / "pairs" / "pair.png"), 30, 80, seed=4)
    pixels = _read(pair)
    source, target = (pixels[:, :40], pixels[:, 40:])
    if direction == "BtoA":
        source, target = target, source
    output = tmp_path / "out"
    model = predict_lib.load_model(export_dir)
    predict_lib.predict(
        model,
        [str(tmp_path / "pairs")],
        str(output),
        gallery=True,
        pairs=True,
        direction=direction,
        verbose=False,
    )
    assert _read(output / "pair.png").shape == (30, 40, 3)
    strip = _read(output / "strips" / "pair.png")
    assert strip.shape == (30, 120, 3)
    np.testing.assert_array_equal(strip[:, :40], source)
    np.testing.assert_array_equal(strip[:, 40:80], _read(output / "pair.png"))
    np.testing.assert_array_equal(strip[:, 80:], target)
    page = (output / "index.html").read_text()
    assert 'src="strips/pair.png"' in page and "input | output | target" in page


def test_pairs_direction_defaults_to_the_run(exported, tmp_path):
    workdir, export_dir, _ = exported
    pair = write_image(str(tmp_path / "pair.png"), 16, 32)
    for path in (workdir, export_dir):
        model = predict_lib.load_model(path)
        assert model.direction == "BtoA"
        summary = predict_lib.predict(model, [pair], str(tmp_path / "o"), pairs=True, verbose=False)
        assert summary.written == ["pair"]
    # A SavedModel that does not record its direction needs --direction.
    _, generator, _ = run_dir.restore_generator(workdir)
    bare = export_lib.write_model(generator, str(tmp_path / "bare"), warmup=False)
    with pytest.raises(predict_lib.PredictError, match="--direction"):
        predict_lib.predict(predict_lib.load_model(bare), [pair], str(tmp_path / "o"), pairs=True)


def test_bad_model_paths(tmp_path):
    with pytest.raises(predict_lib.PredictError, match="no such directory"):
        predict_lib.load_model(str(tmp_path / "missing"))
    with pytest.raises(predict_lib.PredictError, match="neither a SavedModel"):
        predict_lib.load_model(str(tmp_path))
    assert predict_cli.main(["--model", str(tmp_path), "--input", "x", "--output", "y"]) == 1


def test_colliding_stems_are_refused_before_any_work(exported, tmp_path):
    _, export_dir, _ = exported
    first = write_image(str(tmp_path / "a" / "same.png"), 8, 8)
    second = write_image(str(tmp_path / "b" / "same.jpg"), 8, 8)
    with pytest.raises(predict_lib.PredictError, match="same.png"):
        predict_lib.predict(
            predict_lib.load_model(export_dir), [first, second], str(tmp_path / "out")
        )
    assert not (tmp_path / "out").exists()


# -- EXIF orientation, damaged checkpoints, full disks ---------------------------------


def _pillow_upright(data: bytes) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_oriented_jpeg_is_processed_upright(exported, tmp_path, orientation):
    workdir, export_dir, _ = exported
    pixels = np.random.default_rng(orientation).integers(0, 256, (20, 36, 3), dtype=np.uint8)
    data = exif_image(pixels, orientation)
    (tmp_path / "photo.jpg").write_bytes(data)
    upright = _pillow_upright(data)
    for path in (export_dir, workdir):
        output = tmp_path / os.path.basename(path)
        model = predict_lib.load_model(path)
        predict_lib.predict(
            model, [str(tmp_path / "photo.jpg")], str(output), strip=True, verbose=False
        )
        assert _read(output / "photo.png").shape == upright.shape
        strip = _read(output / "strips" / "photo.png")
        # The strip shows the input as Pillow turns it upright.
        np.testing.assert_array_equal(strip[:, : upright.shape[1]], upright)


def test_exif_oriented_pair_is_split_upright(exported, tmp_path):
    _, export_dir, _ = exported
    # Upright: a 16x32 pair, left half dark, right half bright; stored turned (orientation 6).
    upright = np.zeros((16, 32, 3), np.uint8)
    upright[:, 16:] = 255
    stored = np.ascontiguousarray(np.rot90(upright, 1))
    data = exif_image(stored, 6)
    np.testing.assert_array_equal(_pillow_upright(data)[:, :8], 0)
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "pair.jpg").write_bytes(data)
    output = tmp_path / "out"
    model = predict_lib.load_model(export_dir)
    predict_lib.predict(
        model,
        [str(tmp_path / "pairs")],
        str(output),
        strip=True,
        pairs=True,
        direction="AtoB",
        verbose=False,
    )
    assert _read(output / "pair.png").shape == (16, 16, 3)
    strip = _read(output / "strips" / "pair.png")
    # input (the dark left half) | output | target (the bright right half).
    assert strip[:, :16].max() < 16 and strip[:, 32:].min() > 240


def test_damaged_latest_checkpoint_is_one_line_and_an_older_one_can_be_named(tmp_path, capfd):
    workdir = str(tmp_path / "run")
    make_run(workdir, checkpoints=(1, 2))
    truncate_checkpoint(os.path.join(workdir, "ckpt-2"))
    image = write_image(str(tmp_path / "in" / "a.png"), 16, 16)
    args = ["--model", workdir, "--input", image, "--output", str(tmp_path / "out")]
    assert predict_cli.main(args) == 1
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("predict.py: error: "), err
    assert "ckpt-2" in lines[0] and "Traceback" not in err
    # The older intact checkpoint, named as the message says.
    checkpoint = os.path.join(workdir, "ckpt-1")
    assert predict_cli.main(args + ["--checkpoint", checkpoint]) == 0
    assert f"checkpoint {checkpoint}" in capfd.readouterr().out
    assert _read(tmp_path / "out" / "a.png").shape == (16, 16, 3)


def test_checkpoint_needs_a_run_directory(exported, tmp_path):
    _, export_dir, _ = exported
    with pytest.raises(predict_lib.PredictError, match="--checkpoint needs --model to be a run"):
        predict_lib.load_model(export_dir, checkpoint="ckpt-1")


def test_full_output_disk_is_one_line_and_leaves_no_partial_file(exported, tmp_path, capfd):
    _, export_dir, _ = exported
    inputs = tmp_path / "inputs"
    for index in range(4):
        write_image(str(inputs / f"{index}.png"), 256, 256, seed=index)
    output = tmp_path / "out"
    with small_filesystem(str(output), 200 * 1024):
        args = ["--model", export_dir, "--input", str(inputs), "--output", str(output)]
        assert predict_cli.main(args + ["--strip", "--batch_size", "1"]) == 1
        err = capfd.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith(f"predict.py: error: --output {output}: cannot write ")
        assert "No space left on device" in lines[0] and "free some space" in lines[0]
        names = [name for _, _, files in os.walk(output) for name in files]
        assert not [name for name in names if name.endswith(".tmp")], names
        for name in os.listdir(output):
            if name.endswith(".png"):
                assert _read(output / name).shape == (256, 256, 3)
