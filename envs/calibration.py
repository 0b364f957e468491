"""Calibration of reported probabilities: two expected calibration errors that bin different
things, so they are not interchangeable.

- :func:`probability_ece` bins the reported P(y = 1) itself (10 equal bins of [0, 1]) and compares
  each bin's mean report with the frequency of y = 1 in it: calibration of the probability of the
  label (the RL confidence report's ``ece``).
- :func:`choice_confidence_ece` bins the confidence in the chosen answer, max(p, 1 - p) (10 equal
  bins of [0.5, 1]), and compares each bin's mean confidence with the accuracy of the answers
  1[p > 0.5] in it: calibration of the confidence in a decision (the supervised ``ece``).

Both are sum over bins of (share of the pairs in the bin) * |mean predicted - mean observed|,
pooled over every (trial, task) pair of the inputs.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 10


def _binned_gap(
    idx: np.ndarray, predicted: np.ndarray, observed: np.ndarray, bins: int, skip_empty: bool
) -> float:
    """sum over bins of |sum predicted - sum observed| / n, bins given by ``idx`` [n] in
    [0, bins). ``skip_empty`` leaves the empty bins (gap 0) out of the float sum, which can move
    the last bit of the total; each ECE keeps the summation its logged values were made with."""
    gap = np.abs(np.bincount(idx, predicted, bins) - np.bincount(idx, observed, bins))
    if skip_empty:
        gap = gap[np.bincount(idx, minlength=bins) > 0]
    return float(np.sum(gap) / idx.size)


def _flat_pair(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"p and y must have the same non-zero size, got {p.shape} and {y.shape}")
    return p, y


def probability_ece(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of reported probabilities p [...] = P(y = 1) against 0/1 outcomes y [...] (same size),
    binning p in ``bins`` equal-width bins of [0, 1]."""
    p, y = _flat_pair(p, y)
    idx = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    return _binned_gap(idx, p, y, bins, skip_empty=False)


def choice_confidence_ece(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the confidence max(p, 1 - p) in the answer 1[p > 0.5] against its correctness, for
    probabilities p [...] = P(y = 1) and 0/1 labels y [...] (same size), binning the confidence
    in ``bins`` equal-width bins of [0.5, 1]."""
    p, y = _flat_pair(p, y)
    correct = ((p > 0.5) == (y > 0.5)).astype(np.float64)
    conf = np.maximum(p, 1 - p)
    idx = np.clip(((conf - 0.5) * 2 * bins).astype(np.int64), 0, bins - 1)
    return _binned_gap(idx, conf, correct, bins, skip_empty=True)
