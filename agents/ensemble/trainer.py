"""Supervised training of K networks as one batched model (docs/science.md §2).

``train_ensemble(specs, configs, run_dirs)`` trains member k exactly as ``agents.train(specs[k],
configs[k], run_dirs[k])`` would, with all K members in one forward / backward / Adam step:

- initial weights: member k's network is built like the solo run's
  (``torch.manual_seed(configs[k].seed)``, then ``agents.run.build_network``) and its parameters
  are stacked (:class:`StackedNetwork`);
- data: member k's trials come from its own task (``specs[k]``) and its own stream
  ``np.random.default_rng(SeedSequence([configs[k].seed, 0]))``, as the solo trainer's
  (:class:`EnsembleTrials`, one batch ahead in a background thread);
- loss: the sum over members of each member's solo objective, so the gradient of member k's
  parameters is its solo gradient; gradient clipping (if any) is per member, on each member's
  global norm; Adam / AdamW work element by element, so one optimizer over the stacked
  parameters takes K solo steps;
- dropout: member k's masks come from its own generator (see :mod:`agents.ensemble.model`).

On CPU each member matches its solo run to float32 rounding (batched and unbatched matmuls sum
in other orders), weights to ~1e-6 after hundreds of steps (tests/agents/test_ensemble.py).

Every member is written as an ordinary supervised run folder (spec.json, config.json, model.pt,
checkpoint.pt in the solo format, metrics.jsonl, tensorboard events), so ``agents.load`` and the
probes read it like any other run. The ensemble's joint checkpoint (all members at one step:
weights, Adam state, data-stream and dropout-generator states) is a single file written
atomically before the members' files, and ``resume=True`` continues from it; without one (the
members last trained in another ensemble, or alone) it continues from the members' own
checkpoints when they sit at one step. A resumed ensemble equals an uninterrupted one (CPU). ``train_seconds`` in every member's metrics is the ensemble's
training time (shared by its K members).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from multitask_evidence.agents import run as runfolder
from multitask_evidence.agents.config import TrainConfig
from multitask_evidence.agents.devices import pick_device
from multitask_evidence.agents.ensemble.memory import keep_freed_memory
from multitask_evidence.agents.ensemble.model import StackedNetwork
from multitask_evidence.agents.ensemble.trials import EnsembleTrials, MemberTrials, check_specs
from multitask_evidence.agents.errors import TrainingDivergedError
from multitask_evidence.agents.prefetch import Prefetcher
from multitask_evidence.agents.trainer import (
    CHECKPOINT_FIELDS,
    begin_step,
    check_memory,
    evaluation_row,
    held_out_set,
    optimizer_step,
    out_of_time,
    prepare_folder,
    progress_bar,
    record_evaluation,
    resume_point,
)
from multitask_evidence.common.files import atomic_torch_save, atomic_write_text
from multitask_evidence.envs import TaskSpec

ENSEMBLE_CHECKPOINT_FILE = "ensemble_checkpoint.pt"
ENSEMBLE_FILE = "ensemble.json"


def ensemble_members(
    spec: TaskSpec,
    config: TrainConfig,
    seeds: Sequence[int],
    task_seeds: Sequence[int] | None = None,
) -> tuple[list[TaskSpec], list[TrainConfig]]:
    """(specs, configs) of K = len(seeds) members: ``config`` with ``seed = seeds[k]``, and
    ``spec`` with ``seed = task_seeds[k]`` (None: every member keeps ``spec.seed``)."""
    seeds = list(seeds)
    if task_seeds is not None and len(task_seeds) != len(seeds):
        raise ValueError(
            f"task_seeds must hold one seed per member ({len(seeds)}), got {len(task_seeds)}"
        )
    specs = [
        spec if task_seeds is None else dataclasses.replace(spec, seed=int(task_seeds[k]))
        for k in range(len(seeds))
    ]
    return specs, [dataclasses.replace(config, seed=int(s)) for s in seeds]


def check_configs(configs: Sequence[TrainConfig]) -> list[TrainConfig]:
    """The resolved configs after checking: K >= 1 TrainConfigs that differ in ``seed`` only
    (ValueError naming the member and the field otherwise)."""
    if isinstance(configs, TrainConfig) or not isinstance(configs, Sequence):
        raise ValueError(
            f"configs must be a sequence of TrainConfigs, one per member, got "
            f"{type(configs).__name__}"
        )
    if not configs:
        raise ValueError(
            "configs must hold at least one TrainConfig (an ensemble has K >= 1 members)"
        )
    out = []
    for k, c in enumerate(configs):
        if not isinstance(c, TrainConfig):
            raise ValueError(f"configs[{k}] must be an agents.TrainConfig, got {type(c).__name__}")
        c = c.resolve()
        c.validate()
        out.append(c)
    first = out[0].to_dict()
    for k, c in enumerate(out[1:], start=1):
        diff = [f for f, v in c.to_dict().items() if f != "seed" and v != first[f]]
        if diff:
            f = diff[0]
            raise ValueError(
                f"configs[{k}].{f}={getattr(c, f)!r} differs from configs[0].{f}={first[f]!r}; "
                "ensemble members share one architecture and recipe and may differ in seed only"
            )
    return out


def default_ensemble_dir(run_dirs: Sequence[Path | str]) -> Path:
    """Where the joint checkpoint of the members in ``run_dirs`` lives by default: a hidden
    folder ``.ensemble-<digest of the member paths>`` beside them (in their common parent)."""
    paths = [Path(d).resolve() for d in run_dirs]
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    names = "\n".join(str(p.relative_to(root)) for p in paths)
    return root / f".ensemble-{hashlib.sha1(names.encode()).hexdigest()[:12]}"


def member_stream(
    trials: EnsembleTrials, batch_size: int, rngs: Sequence[np.random.Generator]
) -> Prefetcher[MemberTrials]:
    """Training batches for every member, one batch ahead (see :class:`Prefetcher`): the draws
    of ``trials.draw(batch_size, rngs)`` in the loop; ``state`` holds each member's generator
    state after the last batch handed out."""
    rngs = list(rngs)
    return Prefetcher(
        lambda: trials.draw(batch_size, rngs), lambda: [r.bit_generator.state for r in rngs]
    )


def member_objective(
    model: StackedNetwork,
    readout: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    spec: TaskSpec,
) -> torch.Tensor:
    """Each member's solo objective (``agents.trainer.objective``) [K]: the mean loss over
    (trial, step, task) weighted by ``mask [K, B, T]``; readout, targets [K, B, T, N]."""
    if spec.mse_targets:
        per = (model.activate(readout) - targets) ** 2
    else:
        per = F.binary_cross_entropy_with_logits(readout, targets, reduction="none")
    return (per * mask[..., None]).sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2)) * per.shape[-1])


def clip_member_grad_norms(model: StackedNetwork, max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` applied to each member on its own: member k's
    gradients are scaled by min(1, max_norm / (||g_k|| + 1e-6)), ||g_k|| its global L2 norm."""
    grads = [p.grad for p in model.stacked if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, dim=0)  # [K]
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))


def make_optimizer(
    params: Sequence[torch.nn.Parameter], cfg: TrainConfig, device: torch.device, impl: str
) -> torch.optim.Optimizer:
    """The solo trainer's optimizer (Adam, or AdamW with weight decay) over the stacked
    parameters. impl: 'fused' (one kernel for all tensors), 'foreach', 'loop' (torch's
    single-tensor form) or 'auto' ('fused' where torch has it for the device, else 'foreach')."""
    allowed = ("auto", "fused", "foreach", "loop")
    if impl not in allowed:
        raise ValueError(f"adam must be one of {list(allowed)}, got {impl!r}")
    if impl == "auto":
        impl = "fused" if device.type in ("cpu", "cuda", "mps", "xpu") else "foreach"
    kw: dict[str, Any] = {"fused": True} if impl == "fused" else {"foreach": impl == "foreach"}
    if cfg.weight_decay:
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    return torch.optim.Adam(params, lr=cfg.lr, **kw)


JOINT_FIELDS = ("step", "train_seconds", "members", "model", "optimizer", "np_rng", "torch_rng")
"""What the joint ensemble checkpoint holds (see ``checkpoint`` in :func:`train_ensemble`)."""


def load_joint_checkpoint(
    joint: Path,
    fingerprint: list[str],
    cfg: TrainConfig,
    model: StackedNetwork,
    optimizer: torch.optim.Optimizer,
    rngs: Sequence[np.random.Generator],
    generators: Sequence[torch.Generator],
    device: torch.device,
) -> tuple[int, float]:
    """Load the joint checkpoint ``joint`` into the stacked model, the optimizer, the data
    streams and the dropout generators; returns (step, train_seconds). A file that is not
    this ensemble's checkpoint (not a dict, fields missing, other members, a step outside
    [0, cfg.steps], a negative or non-finite time, state of other shapes) is a ValueError
    naming the file and field."""
    ck = runfolder.checkpoint_dict(
        joint, runfolder.load_weights(joint, map_location=device), JOINT_FIELDS,
        "ensemble checkpoint",
    )  # fmt: skip
    start = runfolder.checkpoint_count(
        joint, ck, "step", cfg.steps, "TrainConfig.steps of the members"
    )
    train_seconds = runfolder.checkpoint_seconds(joint, ck)
    try:
        if list(ck["members"]) != fingerprint:
            raise ValueError("its members' specs or configs differ from these")
        with torch.no_grad():
            for p, name in zip(model.stacked, model.names):
                p.copy_(ck["model"][name])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{joint}: not this ensemble's checkpoint ({e})") from None
    runfolder.load_optimizer(optimizer, ck["optimizer"], joint)
    try:
        for r, s in zip(rngs, ck["np_rng"], strict=True):
            r.bit_generator.state = runfolder.decode_state(s)
        for g, s in zip(generators, ck["torch_rng"], strict=True):
            g.set_state(s.cpu())
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise ValueError(
            f"{joint}: np_rng / torch_rng are not the members' RNG states ({e})"
        ) from None
    return start, train_seconds


def check_member_checkpoint(
    where: Path, ck: Any, network: torch.nn.Module, cfg: TrainConfig
) -> dict[str, Any]:
    """A member's solo checkpoint read from ``where``, checked as the solo trainer checks it
    (its fields, a step in [0, cfg.steps], a finite time, weights and Adam state of the
    member network's shapes); errors name the file and field."""
    ck = runfolder.checkpoint_dict(where, ck, CHECKPOINT_FIELDS, "training checkpoint")
    runfolder.checkpoint_count(where, ck, "step", cfg.steps, "TrainConfig.steps in config.json")
    runfolder.checkpoint_seconds(where, ck)
    runfolder.load_state(copy.deepcopy(network), where, ck["model"])
    params = list(network.parameters())
    solo = (
        torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.weight_decay
        else torch.optim.Adam(params, lr=cfg.lr)
    )
    runfolder.load_optimizer(solo, ck["optimizer"], where)
    return ck


def load_member_checkpoints(
    folders: Sequence[Path],
    model: StackedNetwork,
    optimizer: torch.optim.Optimizer,
    rngs: Sequence[np.random.Generator],
    generators: Sequence[torch.Generator],
    device: torch.device,
    *,
    networks: Sequence[torch.nn.Module],
    cfg: TrainConfig,
) -> tuple[int, float]:
    """Load the members' solo checkpoints (``<folder>/checkpoint.pt``, one per member, all at
    one step) into the stacked model, the optimizer, the data streams and the dropout
    generators; returns (step, train_seconds). The inverse of the member checkpoints the
    ensemble writes: Adam's moments are stacked on the member axis, its step count is shared.
    Each checkpoint is first checked against its member's network (``networks``) and ``cfg``
    (:func:`check_member_checkpoint`). ValueError naming the folders when a checkpoint is
    missing, unreadable or at another step."""
    where = [f / runfolder.CHECKPOINT_FILE for f in folders]
    missing = [str(w) for w in where if not w.exists()]
    if missing:
        raise ValueError(
            f"cannot resume the ensemble from its members' checkpoints: {missing} missing "
            "(every member needs one, at one step)"
        )
    cks = [
        check_member_checkpoint(w, runfolder.load_weights(w, map_location=device), net, cfg)
        for w, net in zip(where, networks)
    ]
    try:
        steps = [int(ck["step"]) for ck in cks]
        if len(set(steps)) != 1:
            raise ValueError(f"they are at steps {steps}, an ensemble resumes at one step")
        if device.type != "cpu" and model.arch.get("dropout", 0.0) > 0:
            # off the CPU the solo checkpoint holds no state of the member's dropout stream
            raise ValueError(f"dropout streams cannot be restored on {device.type}")
        with torch.no_grad():
            for p, name in zip(model.stacked, model.names):
                p.copy_(torch.stack([ck["model"][name].to(device) for ck in cks]))
        solo = [ck["optimizer"]["state"] for ck in cks]
        state: dict[Any, dict[str, Any]] = {}
        for i, first in solo[0].items():
            state[i] = {}
            for key, v in first.items():
                if key == "step":
                    if any(float(s[i][key]) != float(v) for s in solo):
                        raise ValueError("their optimizers are at different step counts")
                    state[i][key] = v
                else:
                    state[i][key] = torch.stack([s[i][key].to(device) for s in solo])
        optimizer.load_state_dict(
            {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
        )
        for r, ck in zip(rngs, cks):
            r.bit_generator.state = runfolder.decode_state(ck["np_rng"])
        if device.type == "cpu":
            for g, ck in zip(generators, cks):
                g.set_state(ck["torch_rng"].cpu())
        return steps[0], max(float(ck["train_seconds"]) for ck in cks)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise ValueError(
            f"cannot resume the ensemble from its members' checkpoints {[str(w) for w in where]}"
            f" ({e})"
        ) from None


def _fingerprint(spec: TaskSpec, cfg: TrainConfig) -> str:
    """What a member computes (spec and config less the runtime fields), for resume checks."""
    c = {k: v for k, v in cfg.to_dict().items() if k not in runfolder.RUNTIME_FIELDS}
    return json.dumps({"spec": spec.to_dict(), "config": c}, sort_keys=True, default=str)


def train_ensemble(
    specs: Sequence[TaskSpec],
    configs: Sequence[TrainConfig],
    run_dirs: Sequence[Path | str] | None = None,
    resume: bool = False,
    *,
    ensemble_dir: Path | str | None = None,
    on_eval: Callable[[int, dict[str, Any], torch.nn.Module], None] | None = None,
    adam: str = "auto",
) -> list[runfolder.Run]:
    """Train K = len(specs) networks as one batched model; member k is the solo run
    ``agents.train(specs[k], configs[k], run_dirs[k])``. Returns one :class:`agents.run.Run` per member.

    specs: K TaskSpecs sharing ``agents.ensemble.trials.SHAPE_FIELDS`` (each member's task,
    e.g. its own ``seed``). configs: K TrainConfigs that differ in ``seed`` only (one
    architecture, shape and recipe; see :func:`ensemble_members`). run_dirs: K distinct run
    folders (None: nothing is written). resume: continue from the joint checkpoint, or without
    one from the members' own checkpoints (all at one step; see :func:`load_member_checkpoints`).
    ensemble_dir: folder of the joint checkpoint (default :func:`default_ensemble_dir`).
    on_eval: called after each member's evaluation with (member index, metrics row, member's
    network); it must not change the network or draw from torch's RNG.
    adam: optimizer implementation (see :func:`make_optimizer`; all compute the same step).
    Raises ValueError for bad members or folders, TrainingDivergedError when a member's loss
    stops being finite (the last good joint checkpoint is kept).
    """
    specs = check_specs(specs)
    cfgs = check_configs(configs)
    keep_freed_memory()  # megabyte buffers stay mapped between steps (see agents.ensemble.memory)
    if len(specs) != len(cfgs):
        raise ValueError(
            f"specs and configs must have one entry per member, got {len(specs)} "
            f"specs and {len(cfgs)} configs"
        )
    kk, cfg = len(cfgs), cfgs[0]
    folders: list[Path] | None = None
    if run_dirs is not None:
        if isinstance(run_dirs, (str, Path)) or len(run_dirs) != kk:
            raise ValueError(
                f"run_dirs must be a sequence of {kk} run folders (one per member) "
                f"or None, got {run_dirs!r}"
            )
        folders = [Path(d) for d in run_dirs]
        if len({f.resolve() for f in folders}) != kk:
            raise ValueError(f"run_dirs must be {kk} distinct folders, got {run_dirs!r}")
    elif ensemble_dir is not None:
        raise ValueError("ensemble_dir needs run_dirs (the members' folders); got run_dirs=None")
    for spec in specs:
        check_memory(spec, dataclasses.replace(cfg, batch_size=cfg.batch_size * kk))
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = pick_device(cfg.device)

    # member k's network and dropout stream, exactly as its solo run starts them
    networks, generators, cpu_rng = [], [], []
    with torch.random.fork_rng(devices=[]):
        for c, spec in zip(cfgs, specs):
            torch.manual_seed(c.seed)
            networks.append(runfolder.build_network(spec, c).to(device))
            cpu_rng.append(torch.get_rng_state())
            g = torch.Generator(device=device)
            if device.type == "cpu":
                g.set_state(cpu_rng[-1])
            else:  # other devices draw dropout from their own generator (see model docstring)
                g.manual_seed(c.seed)
            generators.append(g)
    model = StackedNetwork(networks)
    optimizer = make_optimizer(list(model.stacked), cfg, device, adam)
    solo_groups = torch.optim.Adam(networks[0].parameters(), lr=cfg.lr).state_dict()
    if cfg.weight_decay:
        solo_groups = torch.optim.AdamW(
            networks[0].parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        ).state_dict()
    rngs = [np.random.default_rng(np.random.SeedSequence([c.seed, 0])) for c in cfgs]
    held = [held_out_set(spec, cfg.eval_trials, cfg.eval_seed) for spec in specs]
    trials = EnsembleTrials(specs)
    fingerprint = [_fingerprint(s, c) for s, c in zip(specs, cfgs)]

    start, train_seconds = 0, 0.0
    metrics: list[list[dict[str, Any]]] = [[] for _ in range(kk)]
    joint: Path | None = None
    if folders is not None:
        if not resume:
            for f in folders:
                if f.exists() and any(f.iterdir()):
                    raise ValueError(
                        f"run folder {f} already exists; pass resume=True to continue the "
                        "ensemble, or choose other names"
                    )
        for f, spec, c in zip(folders, specs, cfgs):
            prepare_folder(f, spec, c, resume)
        edir = Path(ensemble_dir) if ensemble_dir is not None else default_ensemble_dir(folders)
        edir.mkdir(parents=True, exist_ok=True)
        joint = edir / ENSEMBLE_CHECKPOINT_FILE
        if resume and joint.exists():
            start, train_seconds = load_joint_checkpoint(
                joint, fingerprint, cfg, model, optimizer, rngs, generators, device
            )
        elif resume and any((f / runfolder.CHECKPOINT_FILE).exists() for f in folders):
            # no joint checkpoint (the members last trained in another ensemble, or alone):
            # continue from each member's own solo checkpoint, all at one step
            start, train_seconds = load_member_checkpoints(
                folders, model, optimizer, rngs, generators, device, networks=networks, cfg=cfg
            )
        elif not resume and joint.exists():
            joint.unlink()  # a stale joint checkpoint of members whose folders are gone
        record = {
            "members": [os.path.relpath(f.resolve(), edir.resolve()) for f in folders],
            "arch": cfg.arch,
            "k": kk,
        }
        atomic_write_text(edir / ENSEMBLE_FILE, json.dumps(record, indent=2))
        metrics = [runfolder.trim_logs(f, "step", start or None, start or None) for f in folders]
    writers: list[Any] = []
    if folders is not None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: slow import

        writers = [SummaryWriter(str(f)) for f in folders]

    def member_optimizer_state(k: int) -> dict[str, Any]:
        """Member k's Adam state in the solo trainer's layout (its checkpoint.pt)."""
        full = optimizer.state_dict()
        groups = copy.deepcopy(solo_groups["param_groups"])
        groups[0]["lr"] = optimizer.param_groups[0]["lr"]
        state = {
            i: {
                key: (v.detach().cpu().clone() if key == "step" else v[k].detach().cpu().clone())
                for key, v in st.items()
            }
            for i, st in full["state"].items()
        }
        return {"state": state, "param_groups": groups}

    def checkpoint(step: int) -> None:
        if folders is None or joint is None:
            return
        for w in writers:
            w.flush()  # every logged step up to the checkpoint is on disk before it
        atomic_torch_save(
            {
                "step": step,
                "train_seconds": train_seconds,
                "members": fingerprint,
                "model": {n: p.detach().cpu() for n, p in zip(model.names, model.stacked)},
                "optimizer": optimizer.state_dict(),
                "np_rng": [runfolder.encode_state(s) for s in stream.state],
                "torch_rng": [g.get_state() for g in generators],
            },
            joint,
        )
        # then each member's folder, in the solo trainer's format (its own resume state)
        for k, f in enumerate(folders):
            state = model.member_state(k)
            atomic_torch_save(
                {
                    "step": step,
                    "train_seconds": train_seconds,
                    "model": state,
                    "optimizer": member_optimizer_state(k),
                    "np_rng": runfolder.encode_state(stream.state[k]),
                    "torch_rng": generators[k].get_state() if device.type == "cpu" else cpu_rng[k],
                },
                f / runfolder.CHECKPOINT_FILE,
            )
            atomic_torch_save(state, f / runfolder.MODEL_FILE)

    def log_eval(step: int, loss_avg: list[float], wall0: float) -> None:
        for k in range(kk):
            network = model.copy_to(k, networks[k])
            row = evaluation_row(
                network, held[k], device, cfg, step, loss_avg[k], train_seconds, wall0
            )
            metrics[k].append(row)
            if folders is not None:
                record_evaluation(row, folders[k], writers[k])
            if on_eval is not None:
                on_eval(k, row, network)

    model.train()
    clip = partial(clip_member_grad_norms, model, cfg.grad_clip) if cfg.grad_clip else None
    dropout = model.arch.get("dropout", 0.0) > 0
    stream = member_stream(trials, cfg.batch_size, rngs)
    bar = progress_bar(cfg, start, f"train {kk} x {cfg.arch}")
    loss_sum, loss_n, last_good = torch.zeros(kk, dtype=torch.float64), 0, start
    wall0 = time.perf_counter()
    step = start
    try:
        while step < cfg.steps and not out_of_time(cfg, train_seconds):
            t0, obs, targets, mask = begin_step(stream, optimizer, cfg, step, device)
            readout, _ = model(obs, generators if dropout else None)
            losses = member_objective(model, readout, targets, mask, specs[0])
            values = losses.detach().double().cpu()
            if not bool(torch.isfinite(values).all()):
                bad = [k for k in range(kk) if not math.isfinite(values[k])]
                where = resume_point(joint, last_good)
                raise TrainingDivergedError(
                    f"loss of member(s) {bad} became {[float(values[k]) for k in bad]} at step "
                    f"{step + 1}; stopped ({where}). Try a lower lr or grad_clip > 0."
                )
            optimizer_step(optimizer, losses.sum(), clip)
            step += 1
            train_seconds += time.perf_counter() - t0
            loss_sum += values
            loss_n += 1
            if step % 25 == 0 or step == cfg.steps:
                bar.set_postfix(loss=f"{float(loss_sum.mean()) / loss_n:.4f}")
            bar.update(1)
            if step % cfg.eval_every == 0:
                log_eval(step, (loss_sum / loss_n).tolist(), wall0)
                loss_sum.zero_()
                loss_n = 0
            if step % cfg.checkpoint_every == 0:
                checkpoint(step)
                last_good = step
        if not metrics[0] or metrics[0][-1]["step"] != step:
            log_eval(step, (loss_sum / max(loss_n, 1)).tolist(), wall0)
        if last_good != step:
            checkpoint(step)
    finally:
        stream.close()
        bar.close()
        for w in writers:
            w.close()
    runs = []
    for k in range(kk):
        network = model.copy_to(k, networks[k]).eval()
        folder = folders[k] if folders is not None else None
        run = runfolder.Run(network, specs[k], cfgs[k], folder, str(device), metrics=metrics[k])
        runs.append(run)
    return runs
