"""Fixed and slow points of a recurrent map h -> F(h) under a constant input (docs/science.md §5).

Following Sussillo & Barak (2013): minimise q(h) = 1/2 |F(h) - h|^2 by gradient descent (Adam,
torch autograd) from many visited states, keep the points whose q falls below a tolerance,
deduplicate them, and linearise: the Jacobian J = dF/dh at each point and its eigenvalues. A
D-dimensional continuous attractor shows D eigenvalues of J - I near 0 (of J near 1): the count
of such *near-marginal* modes is the attractor's dimension.

Only modes the dynamics use are counted: units that never change over the visited states
(frozen or saturated units, e.g. a GRU unit whose update gate is shut, h -> h) also have
eigenvalue 1 but carry no memory of the task. The count is made on the Jacobian projected onto
the span of the visited states, P^T J P with P the top principal axes of the initial states that
hold ``span_variance`` of their variance; the eigenvalues of the full J stay in the result.

The metric takes a plain callable ``F: torch.Tensor [K, H] -> torch.Tensor [K, H]`` that must act
row by row (trial k's next state depends only on row k); :mod:`probes.report` builds it from a
network's ``step`` with the input held fixed. No network class is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FixedPointResult:
    """points: [M, H] fixed points found (after deduplication); q: [M] their residuals
    1/2 |F(h) - h|^2; eigenvalues: [M, H] complex eigenvalues of J = dF/dh, sorted by
    decreasing real part; n_marginal: [M] eigenvalues of the Jacobian projected onto the visited
    states' span (``span_dim`` principal axes) with |lambda - 1| < marginal_tol;
    n_marginal_all: [M] the same count over all H eigenvalues of J (frozen units included);
    attractor_dim: median of n_marginal (0 when nothing was found)."""

    points: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)
    eigenvalues: np.ndarray = field(repr=False)
    n_marginal: np.ndarray
    attractor_dim: int
    n_init: int
    q_tol: float
    marginal_tol: float
    converged_fraction: float
    n_marginal_all: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    span_dim: int = 0
    span_variance: float | None = None

    @property
    def n_found(self) -> int:
        return int(self.points.shape[0])

    def to_dict(self, max_points: int = 10) -> dict[str, Any]:
        ev = self.eigenvalues[:max_points, :10]
        return {
            "n_found": self.n_found,
            "n_init": self.n_init,
            "converged_fraction": self.converged_fraction,
            "attractor_dim": self.attractor_dim,
            "n_marginal": self.n_marginal.tolist(),
            "n_marginal_all": self.n_marginal_all.tolist(),
            "span_dim": self.span_dim,
            "span_variance": self.span_variance,
            "q_max": float(self.q.max()) if self.q.size else None,
            "q_tol": self.q_tol,
            "marginal_tol": self.marginal_tol,
            "top_eigenvalues_real": ev.real.tolist(),
            "top_eigenvalues_imag": ev.imag.tolist(),
        }


def jacobians(fn: Callable[[Any], Any], points: Any) -> Any:
    """Jacobians [K, H, H] of a row-wise map fn at points [K, H] (torch), by H backward passes."""
    import torch

    h = points.detach().clone().requires_grad_(True)
    out = fn(h)
    k, n = out.shape
    jac = torch.empty(k, n, h.shape[1], dtype=out.dtype)
    for j in range(n):  # a loop over output units; each pass gives row j of every Jacobian
        (g,) = torch.autograd.grad(out[:, j].sum(), h, retain_graph=j < n - 1)
        jac[:, j] = g
    return jac


def _residual(fn: Callable[[Any], Any], points: np.ndarray, tdtype: Any) -> np.ndarray:
    """q = 1/2 |F(h) - h|^2 [K] at points [K, H]."""
    import torch

    with torch.no_grad():
        th = torch.tensor(points, dtype=tdtype)
        return (0.5 * ((fn(th) - th) ** 2).sum(dim=1)).double().numpy()


def visited_span(states: np.ndarray, variance: float | None) -> np.ndarray:
    """[H, r] orthonormal principal axes of ``states`` [K, H] (centred) holding ``variance`` of
    their total variance (the fewest that do; axes with no variance are never included). None,
    or states with no variance at all, give the whole space (the identity)."""
    h = states.shape[1]
    centred = states - states.mean(axis=0)
    if variance is None or not np.any(centred):
        return np.eye(h)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    var = sv**2
    frac = np.cumsum(var) / var.sum()
    r = int(np.searchsorted(frac, variance - 1e-12) + 1)
    r = min(r, int((var > var[0] * 1e-12).sum()))
    return vt[:r].T


def _dedupe(points: np.ndarray, tol: float) -> np.ndarray:
    """Indices of points kept so that no two are closer than tol (greedy, first come)."""
    keep: list[int] = []
    for i in range(points.shape[0]):  # a loop over candidate points (at most n_init)
        if not keep or np.min(np.linalg.norm(points[keep] - points[i], axis=1)) > tol:
            keep.append(i)
    return np.array(keep, dtype=int)


MARGINAL_TOL = 0.1
"""|lambda - 1| below which a Jacobian eigenvalue counts as near-marginal: the one default of
:func:`find_fixed_points`, the probe report and the figures that count attractor dimensions."""


def find_fixed_points(
    fn: Callable[[Any], Any],
    initial: np.ndarray,
    *,
    n_iter: int = 2000,
    lr: float | None = None,
    q_tol: float | None = None,
    dedupe_tol: float | None = None,
    marginal_tol: float = MARGINAL_TOL,
    noise: float = 0.0,
    seed: int = 0,
    dtype: str = "float32",
    n_newton: int = 5,
    span_variance: float | None = 0.99,
) -> FixedPointResult:
    """Find fixed points of ``fn`` starting from initial states [K, H] (e.g. visited states).

    lr: Adam step (default 1e-2 x the RMS spread of the initial states);
    q_tol: keep points with q < q_tol (default 1e-6 x spread^2; raise it to keep slow points);
    dedupe_tol: merge points closer than this (default 1e-2 x spread);
    marginal_tol: |lambda - 1| below which an eigenvalue counts as near-marginal;
    noise: SD of Gaussian jitter added to the initial states (x spread);
    n_newton: Gauss-Newton polishing steps after Adam (pseudo-inverse of J - I, so points on a
    continuous attractor move to the nearest point of the attractor);
    span_variance: near-marginal modes are counted in the span of the initial states (taken to be
    visited states): the principal axes holding this fraction of their variance (None: all H
    modes, frozen units included).
    """
    import torch

    x0 = np.asarray(initial, dtype=np.float64)
    if x0.ndim != 2 or x0.shape[0] < 1:
        raise ValueError(f"initial states must be [K >= 1, H], got shape {x0.shape}")
    if not np.isfinite(x0).all():
        raise ValueError("initial states contain NaN or inf")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if span_variance is not None and not 0.0 < span_variance <= 1.0:
        raise ValueError(f"span_variance must lie in (0, 1] or be None, got {span_variance!r}")
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    spread = float(np.sqrt(((x0 - x0.mean(axis=0)) ** 2).sum(axis=1).mean())) or 1.0
    lr = 1e-2 * spread if lr is None else lr
    q_tol = 1e-6 * spread**2 if q_tol is None else q_tol
    dedupe_tol = 1e-2 * spread if dedupe_tol is None else dedupe_tol
    rng = np.random.default_rng(seed)
    start = x0 + noise * spread * rng.standard_normal(x0.shape)
    h = torch.tensor(start, dtype=tdtype, requires_grad=True)
    probe = fn(h.detach())
    if tuple(probe.shape) != tuple(h.shape):
        raise ValueError(
            f"fn must map [K, H] to [K, H]; got {tuple(probe.shape)} from {tuple(h.shape)}"
        )
    opt = torch.optim.Adam([h], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_iter)
    for _ in range(n_iter):  # optimisation steps, vectorised over all K candidates
        q = 0.5 * ((fn(h) - h) ** 2).sum(dim=1)
        opt.zero_grad(set_to_none=True)
        q.sum().backward()
        opt.step()
        sched.step()
        if float(q.detach().max()) < q_tol * 1e-2:
            break
    pts = h.detach().double().numpy()
    q = _residual(fn, pts, tdtype)
    for _ in range(n_newton):  # Gauss-Newton polish: h <- h - pinv(J - I) (F(h) - h)
        th = torch.tensor(pts, dtype=tdtype)
        jac = jacobians(fn, th).double().numpy()
        with torch.no_grad():
            res = (fn(th) - th).double().numpy()
        eye = np.eye(jac.shape[1])
        step = np.einsum("khj,kj->kh", np.linalg.pinv(jac - eye, rcond=1e-8), res)
        trial = pts - step
        q_new = _residual(fn, trial, tdtype)
        better = q_new < q  # keep a step only where it helps (ReLU kinks, saddles)
        pts[better], q[better] = trial[better], q_new[better]
    ok = q < q_tol
    order = np.argsort(q[ok])
    cand, cq = pts[ok][order], q[ok][order]
    keep = _dedupe(cand, dedupe_tol) if cand.shape[0] else np.array([], dtype=int)
    cand, cq = cand[keep], cq[keep]
    hdim = x0.shape[1]
    if cand.shape[0]:
        jac = jacobians(fn, torch.tensor(cand, dtype=tdtype)).double().numpy()
        ev = np.linalg.eigvals(jac)
        ev = np.take_along_axis(ev, np.argsort(-ev.real, axis=1), axis=1)
        n_all = (np.abs(ev - 1.0) < marginal_tol).sum(axis=1)
        basis = visited_span(x0, span_variance)  # [H, r]
        ev_span = np.linalg.eigvals(np.einsum("hr,khj,js->krs", basis, jac, basis))
        n_marg = (np.abs(ev_span - 1.0) < marginal_tol).sum(axis=1)
    else:
        ev = np.zeros((0, hdim), dtype=complex)
        n_marg = n_all = np.zeros(0, dtype=int)
    return FixedPointResult(
        points=cand,
        q=cq,
        eigenvalues=ev,
        n_marginal=n_marg,
        attractor_dim=int(np.median(n_marg)) if n_marg.size else 0,
        n_init=int(x0.shape[0]),
        q_tol=float(q_tol),
        marginal_tol=float(marginal_tol),
        converged_fraction=float(ok.mean()),
        n_marginal_all=n_all,
        span_dim=int(visited_span(x0, span_variance).shape[1]),
        span_variance=span_variance,
    )
