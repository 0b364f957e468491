"""The installed namespace: everything lives under ``multitask_evidence``, so another
distribution's top-level ``envs`` (one exists on the public index) cannot shadow ours.

The subprocesses run outside the repository so that its top-level folders are not on ``sys.path``
and only the installed distribution answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("common", "envs", "agents", "probes", "experiments")


def test_the_package_list_names_every_folder_with_an_init() -> None:
    """A subpackage missing from pyproject's explicit list would be missing from the wheel."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {"multitask_evidence"} | {
        ".".join(("multitask_evidence", *init.parent.relative_to(ROOT).parts))
        for layer in LAYERS
        for init in (ROOT / layer).rglob("__init__.py")
    }
    assert listed == on_disk
    assert config["package-dir"] == {
        "multitask_evidence": "src/multitask_evidence",
        **{f"multitask_evidence.{layer}": layer for layer in LAYERS},
    }


def _wheel_with_top_level_envs(where: Path) -> Path:
    """A minimal wheel of a distribution ``envs-clash`` whose top-level package is ``envs``."""
    wheel = where / "envs_clash-1.0-py3-none-any.whl"
    dist = "envs_clash-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("envs/__init__.py", "CLASH = 'the other distribution'\n")
        z.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: envs-clash\nVersion: 1.0\n")
        z.writestr(
            f"{dist}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{dist}/RECORD", "")
    return wheel


@pytest.mark.slow
def test_a_top_level_envs_distribution_beside_ours_changes_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
            "--target", str(site), str(_wheel_with_top_level_envs(tmp_path)),
        ],
        check=True,
    )  # fmt: skip
    script = (
        "import envs, gymnasium as gym\n"
        "assert envs.CLASH == 'the other distribution', envs\n"
        "env = gym.make('multitask_evidence:MultiTaskEvidence-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "import multitask_evidence\n"
        "assert multitask_evidence.envs.__name__ == 'multitask_evidence.envs'\n"
        "assert envs.CLASH == 'the other distribution'\n"
        "env = gym.make('MultiTaskEvidence-v0')\n"
        "from multitask_evidence.experiments.cli import main\n"
        "print(obs.shape[0], type(env.unwrapped).__module__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    n_obs, module = out.stdout.split()
    assert int(n_obs) > 0
    assert module == "multitask_evidence.envs.env"


def test_the_mte_command_runs_outside_the_repository(tmp_path: Path) -> None:
    mte = Path(sys.executable).with_name("mte")
    out = subprocess.run(
        [str(mte), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mte (multitask-evidence) ")
