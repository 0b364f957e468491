"""examples/quickstart.ipynb runs top to bottom in a fresh kernel and computes an OOD r^2.

The notebook's parameter cell (tagged ``parameters``) is replaced by a smaller training budget,
so that the test checks every cell's code (task, render, training, probes, plots) in about 6 s;
the notebook as stored trains a few hundred steps. It is kept without outputs."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
TEST_PARAMS = "N_TASKS = 6\nSTEPS = 40\nHIDDEN = 16\nPROBE_N = 1024\n"


def _tagged(nb, tag):
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    (params,) = _tagged(nb, "parameters")
    assert "STEPS = 300" in params.source  # a few hundred steps as shipped
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebook_runs_and_reports_an_ood_r2(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (params,) = _tagged(nb, "parameters")
    params.source = TEST_PARAMS
    # the kernel imports this checkout's package and writes its run folder under tmp_path
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline figures, as in Jupyter
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    (result_cell,) = _tagged(nb, "result")
    text = "".join(o.get("text", "") for o in result_cell.outputs if o.output_type == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith("RESULT "))
    result = ast.literal_eval(line[len("RESULT ") :])
    assert -1.0 < result["ood_r2"] <= 1.0
    assert result["frac_ideal"] <= 1.05
    # the probe's own record agrees with what the notebook printed
    probe = json.loads((tmp_path / "runs" / "quickstart" / "probe.json").read_text())
    assert probe["headline"]["ood_r2_median"] == pytest.approx(result["ood_r2"])
    # the figures were drawn: the render and the bar chart are image outputs
    images = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "display_data" and "image/png" in o.get("data", {})
    ]
    assert len(images) == 2
