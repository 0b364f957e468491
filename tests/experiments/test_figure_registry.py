"""The figure registry: a figure added through ``register`` (its grid, plot and page in one place)
is run by :func:`experiments.reproduce.reproduce` and offered by ``mte reproduce``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from multitask_evidence.experiments.figures.pages import against_controls
from multitask_evidence.experiments.figures.plots import errorbar, finish, pyplot
from multitask_evidence.experiments.figures.registry import (
    FIGURES,
    Figure,
    help_text,
    register,
    unregister,
)
from multitask_evidence.experiments.sweep import parse_grid

TOY = "toy_noise"


def toy_point(point, run_dir):
    """Trains nothing: an OOD r^2 that falls with sigma, 4 folds x fits per network."""
    os.makedirs(run_dir, exist_ok=True)
    r2 = 0.9 - point.task["sigma"] + 0.01 * point.seed
    return {"ood_r2": r2, "ood_r2_values": [r2] * 4, "id_r2": 0.95, "ceiling": 0.97}


def toy_grid(scale: str):
    return parse_grid({"n_tasks": [2], "sigma": [0.1, 0.3]}, [0, 1], name=TOY)


def toy_render(summary, out, caption):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.0, 2.5))
    errorbar(ax, summary, "sigma", "ood_r2", label="OOD", color="C0")
    png = finish(fig, out / f"{TOY}.png", caption)
    lines = ["## Against its controls", ""]
    lines += ["- " + against_controls(r, f"sigma = {r['sigma']}") for r in summary]
    return png, "\n".join(lines)


@pytest.fixture
def toy_figure():
    fig = register(
        Figure(
            TOY,
            "Toy: OOD r^2 against sigma",
            "OOD r^2 falls as sigma grows.",
            ("n_tasks", "sigma"),
            toy_grid,
            toy_render,
            probe_n=lambda scale: None,
            probe_adam=lambda scale: False,
            help="a toy figure for the registry test",
        )
    )
    try:
        yield fig
    finally:
        unregister(TOY)


PAPER_FIGURES = [
    "fig3", "fig3d", "fig4", "fig5a", "fig5b", "fig5c",
    "figS1", "figS12", "figS3b", "figS5c", "figS6", "rl",
]  # fmt: skip


@pytest.mark.parametrize(
    "first",
    ["multitask_evidence.experiments.reproduce", "multitask_evidence.experiments.figures.rl"],
)
def test_the_paper_figures_are_registered_in_order_whatever_is_imported_first(first):
    code = f"import {first}; from multitask_evidence.experiments.figures.registry import FIGURES; print(*FIGURES)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [*PAPER_FIGURES, "entangled"]
    assert list(FIGURES)[: len(PAPER_FIGURES)] == PAPER_FIGURES
    assert "fig3 (r^2 vs number of tasks" in help_text()
    with pytest.raises(ValueError, match="already registered"):
        register(FIGURES["fig3"])


def test_a_registered_figure_runs_renders_and_is_offered_by_mte_reproduce(
    toy_figure, tmp_path, capsys
):
    from multitask_evidence.experiments.cli import build_parser, main
    from multitask_evidence.experiments.reproduce import figure_grid, reproduce

    assert len(figure_grid(TOY, "smoke").points()) == 4
    res = reproduce(TOY, "smoke", tmp_path, workers=1, progress=False, point_fn=toy_point)
    assert res.n_failed == 0 and [r["sigma"] for r in res.summary] == [0.1, 0.3]
    assert res.summary[0]["ood_r2_per_network"] == pytest.approx([0.8, 0.81])
    assert res.png.exists() and res.png.with_suffix(".pdf").exists()
    page = res.page.read_text()
    assert page.startswith("# Toy: OOD r^2 against sigma")
    assert "Claim to check: OOD r^2 falls as sigma grows." in page
    # the mean over 2 networks with its t-interval (t_0.975,1 = 12.71): 0.605 +- 0.0635
    assert "- sigma = 0.3: OOD r^2 0.605 [95% CI 0.541, 0.669] (mean over 2 networks)" in page
    assert (tmp_path / TOY / f"{TOY}.csv").read_text().startswith("n_tasks,sigma,n_networks")

    # the command line offers it: in --help and as a choice (redrawn from the finished sweep)
    reproduce_parser = build_parser(["reproduce", "--help"]).commands["reproduce"]
    help_words = " ".join(reproduce_parser.format_help().split())  # however argparse wraps it
    assert f"{TOY} (a toy figure for the registry test)" in help_words
    argv = ["reproduce", TOY, "--scale", "smoke", "--out", str(tmp_path), "--plot-only"]
    assert main([*argv, "--no-progress"]) == 0
    assert f"{TOY}.png" in capsys.readouterr().out


def test_unregistered_figures_are_refused(toy_figure):
    from multitask_evidence.experiments.reproduce import figure_grid

    unregister(TOY)
    with pytest.raises(ValueError, match="figure must be one of"):
        figure_grid(TOY, "smoke")
    with pytest.raises(SystemExit):
        from multitask_evidence.experiments.cli import main

        main(["reproduce", TOY, "--scale", "smoke"])
