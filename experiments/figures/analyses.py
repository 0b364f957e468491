"""Per-network analyses of the structure figures (fig3d, fig4, figS6, figS12), run on the
networks a figure's sweep trained, beside the same networks untrained and the encoder's output.

A figure's summary rows carry their networks (``_networks``: seed and run folder of each, see
:func:`experiments.figures.stats.summarise`); :func:`per_network` runs an analysis on each of
them and caches its result as ``<run folder>/<name>.json`` (keyed by the analysis' parameters),
so that a redraw (``--plot-only``) does not record again. Rows without run folders (tables built
by hand) give no analyses; the pages say so.

Three recordings are analysed, always on the same trials (same seed, same latents):

- ``trained``: the trained network's state (``probes.record``);
- ``untrained``: the same network before training (``agents.untrained``: same architecture,
  init and seed);
- ``input``: the encoder's output, time-averaged over the steps that carry evidence
  (``probes.controls.stimulus_average``), constant channels (the go channel) dropped: what a
  network could read without integrating anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.probes.report import json_safe

SOURCES = ("trained", "untrained", "input")
"""The three recordings every structure figure compares (the module docstring says what each is)."""
SOURCE_LABELS = {
    "trained": "trained",
    "untrained": "untrained (same network)",
    "input": "encoder output (input)",
}
GRID_SEED = 777
"""Seed of the evidence noise on the latent grid (the same for every network)."""
TRIALS_SEED = 12345
"""Seed of the random trials (the sweep's probe seed: the same trials the OOD numbers used)."""


def networks_of(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The networks ({seed, run_dir}) of a summary row that have a run folder on disk."""
    return [
        n
        for n in row.get("_networks") or []
        if n.get("run_dir") and (Path(n["run_dir"]) / "config.json").exists()
    ]


def analyses_of(row: Mapping[str, Any], analyses: Mapping[str, Any]) -> list[Any]:
    """The cached analyses (by run folder) of a summary row's networks that have one."""
    return [analyses[n["run_dir"]] for n in networks_of(row) if n["run_dir"] in analyses]


def source_columns(
    summary: Sequence[dict[str, Any]], analyses: Mapping[str, Any]
) -> Iterator[tuple[dict[str, Any], list[Any], str, str]]:
    """(row, its networks' analyses, source, column prefix) for every summary row with analysed
    networks and every source in :data:`SOURCES`; the prefix is "" for the trained network
    and "<source>_" for its controls, so the trained numbers keep the plain column names."""
    for row in summary:
        nets = analyses_of(row, analyses)
        if not nets:
            continue
        for src in SOURCES:
            yield row, nets, src, "" if src == "trained" else f"{src}_"


def put_pooled(row: dict[str, Any], column: str, q: Mapping[str, float], n: bool = True) -> None:
    """A :func:`pooled` summary into a row: ``column`` (median), ``_q25``, ``_q75`` and, with
    ``n``, ``_n``."""
    row[column] = q["median"]
    row[f"{column}_q25"] = q["q25"]
    row[f"{column}_q75"] = q["q75"]
    if n:
        row[f"{column}_n"] = q["n"]


def cached(
    run_dir: str | Path, name: str, params: Mapping[str, Any], compute: Callable[[], dict]
) -> dict[str, Any]:
    """``compute()`` for one network, cached in ``<run_dir>/<name>.json`` while ``params`` (the
    analysis' settings) are unchanged. Non-finite numbers are stored as null (read back as None)."""
    path = Path(run_dir) / f"{name}.json"
    params = json_safe(dict(params))
    if path.exists():
        try:
            stored = json.loads(path.read_text())
            if stored.get("params") == params:
                return stored["result"]
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # unreadable or stale: compute again
    result = json_safe(compute())
    atomic_write_text(path, json.dumps({"params": params, "result": result}), mkdir=True)
    return result


def per_network(
    summary: Sequence[Mapping[str, Any]],
    name: str,
    params: Mapping[str, Any],
    analyse: Callable[[str], dict],
) -> dict[str, dict[str, Any]]:
    """``analyse(run_dir)`` on every network of every summary row (cached, see :func:`cached`):
    run folder -> result (with the network's ``seed`` and ``run_dir`` added)."""
    out: dict[str, dict[str, Any]] = {}
    for row in summary:
        for net in networks_of(row):
            res = cached(net["run_dir"], name, params, lambda d=net["run_dir"]: analyse(d))
            out[net["run_dir"]] = {**res, "seed": net.get("seed"), "run_dir": net["run_dir"]}
    return out


def load_pair(run_dir: str | Path) -> tuple[Any, Any]:
    """(trained, untrained) of a run folder: ``agents.load`` and ``agents.untrained``."""
    from multitask_evidence import agents

    loaded = agents.load(run_dir)
    return loaded, agents.untrained(loaded)


def input_features(spec: Any, n: int, seed: int, latent: np.ndarray | None = None) -> np.ndarray:
    """The encoder's output [n, F] on the trials ``probes.record`` draws with the same ``seed``
    (and ``latent``): the encoded observations averaged over the evidence steps, constant
    channels dropped."""
    from multitask_evidence.envs import generate
    from multitask_evidence.probes import theory
    from multitask_evidence.probes.controls import stimulus_average

    batch = generate(spec, n, np.random.default_rng(seed), latent=latent)
    evidence = np.diff(theory.evidence_steps(spec), prepend=0) > 0
    feats = stimulus_average(batch.obs, batch.period, evidence)
    return feats[:, feats.std(axis=0) > 1e-9]


def grid_states(
    run_dir: str | Path, grid_size: int = 8, repeats: int = 16
) -> tuple[Any, dict[str, Any], np.ndarray]:
    """Recordings over a grid_size^D latent grid (``probes.sparseness.latent_grid``, each cell
    ``repeats`` times, evidence noise of seed ``GRID_SEED``): (spec, {'trained': Recording,
    'untrained': Recording, 'input': features [cells * repeats, F], 'networks': (trained,
    untrained)}, latent [cells * repeats, D])."""
    from multitask_evidence.probes.record import record
    from multitask_evidence.probes.sparseness import latent_grid

    trained, untrained = load_pair(run_dir)
    spec = trained.spec
    grid = latent_grid(grid_size, repeats, spec.latent_dim)
    recs = {
        "trained": record(trained, spec, grid.shape[0], GRID_SEED, latent=grid),
        "untrained": record(untrained, spec, grid.shape[0], GRID_SEED, latent=grid),
        "input": input_features(spec, grid.shape[0], GRID_SEED, latent=grid),
        "networks": (trained, untrained),
    }
    return spec, recs, grid


def decision_states(
    run_dir: str | Path, n: int | None = None
) -> tuple[Any, dict[str, np.ndarray], np.ndarray]:
    """States at the decision step on n random trials (seed ``TRIALS_SEED``; None: as many as
    the sweep's probe, ``experiments.point.auto_probe_n``): (spec, {'trained': [n, H],
    'untrained': [n, H], 'input': [n, F]}, latent [n, D])."""
    from multitask_evidence.experiments.point import auto_probe_n
    from multitask_evidence.probes.record import record

    trained, untrained = load_pair(run_dir)
    spec = trained.spec
    n = auto_probe_n(spec.latent_dim) if n is None else n
    rec = record(trained, spec, n, TRIALS_SEED)
    rec0 = record(untrained, spec, n, TRIALS_SEED)
    feats = input_features(spec, n, TRIALS_SEED)
    return spec, {"trained": rec.at(), "untrained": rec0.at(), "input": feats}, rec.latent


def pooled(values: Sequence[Any]) -> dict[str, float]:
    """Median, quartiles and count of the finite values (NaN and 0 when there are none)."""
    v = np.asarray([float(x) for x in values if x is not None and math.isfinite(float(x))])
    if v.size == 0:
        return {"median": math.nan, "q25": math.nan, "q75": math.nan, "n": 0}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "n": int(v.size)}


def seed_key(analysis: Mapping[str, Any]) -> Any:
    """The key that pairs one network's analysis with its control and across conditions: its
    seed (the same seed draws the same task and initial weights), or its run folder when the
    seed is unknown (such a network pairs only with itself)."""
    seed = analysis.get("seed")
    return seed if seed is not None else str(analysis.get("run_dir"))


def by_seed(
    nets: Sequence[Mapping[str, Any]], value: Callable[[Mapping[str, Any]], Any]
) -> dict[Any, float]:
    """seed -> ``value(analysis)`` as a float for each network's analysis (None -> NaN, which
    the paired tests leave out)."""
    out: dict[Any, float] = {}
    for a in nets:
        v = value(a)
        out[seed_key(a)] = float(v) if v is not None else math.nan
    return out


def put_by_seed(row: dict[str, Any], metric: str, values: Mapping[Any, float]) -> None:
    """Keep seed -> value of ``metric`` in the row's ``_by_seed`` (beside the sweep's own
    per-network metrics; ``pages.per_seed`` reads it back; not a table column)."""
    row.setdefault("_by_seed", {})[metric] = dict(values)


def row_quartiles(row: Mapping[str, Any], m: str, digits: int = 3) -> str:
    """'median [q25, q75]' of metric ``m`` of a summary row (``m``, ``m_q25``, ``m_q75``), or
    '-'."""
    v = row.get(m, math.nan)
    if not isinstance(v, float) or not math.isfinite(v):
        return "-"
    return f"{v:.{digits}f} [{row[f'{m}_q25']:.{digits}f}, {row[f'{m}_q75']:.{digits}f}]"


def quartiles(p: Mapping[str, float], digits: int = 3) -> str:
    """'median [q25, q75]' of a :func:`pooled` result, or '-'."""
    if not p["n"]:
        return "-"
    return f"{p['median']:.{digits}f} [{p['q25']:.{digits}f}, {p['q75']:.{digits}f}]"


def no_networks_note(name: str) -> str:
    """The page's line when the rows carry no trained networks to analyse."""
    return (
        f"- No run folders behind these rows: the {name} analyses need the trained networks "
        "(`mte reproduce` trains them); only the sweep's decoding numbers are shown."
    )
