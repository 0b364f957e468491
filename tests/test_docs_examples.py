"""The extension-point examples in docs/contracts.md run as written.

Each example registers into a process-wide registry, so each runs in its own interpreter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CONTRACTS = Path(__file__).resolve().parent.parent / "docs" / "contracts.md"


def example(section: str) -> str:
    """The first python code block under the ``### <section>`` heading."""
    text = CONTRACTS.read_text()
    start = text.index(f"### {section}")
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert block is not None, section
    return block.group(1)


def run(code: str, tmp_path: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_the_report_kind_example_runs_and_scores(tmp_path: Path) -> None:
    code = example("Extension point: report kinds") + (
        "obs, info = env.reset(seed=0)\n"
        "done = False\n"
        "while not done:\n"
        "    obs, reward, term, trunc, info = env.step(env.action_space.sample())\n"
        "    done = term or trunc\n"
        "assert 0.0 <= float(reward) <= 1.0\n"
        "print(Reversed().rule(np.array([0, 1]), np.array([1, 1]), None, None).tolist())\n"
    )
    assert run(code, tmp_path).strip() == "[1.0, 0.0]"


@pytest.mark.slow
def test_the_figure_example_registers_a_figure_that_reproduce_offers(tmp_path: Path) -> None:
    code = example("Extension point: figures") + (
        "from multitask_evidence.experiments.figures.registry import FIGURES\n"
        "fig = FIGURES['sigma_sweep']\n"
        "points = fig.grid('smoke').points()\n"
        "print(len(points), sorted({p.task['sigma'] for p in points}))\n"
    )
    n, sigmas = run(code, tmp_path).split(" ", 1)
    assert int(n) == 3 and sigmas.strip() == "[0.1, 0.3, 0.5]"
