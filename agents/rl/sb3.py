"""sb3-contrib ``RecurrentPPO("MlpLstmPolicy")`` on any registered id, in our run-folder layout.

What this adds to a plain ``RecurrentPPO(...).learn()``:

- the env: ``n_envs`` copies of ``gym.make(env_id, spec=spec, ...)`` each wrapped in ``Monitor``,
  in a ``DummyVecEnv``; actions stay ``MultiDiscrete`` (choice / wager / commit) or ``Box``
  (confidence; SB3's diagonal Gaussian, clipped to [0, 1]). ``MultiBinary``, ``Tuple`` and
  ``Dict`` action spaces raise ValueError (RecurrentPPO crashes on ``MultiBinary``);
- a callback that every ``eval_every`` env steps evaluates the deterministic policy on held-out
  trials with the shared :func:`agents.rl.evaluate.evaluate` (decision accuracy as a fraction of
  the ideal observer on the same evidence; calibration for confidence reports), logs it to
  tensorboard and ``metrics.jsonl``, and writes an atomic checkpoint;
- the run folder: ``spec.json``, ``config.json`` (``"kind": "sb3"``), ``model.pt`` (the policy's
  state dict, ``torch.load(weights_only=True)``), ``sb3_checkpoint.pt`` (for ``resume``: policy
  and optimizer state dicts, counters, env and generator states, all tensors and numbers, read
  with ``weights_only=True``; SB3's own zip format unpickles objects and is never used),
  ``metrics.jsonl``, tensorboard events;
- :func:`load` rebuilds the policy from ``model.pt`` alone and reads the LSTM's hidden states
  trial by trial (the state starts at zero at every trial's first step, as in the rollouts).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from multitask_evidence import envs  # noqa: F401  (registers the MultiTaskEvidence ids)
from multitask_evidence.agents import run as runfolder
from multitask_evidence.agents.algorithm import Algo
from multitask_evidence.agents.devices import pick_device
from multitask_evidence.agents.rl.common import RLConfig, RLRun, TrainedPolicy, check_rl_fields
from multitask_evidence.agents.rl.evaluate import evaluate
from multitask_evidence.agents.validate import ConfigChecker
from multitask_evidence.common.files import atomic_torch_save
from multitask_evidence.common.validate import check_int
from multitask_evidence.envs.spec import TaskSpec

KIND = "sb3"
_SB3_ARGS = {
    "learning_rate": "lr",
    "n_steps": "n_steps",
    "batch_size": "batch_size",
    "n_epochs": "n_epochs",
    "gamma": "gamma",
    "gae_lambda": "gae_lambda",
    "clip_range": "clip_range",
    "ent_coef": "ent_coef",
    "vf_coef": "vf_coef",
    "max_grad_norm": "max_grad_norm",
}
"""RecurrentPPO argument -> SB3Config field."""


@dataclass
class SB3Config(RLConfig):
    """Configuration of an sb3-contrib RecurrentPPO run (one docstring per field = CLI help).

    Defaults are RecurrentPPO's own except the LSTM width (64, like our networks) and gamma
    (1: trials are short episodes with the reward at the end). The network is sb3's LSTM policy
    (``lstm_hidden_size``, ``n_lstm_layers``, ``net_arch``), not one of the registered
    architectures, so this config has no :class:`agents.config.NetworkConfig` fields.
    """

    lstm_hidden_size: int = 64
    """LSTM units of the policy (hidden state the probes read)."""
    n_lstm_layers: int = 1
    """LSTM layers."""
    net_arch: int = 64
    """Width of the one MLP layer between the LSTM and the actor/critic outputs (0 = none)."""
    n_envs: int = 8
    """Parallel envs (DummyVecEnv of Monitor-wrapped single envs)."""
    total_steps: int = 100_000
    """Budget in env steps."""
    n_steps: int = 128
    """Rollout steps per env per update."""
    batch_size: int = 128
    """Minibatch size (in steps)."""
    n_epochs: int = 10
    """Passes over each rollout."""
    lr: float = 3e-4
    """Adam learning rate."""
    clip_range: float = 0.2
    """PPO clipping epsilon."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    eval_every: int = 20_000
    """Evaluate (deterministic policy, held-out trials) and checkpoint every this many env steps."""
    eval_trials: int = 2048
    """Held-out trials per evaluation."""
    device: str = "cpu"
    """Device: cpu (SB3's advice for MLP/LSTM policies), auto, or any torch device string
    (cuda, cuda:1, mps; checked to exist when training starts)."""
    algo: str = "sb3-recurrent-ppo"
    """Algorithm name (fixed: sb3-recurrent-ppo)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the field and the allowed values."""
        c = ConfigChecker(self)
        c.choice("algo", ("sb3-recurrent-ppo",))
        for name in ("lstm_hidden_size", "n_lstm_layers", "n_envs", "n_steps", "batch_size",
                     "n_epochs"):  # fmt: skip
            c.integer(name, 1)
        c.integer("net_arch", 0)
        c.number("clip_range", 0.0, open_low=True)
        check_rl_fields(c)

    def env_options(self) -> dict[str, Any]:
        """``env_kwargs`` parsed (a JSON object)."""
        return ConfigChecker(self).json_object("env_kwargs")

    def model_kwargs(self) -> dict[str, Any]:
        """RecurrentPPO's keyword arguments from this config (its names: ``learning_rate``,
        ``clip_range`` ...), the policy's included."""
        return {
            **{arg: getattr(self, name) for arg, name in _SB3_ARGS.items()},
            "policy_kwargs": self.policy_kwargs(),
            "seed": self.seed,
        }

    def policy_kwargs(self) -> dict[str, Any]:
        arch = [self.net_arch] if self.net_arch else []
        return {
            "lstm_hidden_size": self.lstm_hidden_size,
            "n_lstm_layers": self.n_lstm_layers,
            "net_arch": {"pi": arch, "vf": arch},
        }


def check_action_space(space: gym.Space, env_id: str) -> None:
    """ValueError unless SB3's RecurrentPPO can represent ``space`` (MultiDiscrete, Discrete, Box)."""
    if isinstance(space, gym.spaces.MultiBinary):
        raise ValueError(
            f"{env_id}: RecurrentPPO crashes on MultiBinary actions; the env must use "
            "MultiDiscrete([2] * N) (allowed: Discrete, MultiDiscrete, Box)"
        )
    if not isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.Box)):
        raise ValueError(
            f"{env_id}: SB3 cannot represent a {type(space).__name__} action space "
            "(allowed: Discrete, MultiDiscrete, Box); use the native PPO (--algo ppo)"
        )
    if isinstance(space, gym.spaces.Box) and not (
        np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    ):
        raise ValueError(f"{env_id}: Box actions need finite bounds for SB3, got {space}")


def make_sb3_env(spec: TaskSpec, config: SB3Config) -> Any:
    """``n_envs`` Monitor-wrapped envs in a DummyVecEnv, seeded from ``config.seed``."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    kw = config.env_options()

    def factory() -> gym.Env:
        return Monitor(gym.make(config.env_id, spec=spec, **kw))

    vec = DummyVecEnv([factory] * config.n_envs)
    check_action_space(vec.action_space, config.env_id)
    vec.seed(config.seed)
    return vec


# ---------------------------------------------------------------------------------------------
# The trained policy, as evaluation and the probes read it
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class SB3Policy(TrainedPolicy):
    """A RecurrentPPO policy (see :class:`agents.rl.common.TrainedPolicy`): hidden states are
    the LSTM's h with the state reset to zero at step 0 of every trial (as in RecurrentPPO's
    rollouts, where ``episode_start`` zeroes it); a confidence is the Gaussian mean clipped to
    [0, 1]."""

    kind: ClassVar[str] = KIND
    policy: Any
    n_report: int

    def __post_init__(self) -> None:
        self.policy.eval()

    @torch.no_grad()
    def hidden_and_outputs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.policy
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=p.device)
        b, t, o = x.shape
        feats = p.extract_features(x.reshape(b * t, o), p.pi_features_extractor)
        seq = feats.reshape(b, t, -1).transpose(0, 1)  # the LSTM is sequence-first
        lstm = p.lstm_actor
        h0 = torch.zeros(lstm.num_layers, b, lstm.hidden_size, device=p.device)
        out, _ = lstm(seq, (h0, torch.zeros_like(h0)))
        hidden = out.transpose(0, 1)  # [B, T, H]
        latent = p.mlp_extractor.forward_actor(hidden.reshape(b * t, -1))
        dist = p._get_action_dist_from_latent(latent)
        return hidden.cpu().numpy(), self._outputs(dist).reshape(b, t, -1)

    def _outputs(self, dist: Any) -> np.ndarray:
        from stable_baselines3.common.distributions import MultiCategoricalDistribution

        n = self.n_report
        if isinstance(dist, MultiCategoricalDistribution):
            probs = [c.probs for c in dist.distribution[:n]]
            out = torch.stack([q[:, 1] / (q[:, 0] + q[:, 1]).clamp_min(1e-12) for q in probs], -1)
        else:
            out = dist.distribution.mean[:, :n].clamp(0.0, 1.0)
        return out.cpu().numpy()

    # evaluate.py's actor protocol
    def initial_state(self, n: int) -> tuple[Any, np.ndarray]:
        return None, np.ones(n, dtype=bool)

    def act(
        self, obs: np.ndarray, state: Any, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        lstm_state, starts = state
        actions, lstm_state = self.policy.predict(
            obs, state=lstm_state, episode_start=starts, deterministic=deterministic
        )
        return actions, (lstm_state, np.zeros_like(starts))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
class SB3Run(RLRun):
    """Result of :func:`train`: an :class:`RLRun` whose ``policy`` is an :class:`SB3Policy`."""


def _n_report(spec: TaskSpec, config: SB3Config) -> int:
    return spec.n_tasks


CHECKPOINT = runfolder.SB3_CHECKPOINT_FILE
LEGACY_CHECKPOINT = runfolder.SB3_LEGACY_CHECKPOINT_FILE


def _tensors(x: Any) -> Any:
    """numpy arrays -> tensors, recursively (what ``torch.load(weights_only=True)`` reads)."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, dict):
        return {k: _tensors(v) for k, v in x.items()}
    return x


def _arrays(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.numpy()
    if isinstance(x, dict):
        return {k: _arrays(v) for k, v in x.items()}
    return x


def training_state(model: Any, train_seconds: float) -> dict[str, Any]:
    """Everything a RecurrentPPO run needs to continue exactly, as tensors and numbers only:
    policy and optimizer state dicts, counters, the last observations / episode starts / LSTM
    states of the rollout, every env's state (block, position, generator), the Monitor's running
    episode rewards, and the torch, numpy and python generator states."""
    import random

    envs_state = []
    for wrapped in model.env.envs:
        core = wrapped.unwrapped
        st = core.get_state()
        envs_state.append(
            {
                "rng": runfolder.encode_state(st.pop("rng")),
                "monitor_rewards": torch.tensor(
                    [float(r) for r in getattr(wrapped, "rewards", [])], dtype=torch.float64
                ),
                **_tensors(st),
            }
        )
    lstm = model._last_lstm_states
    # SB3's recurrent rollout buffer shuffles with the legacy global generator
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    return {
        "format": 1,
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "train_seconds": float(train_seconds),
        "last_obs": torch.from_numpy(np.asarray(model._last_obs).copy()),
        "last_episode_starts": torch.from_numpy(np.asarray(model._last_episode_starts).copy()),
        "lstm": [t.detach().cpu().clone() for pair in (lstm.pi, lstm.vf) for t in pair],
        "envs": envs_state,
        "ep_info": runfolder.encode_state({"episodes": list(model.ep_info_buffer or [])}),
        "torch_rng": torch.get_rng_state(),
        "np_rng": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "py_rng": runfolder.encode_state({"state": random.getstate()}),
    }


CHECKPOINT_FIELDS = (
    "policy", "optimizer", "num_timesteps", "n_updates", "episode_num", "train_seconds",
    "last_obs", "last_episode_starts", "lstm", "envs", "ep_info", "torch_rng", "np_rng", "py_rng",
)  # fmt: skip
"""What :func:`training_state` writes and :func:`restore_training_state` reads."""


def _check_counters(model: Any, ck: dict[str, Any], where: Path, total_steps: int) -> None:
    """The checkpoint's counters: integers >= 0, env steps at most ``total_steps`` plus the one
    rollout that may pass it (SB3 stops at the first rollout boundary past the budget)."""
    rollout = model.n_envs * model.n_steps
    runfolder.checkpoint_count(
        where, ck, "num_timesteps", total_steps + rollout,
        f"SB3Config.total_steps={total_steps} in config.json plus one rollout of {rollout}",
    )  # fmt: skip
    for key in ("n_updates", "episode_num"):
        check_int(f"{where}: {key}", ck[key], 0)


def _check_rollout_state(model: Any, ck: dict[str, Any], where: Path) -> None:
    """The rollout's last observations, episode starts and LSTM states: tensors of the shapes
    the freshly built model has (one row per env), so the next rollout does not fail inside
    SB3 on a mismatch."""
    fresh = model._last_lstm_states
    expected = {
        "last_obs": (model.n_envs, *model.observation_space.shape),
        "last_episode_starts": (model.n_envs,),
        **{f"lstm[{i}]": tuple(t.shape) for i, t in enumerate((*fresh.pi, *fresh.vf))},
    }
    lstm = ck["lstm"]
    if not isinstance(lstm, (list, tuple)) or len(lstm) != 4:
        raise ValueError(f"{where}: lstm must be a list of 4 state tensors, got {type(lstm)}")
    values = {"last_obs": ck["last_obs"], "last_episode_starts": ck["last_episode_starts"]}
    values |= {f"lstm[{i}]": t for i, t in enumerate(lstm)}
    for key, shape in expected.items():
        v = values[key]
        if not torch.is_tensor(v) or tuple(v.shape) != shape:
            got = tuple(v.shape) if torch.is_tensor(v) else type(v).__name__
            raise ValueError(f"{where}: {key} must be a tensor of shape {shape}, got {got}")


def restore_training_state(model: Any, ck: Any, where: Path, total_steps: int) -> float:
    """Put :func:`training_state`'s content back into a freshly built model and its envs;
    returns the training seconds so far. A checkpoint that does not fit (not a dict, fields
    missing, counters negative or past ``total_steps`` and one rollout, tensors of other
    shapes than this model's, a negative or non-finite time) is a ValueError naming ``where``
    and the field."""
    import random
    from collections import deque

    from sb3_contrib.common.recurrent.type_aliases import RNNStates

    ck = runfolder.checkpoint_dict(where, ck, CHECKPOINT_FIELDS, "sb3 training checkpoint")
    try:
        _check_counters(model, ck, where, total_steps)
        train_seconds = runfolder.checkpoint_seconds(where, ck)
        _check_rollout_state(model, ck, where)
        runfolder.load_state(model.policy, where, ck["policy"])
        runfolder.load_optimizer(model.policy.optimizer, ck["optimizer"], where)
        model.num_timesteps = int(ck["num_timesteps"])
        model._n_updates = int(ck["n_updates"])
        model._episode_num = int(ck["episode_num"])
        model._last_obs = ck["last_obs"].numpy()
        model._last_episode_starts = ck["last_episode_starts"].numpy()
        h = [t.to(model.device) for t in ck["lstm"]]
        model._last_lstm_states = RNNStates((h[0], h[1]), (h[2], h[3]))
        if len(ck["envs"]) != len(model.env.envs):
            raise ValueError(f"{len(ck['envs'])} env states for {len(model.env.envs)} envs")
        for wrapped, st in zip(model.env.envs, ck["envs"]):
            st = dict(st)
            rewards, rng = st.pop("monitor_rewards"), st.pop("rng")
            wrapped.reset()  # the wrappers' bookkeeping; the env's state is then replaced
            wrapped.unwrapped.set_state({**_arrays(st), "rng": runfolder.decode_state(rng)})
            wrapped.rewards = [float(r) for r in rewards.tolist()]  # Monitor's running episode
        model.ep_info_buffer = deque(
            runfolder.decode_state(ck["ep_info"])["episodes"], maxlen=model._stats_window_size
        )
        model.ep_success_buffer = deque(maxlen=model._stats_window_size)
        torch.set_rng_state(ck["torch_rng"])
        npr = ck["np_rng"]
        np.random.set_state(  # noqa: NPY002
            (
                "MT19937",
                npr["key"].numpy().astype(np.uint32),
                int(npr["pos"]),
                int(npr["has_gauss"]),
                float(npr["gauss"]),
            )
        )
        py = runfolder.decode_state(ck["py_rng"])["state"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        return train_seconds
    except (KeyError, TypeError, IndexError, AttributeError, RuntimeError) as e:
        raise ValueError(
            f"{where}: not a complete sb3 training checkpoint (missing or malformed {e})"
        ) from None
    except ValueError as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith(str(where)) else f"{where}: {msg}") from None


def _logger(path: Path) -> Any:
    """SB3's logger writing tensorboard events into the run folder itself, each tag at most
    once per step.

    SB3 dumps the statistics of an update at the next rollout's step, so the last update's
    statistics would be written at the final step a second time: a value for a tag already
    written at a step is dropped.
    """
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

    class OncePerStep(TensorBoardOutputFormat):
        def __init__(self, folder: str) -> None:
            super().__init__(folder)
            self.step, self.tags = -1, set()

        def write(self, key_values: dict, key_excluded: dict, step: int = 0) -> None:
            if step != self.step:
                self.step, self.tags = step, set()
            new = [k for k in key_values if k not in self.tags]
            self.tags.update(new)
            super().write(
                {k: key_values[k] for k in new}, {k: key_excluded[k] for k in new}, step
            )

    return Logger(folder=str(path), output_formats=[OncePerStep(str(path))])


def train(
    spec: TaskSpec, config: SB3Config, run_dir: str | Path | None = None, resume: bool = False
) -> SB3Run:
    """Train RecurrentPPO("MlpLstmPolicy") on ``config.env_id``; write the run folder.

    Checkpoints (``sb3_checkpoint.pt``, weights-only: see :func:`training_state`) are written at
    the first rollout boundary after each evaluation and at the end, so that ``resume=True``
    continues exactly where an uninterrupted run would be (same trials, same sampling, same
    weights). SB3's own zip format is never read: it unpickles objects.
    """
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    if not isinstance(config, SB3Config):
        raise ValueError(f"config must be an SB3Config, got {type(config).__name__}")
    config.validate()
    from multitask_evidence.common.limits import check_bytes

    h = config.lstm_hidden_size
    check_bytes(
        f"SB3Config n_envs={config.n_envs} x n_steps={config.n_steps} with lstm_hidden_size={h} "
        "(the rollout buffer with its LSTM states)",
        4
        * config.n_envs
        * config.n_steps
        * (spec.obs_dim + 2 * spec.n_tasks + 4 * h * config.n_lstm_layers),
    )
    check_bytes(
        f"SB3Config.lstm_hidden_size={h} (weights, gradients and Adam state)",
        2 * 4 * 4 * 4 * config.n_lstm_layers * h * (h + spec.obs_dim),
    )
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if (
        resume
        and run_dir is not None
        and (Path(run_dir) / LEGACY_CHECKPOINT).exists()
        and not (Path(run_dir) / CHECKPOINT).exists()
    ):
        raise ValueError(
            f"{Path(run_dir) / LEGACY_CHECKPOINT}: SB3's zip checkpoints unpickle objects and are "
            f"not read; this run cannot be resumed (start a new run folder)"
        )
    env = make_sb3_env(spec, config)  # checks the action space before anything is written
    device = pick_device(config.device, "SB3Config")
    path, resuming = runfolder.prepare_run_dir(run_dir, KIND, spec, config, resume, CHECKPOINT)
    model = RecurrentPPO("MlpLstmPolicy", env, device=device, verbose=0, **config.model_kwargs())
    state = {"train_seconds": 0.0, "last_eval": {}, "t0": time.perf_counter(), "due": False}
    if resuming:
        ck = runfolder.load_weights(path / CHECKPOINT, map_location=device)
        state["train_seconds"] = restore_training_state(
            model, ck, path / CHECKPOINT, config.total_steps
        )
    else:
        # the first rollout starts from the seeded envs (SB3 would reset them in learn())
        model._last_obs = env.reset()
        model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
    done_steps = int(model.num_timesteps)
    rows = runfolder.trim_logs(
        path, "env_steps", done_steps if resuming else None, done_steps if resuming else None
    )
    last_logged = rows[-1]["env_steps"] if rows else None
    model.set_logger(_logger(path))
    log = runfolder.MetricsLog(path / runfolder.METRICS_FILE)
    policy = SB3Policy(spec, config, model.policy, _n_report(spec, config))

    def save() -> None:
        atomic_torch_save(training_state(model, state["train_seconds"]), path / CHECKPOINT)
        atomic_torch_save(model.policy.state_dict(), path / runfolder.MODEL_FILE)

    def run_eval(write: bool = True) -> dict[str, Any]:
        nonlocal last_logged
        res = evaluate(
            policy, spec, config.env_id, config.env_options(), config.eval_trials, config.eval_seed
        ).to_dict()
        state["last_eval"] = res
        if not write:
            return res
        rec = {
            "env_steps": int(model.num_timesteps),
            "train_seconds": state["train_seconds"],
            **{f"eval/{k}": v for k, v in res.items() if not isinstance(v, dict)},
        }
        log.write(rec)
        last_logged = rec["env_steps"]
        for k, v in rec.items():
            if k.startswith("eval/") and isinstance(v, (int, float)) and not isinstance(v, bool):
                model.logger.record(k, v)
        return res

    class EvalCallback(BaseCallback):
        """Evaluates every ``eval_every`` env steps, checkpoints at the next rollout boundary
        (where the state is exactly resumable), drives the bar."""

        def _on_training_start(self) -> None:
            self.next_eval = (model.num_timesteps // config.eval_every + 1) * config.eval_every
            self.bar = tqdm(
                total=config.total_steps,
                initial=model.num_timesteps,
                desc="sb3",
                unit="step",
                disable=not config.progress,
                dynamic_ncols=True,
            )
            self.last = model.num_timesteps
            state["t0"] = time.perf_counter()

        def _on_rollout_start(self) -> None:
            if state["due"]:
                save()
                state["due"] = False
                state["t0"] = time.perf_counter()

        def _on_step(self) -> bool:
            now = time.perf_counter()
            state["train_seconds"] += now - state["t0"]
            state["t0"] = now
            self.bar.update(model.num_timesteps - self.last)
            self.last = model.num_timesteps
            if model.num_timesteps >= self.next_eval:
                self.next_eval += config.eval_every
                res = run_eval()
                self.bar.set_postfix(frac_ideal=f"{res['frac_ideal']:.3f}")
                state["due"] = True
                state["t0"] = time.perf_counter()  # evaluation time is not training time
            return not (config.max_seconds and state["train_seconds"] >= config.max_seconds)

        def _on_training_end(self) -> None:
            self.bar.close()

    remaining = config.total_steps - done_steps
    try:
        if remaining > 0:
            model.learn(
                remaining,
                callback=EvalCallback(),
                reset_num_timesteps=False,
                tb_log_name="sb3",
            )
        # a finished run that is resumed re-evaluates (deterministic) without logging again
        run_eval(write=last_logged != int(model.num_timesteps))
        model.logger.dump(model.num_timesteps)
        save()
    finally:
        env.close()
        model.logger.close()
    steps = int(model.num_timesteps)
    return SB3Run(
        run_dir=path,
        env_steps=steps,
        train_seconds=state["train_seconds"],
        steps_per_second=steps / max(state["train_seconds"], 1e-9),
        final_eval=state["last_eval"],
        policy=policy,
    )


def build_policy(spec: TaskSpec, config: SB3Config) -> Any:
    """A fresh RecurrentActorCriticPolicy for ``spec`` and ``config`` (no env, no pickle)."""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    env = gym.make(config.env_id, spec=spec, **config.env_options())
    try:
        check_action_space(env.action_space, config.env_id)
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    return RecurrentActorCriticPolicy(
        obs_space, act_space, lambda _: config.lr, **config.policy_kwargs()
    )


def load(run_dir: str | Path) -> SB3Policy:
    """Load an SB3 run folder from ``model.pt`` (``torch.load(weights_only=True)``)."""
    path = Path(run_dir)
    spec = runfolder.read_spec(path)
    config = runfolder.read_config(path, SB3Config, KIND)
    policy = build_policy(spec, config)
    runfolder.load_state(policy, path / runfolder.MODEL_FILE)
    return SB3Policy(spec, dataclasses.replace(config), policy, _n_report(spec, config))


def untrained(policy: SB3Policy) -> SB3Policy:
    """The same sb3 agent before training: a fresh policy from the same seed
    (``torch.manual_seed(config.seed)`` then :func:`build_policy`; sb3's own seeding order may
    draw differently); torch's global RNG is restored afterwards."""
    spec, config = policy.spec, policy.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        fresh = build_policy(spec, config)
    return SB3Policy(spec, config, fresh, _n_report(spec, config))


def _load_on(run_dir: str | Path, device: str = "cpu") -> SB3Policy:
    """:func:`load` with the registry's signature (the policy loads on the CPU)."""
    return load(run_dir)


ALGO = Algo(
    name="sb3-recurrent-ppo",
    config_cls=SB3Config,
    train=train,
    load=_load_on,
    kind=KIND,
    untrained=untrained,
)
"""sb3-contrib's RecurrentPPO in the registry (:mod:`agents.algos`)."""
