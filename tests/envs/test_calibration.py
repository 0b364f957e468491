"""The two expected calibration errors on known cases, and a case that tells them apart."""

from __future__ import annotations

import numpy as np
import pytest

from multitask_evidence.envs.calibration import choice_confidence_ece, probability_ece


def test_probability_ece_known_values() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = rng.random(p.size) < p  # calibrated by construction
    assert probability_ece(p, y) < 0.01
    assert probability_ece(np.full(100, 0.8), np.ones(100)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="same non-zero size"):
        probability_ece(np.ones(3), np.ones(4))


def test_choice_confidence_ece_known_values() -> None:
    # confidence 0.9 in answers that are right 6 times in 10 (3 on each side): ECE = 0.3
    p = np.array([0.9] * 5 + [0.1] * 5)
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    assert choice_confidence_ece(p, y) == pytest.approx(0.3)
    # calibrated by construction: an answer given with confidence c is right with probability c
    rng = np.random.default_rng(1)
    c = rng.uniform(0.5, 1.0, 100_000)
    above = rng.random(c.size) < 0.5
    right = rng.random(c.size) < c
    assert choice_confidence_ece(np.where(above, c, 1 - c), above == right) < 0.01
    with pytest.raises(ValueError, match="same non-zero size"):
        choice_confidence_ece(np.ones(3), np.ones(4))


def test_the_two_bin_different_things() -> None:
    # p = 0.2 always right (y = 0) and p = 0.8 always wrong (y = 0): the probability of y = 1 is
    # off by 0.2 in one bin and 0.8 in the other (mean 0.5); the confidence 0.8 pools both
    # answers, right half the time (0.3)
    p = np.array([0.2, 0.8])
    y = np.array([0.0, 0.0])
    assert probability_ece(p, y) == pytest.approx(0.5)
    assert choice_confidence_ece(p, y) == pytest.approx(0.3)
