"""Time `mte reproduce <figure> --scale quick` (the README's main job: fig3 in <= 15 min on 2 cores).

Runs the figure from scratch in a fresh output folder, then records wall time, the CPU seconds
of the driver and its workers (a fair cost on a shared machine: wall time / CPU time shows the
contention), the load average, and the figure's headline numbers in
benchmarks/results/reproduce_<figure>.json and .md.

    python benchmarks/bench_reproduce.py                 # fig3 at quick scale (<= 15 min quiet)
    python benchmarks/bench_reproduce.py --quick         # smoke scale: checks the script only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", default="fig3")
    parser.add_argument("--quick", action="store_true", help="smoke scale (tiny budgets)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-reproduce", help="scratch output folder")
    parser.add_argument(
        "--networks",
        type=int,
        default=None,
        help="networks per condition (mte reproduce --networks)",
    )
    grouping = parser.add_mutually_exclusive_group()
    grouping.add_argument("--ensemble", dest="ensemble", action="store_const", const=True)
    grouping.add_argument(
        "--no-ensemble", dest="ensemble", action="store_const", const=False,
        help="(default: as mte reproduce, ensembles at paper scale only)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    from multitask_evidence.experiments.reproduce import reproduce

    scale = "smoke" if args.quick else "quick"
    out = Path(args.out)
    shutil.rmtree(out / args.figure, ignore_errors=True)  # from scratch: nothing to skip
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    from multitask_evidence.experiments.reproduce import ENSEMBLE_SCALES

    ensemble = args.ensemble if args.ensemble is not None else scale in ENSEMBLE_SCALES
    res = reproduce(
        args.figure,
        scale,
        out,
        workers=args.workers,
        progress=False,
        ensemble=ensemble,
        networks=args.networks,
    )
    wall = time.perf_counter() - t0
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    more = "" if args.networks is None else f" --networks {args.networks}"
    command = (
        f"python benchmarks/bench_reproduce.py --figure {args.figure}"
        + (" --quick" if args.quick else "")
        + more
        + {True: " --ensemble", False: " --no-ensemble", None: ""}[args.ensemble]
    )
    result = {
        "command": command,
        "equivalent": f"mte reproduce {args.figure} --scale {scale} --workers {args.workers}"
        + more
        + {True: " --ensemble", False: " --no-ensemble", None: ""}[args.ensemble],
        "networks": args.networks,
        "ensemble": ensemble,
        "figure": args.figure,
        "scale": scale,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_over_wall_per_core": cpu / wall / max(1, os.cpu_count() or 1),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "n_failed": res.n_failed,
        "summary": res.summary,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    # an explicit --ensemble run is recorded beside the default one, not over it
    name = (
        f"reproduce_{args.figure}"
        + ("" if args.networks is None else f"_networks-{args.networks}")
        + ("_ensemble" if args.ensemble else "")
        + ("_smoke" if args.quick else "")
    )
    (results / f"{name}.json").write_text(json.dumps(result, indent=2, default=float))
    lines = [
        f"# `mte reproduce {args.figure} --scale {scale}{more}`",
        "",
        f"Command: `{command}` ({result['date']}).",
        "",
        f"- wall time: {wall / 60:.1f} min with {args.workers} workers on {os.cpu_count()} cores"
        + (", compatible networks trained as ensembles" if ensemble else ", every network alone"),
        f"- CPU time (driver + workers): {cpu / 60:.1f} min, i.e. at least "
        f"{cpu / 60 / max(1, os.cpu_count() or 1):.1f} min of wall time on this many cores",
        f"- load average at start / end: {load0[0]:.1f} / {os.getloadavg()[0]:.1f}"
        + (
            " (above the core count: the machine was shared, wall time is inflated)"
            if max(load0[0], os.getloadavg()[0]) > (os.cpu_count() or 1) + 0.5
            else ""
        ),
        f"- failed points: {res.n_failed}",
        "",
        "| condition | networks | OOD r^2 median [IQR] | untrained OOD r^2 | gain over "
        "untrained [95% CI over networks] | input-average OOD r^2 | in-dist. r^2 | ceiling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    from multitask_evidence.experiments.figures import fmt
    from multitask_evidence.experiments.figures.stats import CONDITION_KEYS

    for r in res.summary:
        cond = " ".join(f"{k}={r[k]}" for k in CONDITION_KEYS if k in r)
        g = r.get("gain_over_untrained", float("nan"))
        gain = f"{g:+.3f} [{r['gain_lo']:+.3f}, {r['gain_hi']:+.3f}]" if g == g else "-"
        lines.append(
            f"| {cond} | {r['n_networks']} | {fmt(r, 'ood_r2')} | {fmt(r, 'untrained_ood_r2')} | "
            f"{gain} | {fmt(r, 'input_ood_r2')} | {fmt(r, 'id_r2')} | {r['ceiling']:.3f} |"
        )
    (results / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if res.n_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
