"""Tensorboard HParams records of a sweep: every finished point's grid parameters beside its
headline metrics, so that ``tensorboard --logdir <sweep>/hparams`` compares all points in the
HParams tab (table, parallel coordinates, scatter plots of e.g. OOD r^2 against N).

Each point gets its own run folder ``<sweep>/hparams/<point id>/`` holding one event file: the
hparams plugin's experiment record, its start record (the parameters) and end record, and one
scalar per metric (the value the plugin shows). Parameters are the point's grid names as given
(``n_tasks``, ``arch``, ``task.seed`` ...), plus ``algo``; list values are written as JSON text.
The metrics are those of :data:`HPARAM_METRICS` that the point reports as finite numbers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from multitask_evidence.common.files import current_umask

HPARAM_METRICS = (
    "ood_r2",
    "id_r2",
    "untrained_ood_r2",
    "input_ood_r2",
    "mu_ood_r2",
    "ood_gain_over_untrained",
    "frac_ideal",
    "angle_deg",
    "bayes_bound",
    "ceiling",
)
"""Headline metrics written for each point (where present): the network's OOD and
in-distribution r^2, its controls (untrained network, encoded input, evidence mean), the gain
over the untrained network, accuracy as a fraction of the ideal observer's, the decoder angle,
the Bayes bound (posterior mean) and the r^2 of mu (the paper's Eq. 7)."""


def hparam_value(value: Any) -> str | int | float:
    """A grid value as the plugin stores it: numbers stay numbers, booleans and None become
    text (``True``, ``None``), lists and mappings become JSON text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def point_hparams(params: Mapping[str, Any], algo: str) -> dict[str, Any]:
    """The hparams of one point: its grid parameters, then ``algo``."""
    out = {str(k): hparam_value(v) for k, v in params.items()}
    out.setdefault("algo", algo)
    return out


def point_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The headline metrics of a point's row that are finite numbers."""
    out = {}
    for name in HPARAM_METRICS:
        v = metrics.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        out[name] = float(v)
    return out


def discrete_domains(all_hparams: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Every value each parameter takes over the sweep (for the plugin's filters), for the
    parameters whose values share one type."""
    values: dict[str, list[Any]] = {}
    for hp in all_hparams:
        for k, v in hp.items():
            seen = values.setdefault(k, [])
            if v not in seen:
                seen.append(v)
    out = {}
    for k, vs in values.items():
        if len({type(v) for v in vs}) == 1:
            out[k] = sorted(vs)
    return out


def write_point_hparams(
    folder: str | Path,
    hparams: Mapping[str, Any],
    metrics: Mapping[str, float],
    domains: Mapping[str, list[Any]] | None = None,
) -> Path:
    """Write one point's HParams record into ``folder`` (replaced if it exists). The event file
    is written into a temporary folder beside it and renamed, so a reader never sees half."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    hp = dict(hparams)
    dom = {
        k: list(v)
        for k, v in (domains or {}).items()
        if k in hp and all(type(d) is type(hp[k]) for d in v) and hp[k] in v
    }
    exp, ssi, sei = hparams_summary(hp, dict(metrics), dom)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with SummaryWriter(log_dir=str(tmp)) as w:
            for summary in (exp, ssi, sei):
                w.file_writer.add_summary(summary)
            for k, v in metrics.items():
                w.add_scalar(k, v)
        os.chmod(tmp, 0o777 & ~current_umask())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
