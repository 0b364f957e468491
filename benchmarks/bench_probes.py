"""Speed of the probe suite: every array metric (all but fixed points) on 10,000 trials x 64 units.

Times ``probes.report.probe_recording`` (in-distribution and per-step decoding, OOD leave-one-
orthant-out and half-space splits, decoder angles, CCGP / parallelism / shattering with a
10-shuffle null, DCI, PCA, sparseness, theory extraction) on the hidden states of the trained RNN
fixture (tests/probes/data/rnn_default_n24), beside the paper's Adam-decoder protocol (4 folds x
5 fits x 1000 batches of 16) run two ways: our vectorised version, and the plain per-fit loop
(one ``torch.nn.Linear`` + Adam per fit, as a script would write it).

    python benchmarks/bench_probes.py            # full: 10,000 trials (writes results/probes.*)
    python benchmarks/bench_probes.py --quick    # smoke: 2,000 trials, nothing written
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "probes" / "data" / "rnn_default_n24"
RESULTS = ROOT / "benchmarks" / "results"


def naive_adam_protocol(
    h: np.ndarray, x: np.ndarray, n_fits: int = 5, n_batches: int = 1000
) -> float:
    """The paper's decoder protocol written plainly: a loop over folds and fits, one Linear each."""
    from multitask_evidence.envs import orthant_index

    q = orthant_index(x)
    scores = []
    gen = torch.Generator().manual_seed(0)
    # the Linear layers' initial weights come from torch's global generator: seeded here so the
    # number does not depend on what ran before in the process
    torch.manual_seed(0)
    for o in range(4):
        tr, te = q != o, q == o
        xt = torch.as_tensor(h[tr], dtype=torch.float32)
        yt = torch.as_tensor(x[tr], dtype=torch.float32)
        for _ in range(n_fits):
            lin = torch.nn.Linear(h.shape[1], x.shape[1])
            opt = torch.optim.Adam(lin.parameters(), lr=3e-3)
            for _ in range(n_batches):
                idx = torch.randint(0, xt.shape[0], (16,), generator=gen)
                loss = torch.nn.functional.mse_loss(lin(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                pred = lin(torch.as_tensor(h[te], dtype=torch.float32)).numpy()
            scores.append(1 - ((pred - x[te]) ** 2).mean() * 12)
    return float(np.median(scores))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="2,000 trials, one repeat, write nothing")
    ap.add_argument("--n", type=int, default=10_000, help="trials (default 10,000)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of the suite (best kept)")
    ap.add_argument("--no-naive", action="store_true", help="skip the plain-loop Adam protocol")
    args = ap.parse_args(argv)
    n = 2000 if args.quick else args.n
    repeats = 1 if args.quick else args.repeats
    torch.set_num_threads(1)

    from multitask_evidence import agents
    from multitask_evidence.probes.record import record
    from multitask_evidence.probes.report import probe_recording

    run = agents.load(FIXTURE)
    t0 = time.perf_counter()
    rec = record(run, None, n, 12345)
    rec_test = record(run, None, max(n // 2, 256), 12346)
    t_record = time.perf_counter() - t0
    h, x = rec.at(), rec.latent
    assert h.shape == (n, 64)

    with threadpool_limits(1):
        suite = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rep = probe_recording(rec, rec_test, seed=0)
            suite.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        adam = probe_recording(rec, rec_test, seed=0, adam=True, over_time=False, halfspace=False)
        t_adam_total = time.perf_counter() - t0
        t_adam = adam.timings["ood_adam"]
        naive_r2, t_naive = None, None
        if not args.no_naive:
            t0 = time.perf_counter()
            naive_r2 = naive_adam_protocol(h, x, n_batches=200 if args.quick else 1000)
            t_naive = time.perf_counter() - t0

    result = {
        "command": "python benchmarks/bench_probes.py" + (" --quick" if args.quick else ""),
        "n_trials": n,
        "hidden": 64,
        "suite_seconds_best": min(suite),
        "suite_seconds_all": suite,
        "suite_sections_seconds": rep.timings,
        "record_seconds": t_record,
        "adam_vectorised_seconds": t_adam,
        "adam_naive_loop_seconds": t_naive,
        "ood_r2_closed_form": rep.headline["ood_r2_median"],
        "ood_r2_adam_vectorised": adam.headline["ood_r2_adam_median"],
        "ood_r2_adam_naive_loop": naive_r2,
        "id_r2": rep.headline["id_r2"],
        "ceiling": rep.headline["ceiling"],
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_threads": 1,
        "blas_threads": 1,
        "note": "2-core machine; load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{v:.1f}" for v in os.getloadavg()),
        "adam_total_seconds": t_adam_total,
    }
    print(json.dumps(result, indent=2))
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "probes.json").write_text(json.dumps(result, indent=2) + "\n")
        sec = "\n".join(f"| {k} | {v:.3f} |" for k, v in rep.timings.items())
        (RESULTS / "probes.md").write_text(
            f"""# Probe suite speed

Command: `{result["command"]}` (hidden states of the trained RNN fixture, {n} trials x 64 units,
decision step; one torch and one BLAS thread). {result["note"]}.

| what | seconds | OOD r2 (median) |
|---|---|---|
| whole suite except fixed points (`probe_recording`, best of {repeats}) | {min(suite):.2f} | {result["ood_r2_closed_form"]:.3f} (closed form) |
| paper's Adam protocol, vectorised over fits (4 folds x 5 fits x 1000 batches of 16) | {t_adam:.2f} | {result["ood_r2_adam_vectorised"]:.3f} |
| paper's Adam protocol, plain loop (one nn.Linear + Adam per fit) | {t_naive if t_naive is not None else float("nan"):.2f} | {naive_r2 if naive_r2 is not None else float("nan"):.3f} |

Target: the suite in <= 10 s. The paper's own probe took about 100 s per network .

On these {n} trials the closed-form OOD r2 and the Adam protocol's differ by
{abs(result["ood_r2_closed_form"] - result["ood_r2_adam_vectorised"]):.3f}: the OOD r2 of an
imperfect code depends on the decoder's regularisation; the closed form uses a fixed per-trial
ridge penalty (`probes.decoding.OOD_ALPHA`) chosen to match the Adam protocol's fixed data budget,
and the Adam protocol itself varies by about 0.01 between seeds (see
`probes.decoding.ood_generalisation` and benchmarks/results/probe_ood_estimators.md).
In-distribution r2 {result["id_r2"]:.3f}, ceiling {result["ceiling"]:.3f}.

Sections of the suite (seconds):

| section | seconds |
|---|---|
{sec}
"""
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
