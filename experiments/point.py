"""One sweep point: train an agent into its run folder, probe it, return its headline row.

:func:`run_point` is what the sweep backends call on a worker (it must stay a module-level
function so that it pickles). It resumes an interrupted training from the folder's checkpoint,
so a killed sweep loses at most the steps since the last checkpoint of each running point.

Headline metrics of the returned row (all floats unless said; r^2 = 1 - MSE / Var_prior):

- ``ood_r2``, ``ood_r2_q25``, ``ood_r2_q75``: median / quartiles of the OOD r^2 over folds x fits
  (4 folds, each holding out a quarter of the orthants: one quadrant at D = 2),
  ``ood_r2_values``: every fold x fit value (list; pooled across networks by the figures),
  ``ood_r2_min``;
- ``id_r2``: in-distribution r^2 (fit on all quadrants, scored on fresh trials);
- ``angle_deg``: angle between the decoder axes (raw-unit ridge, folded to [0, 90] degrees; mean
  pairwise for D > 2; 90 = orthogonal); ``angle_deg_values``: the same on every OOD fold's
  training trials;
- ``ceiling``: the theory's r^2_max at the decision step (``probes.theory.ceiling``, a linear
  read-out of the evidence mean); ``bayes_bound``: the r^2 of the Bayes posterior mean;
- controls (``probes.controls``): ``untrained_ood_r2`` / ``untrained_id_r2`` /
  ``untrained_angle_deg`` (the same network untrained), ``input_ood_r2`` / ``input_id_r2`` (the
  encoded input's stimulus average), ``mu_ood_r2`` / ``mu_id_r2`` (the evidence mean), each OOD
  one with its ``*_values``; ``ood_gain_over_untrained``;
- ``frac_ideal``, ``acc``, ``ideal_acc``: decision accuracy of the trained agent, as a fraction of
  the ideal observer's (chance-normalised) and raw, from the trainer's last evaluation;
- ``train_seconds``, ``train_steps``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(float(v)) else None


def train_point(point: Any, run_dir: str | Path) -> dict[str, Any]:
    """Train the point's agent into ``run_dir`` (resuming its checkpoint if there is one).

    Returns the trainer's last evaluation (``acc``, ``frac_ideal`` ... where reported).
    """
    from multitask_evidence.agents.algos import get
    from multitask_evidence.agents.run import CONFIG_FILE, MODEL_FILE
    from multitask_evidence.envs import TaskSpec

    spec = TaskSpec(**point.task)
    run_dir = Path(run_dir)
    resume = (run_dir / CONFIG_FILE).exists()
    if not resume and run_dir.exists() and not (run_dir / MODEL_FILE).exists():
        # a point killed while its folder was being created: nothing to resume, and the
        # trainers refuse a non-empty folder without resume
        shutil.rmtree(run_dir)
    algo = get(point.algo)
    kwargs = dict(point.agent)
    # progress off: one bar per worker would garble the sweep's own display; threads are
    # pinned by the backend, not by the config
    if "progress" in getattr(algo.config_cls, "__dataclass_fields__", {}):
        kwargs["progress"] = False
    cfg = algo.config_cls(**kwargs)
    out = algo.train(spec, cfg, run_dir=run_dir, resume=resume)
    final = getattr(out, "final", None)
    if final is None:
        final = getattr(out, "final_eval", None)
    if isinstance(final, Mapping):
        return dict(final)
    if isinstance(out, Mapping):
        return dict(out)
    return {}


def probe_point(
    run_dir: str | Path,
    *,
    n: int = 4096,
    seed: int = 12345,
    full: bool = False,
    adam: bool = False,
) -> dict[str, Any]:
    """Probe a trained run folder with ``probes.probe_run`` (writes probe.json / probe.md) and
    return its headline metrics, controls included.

    full: also the slow parts (fixed points, tuning maps, decoding at every step, figures: tens
    of seconds per network); a sweep needs only the decision-step numbers, which take seconds.
    adam: also the paper's Adam-decoder protocol (fresh trials, the per-N batch counts), so that
    the row carries ``ood_r2_adam_median`` beside the closed form's ``ood_r2``.
    """
    from multitask_evidence.probes import probe_run

    report = probe_run(
        run_dir,
        n=n,
        seed=seed,
        fixed_points=full,
        tuning=full,
        figures=full,
        tensorboard=True,
        over_time=full,
        adam=adam,
    )
    return headline(report.to_dict())


def headline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The row's metrics from a probe report dict (``probe.json``): every scalar of its
    ``headline`` section, the canonical names above, and the per-fold OOD values."""
    head = report.get("headline") or {}
    out: dict[str, Any] = {k: _num(v) for k, v in head.items() if _num(v) is not None}
    ood = report.get("ood") or {}
    folds = ood.get("folds") or []
    out["ood_r2"] = _num(head.get("ood_r2_median", ood.get("r2_median")))
    out["ood_r2_q25"] = _num(head.get("ood_r2_q25", ood.get("r2_q25")))
    out["ood_r2_q75"] = _num(head.get("ood_r2_q75", ood.get("r2_q75")))
    out["ood_r2_values"] = [float(v) for f in folds for v in f.get("r2", [])]
    out["ood_r2_folds"] = {f.get("held_out"): _num(f.get("r2_median")) for f in folds}
    # decoder-axis angles of the OOD decoders (folds x fits): the figures pool them across
    # networks like the r^2 values; a single decoder's angle is noisy
    out["angle_deg_values"] = [
        float(a) for f in folds for a in (f.get("angle_deg") or []) if _num(a) is not None
    ]
    # controls (probes.controls): their fold x fit values, pooled across networks like the
    # network's own
    for name, ctrl in (report.get("controls") or {}).items():
        out[f"{name}_ood_r2_values"] = [float(v) for v in ctrl.get("ood_r2_values") or []]
    out["id_r2"] = _num(head.get("id_r2"))
    out["angle_deg"] = _num(head.get("angle_deg", ood.get("angle_deg_median")))
    out["ceiling"] = _num(head.get("ceiling", ood.get("ceiling")))
    out.pop("ood_r2_median", None)  # = ood_r2
    return out


def auto_probe_n(latent_dim: int) -> int:
    """Probe trials for a latent dimension: 4096, or 32 per orthant when 2^D is large."""
    return int(max(4096, 32 * 2**latent_dim))


def run_point(
    point: Any,
    run_dir: str,
    *,
    probe_n: int | None = None,
    probe_seed: int = 12345,
    probe_full: bool = False,
    probe_adam: bool = False,
) -> dict[str, Any]:
    """Train and probe one point in ``run_dir``; return its headline metrics (see module doc).

    probe_n: trials recorded for the probes; None: :func:`auto_probe_n` (more for large D, since
    every held-out orthant needs trials); probe_seed: seed of those trials (the same for every
    point, so points are compared on equal evidence); probe_full: also fixed points, tuning maps
    and the probe's figures (slow); probe_adam: also the paper's Adam protocol.
    """
    if probe_n is None:
        probe_n = auto_probe_n(int(point.task.get("latent_dim", 2)))
    final = train_point(point, run_dir)
    row = probe_point(run_dir, n=probe_n, seed=probe_seed, full=probe_full, adam=probe_adam)
    for key in ("acc", "frac_ideal", "ideal_acc", "train_seconds", "step"):
        v = _num(final.get(key))
        if v is not None:
            row["train_steps" if key == "step" else key] = v
    return row
