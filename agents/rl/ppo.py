"""Native recurrent PPO over any of our networks, on the native vector env.

One module a reader can follow top to bottom (in the spirit of CleanRL's ``ppo_atari_lstm.py``):
config (:mod:`agents.rl.ppo_config`) -> agent -> rollout -> GAE -> clipped PPO update -> run folder. The differences from a
generic recurrent PPO come from the task's structure:

- **Whole trials as sequences.** Every update resets all ``num_envs`` envs and plays exactly one
  trial in each (``spec.n_steps`` steps; a free-response trial may end earlier, the rest of its row
  is padding and masked out). The recurrent state therefore always starts from
  ``core.initial_state`` at step 0, the rollout is a ``[B, L]`` block of whole trials, and the
  update recomputes hidden states with the core's own ``forward(obs [B, L, O])``: exact for every
  architecture (RNN, GRU, LSTM, transformer), no stored states, no truncated backprop.
- **Scored-step masking** (``mask_unscored``, default on). With a fixed reaction time only the
  decision-step report is scored: actions at fixation / stimulus steps change nothing, so their
  log-probabilities would only add noise to the gradient and their entropy bonus would reward
  noise nobody sees. The policy loss and the entropy bonus are therefore restricted, per action
  component, to the steps where that component is scored (the report at the decision step(s), or at
  the commit step in free response; the wait/commit component at every step of the trial). The
  value loss uses every step of the trial.
- **Factorised actions.** The N report components (and the commit component) are independent
  given the hidden state. ``ratio="component"`` (default) clips each component's probability ratio
  separately, which keeps an update of 24 components from being throttled by their joint ratio;
  ``ratio="joint"`` clips the product, as textbook PPO does.

The rollout only samples actions; log-probabilities and values are recomputed by one batched
``forward`` before the update, so they match the training pass exactly.

Known behaviour: with wagers, opting out (sure reward 0.7) beats the initial random answers
(0.5), so a slowly learning agent can settle on always opting out before it has learned to
answer (the "opt-out trap"; sb3's RecurrentPPO falls into it on our tiny test budget). More
passes per rollout (``update_epochs=4``) escape it in the tests. Continuous reports get no
entropy bonus by default (``ent_coef_continuous``): it would bias the reported confidence
towards 0.5.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from multitask_evidence import envs  # noqa: F401  (registers the MultiTaskEvidence ids)
from multitask_evidence.agents.algorithm import Algo
from multitask_evidence.agents.devices import device_available, pick_device
from multitask_evidence.agents.errors import TrainingDivergedError
from multitask_evidence.agents.rl.common import RLRun, TrainedPolicy
from multitask_evidence.agents.rl.evaluate import evaluate, summarise_final
from multitask_evidence.agents.rl.heads import ActionHead, ActionLayout
from multitask_evidence.agents.rl.layout import ScoringLayout, env_info, take_final
from multitask_evidence.agents.rl.ppo_config import KIND, PPOConfig
from multitask_evidence.agents.run import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    MODEL_FILE,
    MetricsLog,
    checkpoint_count,
    checkpoint_dict,
    checkpoint_seconds,
    load_optimizer,
    load_state,
    load_weights,
    prepare_run_dir,
    read_config,
    read_spec,
    trim_logs,
)
from multitask_evidence.common.files import atomic_torch_save
from multitask_evidence.envs.spec import TaskSpec


# ---------------------------------------------------------------------------------------------
# Env: the native vector env, and what is scored when
# ---------------------------------------------------------------------------------------------
def make_vector_env(env_id: str, spec: TaskSpec, num_envs: int, env_kwargs: dict[str, Any]) -> Any:
    """The native vector env of ``env_id`` for ``spec`` (all envs stepped in one numpy call).

    Every rollout reseeds all envs, so each env draws blocks of one trial (``block_size=1``)
    unless ``env_kwargs`` says otherwise: larger blocks would generate trials that are never played.
    """
    kw = {"block_size": 1, **env_kwargs}
    return gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", spec=spec, **kw
    )


# ---------------------------------------------------------------------------------------------
# Agent: torso + actor head + critic
# ---------------------------------------------------------------------------------------------
class Agent(nn.Module):
    """Any recurrent core as torso; a linear actor head and a (small MLP) critic on its hidden state.

    ``forward(obs [B, T, O]) -> (hidden [B, T, H], distribution over [B, T, C], value [B, T])``.
    """

    def __init__(self, obs_dim: int, layout: ActionLayout, config: PPOConfig):
        super().__init__()
        self.core = config.build_core(obs_dim)
        h = self.core.hidden_size
        self.actor = ActionHead(layout, h, config.continuous_head)
        if config.critic_hidden:
            self.critic = nn.Sequential(
                nn.Linear(h, config.critic_hidden), nn.Tanh(), nn.Linear(config.critic_hidden, 1)
            )
        else:
            self.critic = nn.Linear(h, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, Any, torch.Tensor]:
        hidden = self.core(obs)
        return hidden, self.actor(hidden), self.critic(hidden).squeeze(-1)

    @torch.no_grad()
    def step(self, obs_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, Any]:
        """One step of every env: obs_t [B, O] -> (hidden_t [B, H], distribution [B, C], state)."""
        hidden, state = self.core.step(obs_t, state)
        return hidden, self.actor(hidden), state


# ---------------------------------------------------------------------------------------------
# Rollout: one whole trial in every env
# ---------------------------------------------------------------------------------------------
@dataclass
class Rollout:
    """One trial per env. B envs, L = spec.n_steps, C action components.

    obs [B, L, O]; actions [B, L, C]; rewards [B, L]; alive [B, L] (1 while the step belongs to the
    trial); scored [B, L, C] (1 where the component's action is scored); final: terminal infos
    (numpy arrays [B, ...]) gathered at each trial's last step; actions_final [B, C].
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    alive: torch.Tensor
    scored: torch.Tensor
    final: dict[str, np.ndarray]
    actions_final: np.ndarray

    @property
    def n_steps(self) -> int:
        return int(self.alive.sum().item())


@torch.no_grad()
def collect(
    policy: Any,
    vec: Any,
    spec: TaskSpec,
    layout: ActionLayout,
    scoring: ScoringLayout,
    seed: int,
    device: torch.device,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Play one trial in each env of ``vec`` (reset with ``seed``; env i gets seed + i).

    policy: an object with ``initial_state(B, device)`` and ``step(obs_t, state) -> (hidden,
    distribution, state)`` (an :class:`Agent`). Steps after a trial ended (free response) are
    padding: the env auto-resets there, and those steps are masked out.
    """
    n = vec.num_envs
    length = scoring.trial_steps
    obs_np, _ = vec.reset(seed=seed)
    state = policy.core.initial_state(n, device)
    c = layout.n_components
    obs = torch.zeros((n, length, scoring.obs_dim), device=device)
    actions = torch.zeros((n, length, c), device=device)
    rewards = torch.zeros((n, length), device=device)
    alive = torch.zeros((n, length), device=device)
    scored = torch.zeros((n, length, c), device=device)
    alive_np = np.ones(n, dtype=bool)
    final: dict[str, np.ndarray] = {}
    actions_final = np.zeros((n, c), dtype=np.float32)
    decision = torch.as_tensor(scoring.scored_steps, device=device)
    for t in range(length):
        o = torch.as_tensor(obs_np, dtype=torch.float32, device=device)
        obs[:, t] = o
        _, dist, state = policy.step(o, state)
        a = dist.mode() if deterministic else dist.sample(generator)
        actions[:, t] = a
        a_np = a.cpu().numpy()
        obs_np, r, term, trunc, info = vec.step(layout.to_env(a_np))
        alive_t = torch.as_tensor(alive_np, dtype=torch.float32, device=device)
        alive[:, t] = alive_t
        rewards[:, t] = torch.as_tensor(r, dtype=torch.float32, device=device) * alive_t
        ended = alive_np & (np.asarray(term) | np.asarray(trunc))
        if scoring.commit_index is None:
            # fixed reaction time: the report is scored at the decision step(s)
            scored[:, t, :] = decision[t] * alive_t[:, None]
        else:
            scored[:, t, scoring.commit_index] = alive_t
            # the report counts at the commit / deadline step (a commit during fixation aborts)
            if t >= scoring.stimulus_start:
                ended_t = torch.as_tensor(ended, dtype=torch.float32, device=device)
                scored[:, t, scoring.report_index] = ended_t[:, None]
        if ended.any():
            take_final(final, info, ended)
            actions_final[ended] = a_np[ended]
        alive_np = alive_np & ~ended
        if not alive_np.any():
            break
    return Rollout(obs, actions, rewards, alive, scored, final, actions_final)


# ---------------------------------------------------------------------------------------------
# GAE and the PPO update
# ---------------------------------------------------------------------------------------------
def gae(
    rewards: torch.Tensor, values: torch.Tensor, alive: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates over whole trials.

    rewards, values, alive: [B, L]. A trial ends at its last alive step (terminal: no bootstrap).
    Returns (advantages [B, L], returns [B, L]), zero outside the trial.
    """
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    length = rewards.shape[1]
    for t in reversed(range(length)):  # a loop over steps, vectorised over trials
        if t + 1 < length:
            cont = alive[:, t + 1]
            next_value = values[:, t + 1]
        else:
            cont = torch.zeros_like(last)
            next_value = torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value * cont - values[:, t]
        last = (delta + gamma * lam * cont * last) * alive[:, t]
        adv[:, t] = last
    return adv, (adv + values) * alive


def ppo_update(
    agent: Agent,
    optimizer: torch.optim.Optimizer,
    ro: Rollout,
    config: PPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """Clipped-objective updates over whole-trial minibatches; returns mean loss statistics."""
    with torch.no_grad():
        _, dist, values = agent(ro.obs)
        old_logp = dist.log_prob(ro.actions)
        values = values * ro.alive
        adv, returns = gae(ro.rewards, values, ro.alive, config.gamma, config.gae_lambda)
    weight = ro.scored if config.mask_unscored else ro.alive[..., None].expand_as(ro.scored)
    layout = agent.actor.layout
    ent_w = torch.full((layout.n_components,), float(config.ent_coef), device=ro.obs.device)
    ent_w[torch.as_tensor(layout.continuous_index, device=ro.obs.device)] = float(
        config.ent_coef_continuous
    )
    n = ro.obs.shape[0]
    # trim padding columns no trial reached (free response)
    length = int(ro.alive.sum(0).nonzero().max().item()) + 1
    mb_size = math.ceil(n / config.num_minibatches)
    stats: dict[str, list[float]] = {k: [] for k in ("pg", "v", "ent", "kl", "clipfrac")}
    for _ in range(config.update_epochs):
        order = torch.randperm(n, generator=generator).to(ro.obs.device)
        for start in range(0, n, mb_size):
            idx = order[start : start + mb_size]
            w = weight[idx, :length]  # [b, L, C]
            step_w = (w.sum(-1) > 0).float()  # steps with at least one scored component
            a = adv[idx, :length]
            if config.norm_adv:
                sel = a[step_w > 0]
                a = (a - sel.mean()) / (sel.std() + 1e-8) if sel.numel() > 1 else a
            _, d, v = agent(ro.obs[idx, :length])
            logp = d.log_prob(ro.actions[idx, :length])
            logratio = (logp - old_logp[idx, :length]) * w
            if config.ratio == "component":
                ratio = logratio.exp()
                pg1 = -a[..., None] * ratio
                pg2 = -a[..., None] * ratio.clamp(1 - config.clip_coef, 1 + config.clip_coef)
                pg = (torch.maximum(pg1, pg2) * w).sum() / w.sum().clamp_min(1.0)
                clipped = ((ratio - 1).abs() > config.clip_coef).float()
                clipfrac = (clipped * w).sum() / w.sum().clamp_min(1.0)
            else:
                ratio = logratio.sum(-1).exp()
                pg1 = -a * ratio
                pg2 = -a * ratio.clamp(1 - config.clip_coef, 1 + config.clip_coef)
                pg = (torch.maximum(pg1, pg2) * step_w).sum() / step_w.sum().clamp_min(1.0)
                clipped = ((ratio - 1).abs() > config.clip_coef).float()
                clipfrac = (clipped * step_w).sum() / step_w.sum().clamp_min(1.0)
            ent_c = d.entropy() * w
            ent = ent_c.sum() / w.sum().clamp_min(1.0)  # logged: mean entropy per scored component
            ent_bonus = (ent_c * ent_w).sum() / w.sum().clamp_min(1.0)
            alive = ro.alive[idx, :length]
            ret = returns[idx, :length]
            if config.clip_vloss:
                v_old = values[idx, :length]
                v_clip = v_old + (v - v_old).clamp(-config.clip_coef, config.clip_coef)
                vl = torch.maximum((v - ret) ** 2, (v_clip - ret) ** 2)
            else:
                vl = (v - ret) ** 2
            v_loss = 0.5 * (vl * alive).sum() / alive.sum()
            loss = pg - ent_bonus + config.vf_coef * v_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                kl = (((logratio.exp() - 1) - logratio) * w).sum() / w.sum().clamp_min(1.0)
            for k, val in zip(stats, (pg, v_loss, ent, kl, clipfrac)):
                stats[k].append(float(val.detach()))
    return {k: float(np.mean(v)) for k, v in stats.items()}


# ---------------------------------------------------------------------------------------------
# Acting for evaluation and probing
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class PPOPolicy(TrainedPolicy):
    """A trained native agent (see :class:`agents.rl.common.TrainedPolicy`); ``.agent`` the
    actor-critic, ``.scoring`` which action components each step scores."""

    kind: ClassVar[str] = KIND
    agent: Agent
    scoring: ScoringLayout

    def __post_init__(self) -> None:
        self.agent.eval()
        self.layout = self.agent.actor.layout

    @property
    def device(self) -> torch.device:
        return next(self.agent.parameters()).device

    @torch.no_grad()
    def hidden_and_outputs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        hidden, dist, _ = self.agent(x)
        return hidden.cpu().numpy(), report_outputs(dist, self.layout, self.scoring).cpu().numpy()

    # evaluate.py's actor protocol
    def initial_state(self, n: int) -> Any:
        return self.agent.core.initial_state(n, self.device)

    @torch.no_grad()
    def act(
        self, obs: np.ndarray, state: Any, deterministic: bool = True
    ) -> tuple[Any, Any, np.ndarray]:
        """obs [n, O] -> (env actions, state, agent actions [n, C])."""
        o = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        _, dist, state = self.agent.step(o, state)
        a = (dist.mode() if deterministic else dist.sample()).cpu().numpy()
        return self.layout.to_env(a), state, a


def report_outputs(dist: Any, layout: ActionLayout, scoring: ScoringLayout) -> torch.Tensor:
    """Per-task outputs [..., N] of a policy distribution: P(answer 1) or reported confidence."""
    comps = []
    disc = {int(c): k for k, c in enumerate(layout.discrete_index)}
    cont = {int(c): k for k, c in enumerate(layout.continuous_index)}
    probs = dist.probs() if disc else None
    means = dist.unit_mean() if cont else None
    for c in scoring.report_index:
        c = int(c)
        if c in disc:
            p = probs[..., disc[c], :]
            comps.append(p[..., 1] / (p[..., 0] + p[..., 1]).clamp_min(1e-12))
        else:
            comps.append(means[..., cont[c]])
    return torch.stack(comps, dim=-1)


# ---------------------------------------------------------------------------------------------
# Training: the run folder around the loop
# ---------------------------------------------------------------------------------------------
@dataclass
class PPORun(RLRun):
    """Result of :func:`train`: an :class:`RLRun` (``policy`` a :class:`PPOPolicy`) plus the
    number of updates."""

    updates: int = 0


def build_agent(spec: TaskSpec, config: PPOConfig) -> tuple[Agent, ActionLayout, ScoringLayout]:
    """The agent for ``spec`` and ``config.env_id`` (reads the action space from one env)."""
    layout, scoring = env_info(spec, config.env_id, config.env_options())
    return Agent(scoring.obs_dim, layout, config), layout, scoring


CHECKPOINT_FIELDS = ("model", "optimizer", "update", "env_steps", "train_seconds")
"""What a native PPO checkpoint holds (see ``checkpoint`` in :func:`train`)."""


def restore_checkpoint(
    where: Path,
    agent: Agent,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    n_updates: int,
    steps_per_update: int,
) -> tuple[int, int, float]:
    """Load the checkpoint at ``where`` into ``agent`` and ``optimizer``; returns (update,
    env_steps, train_seconds). A file that is not a checkpoint of this run (not a dict, fields
    missing, weights or optimizer state of other shapes, an update outside [0, n_updates], more
    env steps than that many updates take, a negative or non-finite time) is a ValueError
    naming the file and field."""
    ck = checkpoint_dict(
        where, load_weights(where, map_location=device), CHECKPOINT_FIELDS, "PPO checkpoint"
    )
    update = checkpoint_count(
        where, ck, "update", n_updates, "the updates in PPOConfig.total_steps of config.json"
    )
    env_steps = checkpoint_count(
        where, ck, "env_steps", update * steps_per_update, f"{update} updates of at most "
        f"{steps_per_update} env steps"
    )  # fmt: skip
    train_seconds = checkpoint_seconds(where, ck)
    load_state(agent, where, ck["model"])
    load_optimizer(optimizer, ck["optimizer"], where)
    return update, env_steps, train_seconds


def train(
    spec: TaskSpec,
    config: PPOConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
) -> PPORun:
    """Train a native recurrent-PPO agent; write the run folder; return a :class:`PPORun`.

    One update = one whole trial in each of ``num_envs`` envs, then ``update_epochs`` passes of
    ``num_minibatches`` minibatches. Trials of update u are seeded ``(seed, u)``, so a resumed run
    continues the same trial stream as an uninterrupted one.
    """
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    if not isinstance(config, PPOConfig):
        raise ValueError(f"config must be a PPOConfig, got {type(config).__name__}")
    config.validate()
    from multitask_evidence.common.limits import check_bytes

    h, t = config.hidden_size, spec.n_steps
    check_bytes(
        f"PPOConfig.num_envs={config.num_envs} with hidden_size={h} on {t}-step trials (one "
        "rollout and its activations)",
        config.num_envs * (spec.trial_bytes + 4 * t * (8 * h + 4 * spec.n_tasks)),
    )
    check_bytes(
        f"PPOConfig.eval_trials={config.eval_trials} (evaluation)",
        2 * min(config.eval_trials, 4096) * spec.trial_bytes,
    )
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = pick_device(config.device, "PPOConfig")
    if config.update_epochs == 0:
        _, sc = env_info(spec, config.env_id, config.env_options())
        config = dataclasses.replace(config, update_epochs=4 if sc.kind.has_opt_out else 2)
    path, resuming = prepare_run_dir(run_dir, KIND, spec, config, resume, CHECKPOINT_FILE)

    torch.manual_seed(config.seed)
    agent, layout, scoring = build_agent(spec, config)
    agent.to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr, eps=1e-5)
    steps_per_update_max = config.num_envs * scoring.trial_steps
    n_updates = max(1, math.ceil(config.total_steps / steps_per_update_max))
    start_update, env_steps, train_seconds = 0, 0, 0.0
    if resuming:
        start_update, env_steps, train_seconds = restore_checkpoint(
            path / CHECKPOINT_FILE, agent, optimizer, device, n_updates, steps_per_update_max
        )
    # logs past the checkpoint (or all of them, without one) would be written twice
    trim_logs(path, "update", start_update if resuming else None, env_steps if resuming else None)
    log = MetricsLog(path / METRICS_FILE)
    writer = SummaryWriter(str(path))

    vec = make_vector_env(config.env_id, spec, config.num_envs, config.env_options())
    policy = PPOPolicy(spec, config, agent, scoring)
    last_eval: dict[str, Any] = {}

    def run_eval(update: int, train_rec: dict[str, Any] | None = None) -> dict[str, Any]:
        agent.eval()
        res = evaluate(
            policy, spec, config.env_id, config.env_options(), config.eval_trials, config.eval_seed
        ).to_dict()
        agent.train()
        rec = {
            "update": update,
            "env_steps": env_steps,
            "train_seconds": train_seconds,
            **(train_rec or {}),
            **{f"eval/{k}": v for k, v in res.items() if not isinstance(v, dict)},
        }
        log.write(rec)
        for k, v in rec.items():
            if k.startswith("eval/") and isinstance(v, (int, float)) and not isinstance(v, bool):
                writer.add_scalar(k, v, env_steps)
        return res

    def checkpoint(update: int) -> None:
        state = {
            "model": agent.state_dict(),
            "optimizer": optimizer.state_dict(),
            "update": update,
            "env_steps": env_steps,
            "train_seconds": train_seconds,
        }
        writer.flush()  # every logged step up to the checkpoint is on disk before it
        atomic_torch_save(state, path / CHECKPOINT_FILE)
        atomic_torch_save(agent.state_dict(), path / MODEL_FILE)

    bar = tqdm(
        total=n_updates,
        initial=start_update,
        desc="ppo",
        unit="upd",
        disable=not config.progress,
        dynamic_ncols=True,
    )
    update = start_update
    try:
        agent.train()
        for update in range(start_update, n_updates):
            if config.max_seconds and train_seconds >= config.max_seconds:
                break
            t0 = time.perf_counter()
            frac = 1.0 - update / n_updates
            lr = config.lr * frac if config.anneal_lr else config.lr
            for g in optimizer.param_groups:
                g["lr"] = lr
            # one stream per update: resume-exact without saving RNG states
            torch.manual_seed(config.seed * 1_000_003 + update)
            gen = torch.Generator().manual_seed(config.seed * 7_919 + update)
            env_seed = (config.seed * 1_000_000_007 + update * config.num_envs) % (2**31)
            ro = collect(agent, vec, spec, layout, scoring, env_seed, device, generator=gen)
            stats = ppo_update(agent, optimizer, ro, config, gen)
            if not all(math.isfinite(v) for v in stats.values()):
                ck = path / CHECKPOINT_FILE
                kept = f"last checkpoint {ck} kept" if ck.exists() else "no checkpoint written"
                raise TrainingDivergedError(
                    f"non-finite PPO loss at update {update + 1} ({kept}); try a lower lr"
                )
            dt = time.perf_counter() - t0
            train_seconds += dt
            n_steps = ro.n_steps
            env_steps += n_steps
            rec = {
                "update": update + 1,
                "env_steps": env_steps,
                "train_seconds": train_seconds,
                "sps": n_steps / dt,
                "lr": lr,
                **{f"loss/{k}": v for k, v in stats.items()},
                **_rollout_metrics(ro),
            }
            for k, v in rec.items():
                if k != "update":
                    writer.add_scalar(k if "/" in k else f"train/{k}", v, env_steps)
            bar.update(1)
            bar.set_postfix(
                reward=f"{rec['train/reward']:.3f}",
                frac_ideal=f"{rec.get('train/frac_ideal', float('nan')):.3f}",
                sps=f"{rec['sps']:.0f}",
            )
            # the last update of the budget (steps or seconds) gets its evaluation and a
            # checkpoint, so that every update is logged once
            done = update + 1 == n_updates or bool(
                config.max_seconds and train_seconds >= config.max_seconds
            )
            if (update + 1) % config.eval_every == 0 or done:
                last_eval = run_eval(update + 1, rec)
            else:
                log.write(rec)
            if (update + 1) % config.checkpoint_every == 0 or done:
                checkpoint(update + 1)
            if done:
                update += 1
                break
        else:
            update = n_updates
    finally:
        bar.close()
        vec.close()
    final_update = update
    if not last_eval:
        # nothing left to train (a finished run resumed): evaluate again (deterministic) for
        # the result, without logging the step a second time
        agent.eval()
        last_eval = evaluate(
            policy, spec, config.env_id, config.env_options(), config.eval_trials, config.eval_seed
        ).to_dict()
    writer.close()
    return PPORun(
        run_dir=path,
        env_steps=env_steps,
        train_seconds=train_seconds,
        steps_per_second=env_steps / max(train_seconds, 1e-9),
        final_eval=last_eval,
        policy=policy,
        updates=final_update,
    )


def _rollout_metrics(ro: Rollout) -> dict[str, float]:
    """Training-time metrics of the (stochastic) rollout, from the env's terminal infos."""

    out = {"train/reward": float(ro.rewards.sum(1).mean())}
    s = summarise_final(ro.final)
    if s.get("frac_ideal") is not None:
        out["train/frac_ideal"] = s["frac_ideal"]
        out["train/accuracy"] = s["accuracy"]
    return out


def load(run_dir: str | Path) -> PPOPolicy:
    """Load a native PPO run folder (weights with ``torch.load(weights_only=True)``)."""
    path = Path(run_dir)
    spec = read_spec(path)
    config = read_config(path, PPOConfig, KIND)
    config = (
        dataclasses.replace(config, device="cpu")
        if config.device != "auto" and not device_available(torch.device(config.device))
        else config
    )
    agent, _, scoring = build_agent(spec, config)
    load_state(agent, path / MODEL_FILE)
    return PPOPolicy(spec, config, agent, scoring)


def untrained(policy: PPOPolicy) -> PPOPolicy:
    """The same native PPO agent before training: exactly the network :func:`train` starts from
    (``torch.manual_seed(config.seed)`` then :func:`build_agent`); torch's global RNG is restored
    afterwards."""
    spec, config = policy.spec, policy.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        agent, _, scoring = build_agent(spec, config)
    return PPOPolicy(spec, config, agent, scoring)


def _load_on(run_dir: str | Path, device: str = "cpu") -> PPOPolicy:
    """:func:`load` with the registry's signature (the policy goes where its config puts it)."""
    return load(run_dir)


ALGO = Algo(
    name="ppo", config_cls=PPOConfig, train=train, load=_load_on, kind=KIND, untrained=untrained
)
"""Native recurrent PPO in the registry (:mod:`agents.algos`)."""
