"""Probe a trained run: record, run every metric, write probe.json / probe.md / figures.

``probe_run(run_dir)`` is what ``mte probe runs/<name>`` calls. ``probe_recording(rec)`` runs the
array metrics on a :class:`probes.record.Recording` (no agent needed; the speed benchmark times
it). Output files in the run folder (or ``out_dir``):

- ``probe.json``: every result (``ProbeReport.to_dict()``); keys ``headline``, ``ceiling`` (the
  theory's references: the r^2 of mu, the paper's Eq. 7, and the Bayes bound),
  ``in_distribution``, ``over_time``, ``ood``, ``ood_ols`` (the same split, near-OLS penalty
  ``decoding.OLS_ALPHA``), ``ood_halfspace``, ``ood_adam`` (optional),
  ``angles``, ``geometry``, ``dci``, ``pca``, ``sparseness``, ``extraction``, ``calibration``,
  ``controls``, ``fixed_points``, ``tuning``, ``accuracy``;
- ``probe.md``: the headline numbers beside the theory's references and the controls;
- ``figures/``: ``ood.png`` (r2 per held-out fold beside the r^2 of mu), ``decoding_time.png``,
  ``pca.png`` (trajectories coloured by quadrant, fixed points), ``fixed_points.png``
  (eigenvalue spectra), ``tuning.png`` (steady-state tuning maps);
- tensorboard scalars ``probe/*`` in the run folder.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from multitask_evidence.envs import task_geometry
from multitask_evidence.probes import theory
from multitask_evidence.probes.controls import OUTPUT_CONTROLS, OUTPUT_CONTROLS_NOTE, calibration
from multitask_evidence.probes.dci import dci
from multitask_evidence.probes.decoding import (
    OLS_ALPHA,
    axis_angles,
    decode,
    decode_over_time,
    official_adam_config,
    ood_generalisation,
)
from multitask_evidence.probes.fixed_points import (
    MARGINAL_TOL,
    FixedPointResult,
    find_fixed_points,
)
from multitask_evidence.probes.geometry import abstraction_geometry
from multitask_evidence.probes.linear import adam_trials_needed
from multitask_evidence.probes.record import Recording, readout_logits, record, regenerate
from multitask_evidence.probes.sparseness import latent_grid, lifetime_sparseness, pca, tuning_maps

SLOW_SPEED = 0.1
"""Slow points kept by the report: |F(h) - h| below this fraction of the states' RMS spread."""
MAX_GEOMETRY_CONDITIONS = 16
"""CCGP / parallelism are computed when 2^D <= this (D <= 4)."""


def json_safe(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


@dataclass
class ProbeReport:
    """Everything measured on one run. ``results`` maps a section name to its ``to_dict()``;
    ``headline`` holds the numbers of probe.md; ``timings`` seconds per section."""

    headline: dict[str, Any]
    results: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    """Arrays for the figures (PCA object, fixed points, tuning maps); not serialised."""

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "headline": self.headline,
                **self.results,
                "timings": self.timings,
                "files": self.files,
            }
        )


def probe_recording(
    rec: Recording,
    rec_test: Recording | None = None,
    *,
    seed: int = 0,
    adam: bool = False,
    rec_adam: Recording | None = None,
    n_shuffles: int = 10,
    halfspace: bool = True,
    over_time: bool = True,
    ideal: np.ndarray | None = None,
    logits: np.ndarray | None = None,
) -> ProbeReport:
    """Run every array metric on a recording (hidden states at the decision step unless said).

    rec_test: fresh trials for the in-distribution control (else a held-out quarter of rec).
    ideal: [n, N] the ideal observer's probabilities at the decision step on rec's trials
    (``probes.controls.ideal_decision_probs``): adds ``calibration`` and the headline's
    ``excess_bce`` (sigmoid outputs only). logits: [n, N] the agent's logits at the decision
    step (``probes.record.readout_logits``), used instead of its float32 probabilities where
    given (they do not round to 0 or 1).
    adam: also run the paper's Adam-decoder protocol (slow: minutes on the paper's scale) on
    rec_adam (default rec): per-N batches (``official_decoder_batches(spec.n_tasks)``), fresh
    trials when every fold has enough (``adam_trials_needed``), else drawn with replacement;
    its estimator string says which.
    """
    spec = rec.spec
    h, x = rec.at(), rec.latent
    var = theory.prior_variance(spec)
    ceil = theory.ceiling(spec)
    ceil_shrunk = theory.ceiling(spec, form="linear_shrunk")
    # the Bayes (MMSE) bound per step and at the decision (None where theory has no method)
    bayes_curve = theory.bayes_bound_curve(spec)
    bayes = None if bayes_curve is None else float(bayes_curve[-1])
    res: dict[str, Any] = {}
    tim: dict[str, float] = {}
    extras: dict[str, Any] = {}

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        out = fn()
        tim[name] = time.perf_counter() - t0
        return out

    res["ceiling"] = {
        "r2": ceil,
        "r2_linear_shrunk": ceil_shrunk,
        "bayes_bound": bayes,
        "bayes_bound_method": theory.bayes_bound_method(spec).detail,
        "bayes_bound_curve": None if bayes_curve is None else bayes_curve.tolist(),
        "t": theory.decision_evidence_steps(spec),
        "curve": _listed(theory.ceiling_curve(spec)),
        "var_prior": var.tolist(),
    }
    if rec_test is not None:
        ind = timed(
            "in_distribution",
            lambda: decode(h, x, rec_test.at(), rec_test.latent, var_prior=var, seed=seed),
        )
    else:
        ind = timed("in_distribution", lambda: decode(h, x, var_prior=var, seed=seed))
    res["in_distribution"] = ind.to_dict()
    if spec.latent_dim >= 2 and _varies(h):
        res["angles"] = axis_angles(h, x).to_dict()
    elif spec.latent_dim >= 2:
        # a network that never learned (its loss stuck at ln 2) can hold one state for every
        # trial: nothing to decode, no axes; its r^2 are still measured (and are ~0 or below)
        res["angles"] = {"skipped": "the states do not vary across trials at the read-out step"}
    if over_time:
        tdec = timed("over_time", lambda: decode_over_time(rec.hidden, x, var_prior=var, seed=seed))
        res["over_time"] = tdec.to_dict() | {
            "ceiling": _listed(theory.ceiling_curve(spec)),
            "ceiling_linear_shrunk": _listed(theory.ceiling_curve(spec, form="linear_shrunk")),
            "bayes_bound": None if bayes_curve is None else bayes_curve.tolist(),
        }
    ood = timed("ood", lambda: ood_generalisation(h, x, var_prior=var, seed=seed, ceiling=ceil))
    res["ood"] = ood.to_dict()
    # the same split with the penalty near zero: OOD r^2 of an imperfect code moves with the
    # penalty, so a claim is checked under both (the controls get the same pair)
    ood_ols = timed(
        "ood_ols",
        lambda: ood_generalisation(
            h, x, var_prior=var, seed=seed, ceiling=ceil, alpha=OLS_ALPHA
        ),
    )
    res["ood_ols"] = ood_ols.to_dict()
    if halfspace:
        oh = timed(
            "ood_halfspace",
            lambda: ood_generalisation(
                h, x, split="halfspace", var_prior=var, seed=seed, ceiling=ceil
            ),
        )
        res["ood_halfspace"] = oh.to_dict()
    if adam:
        ra = rec_adam or rec
        ha, xa = ra.at(), ra.latent
        cfg = official_adam_config(spec.n_tasks, xa)
        oa = timed(
            "ood_adam",
            lambda: ood_generalisation(
                ha, xa, method="adam", adam=cfg, var_prior=var, seed=seed, ceiling=ceil
            ),
        )
        if not cfg.fresh:
            oa.estimator += (
                f"; {xa.shape[0]} trials recorded, fresh batches need "
                f"{adam_trials_needed(spec.n_tasks)}"
            )
        res["ood_adam"] = oa.to_dict()
    if 2 <= 2**spec.latent_dim <= MAX_GEOMETRY_CONDITIONS:
        try:
            geo = timed(
                "geometry", lambda: abstraction_geometry(h, x, n_shuffles=n_shuffles, seed=seed)
            )
            res["geometry"] = geo.to_dict()
        except ValueError as e:  # too few trials in some orthant: say so, keep the rest
            res["geometry"] = {"skipped": str(e)}
    else:
        res["geometry"] = {
            "skipped": f"2^D = {2**spec.latent_dim} conditions (> {MAX_GEOMETRY_CONDITIONS})"
        }
    res["dci"] = timed("dci", lambda: dci(h, x, var_prior=var, seed=seed)).to_dict()
    p = timed("pca", lambda: pca(rec.hidden))
    extras["pca"] = p
    res["pca"] = p.to_dict() | {"explained_variance_ratio": p.explained_variance_ratio[:10]}
    res["sparseness"] = timed("sparseness", lambda: lifetime_sparseness(h)).to_dict()
    dec = rec.decision_index
    if spec.targets == "latent":  # choices read off the estimate x_hat (agents.evaluate)
        choices = task_geometry(spec).labels(rec.outputs[:, dec]) > 0.5
    else:
        choices = rec.outputs[:, dec] > 0.5
    acc = float((choices == (rec.labels > 0.5)).mean())
    res["accuracy"] = {"decision_accuracy": acc}
    for name, arr in (("ideal", ideal), ("logits", logits)):
        if arr is not None and np.shape(arr) != rec.labels.shape:
            raise ValueError(f"{name} must be [n, N] = {rec.labels.shape}, got {np.shape(arr)}")
    # ddm outputs are bounded evidence sums, not probabilities: nothing to invert or score; the
    # inversion assumes a Gaussian likelihood in latent space (not noise in feature space)
    latent_noise = spec.noise_stage == "latent"
    if spec.is_linear and not spec.mse_targets and spec.n_tasks >= spec.latent_dim and latent_noise:
        # t = the evidence steps that mu holds at the read-out step (the recording's own count)
        steps = rec.step[dec : dec + 1]
        ex = timed(
            "extraction",
            lambda: theory.extraction_error(
                spec,
                rec.mu[:, dec : dec + 1],
                x,
                steps,
                None if logits is not None else rec.outputs[:, dec : dec + 1],
                logits=None if logits is None else np.asarray(logits)[:, None],
            ),
        )
        res["extraction"] = ex.to_dict() | {"from": "logits" if logits is not None else "probs"}
    out_dec = rec.outputs[:, dec]
    if ideal is not None and not spec.mse_targets and out_dec.min() >= 0 and out_dec.max() <= 1:
        cal = calibration(
            rec.labels,
            ideal,
            None if logits is not None else out_dec,
            logits=logits,
        )
        res["calibration"] = cal.to_dict()
    geo_d = res.get("geometry", {})
    dci_d = res["dci"]
    res_head = {
        "ceiling": ceil,
        "ceiling_linear_shrunk": ceil_shrunk,
        "bayes_bound": bayes,
        "id_r2": ind.r2,
        "ood_estimator": ood.estimator,
        "ood_r2_median": ood.r2_median,
        "ood_r2_q25": ood.r2_q25,
        "ood_r2_q75": ood.r2_q75,
        "ood_r2_min": ood.r2_min,
        "ood_r2_halfspace_median": res.get("ood_halfspace", {}).get("r2_median"),
        "ood_r2_halfspace": res.get("ood_halfspace", {}).get("r2_median"),
        "ood_r2_ols": ood_ols.r2_median,
        "ood_alpha": ood.alpha_rel,
        "ood_r2_per_axis": list(ood.r2_per_dim_median),
        "ood_r2_adam_median": res.get("ood_adam", {}).get("r2_median"),
        "angle_deg": ind.angle_deg,
        "ccgp_factors": geo_d.get("ccgp_factors"),
        "ccgp_factors_null_geometric_p95": geo_d.get("ccgp_factors_null_geometric_p95"),
        "ccgp_factors_null_shuffle_p95": geo_d.get("ccgp_factors_null_shuffle_p95"),
        "ccgp_classifier": geo_d.get("classifier"),
        "parallelism_factors": geo_d.get("parallelism_factors"),
        "parallelism_factors_null_geometric_p95": geo_d.get(
            "parallelism_factors_null_geometric_p95"
        ),
        "parallelism_factors_null_shuffle_p95": geo_d.get("parallelism_factors_null_shuffle_p95"),
        "shattering": geo_d.get("shattering"),
        "dci_disentanglement": dci_d["disentanglement"],
        "dci_completeness": dci_d["completeness"],
        "participation_ratio": p.participation_ratio,
        "sparseness_mean": res["sparseness"]["mean"],
        "decision_accuracy": acc,
        "extraction_r2_latent": res.get("extraction", {}).get("decision_r2_latent"),
        "extraction_rmse_vs_mu": res.get("extraction", {}).get("decision_rmse"),
        "excess_bce": res.get("calibration", {}).get("excess_bce"),
    }
    return ProbeReport(headline=res_head, results=res, timings=tim, extras=extras)


# ---- pieces that need the network ----------------------------------------------------------
def recurrent_map(network: Any, spec: Any) -> Any:
    """F: torch [K, H] -> [K, H], one step of ``network`` under the no-evidence input (encoded
    f(0) evidence channels, go channel on: what the network sees while it must hold its
    estimate), or None when the state is not the hidden vector (LSTM, transformer)."""
    import torch

    obs = np.concatenate([task_geometry(spec).encode(np.zeros(spec.latent_dim)), [1.0]])
    param = next(network.parameters())
    obs_t = torch.as_tensor(obs, dtype=param.dtype, device=param.device)
    state0 = network.initial_state(1)
    if not isinstance(state0, torch.Tensor):
        return None
    wrap = state0.ndim == 3  # GRU: [layers=1, B, H]

    def fn(h: Any) -> Any:
        st = h.to(param.dtype)[None] if wrap else h.to(param.dtype)
        _, hid, _ = network.step(obs_t.expand(h.shape[0], -1), st)
        return hid.to(h.dtype)

    return fn


def run_fixed_points(
    rec: Recording,
    network: Any,
    n_init: int = 128,
    seed: int = 0,
    *,
    slow_speed: float = SLOW_SPEED,
    marginal_tol: float = MARGINAL_TOL,
) -> FixedPointResult | None:
    """Fixed points of the network's recurrent map from visited states (stimulus to decision):
    slow points under ``slow_speed`` of the states' spread per step, near-marginal modes within
    ``marginal_tol`` of 1."""
    fn = recurrent_map(network, rec.spec)
    if fn is None:
        return None
    rng = np.random.default_rng(seed)
    s0, s1 = rec.spec.stimulus_start, rec.spec.decision_start + 1
    states = rec.hidden[:, s0:s1].reshape(-1, rec.hidden.shape[-1])
    init = states[rng.choice(states.shape[0], min(n_init, states.shape[0]), replace=False)]
    spread = float(np.sqrt(((init - init.mean(axis=0)) ** 2).sum(axis=1).mean())) or 1.0
    with _frozen(network):
        # slow points: a trained network need not hold exact fixed points (with no delay period,
        # f(0) input reads as evidence X = 0 and slowly pulls the estimate in), so keep minima
        # of q whose speed |F(h) - h| is under slow_speed of the states' spread per step
        return find_fixed_points(
            fn,
            init,
            n_iter=1000,
            seed=seed,
            q_tol=0.5 * (slow_speed * spread) ** 2,
            dedupe_tol=0.05 * spread,
            marginal_tol=marginal_tol,
        )


class _frozen:
    """Context: parameters without gradients, eval mode, restored afterwards."""

    def __init__(self, net: Any) -> None:
        self.net = net

    def __enter__(self) -> None:
        self.flags = [p.requires_grad for p in self.net.parameters()]
        self.training = self.net.training
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()

    def __exit__(self, *exc: Any) -> None:
        for p, f in zip(self.net.parameters(), self.flags):
            p.requires_grad_(f)
        self.net.train(self.training)


def _last_step(run_dir: Path) -> int:
    from multitask_evidence.agents.run import METRICS_FILE

    path = run_dir / METRICS_FILE
    if not path.exists():
        return 0
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    try:
        return int(json.loads(lines[-1]).get("step", 0)) if lines else 0
    except (ValueError, TypeError):
        return 0


def probe_run(
    run_dir: str | Path,
    n: int = 4096,
    seed: int = 12345,
    *,
    n_test: int | None = None,
    out_dir: str | Path | None = None,
    adam: bool = False,
    fixed_points: bool = True,
    tuning: bool = True,
    figures: bool = True,
    tensorboard: bool = True,
    n_shuffles: int = 10,
    batch_size: int = 1024,
    controls: bool = True,
    over_time: bool = True,
) -> ProbeReport:
    """Record a trained run and measure everything; write probe.json, probe.md and figures.

    n: trials recorded (the decoders' data); n_test: fresh trials for the in-distribution control
    (default n // 2); seed: seed of the recorded trials (n_test uses seed + 1, the tuning grid
    seed + 2); adam: also run the paper's Adam protocol, on ``adam_trials_needed(spec.n_tasks)``
    trials of seed + 3 when n is fewer; fixed_points / tuning / figures / tensorboard: switch
    those parts off; controls: also probe the same network untrained, the input baselines and
    the output-implied read-outs on the same trials (``probes.controls``; headline
    ``untrained_ood_r2``, ``input_ood_r2``, ``mu_ood_r2``, ``outputs_ood_r2``,
    ``logits_ood_r2``, ``ideal_outputs_ood_r2``, ``ood_gain_over_untrained``, and each
    control's ``<name>_ood_r2_halfspace`` / ``<name>_ood_r2_ols`` / ``<name>_ood_r2_per_axis``
    beside the network's ``ood_r2_halfspace`` / ``ood_r2_ols`` / ``ood_r2_per_axis``); over_time:
    also decode at every step. The ideal observer's probabilities on the recorded trials give
    the headline's ``excess_bce`` whatever ``controls`` says.
    """
    from multitask_evidence import agents

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    loaded = agents.load(run_dir)
    spec = loaded.spec
    t0 = time.perf_counter()
    # mu over time is read only by the decoding over time and the figures; without them a
    # feature-noise posterior at every step would be most of the recording's cost
    timeline = {"batch_size": batch_size, "mu_timeline": over_time or figures}
    rec = record(loaded, spec, n, seed, **timeline)
    rec_test = record(loaded, spec, n_test or max(n // 2, 256), seed + 1, **timeline)
    rec_adam = None
    if adam and adam_trials_needed(spec.n_tasks) > n:
        # the paper's probe gives every decoder batch fresh trials: record that many
        n_adam = adam_trials_needed(spec.n_tasks)
        rec_adam = record(loaded, spec, n_adam, seed + 3, **timeline)
    t_rec = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the test trials' references serve only the controls' in-distribution scores
    refs = [
        decision_references(loaded, r, batch_size=batch_size)
        for r in ((rec, rec_test) if controls else (rec,))
    ]
    t_refs = time.perf_counter() - t0
    report = probe_recording(
        rec, rec_test, seed=seed, adam=adam, rec_adam=rec_adam, n_shuffles=n_shuffles,
        over_time=over_time, ideal=refs[0].ideal, logits=refs[0].logits,
    )
    report.timings["record"] = t_rec
    report.timings["references"] = t_refs
    if controls:
        t0 = time.perf_counter()
        ctrl = run_controls(
            loaded, rec, rec_test, seed=seed, batch_size=batch_size, references=refs
        )
        report.timings["controls"] = time.perf_counter() - t0
        report.results["controls"] = {c.name: c.to_dict() for c in ctrl}
        for c in ctrl:
            report.headline.update(c.headline())
        base = report.headline.get("untrained_ood_r2")
        if base is not None and report.headline.get("ood_r2_median") is not None:
            report.headline["ood_gain_over_untrained"] = report.headline["ood_r2_median"] - base
    network = getattr(loaded, "network", None)
    if fixed_points and network is not None:
        t0 = time.perf_counter()
        fp = run_fixed_points(rec, network, seed=seed)
        report.timings["fixed_points"] = time.perf_counter() - t0
        if fp is None:
            report.results["fixed_points"] = {
                "skipped": "state is not the hidden vector (LSTM/transformer)"
            }
        else:
            report.results["fixed_points"] = fp.to_dict()
            report.extras["fixed_points"] = fp
            report.headline["attractor_dim"] = fp.attractor_dim
            report.headline["n_fixed_points"] = fp.n_found
    if tuning and spec.latent_dim == 2:
        t0 = time.perf_counter()
        grid = latent_grid(8, 16, 2)
        rg = record(loaded, spec, grid.shape[0], seed + 2, latent=grid, batch_size=batch_size)
        tm = tuning_maps(rg.at(), rg.latent, 8)
        report.timings["tuning"] = time.perf_counter() - t0
        report.results["tuning"] = tm.to_dict()
        report.extras["tuning"] = tm
        report.headline["tuning_sparseness_mean"] = tm.sparseness.mean
    report.results["run"] = {
        "run_dir": str(run_dir),
        "n": n,
        "seed": seed,
        "spec": spec.to_dict(),
        "config": loaded.config.to_dict() if hasattr(loaded.config, "to_dict") else None,
        "train_step": _last_step(run_dir),
    }
    write_report(report, rec, out, figures=figures)
    if tensorboard:
        _log_tensorboard(run_dir, report)
    return report


FILE_TEST_SHARE = 4
"""A saved recording holds one set of trials: 1 / FILE_TEST_SHARE of them (the last) is the
in-distribution test set, the rest are what the decoders fit, for the network and every
control alike."""


def _rows(rec: Recording, rows: slice) -> Recording:
    """Trials ``rows`` of a recording (no seed: the subset cannot be drawn again)."""
    return Recording(
        spec=rec.spec,
        hidden=rec.hidden[rows],
        outputs=rec.outputs[rows],
        latent=rec.latent[rows],
        labels=rec.labels[rows],
        mu=rec.mu[rows],
        step=rec.step,
        period=rec.period,
        seed=None,
    )


def probe_file(
    path: str | Path,
    *,
    out_dir: str | Path | None = None,
    seed: int = 0,
    n_shuffles: int = 10,
    figures: bool = True,
) -> ProbeReport:
    """Probe a saved recording (``mte probe --save-recording``, ``Recording.save``): every array
    metric and every control the file allows, written as probe.json, probe.md and figures to
    ``out_dir`` (default: ``<file stem>_probe/`` beside the file).

    The file's last quarter of trials is the in-distribution test set (``FILE_TEST_SHARE``).
    The input average and the ideal observer's outputs need the trials themselves: they are
    drawn again from the recording's seed (``probes.record.regenerate``); a recording without a
    seed skips them, as it skips whatever needs the network (its untrained self, its logits,
    fixed points, tuning maps). ``results["skipped"]`` says what was skipped and why.
    """
    from multitask_evidence.probes.record import load_recording

    path = Path(path)
    rec = load_recording(path)
    n_fit = rec.n - rec.n // FILE_TEST_SHARE
    if n_fit < 64 or rec.n - n_fit < 16:
        raise ValueError(
            f"{path}: {rec.n} trials are too few to probe (at least 86: 64 to fit, 1/"
            f"{FILE_TEST_SHARE} to test)"
        )
    fit, test = _rows(rec, slice(0, n_fit)), _rows(rec, slice(n_fit, None))
    skipped = {
        "untrained": "a recording holds no network to rebuild untrained",
        "logits": "a recording holds probabilities, not the network's logits (read from the "
        "probabilities, clipped)",
        "fixed_points": "needs the network",
        "tuning": "needs the network",
    }
    refs = None
    if rec.seed is None:
        skipped["controls"] = "the recording has no seed: its trials cannot be drawn again"
    else:
        whole = decision_references(None, rec)  # the trials drawn again from the seed
        refs = [
            DecisionReferences(whole.stimulus_average[rows], whole.ideal[rows], None)
            for rows in (slice(0, n_fit), slice(n_fit, None))
        ]
    report = probe_recording(
        fit, test, seed=seed, n_shuffles=n_shuffles, ideal=None if refs is None else refs[0].ideal
    )
    if refs is not None:
        ctrl = run_controls(None, fit, test, seed=seed, references=refs)
        report.results["controls"] = {c.name: c.to_dict() for c in ctrl}
        for c in ctrl:
            report.headline.update(c.headline())
    report.results["skipped"] = skipped
    report.results["run"] = {
        "recording": str(path),
        "n": rec.n,
        "n_test": rec.n - n_fit,
        "seed": rec.seed,
        "spec": rec.spec.to_dict(),
    }
    out = Path(out_dir) if out_dir is not None else path.with_name(f"{path.stem}_probe")
    out.mkdir(parents=True, exist_ok=True)
    write_report(report, fit, out, figures=figures)
    return report


def write_report(report: ProbeReport, rec: Recording, out: Path, *, figures: bool) -> None:
    """probe.json, probe.md and (with ``figures``) figures/ of ``rec``'s report in ``out``,
    each written atomically (no half-written report after a kill); their paths go into
    ``report.files``."""
    from multitask_evidence.common.files import atomic_write_text

    if figures:
        from multitask_evidence.probes import plots

        report.files.update(plots.write_figures(report, rec, out / "figures"))
    atomic_write_text(out / "probe.json", json.dumps(report.to_dict(), indent=2))
    atomic_write_text(out / "probe.md", markdown(report))
    report.files["probe.json"] = str(out / "probe.json")
    report.files["probe.md"] = str(out / "probe.md")


def _log_tensorboard(run_dir: Path, report: ProbeReport) -> None:
    """Headline numbers as ``probe/<name>`` scalars at the run's last training step."""
    from torch.utils.tensorboard import SummaryWriter

    step = report.results.get("run", {}).get("train_step", 0)
    with SummaryWriter(str(run_dir)) as w:
        for k, v in report.headline.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                w.add_scalar(f"probe/{k}", float(v), step)


def _varies(states: np.ndarray) -> bool:
    """Whether states [n, H] differ between trials in any unit."""
    return bool(np.any(np.ptp(np.asarray(states, dtype=np.float64), axis=0) > 0))


def _listed(curve: np.ndarray | None) -> list[float] | None:
    return None if curve is None else curve.tolist()


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(report: ProbeReport) -> str:
    """probe.md: headline numbers beside the theory's references and the controls."""
    h = report.headline
    r = report.results
    run = r.get("run", {})
    ood = r["ood"]
    lines = [
        f"# Probe of `{run.get('run_dir', '?')}`",
        "",
        f"{run.get('n', '?')} recorded trials (seed {run.get('seed', '?')}), hidden state at the "
        "decision step. r2 = 1 - MSE / Var_prior (paper); r2 of mu = 1 - 12 sigma^2 / T, the "
        "r2 of the evidence mean itself (the paper's Eq. 7; docs/science.md §7), a reference, not "
        "a bound: the shrunk linear read-out of mu and the Bayes posterior mean lie above it.",
        "",
        "| measure | value | reference |",
        "|---|---|---|",
        f"| in-distribution r2 | {_fmt(h['id_r2'])} | r2 of mu (Eq. 7) {_fmt(h['ceiling'])}; shrunk linear read-out of mu {_fmt(h['ceiling_linear_shrunk'], 4)}; Bayes bound {_fmt(h.get('bayes_bound'), 4)} |",
        f"| OOD r2, leave-one-orthant-out (median [IQR]) | {_fmt(h['ood_r2_median'])} [{_fmt(h['ood_r2_q25'])}, {_fmt(h['ood_r2_q75'])}] | r2 of mu (Eq. 7) {_fmt(h['ceiling'])}; decoder: {h.get('ood_estimator', '?')} |",
        f"| OOD r2, worst fold | {_fmt(h['ood_r2_min'])} | |",
        f"| OOD r2, half-space splits (median) | {_fmt(h.get('ood_r2_halfspace_median'))} | |",
        f"| OOD r2, near-OLS penalty (median) | {_fmt(h.get('ood_r2_ols'))} | default penalty {_fmt(h.get('ood_alpha'), 4)}: {_fmt(h['ood_r2_median'])} |",
        f"| OOD r2 per latent axis (median) | {', '.join(_fmt(v) for v in h.get('ood_r2_per_axis') or [])} | |",
    ]
    if h.get("ood_r2_adam_median") is not None:
        lines.append(
            f"| OOD r2, paper's Adam protocol (median) | {_fmt(h['ood_r2_adam_median'])} | closed form {_fmt(h['ood_r2_median'])}; decoder: {r['ood_adam'].get('estimator', '?')} |"
        )
    geo = r.get("geometry", {})
    lines += [
        f"| angle between decoder axes (deg) | {_fmt(h['angle_deg'], 1)} | 90 = orthogonal |",
        f"| CCGP, factor dichotomies ({geo.get('classifier', '?')}) | {_fmt(h.get('ccgp_factors'))} | null p95: geometric {_fmt(geo.get('ccgp_factors_null_geometric_p95'))}, label shuffle {_fmt(geo.get('ccgp_factors_null_shuffle_p95'))} |",
        f"| parallelism, factor dichotomies | {_fmt(h.get('parallelism_factors'))} | null p95: geometric {_fmt(geo.get('parallelism_factors_null_geometric_p95'))}, label shuffle {_fmt(geo.get('parallelism_factors_null_shuffle_p95'))} |",
        f"| shattering dimensionality | {_fmt(h.get('shattering'))} | linear 2-factor code ~0.83 |",
        f"| DCI disentanglement / completeness | {_fmt(h['dci_disentanglement'])} / {_fmt(h['dci_completeness'])} | axis-aligned codes only |",
        f"| participation ratio | {_fmt(h['participation_ratio'], 2)} | |",
        f"| lifetime sparseness (decision states) | {_fmt(h['sparseness_mean'])} | |",
        f"| decision accuracy | {_fmt(h['decision_accuracy'])} | |",
    ]
    if h.get("excess_bce") is not None:
        cal = r.get("calibration", {})
        lines.append(
            f"| excess cross-entropy over the ideal observer (nats per task) | {_fmt(h['excess_bce'], 4)} | BCE {_fmt(cal.get('bce'), 4)} against the ideal observer's {_fmt(cal.get('ideal_bce'), 4)}; 0 = ideal outputs |"
        )
    if h.get("extraction_r2_latent") is not None:
        lines.append(
            f"| r2 of the output-implied estimate mu_hat (theory extraction) | {_fmt(h['extraction_r2_latent'])} | r2 of mu (Eq. 7) {_fmt(h['ceiling'])}, reached by ideal outputs; RMSE(mu_hat, mu) = {_fmt(h['extraction_rmse_vs_mu'], 4)} |"
        )
    if "attractor_dim" in h:
        lines.append(
            f"| fixed points found / near-marginal modes (attractor dim) | {h['n_fixed_points']} / {h['attractor_dim']} | D = {len(r['ceiling']['var_prior'])} |"
        )
    if "tuning_sparseness_mean" in h:
        lines.append(
            f"| tuning-map sparseness (8 x 8 grid) | {_fmt(h['tuning_sparseness_mean'])} | |"
        )
    ctrl = r.get("controls") or {}
    if ctrl:
        lines += [
            "",
            "## Controls (same trials, same decoders)",
            "",
            "A disentanglement number means something only beside these. Gain over untrained = "
            "OOD r2 of this network - OOD r2 of the same network untrained.",
            "",
            "| | OOD r2 (median [IQR]) | half-space | near-OLS | in-distribution r2 | decoder angle (deg) |",
            "|---|---|---|---|---|---|",
            f"| this network | {_fmt(h['ood_r2_median'])} [{_fmt(h['ood_r2_q25'])}, {_fmt(h['ood_r2_q75'])}] | {_fmt(h.get('ood_r2_halfspace'))} | {_fmt(h.get('ood_r2_ols'))} | {_fmt(h['id_r2'])} | {_fmt(h['angle_deg'], 1)} |",
        ]
        for c in ctrl.values():
            lines.append(
                f"| {c['description']} | {_fmt(c['ood_r2'])} [{_fmt(c['ood_r2_q25'])}, {_fmt(c['ood_r2_q75'])}] | {_fmt(c.get('ood_r2_halfspace'))} | {_fmt(c.get('ood_r2_ols'))} | {_fmt(c['id_r2'])} | {_fmt(c['angle_deg'], 1)} |"
            )
        if h.get("ood_gain_over_untrained") is not None:
            lines += ["", f"Gain over untrained (OOD r2): {h['ood_gain_over_untrained']:+.3f}."]
        if any(name in ctrl for name in OUTPUT_CONTROLS):
            lines += [
                "",
                "Output-implied controls (the decoders on the outputs and logits at the read-out "
                "step, and on the ideal observer's probabilities). " + OUTPUT_CONTROLS_NOTE,
            ]
    lines += ["", "OOD r2 per held-out orthant (median over fits):", ""]
    lines += [
        f"- {f['held_out']}: {_fmt(f['r2_median'])} (n_test {f['n_test']})" for f in ood["folds"]
    ]
    if report.files:
        lines += [
            "",
            "Figures: "
            + ", ".join(f"`{Path(p).name}`" for k, p in report.files.items() if k.endswith("png")),
        ]
    lines += [
        "",
        "Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in report.timings.items()),
        "",
    ]
    return "\n".join(lines)


@dataclass
class DecisionReferences:
    """What a recording's trials give beside the agent's states, at the read-out step.

    stimulus_average: [n, O] the encoded observations averaged over the evidence steps (the
    input control's features); ideal: [n, N] the ideal observer's probabilities
    (``probes.controls.ideal_decision_probs``); logits: [n, N] the agent's logits
    (``probes.record.readout_logits``), None when it has no sigmoid read-out.
    """

    stimulus_average: np.ndarray
    ideal: np.ndarray
    logits: np.ndarray | None


def decision_references(
    loaded: Any, rec: Recording, *, batch_size: int = 1024
) -> DecisionReferences:
    """:class:`DecisionReferences` of ``rec``'s trials, drawn again from its seed
    (``probes.record.regenerate``) and, for the logits, played once more by ``loaded``."""
    from multitask_evidence.probes.controls import ideal_decision_probs, stimulus_average

    spec = rec.spec
    b = regenerate(rec)
    # every step that delivers evidence (free-RT targets: the decision step too)
    evidence = np.diff(theory.evidence_steps(spec), prepend=0) > 0
    logits = readout_logits(loaded, b.obs, rec.decision_index, batch_size)
    if logits is not None and not np.allclose(
        expit(logits), rec.outputs[:, rec.decision_index], atol=1e-5
    ):
        raise RuntimeError("the network's logits do not give back its recorded probabilities")
    return DecisionReferences(
        stimulus_average=stimulus_average(b.obs, b.period, evidence),
        ideal=ideal_decision_probs(spec, b.stimulus_evidence),
        logits=logits,
    )


def run_controls(
    loaded: Any,
    rec: Recording,
    rec_test: Recording,
    *,
    seed: int = 0,
    batch_size: int = 1024,
    references: list[DecisionReferences] | None = None,
) -> list[Any]:
    """The controls of ``probes.controls`` on the trials of ``rec`` (fit) and ``rec_test``
    (fresh trials for the in-distribution score): the same network untrained (when ``loaded``
    can be rebuilt untrained), the encoded input's stimulus average, mu(T), and the
    output-implied read-outs (the network's probabilities and logits at the read-out step, the
    ideal observer's probabilities). references: ``decision_references`` of (rec, rec_test),
    or of rec alone; those not given are computed here."""
    from multitask_evidence import agents
    from multitask_evidence.probes.controls import logits_from_probs, score_features

    spec = rec.spec
    var = theory.prior_variance(spec)
    refs = list(references or [])
    refs += [decision_references(loaded, r, batch_size=batch_size)
             for r in (rec, rec_test)[len(refs):]]
    out = []
    try:
        twin = agents.untrained(loaded)
    except (ValueError, AttributeError, TypeError):
        twin = None  # e.g. a policy with no stored config: no untrained control
    if twin is not None:
        r0 = record(twin, spec, rec.n, int(rec.seed or 0), batch_size=batch_size)
        r0t = record(twin, spec, rec_test.n, int(rec_test.seed or 0), batch_size=batch_size)
        out.append(
            score_features(
                "untrained", r0.at(), r0.latent, r0t.at(), r0t.latent, var_prior=var, seed=seed
            )
        )

    def score(name: str, fit: np.ndarray, test: np.ndarray) -> None:
        out.append(score_features(name, fit, rec.latent, test, rec_test.latent,
                                  var_prior=var, seed=seed))

    score("input", refs[0].stimulus_average, refs[1].stimulus_average)
    dec, dec_t = rec.decision_index, rec_test.decision_index
    score("mu", rec.mu[:, dec], rec_test.mu[:, dec_t])
    score("outputs", rec.outputs[:, dec], rec_test.outputs[:, dec_t])
    if refs[0].logits is not None and refs[1].logits is not None:
        score("logits", refs[0].logits, refs[1].logits)
    elif not spec.mse_targets:  # probabilities only (an RL policy): their logits, clipped
        score("logits", logits_from_probs(rec.outputs[:, dec]),
              logits_from_probs(rec_test.outputs[:, dec_t]))
    score("ideal_outputs", refs[0].ideal, refs[1].ideal)
    return out
