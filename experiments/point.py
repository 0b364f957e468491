"""One sweep point: train an agent into its run folder, probe it, return its headline row.

:func:`run_point` is what the sweep backends call on a worker (it must stay a module-level
function so that it pickles). It resumes an interrupted training from the folder's checkpoint,
so a killed sweep loses at most the steps since the last checkpoint of each running point.

Headline metrics of the returned row (all floats unless said; r^2 = 1 - MSE / Var_prior):

- ``ood_r2``, ``ood_r2_q25``, ``ood_r2_q75``: median / quartiles of the OOD r^2 over folds x fits
  (leave one orthant out), ``ood_r2_values``: every fold x fit value (list; pooled across
  networks by the figures), ``ood_r2_min``;
- ``id_r2``: in-distribution r^2 (fit on all quadrants, scored on fresh trials);
- ``angle_deg``: angle between the decoder axes (mean pairwise for D > 2; 90 = orthogonal);
- ``ceiling``: the theory's r^2_max at the decision step (``probes.theory.ceiling``);
- ``frac_ideal``, ``acc``, ``ideal_acc``: decision accuracy of the trained agent, as a fraction of
  the ideal observer's (chance-normalised) and raw, from the trainer's last evaluation;
- ``train_seconds``, ``train_steps``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROBE_FILE = "probe.json"


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(float(v)) else None


def train_point(point: Any, run_dir: str | Path) -> dict[str, Any]:
    """Train the point's agent into ``run_dir`` (resuming its checkpoint if there is one).

    Returns the trainer's last evaluation (``acc``, ``frac_ideal`` ... where reported).
    """
    from envs import TaskSpec

    spec = TaskSpec(**point.task)
    run_dir = Path(run_dir)
    resume = (run_dir / "config.json").exists()
    if point.algo == "supervised":
        from agents.config import TrainConfig

        try:
            from agents import train
        except ImportError:  # the package re-export may not exist yet
            from agents.trainer import train

        # progress off: one bar per worker would garble the sweep's own display; threads are
        # pinned by the backend, not by the config
        cfg = TrainConfig(**{**point.agent, "progress": False})
        run = train(spec, cfg, run_dir=run_dir, resume=resume)
        final = dict(getattr(run, "final", {}) or {})
        return final
    from agents.rl import ALGOS

    cfg_cls, train_fn = ALGOS[point.algo]
    kwargs = dict(point.agent)
    if "progress" in {f for f in getattr(cfg_cls, "__dataclass_fields__", {})}:
        kwargs["progress"] = False
    cfg = cfg_cls(**kwargs)
    out = train_fn(spec, cfg, run_dir=run_dir, resume=resume)
    final = getattr(out, "final", None)
    if final is None:
        final = getattr(out, "final_eval", None)
    if isinstance(final, Mapping):
        return dict(final)
    if isinstance(out, Mapping):
        return dict(out)
    return {}


def probe_point(run_dir: str | Path, *, n: int = 4096, seed: int = 12345) -> dict[str, Any]:
    """Probe a trained run folder (``probes.probe_run``) and return its headline metrics."""
    import probes

    probe_run = getattr(probes, "probe_run", None)
    if probe_run is None:  # pragma: no cover - until probes.probe_run lands
        return _minimal_probe(run_dir, n=n, seed=seed)
    report = probe_run(run_dir, n=n, seed=seed)
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    return headline(data)


def headline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical headline numbers from a probe report dict (``probe.json``)."""
    ood = report.get("ood") or {}
    out: dict[str, Any] = {}
    folds = ood.get("folds") or []
    values = [float(v) for f in folds for v in f.get("r2", [])]
    out["ood_r2"] = _num(ood.get("r2_median"))
    out["ood_r2_q25"] = _num(ood.get("r2_q25"))
    out["ood_r2_q75"] = _num(ood.get("r2_q75"))
    out["ood_r2_min"] = _num(ood.get("r2_min"))
    out["ood_r2_values"] = values
    out["ood_r2_folds"] = {f.get("held_out"): _num(f.get("r2_median")) for f in folds}
    ind = report.get("in_distribution") or report.get("id") or {}
    out["id_r2"] = _num(ind.get("r2"))
    angle = ood.get("angle_deg_median")
    if angle is None:
        angle = ind.get("angle_deg")
    out["angle_deg"] = _num(angle)
    ceiling = report.get("ceiling", ood.get("ceiling"))
    if isinstance(ceiling, Mapping):
        ceiling = ceiling.get("r2", ceiling.get("value"))
    out["ceiling"] = _num(ceiling)
    return out


def _minimal_probe(run_dir: str | Path, *, n: int, seed: int) -> dict[str, Any]:
    """The paper's headline probe from the probes package's parts (record + ridge decoding)."""
    import agents
    from probes.decoding import decode, ood_generalisation
    from probes.record import record
    from probes.theory import ceiling

    loaded = agents.load(run_dir) if hasattr(agents, "load") else _load(run_dir)
    spec = loaded.spec
    rec = record(loaded, spec, n=n, seed=seed)
    fresh = record(loaded, spec, n=max(n // 4, 256), seed=seed + 1)
    k = spec.decision_start
    ceil = float(ceiling(spec))
    ood = ood_generalisation(rec.hidden[:, k], rec.latent, seed=seed, ceiling=ceil)
    ind = decode(rec.hidden[:, k], rec.latent, fresh.hidden[:, k], fresh.latent, seed=seed)
    report = {
        "ood": ood.to_dict(),
        "in_distribution": {"r2": ind.r2, "angle_deg": ind.angle_deg},
        "ceiling": ceil,
    }
    Path(run_dir, PROBE_FILE).write_text(json.dumps(report, indent=2, default=float))
    return headline(report)


def _load(run_dir: str | Path) -> Any:  # pragma: no cover - until agents.load is exported
    from agents.run import load

    return load(run_dir)


def auto_probe_n(latent_dim: int) -> int:
    """Probe trials for a latent dimension: 4096, or 32 per orthant when 2^D is large."""
    return int(max(4096, 32 * 2**latent_dim))


def run_point(
    point: Any,
    run_dir: str,
    *,
    probe_n: int | None = None,
    probe_seed: int = 12345,
) -> dict[str, Any]:
    """Train and probe one point in ``run_dir``; return its headline metrics (see module doc).

    probe_n: trials recorded for the probes; None: :func:`auto_probe_n` (more for large D, since
    every held-out orthant needs trials); probe_seed: seed of those trials (the same for every
    point, so points are compared on equal evidence).
    """
    if probe_n is None:
        probe_n = auto_probe_n(int(point.task.get("latent_dim", 2)))
    final = train_point(point, run_dir)
    row = probe_point(run_dir, n=probe_n, seed=probe_seed)
    for key in ("acc", "frac_ideal", "ideal_acc", "train_seconds", "step"):
        v = _num(final.get(key))
        if v is not None:
            row["train_steps" if key == "step" else key] = v
    return row
