"""One sweep point: train an agent into its run folder, probe it, return its headline row.

:func:`run_point` is what the sweep backends call on a worker (it must stay a module-level
function so that it pickles). It resumes an interrupted training from the folder's checkpoint,
so a killed sweep loses at most the steps since the last checkpoint of each running point.

:func:`run_group` is its counterpart for an ensemble: supervised points that share an
:func:`ensemble_key` (architecture, shape, recipe; any seeds and task draws) train as one
batched model (``agents.train_ensemble``; member k equals its solo run) and each member is
probed as :func:`run_point` probes it, so its row is the one a solo run would give. A failing
ensemble falls back to training its members one by one.

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

import json
import math
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(float(v)) else None


def _resumable(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run to continue (its config.json). A folder killed while it
    was being created (no config, no weights) is removed: there is nothing to resume in it, and
    the trainers refuse a non-empty folder without resume."""
    from multitask_evidence.agents.run import CONFIG_FILE, MODEL_FILE

    if (run_dir / CONFIG_FILE).exists():
        return True
    if run_dir.exists() and not (run_dir / MODEL_FILE).exists():
        shutil.rmtree(run_dir)
    return False


def train_point(point: Any, run_dir: str | Path) -> dict[str, Any]:
    """Train the point's agent into ``run_dir`` (resuming its checkpoint if there is one).

    Returns the trainer's last evaluation (``acc``, ``frac_ideal`` ... where reported).
    """
    from multitask_evidence.agents.algos import get
    from multitask_evidence.envs import TaskSpec

    spec = TaskSpec(**point.task)
    run_dir = Path(run_dir)
    resume = _resumable(run_dir)
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

    slow = {"fixed_points": full, "tuning": full, "figures": full, "over_time": full}
    report = probe_run(run_dir, n=n, seed=seed, tensorboard=True, adam=adam, **slow)
    return headline(report.to_dict())


def headline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The row's metrics from a probe report dict (``probe.json``): every scalar of its
    ``headline`` section (``excess_bce`` and each control's ``<name>_ood_r2`` among them), the
    canonical names above, and the per-fold OOD values, each control's as
    ``<name>_ood_r2_values`` (``untrained``, ``input``, ``mu`` and the output-implied
    ``outputs``, ``logits``, ``ideal_outputs``); list-valued entries of numbers (the per-axis
    ``ood_r2_per_axis`` and ``<name>_ood_r2_per_axis``) as lists of floats."""
    head = report.get("headline") or {}
    out: dict[str, Any] = {k: _num(v) for k, v in head.items() if _num(v) is not None}
    # list-valued numbers (``ood_r2_per_axis``, ``<name>_ood_r2_per_axis``): one float per
    # latent axis; a non-finite entry (None in probe.json) stays in place as NaN so the axes
    # keep their positions
    for k, v in head.items():
        if isinstance(v, (list, tuple)) and v and all(
            e is None or (isinstance(e, (int, float)) and not isinstance(e, bool)) for e in v
        ):
            out[k] = [float("nan") if _num(e) is None else float(e) for e in v]
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


@dataclass(frozen=True)
class ProbeOptions:
    """How a point's trained network is probed: :func:`run_point`'s ``probe_*`` options.

    n: trials recorded for the probes; None: :func:`auto_probe_n` (more for large D, since
    every held-out orthant needs trials); seed: seed of those trials (the same for every point,
    so points are compared on equal evidence); full: also fixed points, tuning maps and the
    probe's figures (slow); adam: also the paper's Adam protocol."""

    n: int | None = None
    seed: int = 12345
    full: bool = False
    adam: bool = False

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> ProbeOptions:
        """From :func:`run_point`'s keyword options (``probe_n`` ...); ValueError naming any
        other key."""
        names = {f"probe_{f.name}" for f in fields(cls)}
        bad = sorted(k for k in options if k not in names)
        if bad:
            raise ValueError(f"unknown point option(s) {bad}; allowed: {sorted(names)}")
        return cls(**{k.removeprefix("probe_"): v for k, v in options.items()})


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
    The probe options are :class:`ProbeOptions`' fields with a ``probe_`` prefix."""
    final = train_point(point, run_dir)
    probe = ProbeOptions(probe_n, probe_seed, probe_full, probe_adam)
    return finish_point(point, run_dir, final, probe)


def finish_point(
    point: Any,
    run_dir: str | Path,
    final: Mapping[str, Any],
    probe: ProbeOptions = ProbeOptions(),  # noqa: B008 - frozen, so one shared default is safe
) -> dict[str, Any]:
    """The row of a trained point: its probes (:func:`probe_point`) and the trainer's last
    evaluation ``final`` (accuracy, training time, steps)."""
    n = auto_probe_n(int(point.task.get("latent_dim", 2))) if probe.n is None else probe.n
    row = probe_point(run_dir, n=n, seed=probe.seed, full=probe.full, adam=probe.adam)
    for key in ("acc", "frac_ideal", "ideal_acc", "train_seconds", "step"):
        v = _num(final.get(key))
        if v is not None:
            row["train_steps" if key == "step" else key] = v
    return row


# ---- ensembles: compatible supervised points trained as one batched model --------------------


def ensemble_key(point: Any) -> str | None:
    """What points must share to train as one ensemble (``agents.train_ensemble``), as text;
    None for a point that trains alone (not supervised, an architecture registered without
    ``ensemble=True``, or a config / task that does not build).

    Points with one key are supervised and share the resolved agent config apart from ``seed``
    (architecture, shape, recipe, budget) and the TaskSpec fields in
    ``agents.ensemble.SHAPE_FIELDS``; they may differ in the task's seed and other task fields
    (sigma, noise, prior ...)."""
    from multitask_evidence.agents.architectures import ARCHITECTURES
    from multitask_evidence.agents.config import TrainConfig
    from multitask_evidence.agents.ensemble import SHAPE_FIELDS
    from multitask_evidence.envs import TaskSpec

    if point.algo != "supervised":
        return None
    try:
        cfg = TrainConfig(**{**point.agent, "progress": False}).resolve().to_dict()
        spec = TaskSpec(**point.task)
    except (TypeError, ValueError):
        return None
    entry = ARCHITECTURES.get(cfg["arch"])
    if entry is None or not entry.ensemble:
        return None
    cfg.pop("seed")
    task = {f: getattr(spec, f) for f in SHAPE_FIELDS}
    return json.dumps({"config": cfg, "task": task}, sort_keys=True, default=str)


def _checkpoint_step(path: Path) -> int | None:
    """The step of a training checkpoint file (None when there is none)."""
    from multitask_evidence.agents.run import load_weights

    if not path.exists():
        return None
    return int(load_weights(path)["step"])


def train_group(points: Sequence[Any], run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Train supervised points that share one :func:`ensemble_key` into their run folders as
    one ensemble (``agents.train_ensemble``); member k is the solo :func:`train_point` of
    ``points[k]``. Returns each member's last evaluation, in order.

    Resume: from the group's joint checkpoint (``agents.ensemble.default_ensemble_dir`` of the
    folders) when it is at least as far as every member's own checkpoint; otherwise (the members
    last trained in other groups, or alone) the members are split by the step of their own
    checkpoints and each set trains as an ensemble resumed from those (a set of one trains
    alone), so no member loses steps it has. A group that finished removes its joint checkpoint:
    every member's folder holds its own final state.
    """
    from multitask_evidence.agents.config import TrainConfig
    from multitask_evidence.agents.ensemble import default_ensemble_dir, train_ensemble
    from multitask_evidence.agents.ensemble.trainer import ENSEMBLE_CHECKPOINT_FILE
    from multitask_evidence.agents.run import CHECKPOINT_FILE
    from multitask_evidence.envs import TaskSpec

    dirs = [Path(d) for d in run_dirs]
    resumable = [_resumable(d) for d in dirs]
    steps = [_checkpoint_step(d / CHECKPOINT_FILE) if r else None for d, r in zip(dirs, resumable)]
    joint_dir = default_ensemble_dir(dirs)
    joint_step = _checkpoint_step(joint_dir / ENSEMBLE_CHECKPOINT_FILE)
    if joint_step is not None and all(s is None or s <= joint_step for s in steps):
        sets = [list(range(len(dirs)))]
    else:
        by_step: dict[int | None, list[int]] = {}
        for i, s in enumerate(steps):
            by_step.setdefault(s, []).append(i)
        sets = list(by_step.values())
        shutil.rmtree(joint_dir, ignore_errors=True)  # behind its members (or absent)
    finals: list[dict[str, Any]] = [{} for _ in dirs]
    for idx in sets:
        if len(idx) == 1:
            finals[idx[0]] = train_point(points[idx[0]], dirs[idx[0]])
            continue
        members = [dirs[i] for i in idx]
        runs = train_ensemble(
            [TaskSpec(**points[i].task) for i in idx],
            [TrainConfig(**{**points[i].agent, "progress": False}) for i in idx],
            members,
            resume=any(resumable[i] for i in idx),
        )
        for i, run in zip(idx, runs):
            finals[i] = dict(run.final)
        shutil.rmtree(default_ensemble_dir(members), ignore_errors=True)
    return finals


def run_group(
    points: Sequence[Any], run_dirs: Sequence[str], **options: Any
) -> list[dict[str, Any]]:
    """Train points as one ensemble (:func:`train_group`) and probe each member as
    :func:`run_point` does (``options``: its ``probe_*`` options); returns one outcome per
    member in the format of ``experiments.backends.execute_point`` (``status``, ``metrics`` or
    ``error``, ``elapsed_s``, ``cpu_s``). The sweep backends call it on a worker that holds
    every member's lock.

    If the ensemble fails (a member diverges, any exception), each member is trained on its own
    instead (:func:`run_point`, resuming what the ensemble wrote in its folder), so one bad
    member does not sink the others and each failure is its own. A member's ``elapsed_s`` /
    ``cpu_s`` is its share (1/K) of the ensemble's training plus its own probing (and solo
    training), so that a sweep's sums stay the compute it used.
    """
    from multitask_evidence.experiments.backends import measured

    probe = ProbeOptions.of(options)
    k = len(points)
    t0, c0 = time.perf_counter(), time.process_time()
    finals: list[dict[str, Any] | None]
    try:
        finals = list(train_group(points, run_dirs))
    except Exception as e:  # noqa: BLE001 - the members retry one by one
        print(
            f"ensemble of {k} ({', '.join(p.id for p in points)}) failed: {type(e).__name__}: "
            f"{e}; training its members one by one",
            file=sys.stderr,
        )
        finals = [None] * k
    share = ((time.perf_counter() - t0) / k, (time.process_time() - c0) / k)
    calls = [
        partial(run_point, p, d, **options) if f is None else partial(finish_point, p, d, f, probe)
        for p, d, f in zip(points, run_dirs, finals)
    ]
    return [measured(call, *share) for call in calls]
