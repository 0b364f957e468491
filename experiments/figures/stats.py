"""The paper's statistics over the rows of a sweep (results.json), and the tables of its pages.

Each row is one trained-and-probed network (see :func:`experiments.point.run_point`): its grid
parameters (``arch``, ``n_tasks``, ``sigma`` ...) and headline metrics:
``ood_r2`` (median over folds x fits), ``ood_r2_values`` (every fold x fit value), ``id_r2``,
``angle_deg`` (angle between the decoder axes; ``angle_deg_values``: every OOD decoder's, pooled
like the r^2 values when present), ``ceiling`` (the theory's r^2_max at the decision
step). The statistics are the paper's: median and IQR over networks x folds x fits, i.e. the
per-network ``ood_r2_values`` lists pooled over the networks of a condition.

Controls sit beside every number (``probes.controls``): ``untrained_ood_r2`` (the same network
untrained), ``input_ood_r2`` (a decoder on the encoded input's stimulus average), ``mu_ood_r2``
(on the evidence mean) and the output-implied read-outs, pooled like the network's own values;
every measured field is also kept per network, keyed by seed (``_by_seed``), for the paired
tests of :mod:`experiments.figures.inference` (tables add the gain over untrained as one). The
theory sits beside them: ``ceiling`` (1 - 12 sigma^2 / t, the r^2 of the evidence mean itself,
the paper's Eq. 7) and ``bayes_bound`` (the Bayes posterior mean under the bounded prior).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .inference import fmt_p, paired_test, t_interval

ARCH_LABELS = {
    "rnn": "RNN",
    "rnn_nonleaky": "non-leaky RNN",
    "gru": "GRU",
    "lstm": "LSTM",
    "transformer": "Transformer (GPT)",
}
ARCH_ORDER = ("rnn", "rnn_nonleaky", "lstm", "gru", "transformer")
METRICS = (
    "ood_r2",
    "id_r2",
    "angle_deg",
    "untrained_ood_r2",
    "untrained_id_r2",
    "untrained_angle_deg",
    "input_ood_r2",
    "input_id_r2",
    "mu_ood_r2",
)
"""Metrics pooled over networks x folds x fits (median, quartiles) by :func:`summarise`."""

CONDITION_KEYS = (
    "arch",
    "algo",
    "env_id",
    "encoder",
    "encoder_scale",
    "targets",
    "rho",
    "n_tasks",
    "latent_dim",
    "sigma",
    "stimulus_steps",
)
"""The grid parameters the figures group their conditions by, in the order printed."""

PER_NETWORK = ("attractor_dim",)
"""Per-network scalars only some figures probe (``attractor_dim``: near-marginal modes of the
fixed points, with ``probe_full``): summarised as their median over networks and the list
``<m>_per_network``, only where the rows carry them."""

def _values(row: Mapping[str, Any], metric: str) -> list[float]:
    """All the values of one metric a network contributes (its folds x fits for OOD r^2)."""
    vals = row.get(f"{metric}_values")
    if isinstance(vals, (list, tuple)) and vals:
        out = [float(v) for v in vals]
    else:
        v = row.get(metric)
        out = [float(v)] if isinstance(v, (int, float)) and not isinstance(v, bool) else []
    return [v for v in out if math.isfinite(v)]


def summarise(rows: Iterable[Mapping[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    """Group the successful rows by the ``by`` parameters; median / q25 / q75 / n per metric.

    For each metric m the summary has ``m`` (median), ``m_q25``, ``m_q75`` and ``m_n`` (how many
    values were pooled), plus ``n_networks``, the mean ``ceiling`` of the group and the mean
    decision accuracy as a fraction of the ideal observer (``frac_ideal``) when reported;
    ``_networks``: each network's ``seed`` and ``run_dir`` (keys starting with ``_`` are not
    table columns).
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("status", "ok") != "ok":
            continue
        groups.setdefault(tuple(row.get(k) for k in by), []).append(row)
    out = []
    for key in sorted(groups, key=_sort_key):
        members = groups[key]
        rec: dict[str, Any] = dict(zip(by, key))
        rec["n_networks"] = len(members)
        for m in METRICS:
            pooled = [v for r in members for v in _values(r, m)]
            if pooled:
                q25, med, q75 = np.percentile(pooled, [25, 50, 75])
                rec.update({m: med, f"{m}_q25": q25, f"{m}_q75": q75, f"{m}_n": len(pooled)})
            else:
                rec.update({m: math.nan, f"{m}_q25": math.nan, f"{m}_q75": math.nan, f"{m}_n": 0})
        for extra in ("ceiling", "bayes_bound", "frac_ideal"):
            vals = [float(r[extra]) for r in members if finite(r.get(extra))]
            rec[extra] = float(np.mean(vals)) if vals else math.nan
        # the spread across networks: one value per network (its folds x fits pooled), keyed
        # by seed so that trained and control, or two conditions, pair network by network
        by_seed = {m: by_seed_values(members, m) for m in network_metrics(members)}
        rec["_by_seed"] = {m: v for m, v in by_seed.items() if v}
        rec["seeds"] = sorted(_keys(members), key=_seed_sort)
        nets = list(by_seed["ood_r2"].values())
        rec["ood_r2_per_network"] = nets
        rec["ood_r2_net_median"] = float(np.median(nets)) if nets else math.nan
        rec["ood_r2_net_mean"] = float(np.mean(nets)) if nets else math.nan
        rec["ood_r2_net_lo"], rec["ood_r2_net_hi"] = t_interval(nets)
        base = list(by_seed["untrained_ood_r2"].values())
        rec["untrained_ood_r2_per_network"] = base
        rec["untrained_ood_r2_net_median"] = float(np.median(base)) if base else math.nan
        adam = [
            (float(r["ood_r2_adam_median"]), float(r["ood_r2"]))
            for r in members
            if finite(r.get("ood_r2_adam_median")) and finite(r.get("ood_r2"))
        ]
        rec["ood_r2_adam"] = float(np.median([a for a, _ in adam])) if adam else math.nan
        rec["adam_minus_closed_per_network"] = [a - c for a, c in adam]
        for m in PER_NETWORK:
            vals = [float(r[m]) for r in members if finite(r.get(m))]
            if vals:
                rec[f"{m}_per_network"] = vals
                rec[m] = float(np.median(vals))
        # each network's OOD r^2 per held-out region, by seed (a region can hold few trials)
        folds = {
            k: {str(f): v for f, v in r["ood_r2_folds"].items()}
            for k, r in zip(_keys(members), members)
            if isinstance(r.get("ood_r2_folds"), Mapping)
        }
        if folds:
            rec["_folds_by_seed"] = {k: folds[k] for k in sorted(folds, key=_seed_sort)}
        # per-axis OOD r^2 (lists of D): the mean over networks, axis by axis
        for k in sorted({k for r in members for k in r if k.endswith("_per_axis")}):
            lists = [r[k] for r in members if isinstance(r.get(k), (list, tuple)) and r[k]]
            if lists and len({len(v) for v in lists}) == 1:
                rec[k] = [float(np.nanmean(col)) for col in zip(*lists)]
        # paired within each network: mean difference, 95% t-interval, sign-flip p
        for prefix, control in (("gain", "untrained_ood_r2"), ("gain_input", "input_ood_r2")):
            t = paired_test(by_seed["ood_r2"], by_seed[control], prefix)
            name = "gain_over_untrained" if prefix == "gain" else "gain_over_input"
            rec[name] = t.mean
            rec[f"{prefix}_lo"], rec[f"{prefix}_hi"] = t.interval
            rec[f"{prefix}_p"] = t.p
        # the networks themselves, for figures that analyse them further (not a table column)
        rec["_networks"] = [{"seed": r.get("seed"), "run_dir": r.get("run_dir")} for r in members]
        # grid fields the group is not keyed by but its networks share (e.g. the RL agents'
        # architecture and N), for pages that name them
        rec["_shared"] = {
            k: members[0][k]
            for k in CONDITION_KEYS
            if k not in by
            and members[0].get(k) is not None
            and all(r.get(k) == members[0][k] for r in members)
        }
        out.append(rec)
    return out


NOT_METRICS = frozenset(
    {*CONDITION_KEYS, "seed", "status", "cpu_s", "wall_s", "train_seconds", "train_steps"}
)
"""Numeric row fields that describe a point or its cost, not a measurement of its network."""


def network_metrics(members: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every measurement the rows carry, as a scalar or as a ``<m>_values`` list: what is kept
    per network (``_by_seed``) for paired tests and per-network dots."""
    names: dict[str, None] = dict.fromkeys(("ood_r2", "untrained_ood_r2", "input_ood_r2"))
    for r in members:
        for k, v in r.items():
            if k.endswith("_values") and isinstance(v, (list, tuple)):
                names.setdefault(k.removesuffix("_values"))
            elif finite(v) and k not in NOT_METRICS and not k.startswith("_"):
                names.setdefault(k)
    return list(names)


def _seed_of(row: Mapping[str, Any], index: int) -> Any:
    """The key that pairs a network with its control and across conditions: its seed (the
    same seed draws the same task and, where the shapes allow, the same initial weights)."""
    seed = row.get("seed")
    return seed if seed is not None else f"#{index}"


def _keys(members: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Each member's pairing key: its seed, or seed#index where a seed repeats in the group
    (such networks cannot pair across conditions and are kept apart)."""
    seeds = [_seed_of(r, i) for i, r in enumerate(members)]
    return [s if seeds.count(s) == 1 else f"{s}#{i}" for i, s in enumerate(seeds)]


def network_value(row: Mapping[str, Any], metric: str) -> float:
    """One network's value of a metric: the median of its folds x fits (or its scalar)."""
    vals = _values(row, metric)
    return float(np.median(vals)) if vals else math.nan


def by_seed_values(members: Sequence[Mapping[str, Any]], metric: str) -> dict[Any, float]:
    """seed -> the network's value of ``metric``, for the networks that have it, by seed."""
    out = {k: network_value(r, metric) for k, r in zip(_keys(members), members)}
    return {k: out[k] for k in sorted(out, key=_seed_sort) if math.isfinite(out[k])}


def _seed_sort(k: Any) -> tuple:
    return (0, float(k), "") if finite(k) else (1, 0.0, str(k))


def finite(v: Any) -> bool:
    """A real number (not a bool) that is finite."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def mean_finite(values: Iterable[Any]) -> float:
    """Mean of the finite numbers among ``values``; NaN if there are none."""
    vals = [float(v) for v in values if finite(v)]
    return float(np.mean(vals)) if vals else math.nan


def _sort_key(key: tuple) -> tuple:
    def one(v: Any) -> tuple:
        if isinstance(v, str) and v in ARCH_ORDER:
            return (0, ARCH_ORDER.index(v), "")
        if isinstance(v, (int, float)):
            return (1, float(v), "")
        return (2, 0.0, str(v))

    return tuple(one(v) for v in key)


def select(summary: Sequence[Mapping[str, Any]], **where: Any) -> list[Mapping[str, Any]]:
    """Summary rows whose fields equal ``where``."""
    return [r for r in summary if all(r.get(k) == v for k, v in where.items())]


def fmt(rec: Mapping[str, Any], m: str) -> str:
    """``median [q25, q75]`` with 3 decimals, or ``-``."""
    v = rec.get(m, math.nan)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    if "angle" in m:
        return f"{v:.1f} [{rec[f'{m}_q25']:.1f}, {rec[f'{m}_q75']:.1f}]"
    return f"{v:.3f} [{rec[f'{m}_q25']:.3f}, {rec[f'{m}_q75']:.3f}]"


def num(v: Any, digits: int = 3) -> str:
    """A finite number with ``digits`` decimals, or ``-``."""
    return f"{v:.{digits}f}" if finite(v) else "-"


def markdown_table(
    summary: Sequence[Mapping[str, Any]], keys: Sequence[str], theory: str = "ceiling"
) -> str:
    """A markdown table per condition: the network's OOD r^2 (pooled median [IQR], the paper's
    statistic, and the per-network medians in seed order), its controls (untrained,
    encoded-input average, evidence mean, and the read-outs of the outputs where probed), the
    theory's extraction of x* from the outputs and the outputs' excess cross-entropy over the
    ideal observer (medians over networks), the gain over untrained (mean paired difference,
    95% t-interval, sign-flip p), in-distribution r^2, angle, the r^2 of mu (the paper's Eq. 7)
    and the Bayes bound."""
    head = [
        *keys,
        "networks",
        "OOD r^2 median [IQR] (paper's statistic)",
        "OOD r^2 per network (seeds)",
        "untrained OOD r^2",
        "gain over untrained, mean [95% CI], p",
        "input-average OOD r^2",
        "mu OOD r^2",
        "own-outputs OOD r^2",
        "ideal-outputs OOD r^2",
        "extraction r^2",
        "excess BCE (nats)",
        "in-dist. r^2",
        "angle (deg)",
        "r^2 of mu (Eq. 7)" if theory == "ceiling" else theory,
        "Bayes bound",
    ]
    adam = any(finite(r.get("ood_r2_adam")) for r in summary)
    if adam:
        head.insert(len(keys) + 3, "OOD r^2, paper's Adam protocol (median over networks)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        cells = [str(r.get(k)) for k in keys]
        gain = r.get("gain_over_untrained", math.nan)
        cells += [
            str(r["n_networks"]),
            fmt(r, "ood_r2"),
            _per_network_cell(r),
            fmt(r, "untrained_ood_r2"),
            _gain_cell(gain, r.get("gain_lo"), r.get("gain_hi"), r.get("gain_p")),
            fmt(r, "input_ood_r2"),
            fmt(r, "mu_ood_r2"),
            num(_network_median(r, "outputs_ood_r2")),
            num(_network_median(r, "ideal_outputs_ood_r2")),
            num(_network_median(r, "extraction_r2_latent")),
            num(_network_median(r, "excess_bce"), 4),
            fmt(r, "id_r2"),
            fmt(r, "angle_deg"),
            num(r.get(theory, math.nan)),
            num(r.get("bayes_bound", math.nan)),
        ]
        if adam:
            cells.insert(len(keys) + 3, num(r.get("ood_r2_adam", math.nan)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _network_median(row: Mapping[str, Any], metric: str) -> float:
    """Median over the condition's networks of one per-network value, NaN if none."""
    vals = list(((row.get("_by_seed") or {}).get(metric) or {}).values())
    return float(np.median(vals)) if vals else math.nan


def _per_network_cell(row: Mapping[str, Any]) -> str:
    """'0.916 (0), 0.939 (1)': each network's OOD r^2 with its seed."""
    by = (row.get("_by_seed") or {}).get("ood_r2") or {}
    return ", ".join(f"{v:.3f} ({k})" for k, v in by.items()) or "-"


def _gain_cell(gain: Any, lo: Any, hi: Any, p: Any) -> str:
    if not finite(gain):
        return "-"
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if finite(lo) and finite(hi) else ""
    return f"{gain:+.3f}{ci}, p = {fmt_p(p) if finite(p) else '-'}"
