"""`mte probe`: measure the disentanglement of a trained run.

Examples::

    mte probe runs/rnn24                 # record 4096 trials, every metric, figures, tensorboard
    mte probe runs/rnn24 --adam          # also the paper's Adam-decoder protocol (slower)
    mte probe runs/rnn24 --n 10000 --no-fixed-points --out /tmp/probe

Writes ``probe.json``, ``probe.md`` and ``figures/`` into the run folder (or ``--out``) and prints
the headline numbers beside the theory ceiling.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", type=Path, help="run folder (runs/<name>) with spec.json, config.json, model.pt"
    )
    parser.add_argument(
        "--n", type=int, default=4096, help="trials recorded for the decoders (default 4096)"
    )
    parser.add_argument(
        "--n-test",
        type=int,
        default=None,
        help="fresh trials for the in-distribution control (default n/2)",
    )
    parser.add_argument(
        "--seed", type=int, default=12345, help="seed of the recorded trials (default 12345)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: the run folder)"
    )
    parser.add_argument(
        "--adam",
        action="store_true",
        help="also run the paper's Adam decoder protocol (lr 3e-3, batch 16, 1000 batches, 5 fits)",
    )
    parser.add_argument(
        "--shuffles",
        type=int,
        default=10,
        help="condition shuffles for the CCGP/parallelism null (default 10)",
    )
    parser.add_argument(
        "--no-fixed-points", action="store_true", help="skip the fixed-point analysis"
    )
    parser.add_argument(
        "--no-tuning", action="store_true", help="skip the tuning maps over an 8 x 8 latent grid"
    )
    parser.add_argument("--no-figures", action="store_true", help="do not write figures")
    parser.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="do not log probe/* scalars to the run's tensorboard",
    )


def run(args: argparse.Namespace) -> int:
    from probes.report import probe_run

    if not args.run_dir.is_dir():
        raise SystemExit(f"mte probe: {args.run_dir} is not a folder")
    if args.n < 64:
        raise SystemExit(f"mte probe: --n must be >= 64, got {args.n}")
    try:
        report = probe_run(
            args.run_dir,
            n=args.n,
            seed=args.seed,
            n_test=args.n_test,
            out_dir=args.out,
            adam=args.adam,
            fixed_points=not args.no_fixed_points,
            tuning=not args.no_tuning,
            figures=not args.no_figures,
            tensorboard=not args.no_tensorboard,
            n_shuffles=args.shuffles,
        )
    except ValueError as e:
        raise SystemExit(f"mte probe: {e}") from e
    h = report.headline
    print(f"ceiling r2_max(T)      {h['ceiling']:.3f}")
    print(f"in-distribution r2     {h['id_r2']:.3f}")
    print(
        f"OOD r2 median [IQR]    {h['ood_r2_median']:.3f} [{h['ood_r2_q25']:.3f}, {h['ood_r2_q75']:.3f}]"
    )
    if h.get("bayes_bound") is not None:
        print(f"Bayes bound            {h['bayes_bound']:.3f} (posterior mean)")
    if h.get("ood_r2_adam_median") is not None:
        print(f"OOD r2 (Adam protocol) {h['ood_r2_adam_median']:.3f}")
    # the controls, measured on the same trials with the same decoders
    for key, label in (
        ("untrained_ood_r2", "  untrained network   "),
        ("input_ood_r2", "  encoded-input mean  "),
        ("mu_ood_r2", "  evidence mean mu    "),
    ):
        if h.get(key) is not None:
            print(f"{label} OOD r2 {h[key]:.3f}")
    if h.get("ood_gain_over_untrained") is not None:
        print(f"gain over untrained    {h['ood_gain_over_untrained']:+.3f}")
    if h.get("angle_deg") is not None:
        print(f"decoder angle (deg)    {h['angle_deg']:.1f}")
    if h.get("ccgp_factors") is not None:
        print(f"CCGP / parallelism     {h['ccgp_factors']:.3f} / {h['parallelism_factors']:.3f}")
    if "attractor_dim" in h:
        print(f"attractor dimension    {h['attractor_dim']} ({h['n_fixed_points']} fixed points)")
    for path in report.files.values():
        print(f"wrote {path}")
    return 0
