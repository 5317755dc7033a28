"""The command lines: `--help` of export.py, evaluate.py, predict.py and the segmenter
answers without importing TensorFlow (it took 4 s and printed C++ log lines before), and
every entry point exits 0 on success, 2 on bad flags, 1 on a runtime error (one line)
and 130 on Ctrl-C."""

import importlib
import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import REPO_ROOT

import evaluate as evaluate_cli
import export as export_cli
import predict as predict_cli
import train as train_cli
from pix2pix_tf.cli import flags
from pix2pix_tf.cli import prepare as prepare_cli
from pix2pix_tf.cli import segmentation as segmentation_cli
from pix2pix_tf.cli import serving_client as client_cli
from pix2pix_tf.data import prepare
from pix2pix_tf.evaluation import segmenter
from pix2pix_tf.serving import client

# (how to run it, what its usage line starts with).
ENTRY_POINTS = [
    ("export.py", "usage: export.py"),
    ("evaluate.py", "usage: evaluate.py"),
    ("predict.py", "usage: predict.py"),
    ("-m pix2pix_tf.segmentation", "usage: python -m pix2pix_tf.segmentation"),
    ("-m pix2pix_tf.demo", "usage: python -m pix2pix_tf.demo"),
    ("-m pix2pix_tf.benchmark memory", "usage: python -m pix2pix_tf.benchmark memory"),
    ("-m pix2pix_tf.benchmark deploy", "usage: python -m pix2pix_tf.benchmark deploy"),
]


def _run_help(entry_point: str) -> subprocess.CompletedProcess:
    """Runs `<entry point> --help` as python would, then reports which modules it imported."""
    command, *arguments = entry_point.split()[1:] if entry_point.startswith("-m ") else [None]
    if command is not None:
        run = f"runpy.run_module({command!r}, run_name='__main__', alter_sys=True)"
    else:
        run = f"runpy.run_path({os.path.join(REPO_ROOT, entry_point)!r}, run_name='__main__')"
    argv = [entry_point.split()[-1 if command is None else 1], *arguments, "--help"]
    script = textwrap.dedent(
        f"""
        import runpy, sys
        sys.argv = {argv!r}
        try:
            {run}
        except SystemExit as exit:
            code = exit.code
        else:
            code = "no exit"
        imported = sorted(name for name in ("tensorflow", "keras", "numpy") if name in sys.modules)
        print("EXIT", code, "IMPORTED", imported)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )


@pytest.mark.parametrize("entry_point,usage", ENTRY_POINTS)
def test_help_answers_without_tensorflow(entry_point, usage):
    start = time.monotonic()
    result = _run_help(entry_point)
    elapsed = time.monotonic() - start
    assert result.stdout.startswith(usage), result.stdout + result.stderr
    assert "EXIT 0 IMPORTED []" in result.stdout, result.stdout[-500:] + result.stderr
    assert result.stderr == ""
    assert elapsed < 3.0, f"{entry_point} --help took {elapsed:.1f} s"


# (entry point's main, flags that parse, a flag value it refuses).
COMMANDS = {
    "train": (train_cli.main, [], ["--gan_mode", "wgan"]),
    "prepare": (prepare_cli.main, [], ["--image_size", "100"]),
    "export": (export_cli.main, ["--workdir", "run"], ["--precision", "fp8"]),
    "evaluate": (evaluate_cli.main, ["--workdir", "run"], ["--fcn", "maybe"]),
    "predict": (
        predict_cli.main,
        ["--model", "m", "--input", "x.png", "--output", "out"],
        ["--batch_size", "many"],
    ),
    "segmentation": (segmentation_cli.main, [], ["--dataset", "imagenet"]),
    "serving_client": (client_cli.main, ["--rest", "http://host", "--input", "x"], ["--grpc"]),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_bad_flags_exit_2_with_one_usage_error(name, capsys):
    main, good, bad = COMMANDS[name]
    with pytest.raises(SystemExit) as exit:
        main([*good, *bad])
    assert exit.value.code == flags.EXIT_USAGE == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors


# Per entry point: (the module of the library call it makes, that call, the flags).
def _failing_call(name, tmp_path):
    run = ["--workdir", str(tmp_path / "run")]
    data = ["--data_dir", str(tmp_path / "data")]
    output = ["--output", str(tmp_path / "out")]
    if name == "train":
        return importlib.import_module("pix2pix_tf.training.trainer"), "train", [*run, *data]
    if name == "export":
        return importlib.import_module("pix2pix_tf.serving.export"), "export", run
    if name == "evaluate":
        return importlib.import_module("pix2pix_tf.evaluation.evaluator"), "evaluate", run
    if name == "predict":
        predict_lib = importlib.import_module("pix2pix_tf.serving.predict")
        return predict_lib, "load_model", ["--model", "m", "--input", "x.png", *output]
    if name == "serving_client":
        return client, "rest_generate", ["--rest", "http://host", "--input", __file__, *output]
    if name == "prepare":
        return prepare, "prepare", data
    return segmenter, "train_segmenter", data


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize(
    "raised, code",
    [(ValueError("bad\ninput"), flags.EXIT_ERROR), (KeyboardInterrupt(), flags.EXIT_INTERRUPTED)],
    ids=["runtime_error", "ctrl_c"],
)
def test_runtime_errors_exit_1_and_ctrl_c_130(name, raised, code, tmp_path, monkeypatch, capsys):
    module, function, argv = _failing_call(name, tmp_path)
    if name == "predict" and isinstance(raised, ValueError):
        raised = module.PredictError("bad\ninput")  # What predict turns failures into.

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(module, function, fail)
    assert COMMANDS[name][0](argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == flags.EXIT_ERROR:
        errors = [line for line in err.splitlines() if "error" in line]
        assert len(errors) == 1 and "bad input" in errors[0], err
