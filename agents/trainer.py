"""Supervised training on the multi-task objective (docs/science.md §2), one loop top to bottom.

Each step draws a fresh batch from the vectorised generator (``envs.generate``) with the run's
own ``np.random.Generator``, computes the objective of ``spec.targets``

- ``paper``: BCE of sigmoid outputs against targets at every step (0.5 before the decision,
  labels at it);
- ``decision_only``: the same BCE masked to the decision steps;
- ``ddm_bound`` and ``free_rt_paper``: MSE of ``ddm_bound * tanh`` outputs against the
  drift-diffusion targets (unit-normal sums, or the official code's X2 - tan(phi) X1 sums);

and takes an Adam step (learning-rate schedule and gradient clipping optional). Every
``eval_every`` steps the network is scored on a fixed held-out set against the ideal observer
(:mod:`agents.evaluate`); every ``checkpoint_every`` steps the run folder gets an atomic
checkpoint from which ``resume=True`` continues bit-for-bit (CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from multitask_evidence.agents.algorithm import Algo
from multitask_evidence.agents.config import TrainConfig
from multitask_evidence.agents.devices import pick_device
from multitask_evidence.agents.errors import TrainingDivergedError
from multitask_evidence.agents.evaluate import HeldOutSet, evaluate
from multitask_evidence.agents.prefetch import Prefetcher
from multitask_evidence.agents.run import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SPEC_FILE,
    LoadedRun,
    MetricsLog,
    Run,
    build_network,
    checkpoint_count,
    checkpoint_dict,
    checkpoint_seconds,
    decode_state,
    encode_state,
    load_optimizer,
    load_state,
    load_weights,
    read_config_json,
    read_kind,
    read_spec,
    resume_mismatch,
    trim_logs,
)
from multitask_evidence.common.files import atomic_torch_save, atomic_write_text
from multitask_evidence.envs import TaskSpec, TrialBatch, generate


def batch_stream(spec: TaskSpec, batch_size: int, rng: np.random.Generator) -> Prefetcher[TrialBatch]:
    """Fresh training batches from ``generate(spec, batch_size, rng)``, one batch ahead; its
    ``state`` is ``rng``'s state after the last batch handed out (see :class:`Prefetcher`)."""
    return Prefetcher(
        lambda: generate(spec, batch_size, rng), lambda: rng.bit_generator.state
    )


_HELD_OUT_CACHE: dict[tuple[TaskSpec, int, int], HeldOutSet] = {}


def held_out_set(spec: TaskSpec, n: int, seed: int) -> HeldOutSet:
    """The fixed evaluation set (cached per process: the ideal observer is computed once)."""
    key = (spec, n, seed)
    if key not in _HELD_OUT_CACHE:
        if len(_HELD_OUT_CACHE) > 8:
            _HELD_OUT_CACHE.clear()
        _HELD_OUT_CACHE[key] = HeldOutSet.make(spec, n, seed)
    return _HELD_OUT_CACHE[key]


def learning_rate(config: TrainConfig, step: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a resolved config."""
    lr, total, warm = config.lr, config.steps, config.warmup_steps
    if warm and step < warm:
        return lr * (step + 1) / warm
    if config.schedule == "constant":
        return lr
    frac = (step - warm) / max(1, total - warm)
    if config.schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
    return lr * max(0.0, 1.0 - frac)  # linear


def progress_bar(config: TrainConfig, start: int, desc: str) -> Any:
    """The training progress bar over ``config.steps`` optimizer steps, resumed at ``start``
    (off when ``config.progress`` is False)."""
    return tqdm(
        total=config.steps,
        initial=start,
        disable=None if config.progress else True,
        desc=desc,
        dynamic_ncols=True,
    )


def optimizer_step(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: Callable[[], Any] | None
) -> None:
    """Backpropagate ``loss`` into fresh gradients and take the optimizer step, calling
    ``clip()`` on the gradients first when given."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        clip()
    optimizer.step()


def out_of_time(config: TrainConfig, train_seconds: float) -> bool:
    """Whether the training time (s) has reached ``config.max_seconds`` (0: no limit)."""
    return bool(config.max_seconds) and train_seconds >= config.max_seconds


def begin_step(
    stream: Prefetcher[Any], optimizer: torch.optim.Optimizer, config: TrainConfig, step: int,
    device: torch.device,
) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Start optimizer step ``step``: note the time (``time.perf_counter``, s: the step's
    training time counts from here, waiting for the batch included), set the schedule's learning
    rate and return the time and the next batch's ``obs``, ``targets`` and ``mask`` on
    ``device`` (shapes as the stream draws them: [B, T, ...] for one network, [K, B, T, ...]
    for an ensemble)."""
    t0 = time.perf_counter()
    for g in optimizer.param_groups:
        g["lr"] = learning_rate(config, step)
    batch = stream.next()
    return (
        t0,
        torch.from_numpy(batch.obs).to(device),
        torch.from_numpy(batch.targets).to(device),
        torch.from_numpy(batch.mask).to(device),
    )  # fmt: skip


def evaluation_row(
    network: torch.nn.Module,
    held: Any,
    device: torch.device,
    config: TrainConfig,
    step: int,
    loss: float,
    train_seconds: float,
    wall0: float,
) -> dict[str, Any]:
    """One row of ``metrics.jsonl``: the step, times (s), mean training loss since the last
    row, learning rate and trials seen, then :func:`evaluate` on the held-out set."""
    row = {
        "step": step,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - wall0,
        "loss": loss,
        "lr": learning_rate(config, max(step - 1, 0)),
        "trials": step * config.batch_size,
    }
    return row | evaluate(network, held, device)


def record_evaluation(row: Mapping[str, Any], folder: Path | None, writer: Any) -> None:
    """Append an :func:`evaluation_row` to the run folder's metrics log and its tensorboard
    events (no-ops without a folder / writer)."""
    if folder is not None:
        MetricsLog(folder / METRICS_FILE).write(row)
    if writer is not None:
        step = row["step"]
        for k in ("loss", "lr", "acc", "frac_ideal", "log_loss", "ece"):
            writer.add_scalar(f"{'train' if k in ('loss', 'lr') else 'eval'}/{k}", row[k], step)
        writer.add_scalar("eval/ideal_acc", row["ideal_acc"], step)
        writer.add_scalar("time/train_seconds", row["train_seconds"], step)


def resume_point(checkpoint: Path | None, last_good: int) -> str:
    """Where a run whose loss stopped being finite can be resumed from (its error message)."""
    if checkpoint is not None and checkpoint.exists():
        return f"last good checkpoint {checkpoint} (step {last_good})"
    return "no checkpoint was written before it"


def objective(
    network: torch.nn.Module,
    readout: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    spec: TaskSpec,
) -> torch.Tensor:
    """Mean loss over (trial, step, task) weighted by ``mask [B, T]`` (the spec's targets)."""
    if spec.mse_targets:
        per = (network.activate(readout) - targets) ** 2
    else:
        per = F.binary_cross_entropy_with_logits(readout, targets, reduction="none")
    return (per * mask[..., None]).sum() / (mask.sum() * per.shape[-1])


def check_memory(spec: TaskSpec, cfg: TrainConfig) -> None:
    """ValueError before anything is allocated when the sizes would not fit in memory."""
    from multitask_evidence.common.limits import check_bytes

    h, t, o = cfg.hidden_size, spec.n_steps, spec.obs_dim
    width = max(h, cfg.mlp_size if cfg.arch == "transformer" else 4 * h)
    check_bytes(
        f"TrainConfig.hidden_size={h} (weights, gradients and Adam state)",
        4 * 4 * cfg.n_layers * width * (h + o + spec.n_tasks),
    )
    check_bytes(
        f"TrainConfig.batch_size={cfg.batch_size} with hidden_size={h} on {t}-step trials "
        "(one batch and its activations)",
        cfg.batch_size * (spec.trial_bytes + 4 * t * width * cfg.n_layers * 2),
    )
    check_bytes(
        f"TrainConfig.eval_trials={cfg.eval_trials} (the held-out set)",
        2 * cfg.eval_trials * spec.trial_bytes,
    )


def prepare_folder(run_dir: Path, spec: TaskSpec, config: TrainConfig, resume: bool) -> bool:
    """Create / check the run folder. Returns True if there is a checkpoint to resume from."""
    exists = run_dir.exists() and any(run_dir.iterdir())
    if exists and not resume:
        raise ValueError(
            f"run folder {run_dir} already exists; pass resume=True (mte train --resume) to "
            f"continue it, or choose another name"
        )
    if exists:
        why = resume_mismatch(
            run_dir, spec, read_config_json(run_dir / CONFIG_FILE), config.to_dict()
        )
        if why:
            raise ValueError(why)
        return (run_dir / CHECKPOINT_FILE).exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / SPEC_FILE, spec.to_json())
    atomic_write_text(run_dir / CONFIG_FILE, config.to_json())
    return False


CHECKPOINT_FIELDS = ("step", "train_seconds", "model", "optimizer", "np_rng", "torch_rng")
"""What a supervised training checkpoint holds (see ``checkpoint`` in :func:`train`)."""


def restore_checkpoint(
    where: Path,
    cfg: TrainConfig,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data_rng: np.random.Generator,
    device: torch.device,
) -> tuple[int, float]:
    """Load the checkpoint at ``where`` into the network, optimizer and data stream and set
    torch's RNG; returns (step, train_seconds). Anything that is not a checkpoint of this run (a
    bare tensor, missing fields, weights or optimizer state of other shapes, a step outside
    [0, cfg.steps], a negative or non-finite time) is a ValueError naming the file and field."""
    ck = checkpoint_dict(
        where, load_weights(where, map_location=device), CHECKPOINT_FIELDS, "training checkpoint"
    )
    start = checkpoint_count(where, ck, "step", cfg.steps, "TrainConfig.steps in config.json")
    train_seconds = checkpoint_seconds(where, ck)
    load_state(network, where, ck["model"])
    load_optimizer(optimizer, ck["optimizer"], where)
    try:
        data_rng.bit_generator.state = decode_state(ck["np_rng"])
        torch.set_rng_state(ck["torch_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise ValueError(f"{where}: np_rng / torch_rng are not RNG states ({e})") from None
    return start, train_seconds


def train(
    spec: TaskSpec,
    config: TrainConfig | None = None,
    run_dir: Path | str | None = None,
    resume: bool = False,
    *,
    on_eval: Callable[[dict[str, Any], torch.nn.Module], None] | None = None,
) -> Run:
    """Train a network on ``spec`` with ``config`` (presets resolved); return the :class:`Run`.

    run_dir: folder for spec/config/weights/checkpoints/metrics/tensorboard (None: nothing is
    written, no checkpoints). resume: continue from the folder's last checkpoint; the result
    equals an uninterrupted run on CPU (same seeds, same data stream); ``max_seconds`` may differ
    from the interrupted run's (a budget, not part of the recipe).
    on_eval: called after each evaluation with (metrics row, network), e.g. to probe the hidden
    states during training; it must not change the network or draw from torch's RNG.
    Raises ValueError for a run folder that exists without resume, TrainingDivergedError when the
    loss stops being finite (the last good checkpoint is kept).
    """
    if not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be an envs.TaskSpec, got {type(spec).__name__}")
    cfg = (config or TrainConfig()).resolve()
    cfg.validate()
    check_memory(spec, cfg)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = pick_device(cfg.device)

    torch.manual_seed(cfg.seed)
    network = build_network(spec, cfg).to(device)
    if cfg.weight_decay:
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(network.parameters(), lr=cfg.lr)
    data_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0]))
    held = held_out_set(spec, cfg.eval_trials, cfg.eval_seed)

    folder = Path(run_dir) if run_dir is not None else None
    start, train_seconds, metrics = 0, 0.0, []
    if folder is not None and prepare_folder(folder, spec, cfg, resume):
        start, train_seconds = restore_checkpoint(
            folder / CHECKPOINT_FILE, cfg, network, optimizer, data_rng, device
        )
    writer = None
    if folder is not None:
        # rows and events logged after the checkpoint (all of them, without one) would be
        # logged again: cut both logs back to it
        metrics = trim_logs(folder, "step", start or None, start or None)
        from torch.utils.tensorboard import SummaryWriter  # lazy: slow import

        writer = SummaryWriter(str(folder))

    def checkpoint(step: int) -> None:
        if folder is None:
            return
        if writer is not None:
            writer.flush()  # every logged step up to the checkpoint is on disk before it
        state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
        atomic_torch_save(
            {
                "step": step,
                "train_seconds": train_seconds,
                "model": state,
                "optimizer": optimizer.state_dict(),
                "np_rng": encode_state(stream.state),
                "torch_rng": torch.get_rng_state(),
            },
            folder / CHECKPOINT_FILE,
        )
        atomic_torch_save(state, folder / MODEL_FILE)

    def log_eval(step: int, loss_avg: float, wall0: float) -> dict[str, Any]:
        row = evaluation_row(network, held, device, cfg, step, loss_avg, train_seconds, wall0)
        metrics.append(row)
        record_evaluation(row, folder, writer)
        if on_eval is not None:
            on_eval(row, network)
            network.train()
        return row

    network.train()
    clip = None
    if cfg.grad_clip:
        params = list(network.parameters())  # a list: a generator would clip only once
        clip = partial(torch.nn.utils.clip_grad_norm_, params, cfg.grad_clip)
    stream = batch_stream(spec, cfg.batch_size, data_rng)
    bar = progress_bar(cfg, start, f"train {cfg.arch}")
    loss_sum, loss_n, last_good = 0.0, 0, start
    d0 = spec.decision_start
    wall0 = time.perf_counter()
    step = start
    try:
        while step < cfg.steps and not out_of_time(cfg, train_seconds):
            t0, obs, targets, mask = begin_step(stream, optimizer, cfg, step, device)
            readout, _ = network(obs)
            loss = objective(network, readout, targets, mask, spec)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                where = resume_point(
                    folder / CHECKPOINT_FILE if folder is not None else None, last_good
                )
                raise TrainingDivergedError(
                    f"loss became {loss_value} at step {step + 1}; stopped ({where}). Try a "
                    "lower lr or grad_clip > 0."
                )
            optimizer_step(optimizer, loss, clip)
            step += 1
            train_seconds += time.perf_counter() - t0
            loss_sum += loss_value
            loss_n += 1
            if step % 25 == 0 or step == cfg.steps:
                with torch.no_grad():
                    z = readout[:, d0].detach()
                    y = targets[:, d0]
                    acc = (z > 0) == (y > 0 if spec.ddm_targets else y > 0.5)
                bar.set_postfix(loss=f"{loss_sum / loss_n:.4f}", acc=f"{acc.float().mean():.3f}")
            bar.update(1)
            if step % cfg.eval_every == 0:
                log_eval(step, loss_sum / loss_n, wall0)
                loss_sum, loss_n = 0.0, 0
            if step % cfg.checkpoint_every == 0:
                checkpoint(step)
                last_good = step
        if not metrics or metrics[-1]["step"] != step:
            log_eval(step, loss_sum / max(loss_n, 1), wall0)
        if last_good != step:
            checkpoint(step)
    finally:
        stream.close()
        bar.close()
        if writer is not None:
            writer.close()
    network.eval()
    return Run(network, spec, cfg, folder, str(device), metrics=metrics)


def load(run_dir: Path | str, device: str = "cpu") -> LoadedRun:
    """Load a supervised run folder as a :class:`LoadedRun` on ``device``.

    Every file is read without running code (JSON, weights-only state dicts); a missing,
    corrupt or mismatched file is a ValueError naming it.
    """
    run_dir = Path(run_dir)
    _, raw = read_kind(run_dir)
    spec = read_spec(run_dir)
    try:
        config = TrainConfig.from_dict(raw)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{run_dir / CONFIG_FILE}: {e}") from None
    network = build_network(spec, config)
    model = run_dir / MODEL_FILE
    if not model.exists():
        raise ValueError(f"{run_dir} has no {MODEL_FILE} yet (no checkpoint written)")
    load_state(network, model)
    network.to(device).eval()
    return LoadedRun(network, spec, config, run_dir, device)


def untrained(loaded: LoadedRun) -> LoadedRun:
    """The same supervised network before training: exactly what :func:`train` builds at step 0
    (``torch.manual_seed(config.seed)`` then :func:`agents.run.build_network`); torch's global
    RNG is restored afterwards."""
    config = loaded.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = build_network(loaded.spec, config.resolve())
    return LoadedRun(network=network, spec=loaded.spec, config=config, run_dir=None)


ALGO = Algo(
    name="supervised",
    config_cls=TrainConfig,
    train=train,
    load=load,
    kind="supervised",
    untrained=untrained,
)
"""The supervised algorithm in the registry (:mod:`agents.algos`)."""
