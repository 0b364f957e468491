"""Sentences and tables the figures' pages share: a condition against its controls, a trend over
networks, the two bounds, the closed-form decoder against the paper's Adam protocol.

Every claim is stated against an interval over networks (a bootstrap over the networks of a
condition, :mod:`experiments.figures.stats`): a difference counts only where its 95% interval
excludes 0.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .stats import bootstrap_median_difference, fmt, num, select


def trend(summary: Sequence[Mapping[str, Any]], x: str, where: Mapping[str, Any]) -> str:
    """How the per-network OOD r^2 changes from the smallest to the largest x, with a bootstrap
    interval over networks, beside the same change of the untrained networks."""
    rows = sorted(select(summary, **where), key=lambda r: r[x])
    rows = [r for r in rows if math.isfinite(r["ood_r2"])]
    if len(rows) < 2:
        return "not enough points"
    first, last = rows[0], rows[-1]
    d, lo, hi = bootstrap_median_difference(last["ood_r2_per_network"], first["ood_r2_per_network"])
    du = bootstrap_median_difference(
        last.get("untrained_ood_r2_per_network", []), first.get("untrained_ood_r2_per_network", [])
    )[0]
    word = "rises" if lo > 0 else ("falls" if hi < 0 else "does not change beyond the spread")
    return (
        f"per-network OOD r^2 {word} from {x}={first[x]} to {x}={last[x]}: change {d:+.3f} "
        f"[95% CI {lo:+.3f}, {hi:+.3f}] over networks (untrained networks: {du:+.3f})"
    )


def against_controls(row: Mapping[str, Any], label: str) -> str:
    """One condition's OOD r^2 against its untrained control and the input baselines, in words."""
    k = row["n_networks"]
    med, lo, hi = row["ood_r2_net_median"], row["ood_r2_net_lo"], row["ood_r2_net_hi"]
    g, glo, ghi = row["gain_over_untrained"], row["gain_lo"], row["gain_hi"]
    text = (
        f"{label}: OOD r^2 {med:.3f} [95% CI {lo:.3f}, {hi:.3f}] (median over {k} networks); "
        f"untrained {row.get('untrained_ood_r2_net_median', math.nan):.3f}"
    )
    if math.isfinite(g):
        verdict = (
            "above its untrained control"
            if glo > 0
            else "below its untrained control"
            if ghi < 0
            else "not distinguishable from its untrained control"
        )
        text += f", gain {g:+.3f} [{glo:+.3f}, {ghi:+.3f}]: {verdict}"
    inp = row.get("input_ood_r2", math.nan)
    if math.isfinite(inp):
        gi, gilo, gihi = row["gain_over_input"], row["gain_input_lo"], row["gain_input_hi"]
        side = "above" if gilo > 0 else ("below" if gihi < 0 else "level with")
        text += (
            f"; {side} the decoder on the encoded input's average ({inp:.3f}; difference "
            f"{gi:+.3f} [{gilo:+.3f}, {gihi:+.3f}])"
        )
    return text + "."


def side(lo: float, hi: float) -> str:
    """'above' / 'below' / 'level with' from a 95% interval of a difference."""
    return "above" if lo > 0 else ("below" if hi < 0 else "level with")


ADAM_AGREEMENT = 0.02
"""How close the closed-form OOD decoder must be to the paper's Adam protocol on the median
network."""


def estimators_section(summary: Sequence[Mapping[str, Any]]) -> str:
    """The closed-form OOD r^2 against the paper's Adam protocol, network by network."""
    diffs = [d for r in summary for d in r.get("adam_minus_closed_per_network", [])]
    if not diffs:
        return ""
    absd = np.abs(diffs)
    med = float(np.median(absd))
    lines = [
        "## The closed-form decoder against the paper's Adam protocol",
        "",
        f"On each of the {len(diffs)} networks the OOD r^2 was also measured with the paper's "
        "protocol (5 Adam-trained linear decoders per fold on the raw states, lr 3e-3, batches "
        "of 16 fresh trials, 3000 / 3000 / 2000 / 1000 / 1000 batches at N = 2 / 3 / 6 / 12 / "
        f"24). |closed form - Adam|: median {med:.3f} over networks, 90th percentile "
        f"{float(np.percentile(absd, 90)):.3f}, largest {float(absd.max()):.3f}; "
        + (
            f"the default estimator agrees within {ADAM_AGREEMENT} on the median network."
            if med <= ADAM_AGREEMENT
            else f"the default estimator does NOT agree within {ADAM_AGREEMENT} on the median "
            "network."
        ),
        "",
    ]
    worse = [
        r
        for r in summary
        if np.median(np.abs(r.get("adam_minus_closed_per_network") or [0])) > ADAM_AGREEMENT
    ]
    for r in worse:
        vals = ", ".join(f"{v:+.3f}" for v in r["adam_minus_closed_per_network"])
        lines.append(
            f"- They differ by more than {ADAM_AGREEMENT} at {r.get('arch')} N = {r.get('n_tasks')}: "
            f"Adam - closed form = {vals} per network."
        )
    return "\n".join(lines)


def bayes_check(summary: Sequence[Mapping[str, Any]]) -> str:
    """Whether any condition's in-distribution r^2 exceeds the Bayes bound (it must not, beyond
    sampling error), and by how much the closest comes."""
    pairs = [
        (r["id_r2"] - r["bayes_bound"], r)
        for r in summary
        if math.isfinite(r.get("id_r2", math.nan)) and math.isfinite(r.get("bayes_bound", math.nan))
    ]
    if not pairs:
        return "- No Bayes bound was computed for these conditions."
    above = [p for p in pairs if p[0] > 0]
    gap = max(p[0] for p in pairs)
    return (
        f"- In-distribution r^2 exceeds the Bayes bound in {len(above)} of {len(pairs)} "
        f"conditions (closest: {gap:+.3f}); above the linear ceiling in "
        f"{sum(r['id_r2'] > r['ceiling'] for _, r in pairs)}, which a nonlinear code may do."
    )


def bound_rows(summary: Sequence[Mapping[str, Any]], x: str) -> str:
    """A table: x, OOD and in-distribution r^2, the linear ceiling and the Bayes bound."""
    lines = [
        f"| {x} | OOD r^2 median [IQR] | in-dist. r^2 | untrained OOD r^2 | linear ceiling | "
        "Bayes bound | in-dist. - Bayes bound |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(summary, key=lambda r: r[x]):
        bb = r.get("bayes_bound", math.nan)
        gap = r["id_r2"] - bb if math.isfinite(bb) and math.isfinite(r["id_r2"]) else math.nan
        lines.append(
            f"| {r[x]} | {fmt(r, 'ood_r2')} | {fmt(r, 'id_r2')} | "
            f"{fmt(r, 'untrained_ood_r2')} | {num(r.get('ceiling'))} | "
            f"{num(bb)} | {gap:+.3f} |"
        )
    return "\n".join(lines)


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV: every key a column (first-seen order), NaN as an empty cell; keys
    starting with ``_`` (what the figures keep for themselves) are left out."""
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols and not k.startswith("_"))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                k: ("" if isinstance(v, float) and math.isnan(v) else v)
                for k, v in r.items()
                if k in cols
            }
        )
    return buf.getvalue()


def versus(a: Mapping[str, Any], b: Mapping[str, Any], name_a: str, name_b: str) -> str:
    """Condition a's per-network OOD r^2 against condition b's, with a 95% bootstrap interval
    over networks, beside the same difference between their untrained networks."""
    d, lo, hi = bootstrap_median_difference(a["ood_r2_per_network"], b["ood_r2_per_network"])
    du, ulo, uhi = bootstrap_median_difference(
        a.get("untrained_ood_r2_per_network", []), b.get("untrained_ood_r2_per_network", [])
    )
    if not math.isfinite(d):
        return f"{name_a} against {name_b}: not enough networks"
    text = (
        f"{name_a} is {side(lo, hi)} {name_b} ({d:+.3f} [95% CI {lo:+.3f}, {hi:+.3f}] over networks"
    )
    if math.isfinite(du):
        text += f"; untrained: {du:+.3f} [{ulo:+.3f}, {uhi:+.3f}]"
    return text + ")"


def headline(summary: Sequence[Mapping[str, Any]]) -> str:
    """One sentence for an index page: the range of the conditions' OOD r^2 (median over
    networks) and in how many conditions it beats the same networks untrained and the decoder
    on the encoded input's average (95% intervals over networks excluding 0)."""
    rows = [r for r in summary if math.isfinite(r.get("ood_r2_net_median", math.nan))]
    if not rows:
        return "No finished networks."
    meds = [r["ood_r2_net_median"] for r in rows]
    k = len(rows)
    nets = sum(int(r.get("n_networks", 0)) for r in rows)
    above_u = sum(r.get("gain_lo", math.nan) > 0 for r in rows)
    above_i = sum(r.get("gain_input_lo", math.nan) > 0 for r in rows)
    below_i = sum(r.get("gain_input_hi", math.nan) < 0 for r in rows)
    return (
        f"OOD r^2 {min(meds):.3f} to {max(meds):.3f} (median over networks) across {k} "
        f"conditions and {nets} networks; above the same networks untrained in {above_u} of "
        f"{k} conditions; above the decoder on the encoded input's average in {above_i} of {k} "
        f"(below it in {below_i})."
    )


def pairs_by(
    summary: Sequence[Mapping[str, Any]], key: str, a: Any, b: Any, x: str = "n_tasks"
) -> list[tuple[Any, Mapping[str, Any], Mapping[str, Any]]]:
    """(x, row with key = a, row with key = b) at every x where both conditions finished."""
    out = []
    for v in sorted({r[x] for r in summary}):
        ra, rb = select(summary, **{key: a, x: v}), select(summary, **{key: b, x: v})
        if ra and rb:
            out.append((v, ra[0], rb[0]))
    return out


def pair_headline(summary: Sequence[Mapping[str, Any]], key: str, labels: Mapping[Any, str]) -> str:
    """At the largest N where both conditions of ``key`` finished: each one's OOD r^2 (median
    over networks) beside its untrained networks and its encoded input's average."""
    a, b = list(labels)
    pairs = pairs_by(summary, key, a, b)
    if not pairs:
        return f"No N with both {labels[a]} and {labels[b]} finished."
    n, ra, rb = pairs[-1]
    parts = [
        f"{labels[v]} {r['ood_r2_net_median']:.3f} (untrained "
        f"{r['untrained_ood_r2_net_median']:.3f}, input average {r['input_ood_r2']:.3f})"
        for v, r in ((a, ra), (b, rb))
    ]
    return f"At N = {n}, OOD r^2 with " + " vs ".join(parts) + "."


def conditions_section(
    summary: Sequence[Mapping[str, Any]],
    key: str,
    labels: Mapping[Any, str],
    notes: Mapping[Any, str] | None = None,
) -> list[str]:
    """Page lines: per condition of ``key`` (a heading with its note), the trend over N and
    every N against its controls; then each N's second condition against the first."""
    lines: list[str] = []
    for v, name in labels.items():
        rows = sorted(select(summary, **{key: v}), key=lambda r: r["n_tasks"])
        if not rows:
            continue
        lines += [f"### {name}{(notes or {}).get(v, '')}", ""]
        lines.append(f"- {trend(summary, 'n_tasks', {key: v})}.")
        lines += ["- " + against_controls(r, f"N = {r['n_tasks']}") for r in rows]
        lines.append("")
    a, b = list(labels)
    pairs = pairs_by(summary, key, a, b)
    if pairs:
        lines += ["### In plain words", ""]
        lines += [f"- N = {n}: {versus(rb, ra, labels[b], labels[a])}." for n, ra, rb in pairs]
    return lines


def rise_verdict(summary: Sequence[Mapping[str, Any]], key: str, value: Any, name: str) -> str:
    """Whether one condition's OOD r^2 rises from the smallest to the largest N (a 95% interval
    over networks above 0) and, at the largest N, beats the same networks untrained: the two
    parts of the claim 'it disentangles with more tasks' that a figure of N can test."""
    rows = sorted(select(summary, **{key: value}), key=lambda r: r["n_tasks"])
    if len(rows) < 2:
        return f"- {name}: fewer than two N finished; nothing to conclude."
    first, last = rows[0], rows[-1]
    d, lo, hi = bootstrap_median_difference(last["ood_r2_per_network"], first["ood_r2_per_network"])
    rises, beats = lo > 0, last["gain_lo"] > 0
    return (
        f"- {name}: OOD r^2 {'rises' if rises else 'does NOT clearly rise'} from N = "
        f"{first['n_tasks']} to N = {last['n_tasks']} ({d:+.3f} [{lo:+.3f}, {hi:+.3f}]) and at "
        f"N = {last['n_tasks']} is {side(last['gain_lo'], last['gain_hi'])} the same networks "
        f"untrained ({last['gain_over_untrained']:+.3f} [{last['gain_lo']:+.3f}, "
        f"{last['gain_hi']:+.3f}]): the claim "
        + ("holds for it." if rises and beats else "does NOT hold for it.")
    )
