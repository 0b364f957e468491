"""Sentences and tables the figures' pages share: a condition against its controls, a trend over
networks, the bounds, the closed-form decoder against the paper's Adam protocol.

Every claim is a paired test over networks (:mod:`experiments.figures.inference`): a network
against its own control, or one condition against another on the same seeds, with the exact
sign-flip p-value; a sentence carries the call's verdict, Holm-adjusted over the page's calls
when the page is written inside :func:`inference.page_ledger`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .inference import (
    ALPHA,
    PairedTest,
    call,
    holm,
    paired_test,
    primary_family,
    t_interval,
)
from .stats import ARCH_LABELS, CONDITION_KEYS, fmt, num, select


def describe(where: Mapping[str, Any]) -> str:
    """A condition in words from its grid fields: ``RNN, N = 24, sigma = 0.2``."""
    names = {
        "n_tasks": "N",
        "latent_dim": "D",
        "sigma": "sigma",
        "rho": "rho",
        "stimulus_steps": "T",
        "encoder": "encoder",
        "encoder_scale": "w",
        "targets": "targets",
        "algo": "algo",
        "env_id": "env",
    }
    parts = [ARCH_LABELS.get(where["arch"], str(where["arch"]))] if where.get("arch") else []
    parts += [f"{label} = {where[k]}" for k, label in names.items() if where.get(k) is not None]
    return ", ".join(parts)


CHOICES = {
    "": "quadrant held out, calibrated ridge (the default)",
    "_halfspace": "half-space held out, calibrated ridge",
    "_ols": "quadrant held out, near-OLS decoder",
}
"""The analysis choices an OOD claim is re-checked under: a suffix of the metric and of every
control's key (``ood_r2_halfspace``, ``untrained_ood_r2_halfspace`` ...), probed on the same
trials for the network and its controls alike."""


def metric_name(metric: str) -> str:
    """A metric's name on a page: ``OOD r^2`` for ``ood_r2``, ``OOD r^2 (half-space)`` ..."""
    names = {
        "ood_r2": "OOD r^2",
        "ood_r2_halfspace": "OOD r^2 (half-space split)",
        "ood_r2_ols": "OOD r^2 (near-OLS decoder)",
        "id_r2": "in-dist. r^2",
        "angle_deg": "decoder angle",
        "ccgp_factors": "CCGP",
        "parallelism_factors": "parallelism",
    }
    return names.get(metric, metric)


def condition_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The grid fields of a summary row (:data:`stats.CONDITION_KEYS` it has)."""
    return {k: row[k] for k in CONDITION_KEYS if row.get(k) is not None}


def per_seed(row: Mapping[str, Any], metric: str = "ood_r2") -> dict[Any, float]:
    """seed -> the network's value of ``metric`` in a summary row (empty when not probed)."""
    return dict((row.get("_by_seed") or {}).get(metric) or {})


def control_test(
    row: Mapping[str, Any],
    control: str,
    *,
    metric: str = "ood_r2",
    primary: bool = False,
    suffix: str = "",
    expect: int = 0,
) -> PairedTest:
    """The condition's networks against one of their controls, network by network; ``suffix``
    (a key of :data:`CHOICES`) measures both under another analysis choice."""
    name = CONTROL_NAMES.get(control, control)
    metric = f"{metric}{suffix}"
    return paired_test(
        per_seed(row, metric),
        per_seed(row, f"{control}{suffix}"),
        f"{describe(condition_of(row))}: {metric_name(metric)} trained - {name}",
        primary=primary,
        expect=expect,
    )


def change_test(
    first: Mapping[str, Any],
    last: Mapping[str, Any],
    x: str,
    *,
    metric: str = "ood_r2",
    expect: int = 0,
    primary: bool = False,
    suffix: str = "",
) -> PairedTest:
    """``metric`` at the last condition minus the first, paired by seed (the conditions share
    their seeds); ``suffix``: under another analysis choice (:data:`CHOICES`)."""
    metric = f"{metric}{suffix}"
    where = describe({k: v for k, v in condition_of(first).items() if k != x})
    return paired_test(
        per_seed(last, metric),
        per_seed(first, metric),
        f"{where + ': ' if where else ''}{metric_name(metric)} at {describe({x: last.get(x)})} "
        f"- at {describe({x: first.get(x)})}",
        expect=expect,
        primary=primary,
        words=("rises", "falls"),
    )


def ends(summary: Sequence[Mapping[str, Any]], x: str, where: Mapping[str, Any]) -> list:
    """The rows of ``where`` with a finite OOD r^2, sorted by x."""
    rows = sorted(select(summary, **where), key=lambda r: r[x])
    return [r for r in rows if math.isfinite(r["ood_r2"])]


def trend_test(
    summary: Sequence[Mapping[str, Any]],
    x: str,
    where: Mapping[str, Any],
    *,
    expect: int = 0,
    primary: bool = False,
    suffix: str = "",
) -> PairedTest | None:
    """The change of OOD r^2 from the smallest to the largest x, paired by seed; None with
    fewer than two finished x."""
    rows = ends(summary, x, where)
    if len(rows) < 2:
        return None
    return change_test(rows[0], rows[-1], x, expect=expect, primary=primary, suffix=suffix)


def trend(summary: Sequence[Mapping[str, Any]], x: str, where: Mapping[str, Any]) -> str:
    """How the per-network OOD r^2 changes from the smallest to the largest x (a paired test
    over the networks, which share their seeds), beside the same change untrained."""
    test = trend_test(summary, x, where)
    if test is None:
        return "not enough points"
    rows = ends(summary, x, where)
    first, last = rows[0], rows[-1]
    du = paired_test(
        per_seed(last, "untrained_ood_r2"), per_seed(first, "untrained_ood_r2"), ""
    ).mean
    return (
        f"per-network OOD r^2 from {describe({x: first[x]})} to {describe({x: last[x]})}: "
        f"{call(test)} "
        f"(untrained networks: {du:+.3f})"
    )


CONTROL_NAMES = {
    "untrained_ood_r2": "untrained",
    "input_ood_r2": "input average",
    "mu_ood_r2": "mu",
    "outputs_ood_r2": "own outputs",
    "ideal_outputs_ood_r2": "ideal observer's outputs",
}
"""How each control is named in a call's label."""


def against_controls(row: Mapping[str, Any], label: str) -> str:
    """One condition's OOD r^2 against its untrained control, the input baseline and, where
    probed, what its outputs alone imply: a paired test over networks each."""
    k = row["n_networks"]
    med, lo, hi = row["ood_r2_net_mean"], row["ood_r2_net_lo"], row["ood_r2_net_hi"]
    ci = f" [95% CI {lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else ""
    text = (
        f"{label}: OOD r^2 {med:.3f}{ci} (mean over {k} networks); "
        f"untrained {row.get('untrained_ood_r2_net_median', math.nan):.3f}"
    )
    if per_seed(row, "untrained_ood_r2"):
        text += f"; against untrained: {call(control_test(row, 'untrained_ood_r2'))}"
    inp = row.get("input_ood_r2", math.nan)
    if math.isfinite(inp) and per_seed(row, "input_ood_r2"):
        text += (
            f"; against the decoder on the encoded input's average ({inp:.3f}): "
            f"{call(control_test(row, 'input_ood_r2'))}"
        )
    for control in ("outputs_ood_r2", "ideal_outputs_ood_r2"):
        if per_seed(row, control):
            value = float(np.median(list(per_seed(row, control).values())))
            text += (
                f"; against a read-out of the {CONTROL_NAMES[control]} ({value:.3f}): "
                f"{call(control_test(row, control))}"
            )
    return text + "."


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
        f"conditions (closest: {gap:+.3f}). The r^2 of mu (the paper's Eq. 7, 1 - 12 "
        "sigma^2 / t) is no bound: a shrunk linear read-out of mu reaches V / (V + sigma^2 / t), "
        "and the Bayes posterior mean more."
    )


def bound_rows(summary: Sequence[Mapping[str, Any]], x: str) -> str:
    """A table: x, OOD and in-distribution r^2, the r^2 of mu (the paper's Eq. 7), mu's own
    fitted OOD r^2 (the linear reference) and the Bayes bound."""
    lines = [
        f"| {x} | OOD r^2 median [IQR] | in-dist. r^2 | untrained OOD r^2 | mu OOD r^2 (fitted) | "
        "r^2 of mu (Eq. 7) | "
        "Bayes bound | in-dist. - Bayes bound |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(summary, key=lambda r: r[x]):
        bb = r.get("bayes_bound", math.nan)
        gap = r["id_r2"] - bb if math.isfinite(bb) and math.isfinite(r["id_r2"]) else math.nan
        lines.append(
            f"| {r[x]} | {fmt(r, 'ood_r2')} | {fmt(r, 'id_r2')} | "
            f"{fmt(r, 'untrained_ood_r2')} | {fmt(r, 'mu_ood_r2')} | {num(r.get('ceiling'))} | "
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
    """Condition a's per-network OOD r^2 against condition b's, paired by seed, beside the
    same difference between their untrained networks."""
    test = paired_test(
        per_seed(a),
        per_seed(b),
        f"OOD r^2 {describe(condition_of(a))} - {describe(condition_of(b))}",
    )
    if test.n == 0:
        return f"{name_a} against {name_b}: no networks on shared seeds"
    untrained = paired_test(
        per_seed(a, "untrained_ood_r2"),
        per_seed(b, "untrained_ood_r2"),
        f"untrained OOD r^2 {describe(condition_of(a))} - {describe(condition_of(b))}",
    )
    text = f"{name_a} against {name_b}: {call(test)}"
    if untrained.n:
        text += f"; untrained: {call(untrained)}"
    return text


def headline(summary: Sequence[Mapping[str, Any]]) -> str:
    """One sentence for an index page: the range of the conditions' OOD r^2 (mean over
    networks) and in how many conditions it beats the same networks untrained and the decoder
    on the encoded input's average (paired tests over networks, Holm-adjusted over the
    conditions)."""
    rows = [r for r in summary if math.isfinite(r.get("ood_r2_net_mean", math.nan))]
    if not rows:
        return "No finished networks."
    means = [r["ood_r2_net_mean"] for r in rows]
    k = len(rows)
    nets = sum(int(r.get("n_networks", 0)) for r in rows)
    counts = {}
    for control in ("untrained_ood_r2", "input_ood_r2"):
        tests = [control_test(r, control) for r in rows]
        adj = holm([t.p for t in tests])
        counts[control] = (
            sum(t.mean > 0 and p < ALPHA for t, p in zip(tests, adj)),
            sum(t.mean < 0 and p < ALPHA for t, p in zip(tests, adj)),
        )
    return (
        f"OOD r^2 {min(means):.3f} to {max(means):.3f} (mean over networks) across {k} "
        f"conditions and {nets} networks; above the same networks untrained in "
        f"{counts['untrained_ood_r2'][0]} of {k} conditions (below in "
        f"{counts['untrained_ood_r2'][1]}); above the decoder on the encoded input's average in "
        f"{counts['input_ood_r2'][0]} of {k} (below it in {counts['input_ood_r2'][1]}); paired "
        f"tests over networks, Holm-adjusted over the {k} conditions at {ALPHA}."
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


def rise_test(
    summary: Sequence[Mapping[str, Any]],
    key: str,
    value: Any,
    *,
    primary: bool = False,
    suffix: str = "",
) -> PairedTest | None:
    """The rise of one condition's OOD r^2 from the smallest to the largest N, paired by seed
    (the claim predicts a rise)."""
    return trend_test(summary, "n_tasks", {key: value}, expect=1, primary=primary, suffix=suffix)


def rise_verdict(summary: Sequence[Mapping[str, Any]], key: str, value: Any, name: str) -> str:
    """Whether one condition's OOD r^2 rises from the smallest to the largest N and, at the
    largest N, beats the same networks untrained (paired tests over networks): the two parts
    of the claim 'it disentangles with more tasks' that a figure of N can test."""
    rise = rise_test(summary, key, value)
    if rise is None:
        return f"- {name}: fewer than two N finished; nothing to conclude."
    last = ends(summary, "n_tasks", {key: value})[-1]
    beats = paired_test(
        per_seed(last),
        per_seed(last, "untrained_ood_r2"),
        f"{describe(condition_of(last))}: OOD r^2 trained - untrained",
        expect=1,
    )
    return (
        f"- {name}: the rise of OOD r^2 with N: {call(rise)}; trained above untrained at "
        f"N = {last['n_tasks']}: {call(beats)}. The claim holds for it only where both hold."
    )


def robustness_section(
    summary: Sequence[Mapping[str, Any]],
    primary: Callable[..., PairedTest | None] | None,
    keys: Sequence[str],
) -> str:
    """The primary contrast re-tested under each analysis choice (:data:`CHOICES`; re-analyses
    of one hypothesis, tested alone and not counted as further calls), and each condition's
    OOD r^2 beside its controls under every choice (means over networks)."""
    have = [c for c in CHOICES if any(per_seed(r, f"ood_r2{c}") for r in summary)]
    if len(have) < 2:
        return ""
    lines = [
        "## Robustness: the split and the decoder's penalty",
        "",
        "OOD r^2 depends on which region is held out and on the decoder's penalty; each choice "
        "below is applied to the networks and to their controls alike, on the same trials.",
        "",
    ]
    if primary is not None:
        for c in have:
            family = primary_family(primary(summary, suffix=c))
            adjusted = holm([t.p for t in family]) if len(family) > 1 else [math.nan] * len(family)
            for test, p in zip(family, adjusted):
                test = replace(test, primary=True, p_adjusted=p)
                what = f"{test.label}: " if len(family) > 1 else ""
                lines.append(f"- Primary contrast, {CHOICES[c]}: {what}{test.verdict()}.")
        lines.append("")
    head = [*keys, "networks"]
    for c in have:
        head += [f"{metric_name('ood_r2' + c)}", "untrained", "input average"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        cells = [str(r.get(k)) for k in keys] + [str(r.get("n_networks"))]
        for c in have:
            for m in (f"ood_r2{c}", f"untrained_ood_r2{c}", f"input_ood_r2{c}"):
                vals = list(per_seed(r, m).values())
                cells.append(f"{np.mean(vals):.3f}" if vals else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def geometry_calls(row: Mapping[str, Any], label: str) -> list[str]:
    """Page lines for the code's geometry beyond the paper at one condition: CCGP and
    parallelism of the factor dichotomies against their geometric nulls (each network against
    its own null's 95th percentile), the decoder-axis angle against that of the evidence mean mu
    (its calibration: mu's decoders are as orthogonal as the task allows), and the shattering
    dimension (descriptive: a linear 2-factor code scores about 0.83)."""
    lines = []
    for m, null in (
        ("ccgp_factors", "ccgp_factors_null_geometric_p95"),
        ("parallelism_factors", "parallelism_factors_null_geometric_p95"),
    ):
        if per_seed(row, m) and per_seed(row, null):
            test = paired_test(
                per_seed(row, m),
                per_seed(row, null),
                f"{describe(condition_of(row))}: {metric_name(m)} - its geometric null (p95)",
                expect=1,
            )
            lines.append(f"- {label}: {metric_name(m)} against its geometric null: {call(test)}.")
    if per_seed(row, "angle_deg") and per_seed(row, "mu_angle_deg"):
        test = paired_test(
            per_seed(row, "angle_deg"),
            per_seed(row, "mu_angle_deg"),
            f"{describe(condition_of(row))}: decoder angle - mu's decoder angle",
        )
        mu = float(np.mean(list(per_seed(row, "mu_angle_deg").values())))
        lines.append(
            f"- {label}: decoder-axis angle against mu's ({mu:.1f} deg, its calibration): "
            f"{call(test)} (degrees)."
        )
    sh = list(per_seed(row, "shattering").values())
    if sh:
        lo, hi = t_interval(sh)
        ci = f" [95% CI {lo:.3f}, {hi:.3f}]" if math.isfinite(lo) else ""
        lines.append(
            f"- {label}: shattering dimension {np.mean(sh):.3f}{ci} (mean over {len(sh)} "
            "networks; a linear 2-factor code scores about 0.83)."
        )
    return lines
