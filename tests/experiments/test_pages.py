"""The page sentences built on the paired tests: controls under every analysis choice, the
geometry calls and the per-network values they pair, on summary rows made by hand."""

from __future__ import annotations

import math

import pytest

from multitask_evidence.experiments.figures import pages, stats
from multitask_evidence.experiments.figures.fig3 import primary as fig3_primary


def _row(n, seed, base, **extra):
    """One network's sweep row: OOD r^2 ``base`` under the default choice, lower by 0.2 under
    the half-space split and by 0.01 with the near-OLS decoder; controls 0.1 and 0.3 below."""
    row = {
        "status": "ok",
        "arch": "rnn",
        "n_tasks": n,
        "seed": seed,
        "ood_r2_values": [base] * 4,
        "untrained_ood_r2_values": [base - 0.1] * 4,
        "input_ood_r2_values": [base + 0.05] * 4,
        "ood_r2_halfspace": base - 0.2,
        "untrained_ood_r2_halfspace": base - 0.1,
        "input_ood_r2_halfspace": base - 0.2,
        "ood_r2_ols": base - 0.01,
        "untrained_ood_r2_ols": base - 0.11,
        "input_ood_r2_ols": base + 0.04,
    }
    return {**row, **extra}


def _summary(n_networks=8):
    rows = [
        _row(n, s, 0.6 + 0.3 * (n == 24) + 0.001 * s) for n in (2, 24) for s in range(n_networks)
    ]
    return stats.summarise(rows, ("arch", "n_tasks"))


def test_networks_pair_by_seed_across_conditions_and_within_a_network():
    summary = _summary()
    first, last = summary
    assert first["seeds"] == list(range(8))
    assert pages.per_seed(last, "ood_r2")[3] == pytest.approx(0.903)
    assert pages.per_seed(last, "ood_r2_halfspace")[3] == pytest.approx(0.703)
    # trained minus untrained: 0.1 on every network; 8 of one sign give p = 2 / 2^8
    t = pages.control_test(last, "untrained_ood_r2")
    assert t.mean == pytest.approx(0.1) and t.p == 2 / 256 and t.n == 8
    assert last["gain_over_untrained"] == pytest.approx(0.1) and last["gain_p"] == 2 / 256
    # the same contrast under the half-space split: -0.1 on every network
    hs = pages.control_test(last, "untrained_ood_r2", suffix="_halfspace")
    assert hs.mean == pytest.approx(-0.1) and hs.direction == "below"
    assert "OOD r^2 (half-space split) trained - untrained" in hs.label
    # the rise from N = 2 to N = 24, paired by seed: +0.3 on every network
    rise = fig3_primary(summary)
    assert rise.mean == pytest.approx(0.3) and rise.holds and rise.seeds == tuple(range(8))
    assert rise.label == "RNN: OOD r^2 at N = 24 - at N = 2"


def test_only_shared_seeds_pair():
    rows = [_row(2, s, 0.6) for s in range(6)] + [_row(24, s, 0.9) for s in range(3, 9)]
    first, last = stats.summarise(rows, ("arch", "n_tasks"))
    t = pages.change_test(first, last, "n_tasks")
    assert t.seeds == (3, 4, 5) and t.n == 3 and t.p == 0.25
    # a condition with no other field is named by the change alone
    bare = [{k: v for k, v in r.items() if k != "arch"} for r in (first, last)]
    assert pages.change_test(*bare, "n_tasks").label == "OOD r^2 at N = 24 - at N = 2"


def test_the_robustness_section_retests_the_primary_under_each_choice():
    text = pages.robustness_section(_summary(), fig3_primary, ("arch", "n_tasks"))
    assert "- Primary contrast, quadrant held out, calibrated ridge (the default): holds: +0.300" in text
    assert "- Primary contrast, half-space held out, calibrated ridge: holds: +0.300" in text
    assert "- Primary contrast, quadrant held out, near-OLS decoder: holds: +0.300" in text
    # the table: every choice beside its controls under the same choice (means over networks)
    # (network s: 0.9 + 0.001 s, mean 0.9035 -> 0.903 in float64)
    row24 = [line for line in text.splitlines() if line.startswith("| rnn | 24 |")][0]
    assert row24 == (
        "| rnn | 24 | 8 | 0.903 | 0.803 | 0.953 | 0.703 | 0.803 | 0.703 | 0.893 | 0.793 | 0.943 |"
    )
    # rows without the other choices: no section
    plain = [{k: v for k, v in r.items() if "_halfspace" not in k and "_ols" not in k}
             for r in (_row(2, s, 0.6) for s in range(3))]  # fmt: skip
    assert pages.robustness_section(stats.summarise(plain, ("arch", "n_tasks")), None, ()) == ""


def test_geometry_calls_test_each_network_against_its_own_null_and_mu():
    rows = [
        _row(
            24,
            s,
            0.9,
            ccgp_factors=0.95,
            ccgp_factors_null_geometric_p95=0.75 + 0.01 * s,
            parallelism_factors=0.4,
            parallelism_factors_null_geometric_p95=0.5,
            angle_deg=80.0 + s,
            mu_angle_deg=88.0,
            shattering=0.8,
        )
        for s in range(8)
    ]
    (row,) = stats.summarise(rows, ("arch", "n_tasks"))
    lines = pages.geometry_calls(row, "N = 24")
    ccgp, par, angle, shatter = lines
    # CCGP - null: 0.20 - 0.01 s, mean 0.165; all positive, p = 2 / 2^8; the claim's sign
    assert ccgp.startswith("- N = 24: CCGP against its geometric null: holds: +0.165")
    assert "p = 0.0078, n = 8" in ccgp
    assert par.startswith("- N = 24: parallelism against its geometric null: opposite: -0.100")
    # angle - mu's: -8 + s = -8 ... -1, mean -4.5 degrees
    assert "against mu's (88.0 deg, its calibration): below: -4.500" in angle
    assert shatter.startswith("- N = 24: shattering dimension 0.800 [95% CI 0.800, 0.800] (mean over 8")
    assert not math.isnan(row["gain_over_input"])
