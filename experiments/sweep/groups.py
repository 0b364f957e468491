"""Units of work of a sweep: which points train together as one ensemble.

Supervised points that share an architecture, network shape, recipe and task shape (one
``experiments.point.ensemble_key``; seeds and task draws may differ) train as one batched model
(``agents.train_ensemble``: member k equals its solo run). :func:`plan_units` turns the points
still to do into units: one unit per group of such points, split so that

- no unit holds more than ``max_size`` points (a big group becomes near-equal parts);
- there are at least ``slots`` units (the backend's parallel workers) when the points allow it:
  with fewer groups than workers, the groups are split further, the largest (per part) first,
  so that every worker trains (e.g. one group of 12 on 4 workers: 4 ensembles of 3);
- with more units than workers, their number is rounded up to a multiple of ``slots`` the same
  way when the groups allow it, so that no worker idles through the last round (5 groups of 5
  on 2 workers: 6 units, the last group as 3 + 2).

Points that do not group (another algorithm, a config that does not build) are units of one,
and so is every point when grouping is off. Units keep the grid's order (a group sits where its
first point does), and the plan depends only on the points, ``slots`` and ``max_size``, so the
same command on a re-run forms the same ensembles and resumes their joint checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any


def plan_units(
    points: Sequence[Any],
    slots: int,
    max_size: int,
    key: Callable[[Any], Hashable | None] | None,
) -> list[list[Any]]:
    """Split ``points`` into units of work (lists of points, grid order kept; see module doc).

    slots: how many units the backend runs at once (>= 1); max_size: the most points in one
    unit (>= 1); key: the grouping key of a point (None: the point is a unit of its own), or
    None to run every point alone.
    """
    for name, v in (("slots", slots), ("max_size", max_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    groups: dict[Hashable, list[Any]] = {}
    for i, p in enumerate(points):
        k = key(p) if key is not None and max_size > 1 else None
        groups.setdefault(("alone", i) if k is None else ("key", k), []).append(p)
    members = list(groups.values())
    parts = [-(-len(g) // max_size) for g in members]  # ceil: no part above max_size

    def split_until(target: int) -> None:
        # split further the group whose parts are largest, while it has more points than parts
        while sum(parts) < target:
            best = max(
                (i for i, g in enumerate(members) if len(g) > parts[i]),
                key=lambda i: len(members[i]) / parts[i],
                default=None,
            )
            if best is None:
                return
            parts[best] += 1

    split_until(slots)
    if sum(parts) > slots and sum(parts) % slots:
        # fill the last round: with 5 ensembles on 2 workers the fifth would train alone while
        # the other worker idles; split into 6 and the last round trains two smaller ones
        split_until(-(-sum(parts) // slots) * slots)
    units: list[list[Any]] = []
    for g, n in zip(members, parts):
        size, extra = divmod(len(g), n)
        start = 0
        for j in range(n):
            end = start + size + (j < extra)
            units.append(g[start:end])
            start = end
    return units
