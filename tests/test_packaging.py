"""An installable package: `pip install .` gives `import pix2pix_tf` and the commands.

The install goes into a virtual environment that sees this machine's packages
(--system-site-packages), so it downloads nothing: the declared dependency ranges must
be met by the pinned versions, as they are on a fresh machine after
`pip install -r requirements.txt`.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO_ROOT
from packaging.requirements import Requirement

COMMANDS = (
    "pix2pix-train",
    "pix2pix-export",
    "pix2pix-predict",
    "pix2pix-evaluate",
    "pix2pix-prepare",
    "pix2pix-demo",
    "pix2pix-segmentation",
    "pix2pix-serving-client",
)


def _project() -> dict:
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)["project"]


def _pins() -> dict[str, str]:
    pins = {}
    with open(os.path.join(REPO_ROOT, "requirements.txt")) as file:
        for line in file:
            match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
            if match:
                pins[match.group(1).lower()] = match.group(2)
    return pins


def test_the_pins_meet_the_declared_ranges_and_every_command_is_declared():
    project, pins = _project(), _pins()
    for text in project["dependencies"] + project["optional-dependencies"]["test"]:
        requirement = Requirement(text)
        name = requirement.name.lower()
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned"
        assert requirement.specifier.contains(pins[name]), (text, pins[name])
    assert tuple(project["scripts"]) == COMMANDS
    for target in project["scripts"].values():
        module, function = target.split(":")
        assert function == "main" and module.startswith("pix2pix_tf.cli.")


@pytest.mark.slow
def test_pip_install_gives_the_commands_anywhere(tmp_path):
    # A copy of the checked-in tree: building in place would leave build/ and *.egg-info.
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    source = tmp_path / "source"
    for name in filter(None, listed.split("\0")):
        if os.path.isfile(os.path.join(REPO_ROOT, name)):
            os.makedirs(source / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(REPO_ROOT, name), source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-build-isolation", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pix2pix_tf; print(pix2pix_tf.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    assert found.startswith(str(venv)), found  # The installed copy, not the repository.
    for command in COMMANDS:
        result = subprocess.run(
            [str(venv / "bin" / command), "--help"],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0 and "usage:" in result.stdout, (command, result.stderr)
    train = subprocess.run(
        [str(venv / "bin" / "pix2pix-train"), "--preset", "tiny", "--steps", "2"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "step 2/2 gen_total" in train.stdout
    assert (elsewhere / "checkpoints" / "synthetic-tiny" / "ckpt-2.index").exists()
    # The demo's page is in the package.
    static = os.path.join(os.path.dirname(found), "demo", "static", "index.html")
    assert os.path.isfile(static)
