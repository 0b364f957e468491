"""The dial of input entanglement: place-cell width against the input average's OOD r^2, at a
fixed amount of information.

For each place-cell width w (100 cells on a 10 x 10 grid over [-0.6, 0.6]^2, noise in feature
space), on the paper's tasks and timing (N = 24 lines, D = 2, 20 stimulus steps):

- sigma: the per-feature noise SD at which the ideal observer's accuracy equals the paper
  task's (``envs.feature_noise.calibrate_sigma``, 4000 trials) and the accuracy reached there on
  fresh trials;
- the input-average control as every probe measures it: a linear read-out of the encoded
  observations' time average over the stimulus (``probes.controls.score_features``): OOD r^2
  under the leave-one-quadrant-out split (the headline) and the half-space split, and the
  in-distribution r^2 on fresh trials;
- mu (the ideal observer's posterior mean after the last sample, what the data support)
  decoded the same way, and the Bayes bound (the posterior mean's r^2, ``probes.theory``).

The widths at which the input average reads about 0.9, 0.7, 0.4 and 0.1 (interpolated in the
table) are the dial of the entangled-inputs experiment. Numbers are deterministic (fixed seeds);
times are not recorded.

    python benchmarks/bench_entanglement_dial.py           # ~10 min on one core; writes results/
    python benchmarks/bench_entanglement_dial.py --quick   # two widths, smaller samples, no files
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.envs.feature_noise import calibrate_sigma
from multitask_evidence.envs.ideal import IdealObserver, ideal_accuracy
from multitask_evidence.probes import theory
from multitask_evidence.probes.controls import score_features, stimulus_average

RESULTS = Path(__file__).resolve().parent / "results"
WIDTHS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)
TARGETS = (0.9, 0.7, 0.4, 0.1)


def measure(width: float, n_fit: int, n_test: int, n_cal: int) -> dict[str, Any]:
    """One width's calibrated sigma, accuracies and decoding scores."""
    spec = TaskSpec(encoder="place_cells", encoder_scale=width, noise_stage="features")
    sigma = calibrate_sigma(spec, n=n_cal)
    spec = spec.replace(sigma=sigma)
    fit, test = generate(spec, n_fit, 1), generate(spec, n_test, 2)
    var = theory.prior_variance(spec)
    inp = score_features(
        "input",
        stimulus_average(fit.obs, fit.period),
        fit.latent,
        stimulus_average(test.obs, test.period),
        test.latent,
        var_prior=var,
    )
    observer = IdealObserver(spec)
    mu_fit, mu_test = (
        observer.posterior_mean(b.stimulus_evidence, last_only=True) for b in (fit, test)
    )
    mu = score_features("mu", mu_fit, fit.latent, mu_test, test.latent, var_prior=var)
    return {
        "width": width,
        "sigma": sigma,
        "ideal_accuracy": observer.accuracy(test),
        "input_ood_r2": inp.ood_r2,
        "input_ood_r2_halfspace": inp.ood_r2_halfspace,
        "input_id_r2": inp.id_r2,
        "mu_ood_r2": mu.ood_r2,
        "mu_id_r2": mu.id_r2,
        "bayes_bound": theory.bayes_bound(spec),
    }


def dial(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Width at which the input average's OOD r^2 crosses each target (linear interpolation
    between measured widths where it rises through the target; None outside the range)."""
    w = np.array([r["width"] for r in rows])
    r2 = np.array([r["input_ood_r2"] for r in rows])
    out: dict[str, float | None] = {}
    for target in TARGETS:
        hit = None
        for i in range(len(w) - 1):
            if r2[i] <= target <= r2[i + 1]:
                frac = (target - r2[i]) / (r2[i + 1] - r2[i])
                hit = float(w[i] + frac * (w[i + 1] - w[i]))
                break
        out[str(target)] = hit
    return out


def markdown(out: dict[str, Any]) -> str:
    lines = [
        "# The dial of input entanglement: place-cell width at a fixed amount of information",
        "",
        f"Command: `{out['command']}`. Deterministic (fixed seeds); written by "
        "`benchmarks/bench_entanglement_dial.py`, whose docstring defines every column.",
        "",
        f"Paper task's ideal accuracy (the calibration target): {out['paper_accuracy']:.4f}.",
        "",
        "| width w | sigma per feature | ideal accuracy | input OOD r^2 (quadrant) | input OOD r^2 "
        "(half-space) | input ID r^2 | mu OOD r^2 | mu ID r^2 | Bayes bound |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        lines.append(
            f"| {r['width']:g} | {r['sigma']:.3f} | {r['ideal_accuracy']:.4f} | "
            f"{r['input_ood_r2']:.3f} | {r['input_ood_r2_halfspace']:.3f} | "
            f"{r['input_id_r2']:.3f} | {r['mu_ood_r2']:.3f} | {r['mu_id_r2']:.3f} | "
            f"{r['bayes_bound']:.3f} |"
        )
    lines += ["", "Widths where the input average's OOD r^2 (quadrant split) crosses:", ""]
    for target, w in out["dial"].items():
        lines.append(
            f"- {target}: " + ("outside the measured range" if w is None else f"w = {w:.3f}")
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="two widths, small samples, no files")
    args = p.parse_args()
    widths = (0.1, 1.0) if args.quick else WIDTHS
    n_fit, n_test, n_cal = (1000, 500, 300) if args.quick else (4000, 2000, 4000)
    rows = []
    for w in widths:
        rows.append(measure(w, n_fit, n_test, n_cal))
        print(json.dumps(rows[-1]), flush=True)
    out = {
        "command": "python benchmarks/bench_entanglement_dial.py"
        + (" --quick" if args.quick else ""),
        "paper_accuracy": ideal_accuracy(TaskSpec(), 4000),
        "rows": rows,
        "dial": dial(rows),
    }
    if args.quick:
        print(markdown(out))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "entanglement_dial.json").write_text(json.dumps(out, indent=1) + "\n")
    (RESULTS / "entanglement_dial.md").write_text(markdown(out))


if __name__ == "__main__":
    main()
