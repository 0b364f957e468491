"""The paper's figures: one module per figure, their shared statistics, plots and page text.

- :mod:`~experiments.figures.registry`: :class:`~experiments.figures.registry.Figure` and
  ``register``; ``FIGURES`` is what ``mte reproduce`` offers;
- one module per figure (``fig3``, ``fig3d``, ``fig4``, ``fig5a``, ``fig5b``, ``fig5c``,
  ``figS1``, ``figS12``, ``figS3b``, ``figS5c``, ``figS6``, ``rl``): its grid per scale, its plot
  and its page, registered when the module is imported;
- :mod:`~experiments.figures.analyses`: the per-network structure analyses (trajectories, fixed
  points, tuning maps, sparseness, decoder angles) of the trained network beside the same network
  untrained and the encoder's output, cached in each run folder;
- :mod:`~experiments.figures.grids`: what each scale trains (budgets, network seeds, recipe);
- :mod:`~experiments.figures.stats`: the paper's statistics (median and IQR over networks x
  folds x fits), every measured value per network by seed, and the summary table;
- :mod:`~experiments.figures.inference`: the paired tests over networks behind every verdict
  (sign-flip p-values, t-intervals, Holm, the page's ledger of calls);
- :mod:`~experiments.figures.plots`: drawing shared by the plots (controls, bounds, saving);
- :mod:`~experiments.figures.pages`: sentences the pages share (a condition against its
  controls, trends, bounds, the Adam protocol).

The statistics and the table are importable from this package itself
(``experiments.figures.summarise`` ...). Importing the package imports the registry, which
imports every figure module in name order: ``FIGURES`` lists them in that order whichever module
is imported first.
"""

from multitask_evidence.experiments.figures import (
    registry,  # imports and registers every figure module
)

from .inference import PairedTest, holm, paired_test, sign_flip_p
from .plots import DPI, STYLE, draw_bounds, draw_controls, theory_curve
from .stats import (
    ARCH_LABELS,
    ARCH_ORDER,
    METRICS,
    fmt,
    markdown_table,
    select,
    summarise,
)

__all__ = [
    "ARCH_LABELS",
    "ARCH_ORDER",
    "DPI",
    "METRICS",
    "PairedTest",
    "STYLE",
    "draw_bounds",
    "draw_controls",
    "fmt",
    "holm",
    "markdown_table",
    "paired_test",
    "registry",
    "select",
    "sign_flip_p",
    "summarise",
    "theory_curve",
]
