"""Tests over networks: the statistics every figure page's verdicts rest on.

A claim on a page compares two sets of numbers *per network*: a trained network against the same
network untrained or against a decoder on its own inputs (paired within a network), or a
condition against another one whose networks share the seeds (paired by seed: the same task
draw and the same initial weights where the shapes allow). Folds and decoder fits are pooled
only within a network, never across them; the test runs across networks.

- :func:`paired_test`: the per-network differences, their mean with a t-interval, and the exact
  two-sided sign-flip permutation p-value (every one of the 2^n sign patterns up to
  ``EXACT_MAX`` networks; a seeded Monte Carlo over patterns beyond). With n networks the
  smallest p is 2 / 2^n: n = 5 cannot reach 0.05, n = 8 reaches 0.0078.
- :func:`holm`: Holm's step-down adjustment of a page's secondary calls.
- :func:`detectable`: the smallest mean difference a paired test at this n detects with 80%
  power, given the measured between-network SD (the page's power line).
- :class:`Ledger`: the calls one page makes. Sentences carry a placeholder for each call's
  verdict; once the page is written, :meth:`Ledger.resolve` replaces them with words tied to the
  Holm-adjusted p-values, and :meth:`Ledger.section` lists every call. Outside a ledger, a call
  reads at its unadjusted p-value.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
"""Two-sided level of every call."""

POWER = 0.8
"""The power the page's detectable difference is stated at."""

EXACT_MAX = 16
"""Up to this many networks the sign-flip p-value enumerates every sign pattern (2^16)."""

MONTE_CARLO_DRAWS = 2**16
"""Sign patterns drawn (seeded) beyond ``EXACT_MAX`` networks."""

_TIE = 1e-12
"""Relative tolerance under which a permuted statistic counts as equal to the observed one."""


def sign_flip_p(differences: Sequence[float], seed: int = 0) -> float:
    """Exact two-sided sign-flip permutation p-value of the mean of paired ``differences`` [n].

    Under the null that each network's difference is symmetric about 0, every pattern of signs
    is equally likely; p is the fraction of patterns whose |mean| is at least the observed one
    (the observed pattern included, so p >= 2 / 2^n). NaN for no differences; 1 when every
    difference is 0."""
    d = np.asarray([x for x in differences if math.isfinite(x)], dtype=float)
    n = d.size
    if n == 0:
        return math.nan
    observed = abs(d.sum())
    if observed == 0.0:
        return 1.0
    if n <= EXACT_MAX:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(MONTE_CARLO_DRAWS, n))
        signs[0] = 1.0  # the observed pattern is one of the draws
    sums = np.abs(signs @ d)
    hits = int(np.count_nonzero(sums >= observed * (1 - _TIE)))
    return hits / signs.shape[0]


def t_interval(differences: Sequence[float], level: float = 1 - ALPHA) -> tuple[float, float]:
    """The t-interval of the mean of ``differences`` [n] (NaNs below 2 values)."""
    d = np.asarray([x for x in differences if math.isfinite(x)], dtype=float)
    if d.size < 2:
        return math.nan, math.nan
    half = sps.t.ppf(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean() - half), float(d.mean() + half)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (NaNs stay NaN and do not count).

    The i-th smallest of m p-values is multiplied by m - i + 1 (i from 1), made monotone and
    capped at 1; a call holds at family-wise level alpha when its adjusted p is below alpha."""
    p = np.asarray(pvalues, dtype=float)
    ok = np.flatnonzero(np.isfinite(p))
    out = np.full(p.shape, math.nan)
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return [float(v) for v in out]


def smallest_p(n: int) -> float:
    """The smallest two-sided sign-flip p-value n networks can give: 2 / 2^n."""
    return 2.0 / 2.0**n if n > 0 else math.nan


def detectable(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest mean paired difference detected with ``power`` at two-sided ``alpha`` by n
    networks whose differences have between-network SD ``sd`` (the paired t-test's
    (t_{1-alpha/2} + t_{power}) sd / sqrt(n), which the sign-flip test matches closely at
    these n). Inf when no pattern of n signs can reach ``alpha``; NaN without an SD."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    if smallest_p(n) > alpha:
        return math.inf
    return float((sps.t.ppf(1 - alpha / 2, n - 1) + sps.t.ppf(power, n - 1)) * sd / math.sqrt(n))


@dataclass(frozen=True)
class PairedTest:
    """One call of a page: per-network differences ``a - b`` and the test on them.

    label: what is compared, in words ("RNN, N = 24: trained - untrained"); seeds: the networks'
    seeds, in the order of ``differences``; expect: the sign the claim predicts (+1 above, -1
    below, 0 a two-sided question); primary: the figure's pre-declared contrast (tested alone
    at ``ALPHA``, or Holm-adjusted within the primary family when a figure pre-declares
    several; every other call is Holm-adjusted with the page's other secondary calls);
    p_adjusted: set by the page's :class:`Ledger` (NaN outside one, and for a lone primary)."""

    label: str
    differences: tuple[float, ...]
    seeds: tuple[Any, ...] = ()
    expect: int = 0
    primary: bool = False
    p_adjusted: float = math.nan
    words: tuple[str, str] = ("above", "below")
    """How a significant two-sided difference reads: (positive, negative), e.g. ("rises",
    "falls") for a change from one condition to another."""

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences)) if self.differences else math.nan

    @property
    def median(self) -> float:
        return float(np.median(self.differences)) if self.differences else math.nan

    @property
    def sd(self) -> float:
        return float(np.std(self.differences, ddof=1)) if self.n >= 2 else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return t_interval(self.differences)

    @property
    def p(self) -> float:
        return sign_flip_p(self.differences)

    @property
    def p_used(self) -> float:
        """The p-value the verdict rests on: unadjusted for a lone primary contrast, Holm's
        within its family for a call inside a ledger (the primary family, or the secondary
        calls), unadjusted outside one."""
        if not math.isfinite(self.p_adjusted):
            return self.p
        return self.p_adjusted

    @property
    def significant(self) -> bool:
        return math.isfinite(self.p_used) and self.p_used < ALPHA

    @property
    def direction(self) -> str:
        """``words[0]`` / ``words[1]`` ('above' / 'below') when the test rejects 0, else 'not
        distinguishable'."""
        if not self.significant:
            return "not distinguishable"
        return self.words[0] if self.mean > 0 else self.words[1]

    @property
    def holds(self) -> bool:
        """The claim's predicted sign, significant (a two-sided question holds when it rejects)."""
        if not self.significant:
            return False
        return self.expect == 0 or (self.mean > 0) == (self.expect > 0)

    def numbers(self) -> str:
        """``+0.255 [95% CI +0.215, +0.338], p = 0.0078 (Holm 0.031), n = 8``."""
        if self.n == 0:
            return "no paired networks"
        lo, hi = self.interval
        ci = f" [95% CI {lo:+.3f}, {hi:+.3f}]" if math.isfinite(lo) else ""
        text = f"{self.mean:+.3f}{ci}, p = {fmt_p(self.p)}"
        if math.isfinite(self.p_adjusted):
            text += f" (Holm {fmt_p(self.p_adjusted)})"
        return text + f", n = {self.n}"

    def verdict(self) -> str:
        """Words tied to the test: ``holds: +0.25, p = 0.004 (primary)``, ``below: ...``,
        ``not distinguishable: ...`` (``not distinguishable after Holm`` when only the page's
        adjustment takes the call below the level); a claim with a predicted sign that the test
        rejects the other way reads ``opposite``."""
        tag = " (primary)" if self.primary else ""
        if self.n < 2:
            return f"not testable ({self.numbers()}){tag}"
        if not self.significant:
            adjusted_away = math.isfinite(self.p_adjusted) and self.p < ALPHA
            word = "not distinguishable after Holm" if adjusted_away else "not distinguishable"
        elif self.expect == 0:
            word = self.direction
        else:
            word = "holds" if self.holds else "opposite"
        return f"{word}: {self.numbers()}{tag}"


def paired_test(
    a: Mapping[Any, float],
    b: Mapping[Any, float] | None,
    label: str,
    *,
    expect: int = 0,
    primary: bool = False,
    words: tuple[str, str] = ("above", "below"),
) -> PairedTest:
    """The test of ``a - b`` over the seeds both have a finite value for (seed -> value maps, one
    value per network); ``b=None`` tests ``a`` itself against 0 (``a`` already differences)."""
    if b is None:
        keys = [k for k in a if _finite(a[k])]
        diffs = [float(a[k]) for k in keys]
    else:
        keys = [k for k in a if k in b and _finite(a[k]) and _finite(b[k])]
        diffs = [float(a[k]) - float(b[k]) for k in keys]
    order = sorted(range(len(keys)), key=lambda i: _seed_key(keys[i]))
    return PairedTest(
        label,
        tuple(diffs[i] for i in order),
        tuple(keys[i] for i in order),
        expect=expect,
        primary=primary,
        words=words,
    )


def primary_family(primary: PairedTest | Sequence[PairedTest] | None) -> list[PairedTest]:
    """A figure's primary contrast as a list: [] for None, [test] for one, the family as given
    for several (see ``registry.Figure.primary``); Nones in a family are dropped."""
    if primary is None:
        return []
    if isinstance(primary, PairedTest):
        return [primary]
    return [t for t in primary if t is not None]


def fmt_p(p: float) -> str:
    """A p-value with two significant digits (``0.0078``, ``0.25``), or ``-``."""
    if not math.isfinite(p):
        return "-"
    return "1" if p >= 1 else f"{p:.2g}"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _seed_key(k: Any) -> tuple:
    return (0, float(k), "") if _finite(k) else (1, 0.0, str(k))


# ---- the calls of one page -----------------------------------------------------------------

_TOKEN = re.compile(r"\[\[call:(\d+)\]\]")


@dataclass
class Ledger:
    """The calls one page makes, in the order made; :meth:`resolve` turns their placeholders
    into verdicts once every call is known (Holm needs them all)."""

    calls: list[PairedTest] = field(default_factory=list)

    def add(self, test: PairedTest) -> str:
        """Keep a call; returns the placeholder that :meth:`resolve` replaces by its verdict.

        A call already kept (same label, same differences) is not counted twice: a sentence
        that restates the primary contrast reads the primary's verdict."""
        for i, c in enumerate(self.calls):
            if c.label == test.label and c.differences == test.differences:
                if test.primary and not c.primary:
                    self.calls[i] = test
                return f"[[call:{i}]]"
        self.calls.append(test)
        return f"[[call:{len(self.calls) - 1}]]"

    def adjusted(self) -> list[PairedTest]:
        """The calls with Holm's adjustment over the secondary ones, and over the primary ones
        when a figure pre-declares a family of several (a lone primary stays alone)."""
        out = list(self.calls)
        families = [[i for i, c in enumerate(self.calls) if not c.primary]]
        primaries = [i for i, c in enumerate(self.calls) if c.primary]
        if len(primaries) > 1:
            families.append(primaries)
        for family in families:
            for i, p in zip(family, holm([self.calls[i].p for i in family])):
                out[i] = replace(out[i], p_adjusted=p)
        return out

    def resolve(self, text: str) -> str:
        calls = self.adjusted()
        return _TOKEN.sub(lambda m: calls[int(m.group(1))].verdict(), text)

    def section(self) -> str:
        """Markdown: the primary contrast, the power line, and a table of every call."""
        calls = self.adjusted()
        if not calls:
            return ""
        primary = [c for c in calls if c.primary]
        secondary = [c for c in calls if not c.primary]
        lines = ["## Tests", ""]
        lines.append(
            "Every call is a paired test over networks: each network's difference (trained minus "
            "its own control, or one condition minus another on the same seeds), its mean with a "
            "95% t-interval, and the exact two-sided sign-flip permutation p-value "
            f"(enumerating all 2^n sign patterns up to n = {EXACT_MAX}). "
            + (
                f"The primary contrast is tested alone at {ALPHA}"
                if len(primary) <= 1
                else f"The {len(primary)} primary contrasts are Holm-adjusted as one family"
            )
            + f"; the page's {len(secondary)} other calls are secondary and Holm-adjusted "
            f"together (family-wise {ALPHA})."
        )
        lines.append("")
        if len(primary) == 1:
            p = primary[0]
            lines.append(f"**Primary contrast**: {p.label}: {p.verdict()}.")
            lines.append("")
            lines.append(power_line(p))
        elif primary:
            lines.append(
                f"**Primary contrasts**, a pre-declared family of {len(primary)}, Holm-adjusted "
                f"among themselves (family-wise {ALPHA}; with n networks the smallest adjusted "
                f"p is {len(primary)} x 2 / 2^n):"
            )
            lines.append("")
            lines += [f"- {p.label}: {p.verdict()}." for p in primary]
            lines.append("")
            lines.append(power_line(primary[0]))
        else:
            lines.append("No primary contrast could be formed from the finished networks.")
        reach = secondary_reach(secondary)
        if reach:
            lines += ["", reach]
        lines += [
            "",
            "| call | n | mean difference [95% CI] | p | Holm p | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for c in calls:
            lo, hi = c.interval
            ci = f" [{lo:+.3f}, {hi:+.3f}]" if math.isfinite(lo) else ""
            mean = f"{c.mean:+.3f}{ci}" if c.n else "-"
            word = c.verdict().split(":", 1)[0]
            holm_p = fmt_p(c.p_adjusted) if math.isfinite(c.p_adjusted) else "primary"
            if c.primary and math.isfinite(c.p_adjusted):
                holm_p += " (primary family)"
            lines.append(f"| {c.label} | {c.n} | {mean} | {fmt_p(c.p)} | {holm_p} | {word} |")
        return "\n".join(lines)


def power_line(test: PairedTest) -> str:
    """The smallest difference this many networks detect, from the test's own spread."""
    n = test.n
    if n < 2:
        return "Power: fewer than two paired networks; nothing is testable."
    if smallest_p(n) > ALPHA:
        return (
            f"Power: with n = {n} networks the smallest possible two-sided p is "
            f"{fmt_p(smallest_p(n))} > {ALPHA}: no difference of any size can be detected; "
            "at least 6 networks per condition are needed."
        )
    d = detectable(test.sd, n)
    return (
        f"Power: with n = {n} networks and the between-network SD of this contrast "
        f"({test.sd:.3f}), the smallest mean difference detected with {POWER:.0%} power at "
        f"{ALPHA} is {d:.3f} (smallest possible p {fmt_p(smallest_p(n))})."
    )


def secondary_reach(calls: Sequence[PairedTest]) -> str:
    """What the Holm family can reach: the smallest adjusted p of m secondary calls on n
    networks is m x 2 / 2^n; above ``ALPHA`` no secondary call can hold, whatever the data."""
    ns = [c.n for c in calls if c.n > 0]
    if not ns:
        return ""
    m, n = len(calls), max(ns)
    best = min(1.0, m * smallest_p(n))
    text = (
        f"Secondary calls: {m}, on at most {n} networks each; the smallest Holm-adjusted p they "
        f"can reach is {m} x 2 / 2^{n} = {fmt_p(best)}"
    )
    if best >= ALPHA:
        return text + (
            f", not below {ALPHA}: at this number of networks no secondary call can hold, "
            "whatever the data; they are shown for their effect sizes and intervals."
        )
    return text + "."


_LEDGER: contextvars.ContextVar[Ledger | None] = contextvars.ContextVar("ledger", default=None)


@contextlib.contextmanager
def page_ledger() -> Iterator[Ledger]:
    """Collect the calls made while a page is written (see :func:`call`)."""
    ledger = Ledger()
    token = _LEDGER.set(ledger)
    try:
        yield ledger
    finally:
        _LEDGER.reset(token)


def settled(test: PairedTest) -> PairedTest:
    """``test`` as the page's ledger adjusts it, given every call made so far (its primary flag
    and Holm p where it is one of them): for conclusions drawn from several verdicts once a
    page has made all its calls. Outside a ledger, or for a call not made: ``test`` itself."""
    ledger = _LEDGER.get()
    if ledger is None:
        return test
    for c in ledger.adjusted():
        if c.label == test.label and c.differences == test.differences:
            return c
    return test


def call(test: PairedTest) -> str:
    """A call's verdict in a sentence: a placeholder inside :func:`page_ledger` (resolved with
    the page's Holm adjustment), the words at the unadjusted p-value outside one."""
    ledger = _LEDGER.get()
    return test.verdict() if ledger is None else ledger.add(test)
