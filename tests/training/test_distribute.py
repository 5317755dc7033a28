"""tf.distribute on CPU: Mirrored over 2 logical CPUs, multi-worker over 2 local processes.

TensorFlow's devices are fixed when it initialises, so the 2-CPU checks run
this file as a script in a fresh process (`python tests/training/test_distribute.py ...`).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO_ROOT, "train.py")


def _script(*args, env=None, timeout=600):
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO_ROOT, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("norm, sync", [("instance", False), ("batch", True)])
def test_mirrored_on_two_cpus_matches_one_device_with_the_same_global_batch(norm, sync):
    result = _script("mirrored", norm, str(sync))
    assert result["replicas"] == 2
    assert result["max_difference"] < 1e-4, result
    assert result["moved"] > 1e-2  # The steps changed the weights.


def test_strategy_flag_errors():
    from pix2pix_tf.training import distribute

    with pytest.raises(ValueError, match="--strategy tpu needs --tpu"):
        distribute.make_strategy("tpu")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)
        distribute.make_strategy("multi_worker")
    with pytest.raises(ValueError, match="--strategy must be one of"):
        distribute.make_strategy("horovod")
    strategy = distribute.make_strategy("auto")
    assert distribute.is_chief(strategy)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.data import prepare

    data_dir = str(tmp_path_factory.mktemp("tfrecords"))
    prepare.prepare(config_lib.build_config(preset="tiny", data_dir=data_dir).data)
    return data_dir


def _variables(path):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, dtype in reader.get_variable_to_dtype_map().items()
        if dtype.is_floating and not name.startswith("save_counter")
    }


def test_mirrored_resume_continues_exactly_like_an_uninterrupted_run(tiny_data, tmp_path):
    """No iterator in the checkpoint; the input is rebuilt at the step's position."""
    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.training import trainer as training

    config = config_lib.build_config(
        preset="tiny", data_dir=tiny_data, strategy="mirrored", steps=4, dropout=0.0
    )
    straight = training.train(config.replace(workdir=str(tmp_path / "straight")))
    workdir = str(tmp_path / "resumed")
    assert training.train(config.replace(workdir=workdir, steps=2))["step"] == 2
    resumed = training.train(config.replace(workdir=workdir))
    assert resumed["step"] == 4
    expected, actual = _variables(straight["checkpoint"]), _variables(resumed["checkpoint"])
    assert not any("iterator" in name for name in actual)
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _run_workers(args, ports, worker_args=None):
    """Runs train.py with `args` on len(ports) local workers (and worker_args[i] on worker i)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(len(ports)):
        extra = worker_args[index] if worker_args else []
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(
            subprocess.Popen(
                [sys.executable, TRAIN, *args, *extra],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    return [err for _, err in outputs]


@pytest.mark.slow
def test_multi_worker_resumes_exactly_with_data_at_other_paths_per_worker(tiny_data, tmp_path):
    """Each worker reads its own copy of the data; worker 1's moves before the resume."""
    import shutil

    import tensorflow as tf

    from pix2pix_tf.runs import directory as run_dir

    copy = tmp_path / "worker1" / "tfrecords"
    shutil.copytree(tiny_data, copy)
    common = ["--preset", "tiny", "--strategy", "multi_worker", "--batch_size", "2"]
    common += ["--dropout", "0", "--checkpoint_every", "2"]
    per_worker = [["--data_dir", tiny_data], ["--data_dir", str(copy)]]
    straight = str(tmp_path / "straight")
    _run_workers([*common, "--workdir", straight, "--steps", "4"], _free_ports(2), per_worker)

    workdir = str(tmp_path / "run")
    args = [*common, "--workdir", workdir]
    logs = _run_workers([*args, "--steps", "2"], _free_ports(2), per_worker)
    assert "MultiWorkerMirroredStrategy: 2 replica(s) on 2 worker(s)" in logs[0]
    assert tf.train.latest_checkpoint(workdir).endswith("ckpt-2")
    assert not os.path.exists(os.path.join(workdir, "worker_tmp", "worker_1"))

    moved = tmp_path / "moved" / "tfrecords"
    shutil.move(str(copy), moved)
    per_worker[1] = ["--data_dir", str(moved)]
    logs = _run_workers([*args, "--steps", "4"], _free_ports(2), per_worker)
    assert all("Resuming" in log and "at step 2" in log for log in logs)
    latest = tf.train.latest_checkpoint(workdir)
    assert latest.endswith("ckpt-4")
    assert run_dir.checkpoint_step(latest) == 4
    # Only the chief wrote the run's files.
    assert os.path.exists(os.path.join(workdir, "config.json"))
    assert sorted(os.listdir(os.path.join(workdir, "samples")))[-1] == "step_000004.png"
    expected = _variables(tf.train.latest_checkpoint(straight))
    actual = _variables(latest)
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------------------
# Script mode: runs in a fresh process that can split the CPU in two.
# ---------------------------------------------------------------------------


def _mirrored_check(norm: str, sync: bool) -> dict:
    import keras
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.experimental.enable_op_determinism()
    from pix2pix_tf import configs as config_lib
    from pix2pix_tf.training import step as step_lib

    config = config_lib.build_config(
        preset="tiny",
        batch_size=2,
        dropout=0.0,
        norm=norm,
        sync_batch_norm=sync,
        learning_rate=1e-2,  # Large steps, so that a wrong update would show.
    )
    size = config.data.image_size
    coarse = tf.random.stateless_uniform([6, 8, 8, 3], seed=[0, 1], minval=-1, maxval=1)
    inputs = tf.image.resize(coarse, [size, size])
    dataset = tf.data.Dataset.from_tensor_slices((inputs, tf.tanh(2.0 * inputs))).batch(2)

    weights, initial = [], None
    strategies = [
        tf.distribute.get_strategy(),
        tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
    ]
    for strategy in strategies:
        keras.utils.set_random_seed(5)
        state = step_lib.build_train_state(config, strategy, total_steps=10)
        if initial is None:
            initial = [w.numpy() for w in state.generator.weights]
        train_steps = step_lib.make_train_loop(config, state)
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        train_steps(iterator, 3)
        weights.append([w.numpy() for w in state.generator.weights + state.discriminator.weights])
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(*weights, strict=True))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights[0], initial, strict=False))
    return {
        "replicas": strategies[1].num_replicas_in_sync,
        "max_difference": difference,
        "moved": moved,
    }


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        print(json.dumps(_mirrored_check(sys.argv[2], sys.argv[3] == "True")))
