"""The paired tests over networks behind every verdict of a figure page, against hand-worked
values."""

from __future__ import annotations

import math

import pytest

from multitask_evidence.experiments.figures import inference as inf


def test_sign_flip_p_equals_hand_enumeration():
    # 8 differences of one sign: only the all-plus and all-minus patterns reach |sum|
    assert inf.sign_flip_p([0.1, 0.2, 0.05, 0.3, 0.1, 0.15, 0.2, 0.01]) == 2 / 256
    # +-1 +-2 +-3: sums 6, 4, 2, 0, 0, -2, -4, -6; |sum| >= 6 twice in 8
    assert inf.sign_flip_p([1, 2, 3]) == 2 / 8
    # 1 - 2 + 3 + 4 = 6 = 10 - 2 S (S: the flipped subset's sum); |.| >= 6 when S <= 2
    # ({}, {1}, {2}) or S >= 8 ({1,3,4}, {2,3,4}, {1,2,3,4}): 6 of 16
    assert inf.sign_flip_p([1, -2, 3, 4]) == 6 / 16
    assert inf.sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    assert math.isnan(inf.sign_flip_p([]))
    assert inf.sign_flip_p([0.1, float("nan"), 0.2]) == 2 / 4  # NaNs are dropped
    assert inf.smallest_p(8) == 2 / 256 and inf.smallest_p(5) == 2 / 32


def test_sign_flip_p_beyond_the_exact_range_is_a_seeded_monte_carlo():
    d = [0.1] * 20
    p = inf.sign_flip_p(d)
    assert p == inf.sign_flip_p(d)  # seeded
    assert 1 / inf.MONTE_CARLO_DRAWS <= p < 4 / inf.MONTE_CARLO_DRAWS
    assert 0.3 < inf.sign_flip_p([0.1, -0.1] * 10) <= 1.0


def test_holm_on_a_hand_made_set():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert inf.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    got = inf.holm([0.5, float("nan"), 0.4])
    assert got[0] == pytest.approx(0.8) and math.isnan(got[1]) and got[2] == pytest.approx(0.8)
    assert inf.holm([0.9, 0.8]) == [1.0, 1.0]


def test_t_interval_and_the_detectable_difference():
    lo, hi = inf.t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t_0.975,2 = 4.3027
    assert lo == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert hi == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert all(math.isnan(v) for v in inf.t_interval([1.0]))
    # 8 networks, SD 0.1: (t_0.975,7 + t_0.8,7) * 0.1 / sqrt(8) = (2.3646 + 0.8960) * 0.0354
    assert inf.detectable(0.1, 8) == pytest.approx((2.364624 + 0.896029) * 0.1 / math.sqrt(8))
    assert inf.detectable(0.1, 5) == math.inf  # 2 / 2^5 > 0.05: nothing is detectable
    assert math.isnan(inf.detectable(0.1, 1))


def test_paired_test_pairs_by_seed_and_reads_its_verdict():
    t = inf.paired_test({0: 1.0, 1: 2.0, 2: 3.0}, {1: 1.0, 2: 1.0, 3: 5.0}, "a - b")
    assert t.seeds == (1, 2) and t.differences == (1.0, 2.0)
    up = inf.paired_test({s: 0.9 for s in range(8)}, {s: 0.7 for s in range(8)}, "x", expect=1)
    assert up.p == 2 / 256 and up.holds and up.mean == pytest.approx(0.2)
    assert up.verdict().startswith("holds: +0.200 [95% CI +0.200, +0.200], p = 0.0078, n = 8")
    down = inf.paired_test({s: 0.7 for s in range(8)}, {s: 0.9 for s in range(8)}, "x", expect=1)
    assert down.verdict().startswith("opposite: -0.200")
    two = inf.paired_test({s: 0.7 for s in range(8)}, {s: 0.9 for s in range(8)}, "x")
    assert two.verdict().startswith("below: -0.200")
    few = inf.paired_test({s: 0.9 for s in range(3)}, {s: 0.7 for s in range(3)}, "x")
    assert few.p == 0.25 and few.verdict().startswith("not distinguishable: +0.200")
    assert inf.paired_test({0: 0.9}, {0: 0.7}, "x").verdict().startswith("not testable")


def test_a_page_ledger_tests_the_primary_alone_and_holm_adjusts_the_rest():
    strong = inf.paired_test({s: 0.9 + 0.001 * s for s in range(8)}, {s: 0.7 for s in range(8)}, "s")
    weak = inf.paired_test({s: 0.71 + 0.001 * s for s in range(8)}, {s: 0.7 for s in range(8)}, "w")
    with inf.page_ledger() as ledger:
        ledger.add(inf.PairedTest("primary", strong.differences, primary=True))
        text = f"a: {inf.call(strong)}; b: {inf.call(weak)}; again: {inf.call(strong)}"
    assert inf.call(weak).startswith("above: +0.")  # outside a ledger: unadjusted words
    got = ledger.resolve(text)
    # two secondary calls (the repeat is not counted twice), both at p = 2 / 256: Holm 0.0156
    assert got.count("p = 0.0078 (Holm 0.016), n = 8") == 3 and "[[call:" not in got
    # a call that only the adjustment takes above the level says so
    many = [inf.paired_test({s: 1.0 for s in range(8)}, None, f"c{i}") for i in range(11)]
    with inf.page_ledger() as crowded:
        tokens = [inf.call(t) for t in many]
    assert crowded.resolve(tokens[0]).startswith("not distinguishable after Holm: +1.000")
    section = ledger.section()
    assert "**Primary contrast**: primary: above: +0.2" in section and "(primary)" in section
    assert "Power: with n = 8 networks" in section
    assert "2 x 2 / 2^8 = 0.016." in section
    # the same differences under the primary's label read the primary's verdict
    with inf.page_ledger() as ledger:
        ledger.add(inf.PairedTest("p", strong.differences, primary=True))
        token = inf.call(inf.PairedTest("p", strong.differences))
    assert ledger.resolve(token).endswith("(primary)") and len(ledger.calls) == 1


def test_the_power_line_says_when_no_difference_can_be_detected():
    t = inf.paired_test({s: 0.9 for s in range(3)}, {s: 0.7 for s in range(3)}, "x")
    assert "smallest possible two-sided p is 0.25 > 0.05" in inf.power_line(t)
    many = [inf.paired_test({s: 1.0 for s in range(8)}, None, f"c{i}") for i in range(11)]
    assert "11 x 2 / 2^8 = 0.086, not below 0.05" in inf.secondary_reach(many)
