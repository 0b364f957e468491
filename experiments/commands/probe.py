"""`mte probe`: measure the disentanglement of a trained run.

Examples::

    mte probe runs/rnn24                 # record 4096 trials, every metric, figures, tensorboard
    mte probe runs/rnn24 --adam          # also the paper's Adam-decoder protocol (slower)
    mte probe runs/rnn24 --n 10000 --no-fixed-points --out /tmp/probe
    mte probe runs/rnn24 --save-recording rnn24.npz   # also keep the recorded states
    mte probe rnn24.npz                  # probe a saved recording (writes rnn24_probe/)

Writes ``probe.json``, ``probe.md`` and ``figures/`` into the run folder (or ``--out``) and prints
the headline numbers beside the theory ceiling. ``--save-recording`` writes the recording the
probes measure (the ``--n`` trials of ``--seed``: hidden states, outputs, latents, labels, mu) as
an ``.npz`` of plain arrays; ``probes.load_recording(path)`` reads it back.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir",
        type=Path,
        help="run folder (runs/<name>) with spec.json, config.json, model.pt; or a recording "
        "saved with --save-recording (FILE.npz: its arrays are probed, with every control the "
        "file allows; --out defaults to <FILE>_probe/)",
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
        help="condition shuffles for the CCGP/parallelism null (default 10; 0 skips it)",
    )
    parser.add_argument(
        "--no-fixed-points", action="store_true", help="skip the fixed-point analysis"
    )
    parser.add_argument(
        "--no-tuning", action="store_true", help="skip the tuning maps over an 8 x 8 latent grid"
    )
    parser.add_argument("--no-figures", action="store_true", help="do not write figures")
    parser.add_argument(
        "--save-recording",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="also save the recorded trials (hidden states, outputs, latents, labels, mu) as an "
        ".npz of plain arrays; read it with probes.load_recording(path)",
    )
    parser.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="do not log probe/* scalars to the run's tensorboard",
    )


def _check_args(args: argparse.Namespace) -> None:
    """ValueError naming the flag or file for anything probe_run would fail on later."""
    from multitask_evidence.agents.run import read_kind, read_metrics, read_spec
    from multitask_evidence.common.limits import check_bytes

    if not args.run_dir.is_dir():
        raise ValueError(f"{args.run_dir} is not a folder (the run folder to probe)")
    if args.n < 64:
        raise ValueError(f"--n must be >= 64, got {args.n}")
    if args.n_test is not None and args.n_test < 1:
        raise ValueError(f"--n-test must be >= 1 (leave it out for n/2), got {args.n_test}")
    if args.shuffles < 0:
        raise ValueError(f"--shuffles must be >= 0 (0 skips the null), got {args.shuffles}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a folder")
    rec_path = args.save_recording
    if rec_path is not None:
        if rec_path.suffix != ".npz":
            raise ValueError(f"--save-recording must name an .npz file, got {rec_path}")
        if rec_path.is_dir() or (rec_path.parent.exists() and not rec_path.parent.is_dir()):
            raise ValueError(f"--save-recording {rec_path}: not a file path")
    _, raw = read_kind(args.run_dir)
    spec = read_spec(args.run_dir)
    read_metrics(args.run_dir)  # a damaged log is named here, not deep inside the probes
    h = max(int(raw.get(k) or 0) for k in ("hidden_size", "lstm_hidden_size", "net_arch"))
    n_all = args.n + (args.n_test or max(args.n // 2, 256))
    check_bytes(
        f"--n {args.n} / --n-test {args.n_test} ({n_all} recorded trials of {spec.n_steps} steps "
        f"x {h} hidden units)",
        n_all * (spec.trial_bytes + 4 * spec.n_steps * (h + spec.n_tasks + spec.latent_dim)) * 2,
    )


def _print_headline(h: dict) -> None:
    """The headline numbers beside their theory and controls, one per line."""
    if h.get("ceiling") is not None:  # none with noise in feature space
        print(f"r2 of mu (Eq. 7)       {h['ceiling']:.3f}")
    print(f"in-distribution r2     {h['id_r2']:.3f}")
    print(
        f"OOD r2 median [IQR]    {h['ood_r2_median']:.3f} [{h['ood_r2_q25']:.3f}, {h['ood_r2_q75']:.3f}]"
    )
    if h.get("bayes_bound") is not None:
        print(f"Bayes bound            {h['bayes_bound']:.3f} (posterior mean)")
    if h.get("ood_r2_adam_median") is not None:
        print(f"OOD r2 (Adam protocol) {h['ood_r2_adam_median']:.3f}")
    # the controls, measured on the same trials with the same decoders; with noise in feature
    # space mu is the ideal observer's posterior mean (there is no evidence mean in latent space)
    features = h.get("ceiling") is None and h.get("bayes_bound") is not None
    for key, label in (
        ("untrained_ood_r2", "  untrained network   "),
        ("input_ood_r2", "  encoded-input mean  "),
        ("mu_ood_r2", "  posterior mean mu   " if features else "  evidence mean mu    "),
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


_RUN_ONLY = ("adam", "save_recording", "n_test")


def _run_file(args: argparse.Namespace) -> int:
    """``mte probe FILE.npz``: the probes of a saved recording (``probes.probe_file``)."""
    from multitask_evidence.probes.report import probe_file

    given = [f"--{k.replace('_', '-')}" for k in _RUN_ONLY if getattr(args, k) not in (None, False)]
    if given:
        raise ValueError(
            f"{', '.join(given)} need a run folder (the network); a recording file is probed as "
            "it is"
        )
    if args.shuffles < 0:
        raise ValueError(f"--shuffles must be >= 0 (0 skips the null), got {args.shuffles}")
    if not args.run_dir.exists():
        raise ValueError(f"{args.run_dir} does not exist (a recording .npz or a run folder)")
    report = probe_file(
        args.run_dir,
        out_dir=args.out,
        seed=args.seed,
        n_shuffles=args.shuffles,
        figures=not args.no_figures,
    )
    _print_headline(report.headline)
    for name, why in report.results["skipped"].items():
        print(f"skipped {name}: {why}")
    print(f"wrote {report.files['probe.md']}")
    return 0


def run(args: argparse.Namespace) -> int:
    from multitask_evidence.probes.report import probe_run

    if args.run_dir.suffix == ".npz" and not args.run_dir.is_dir():
        return _run_file(args)
    _check_args(args)
    if args.save_recording is not None:
        from multitask_evidence import agents
        from multitask_evidence.probes.record import record

        # the same n trials of the same seed as the probes below record (identical arrays)
        saved = record(agents.load(args.run_dir), None, args.n, args.seed)
        args.save_recording.parent.mkdir(parents=True, exist_ok=True)
        saved.save(args.save_recording)
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
    _print_headline(report.headline)
    for path in report.files.values():
        print(f"wrote {path}")
    if args.save_recording is not None:
        print(f"wrote {args.save_recording} (probes.load_recording)")
    return 0
