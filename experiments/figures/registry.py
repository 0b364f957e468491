"""The figures ``mte reproduce`` knows: :class:`Figure` records registered by name.

A figure is a grid per scale (run by the sweep engine), the grid parameters its summary rows are
grouped by, and a ``render`` that draws the plot and writes the page's figure-specific body from
the summary rows (:func:`experiments.figures.stats.summarise`). :func:`experiments.reproduce.render`
adds what every page shares (title, claim, recipe, controls, the table, failed points).

Each module of this package that defines a figure calls :func:`register` when it is imported,
and every module of the package is imported the first time this module is: adding a figure is
adding one module (``experiments/figures/<name>.py``). ``FIGURES`` (name -> Figure, in module
order) is what ``mte reproduce`` offers as its choices and lists in ``--help``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multitask_evidence.common.registry import Registry

if TYPE_CHECKING:
    from multitask_evidence.experiments.sweep import Grid

    from .inference import PairedTest

Render = Callable[[Sequence[Mapping[str, Any]], Path, str], tuple[Path, str]]
"""``render(summary, out_dir, caption) -> (png path, page body in markdown)``."""


@dataclass(frozen=True)
class Figure:
    """One reproducible figure: its grid per scale, how to group, plot and explain it."""

    name: str
    title: str
    claim: str
    group_by: tuple[str, ...]
    grid: Callable[[str], Grid]
    render: Render
    probe_n: Callable[[str], int | None] = lambda scale: 1024 if scale == "smoke" else None
    probe_adam: Callable[[str], bool] = lambda scale: scale == "paper"
    """Whether each network is also probed with the paper's Adam protocol (both estimators in
    the table); always at paper scale."""
    help: str = ""
    """What the figure plots, in a few words, for ``mte reproduce --help``."""
    statistic: str = "median and IQR over networks x folds x fits"
    """What the plotted summaries pool, for the caption under the figure."""
    probe_full: Callable[[str], bool] = lambda scale: False
    """Whether each network is also probed for its fixed points (``attractor_dim``), tuning
    maps and decoding at every step: about 10 s more per network, for the figures that plot
    them."""
    primary: (
        Callable[[Sequence[Mapping[str, Any]]], PairedTest | Sequence[PairedTest] | None] | None
    ) = None
    """The figure's pre-declared primary contrast, built from the summary rows (e.g. the RNN's
    rise from the smallest to the largest N, paired by seed): tested alone at
    ``inference.ALPHA`` and named first on the page; every other call is secondary and
    Holm-adjusted. A sequence of contrasts is a pre-declared primary family (e.g. one
    contrast per value of a dial), Holm-adjusted among themselves. None (or None returned):
    no primary contrast. A contrast of OOD r^2 takes a keyword ``suffix`` (a key of
    ``pages.CHOICES``) so that the page re-tests it under the other splits and penalties."""
    headline: Callable[[Sequence[Mapping[str, Any]]], str] | None = None
    """One sentence from the summary rows for the index page of ``mte reproduce all``; None:
    :func:`experiments.figures.pages.headline` (every condition against its controls)."""

    def point_options(self, scale: str) -> dict[str, Any]:
        """The sweep point options (``experiments.point.run_point``'s ``probe_*``) of this
        figure's networks at a scale; only those that differ from the defaults."""
        n = self.probe_n(scale)
        flags = {"probe_adam": self.probe_adam(scale), "probe_full": self.probe_full(scale)}
        return {**({} if n is None else {"probe_n": n}), **{k: True for k, v in flags.items() if v}}


FIGURES: Registry[Figure] = Registry("figure", "figure")
"""Every registered figure by name, in registration order."""


def register(figure: Figure) -> Figure:
    """Add a figure under its name (a name already taken is a ValueError); returns it."""
    if not figure.name or not figure.name.replace("_", "").isalnum():
        raise ValueError(f"a figure's name must be letters, digits and _, got {figure.name!r}")
    if figure.name == "all":
        raise ValueError("'all' names every figure in `mte reproduce all`; pick another name")
    return FIGURES.add(figure.name, figure)


unregister = FIGURES.remove
"""Remove a registered figure (no error if there is none of that name)."""


def get(name: str) -> Figure:
    """The figure of that name; an unknown name is a ValueError listing the known ones."""
    return FIGURES.lookup(name)


def help_text() -> str:
    """``fig3 (what it plots), fig5a (...)``: the registered figures for ``--help``."""
    return ", ".join(f"{f.name} ({f.help})" if f.help else f.name for f in FIGURES.values())


BEYOND_PAPER = ("entangled",)
"""Modules of experiments that go beyond the paper's figures: imported after the others, so
that ``FIGURES`` (and ``mte reproduce all``) lists the paper's reproductions first."""


def _import_figure_modules() -> None:
    """Import every module of this package; a figure's module registers it when imported."""
    package = importlib.import_module(__name__.rpartition(".")[0])
    infos = pkgutil.iter_modules(package.__path__)
    for info in sorted(infos, key=lambda m: (m.name in BEYOND_PAPER, m.name)):
        importlib.import_module(f"{package.__name__}.{info.name}")


# Last, once Figure and register exist: the figure modules import them from this module.
_import_figure_modules()
