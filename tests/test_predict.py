"""predict.py and pix2pix_tf.predict_lib: batches of files in, one PNG per input out."""

import os

import numpy as np
import pytest
import tensorflow as tf
from export_fixtures import make_run, write_image

import predict as predict_cli
from pix2pix_tf import export_lib, predict_lib


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
    _, generator, _ = export_lib.restore_generator(workdir)
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
