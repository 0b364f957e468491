"""The paper's lifetime sparseness (Vinje & Gallant, every unit counted, silent units at a fixed
value, mean over units) beside this package's, on a hand-made population."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multitask_evidence.probes.sparseness import (
    SILENT_SPARSENESS,
    lifetime_sparseness,
    paper_lifetime_sparseness,
)

# 4 conditions (rows) x 3 units (columns): unit 0 answers one condition, unit 1 two of them at
# twice the rate, unit 2 is silent
RESPONSES = np.array(
    [
        [1.0, 2.0, 0.0],
        [0.0, 2.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    ]
)


def test_paper_sparseness_counts_silent_units_and_averages_over_all_units():
    s = paper_lifetime_sparseness(RESPONSES)
    # S = [1 - (mean r)^2 / mean(r^2)] / (1 - 1/m), m = 4, 1 - 1/m = 3/4:
    # unit 0: mean 1/4, mean r^2 1/4: [1 - (1/16) / (1/4)] / (3/4) = (3/4) / (3/4) = 1
    # unit 1: mean 1, mean r^2 (4 + 4) / 4 = 2: [1 - 1/2] / (3/4) = 2/3
    # unit 2: mean r^2 = 0 (0 / 0): counted as SILENT_SPARSENESS = 1
    assert s.per_unit == pytest.approx([1.0, 2 / 3, 1.0])
    # mean over the 3 units: (1 + 2/3 + 1) / 3 = 8/9
    assert s.mean == pytest.approx(8 / 9)
    assert s.n_silent == 1 and s.n_stimuli == 4 and s.silent == SILENT_SPARSENESS == 1.0
    # a silent unit counted as 0 instead: (1 + 2/3 + 0) / 3 = 5/9
    assert paper_lifetime_sparseness(RESPONSES, silent=0.0).mean == pytest.approx(5 / 9)


def test_this_packages_sparseness_leaves_silent_units_out_and_takes_the_median():
    s = lifetime_sparseness(RESPONSES)
    # the same per-unit values, the silent unit as NaN, summarised over the 2 active units:
    # mean (1 + 2/3) / 2 = 5/6, and the median of two values is their mean, 5/6
    assert s.per_unit[:2] == pytest.approx([1.0, 2 / 3]) and math.isnan(s.per_unit[2])
    assert s.mean == pytest.approx(5 / 6) and s.median == pytest.approx(5 / 6)
    assert s.n_silent == 1
    # above each unit's minimum: the minima here are 0, so nothing changes
    assert lifetime_sparseness(RESPONSES, baseline="min").median == pytest.approx(5 / 6)


def test_paper_sparseness_on_signed_states_is_the_formula_not_a_sparseness():
    # one unit alternating -1, +1 over 4 conditions: mean 0, mean r^2 1: [1 - 0] / (3/4) = 4/3,
    # above 1 (its bound on rates), although the unit answers half of the conditions; this
    # package's, above the minimum (0, 2, 0, 2): mean 1, mean r^2 2: [1 - 1/2] / (3/4) = 2/3
    signed = np.array([[-1.0], [1.0], [-1.0], [1.0]])
    assert paper_lifetime_sparseness(signed).mean == pytest.approx(4 / 3)
    assert lifetime_sparseness(signed, baseline="min").median == pytest.approx(2 / 3)


def test_paper_sparseness_rejects_what_the_formula_cannot_take():
    with pytest.raises(ValueError, match="m >= 2"):
        paper_lifetime_sparseness(np.ones((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        paper_lifetime_sparseness(np.full((3, 2), np.nan))
