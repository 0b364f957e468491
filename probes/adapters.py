"""Agents from elsewhere as things :func:`probes.record.record` can play the task with.

:func:`as_recordable` turns an agent into an object with ``hidden_and_outputs(obs [B, T, O]
numpy) -> (hidden [B, T, H], outputs [B, T, N])`` (and ``.spec``), the one interface the
recorder reads. Supported kinds:

- this project's own agents (``agents.load(run_dir)``, ``agents.rl.load``, an
  ``agents.networks.Network``): returned unchanged;
- a Stable-Baselines3 / sb3-contrib recurrent model (``RecurrentPPO`` or its
  ``RecurrentActorCriticPolicy``): the hidden state is the actor LSTM's h, reset to zero at
  every trial's first step, and the outputs are P(answer 1) per task (the Gaussian mean for
  confidence reports), read exactly as for the project's own sb3 runs
  (:class:`agents.rl.sb3.SB3Policy`);
- a step-function agent (CleanRL style, or any torch module): ``step(obs [B, O] tensor, state)
  -> (hidden [B, H], outputs [B, N], new_state)`` with an initial state ``initial_state(B)``
  (given as an argument, or the agent's own ``initial_state`` method). ``state`` is anything
  (a tensor, a tuple, None) and is passed back unchanged; the outputs are recorded as given, so
  return probabilities (the recorder's outputs are activated).

The recorder feeds each agent the generator's observation rows (:func:`envs.generate`, which are
the fixed-response env's observations step by step) and starts a fresh state for every trial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from multitask_evidence.envs import TaskSpec

KINDS = (
    "an object with hidden_and_outputs(obs) (agents.load / agents.rl.load)",
    "an agents.networks.Network",
    "an sb3-contrib RecurrentPPO model or its recurrent policy",
    "step(obs [B, O], state) -> (hidden [B, H], outputs [B, N], state) with initial_state(B)",
)


class StepAgent:
    """A step-function agent played over whole trials (see the module docstring).

    step: ``step(obs [B, O] float32 tensor, state) -> (hidden [B, H], outputs [B, N], state)``.
    initial_state: ``initial_state(B) -> state`` for a batch of B fresh trials.
    module: the torch module behind ``step``, if any: put in eval mode while recording, and its
    parameters' device is where the observations go (unless ``device`` is given).
    """

    def __init__(
        self,
        step: Callable[..., Any],
        initial_state: Callable[[int], Any],
        spec: TaskSpec | None = None,
        module: Any = None,
        device: Any = None,
    ) -> None:
        if not callable(step) or not callable(initial_state):
            raise ValueError("step and initial_state must both be callable")
        self._step = step
        self._initial_state = initial_state
        self.spec = spec
        self.module = module
        self.device = device

    def _device(self) -> Any:
        import torch

        if self.device is not None:
            return torch.device(self.device)
        params = getattr(self.module, "parameters", None)
        if params is not None:
            for p in params():
                return p.device
        return torch.device("cpu")

    def hidden_and_outputs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self._device())
        b, t = x.shape[:2]
        training = getattr(self.module, "training", None)
        if training is not None:
            self.module.eval()
        hs, outs = [], []
        try:
            with torch.no_grad():
                state = self._initial_state(b)
                for k in range(t):
                    result = self._step(x[:, k], state)
                    if not isinstance(result, tuple) or len(result) != 3:
                        raise ValueError(
                            "step(obs, state) must return (hidden [B, H], outputs [B, N], "
                            f"new_state), got {type(result).__name__}"
                            + (f" of length {len(result)}" if isinstance(result, tuple) else "")
                        )
                    h, o, state = result
                    hs.append(_batch_rows("hidden", h, b))
                    outs.append(_batch_rows("outputs", o, b))
        finally:
            if training:
                self.module.train()
        return np.stack(hs, axis=1), np.stack(outs, axis=1)


def _batch_rows(name: str, value: Any, b: int) -> np.ndarray:
    """[B, K] float32 numpy from a tensor / array returned by a step function."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    a = np.asarray(value, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] != b:
        raise ValueError(f"step returned {name} of shape {a.shape}; expected [B={b}, ...]")
    return a


def _sb3_recurrent_policy(agent: Any) -> Any:
    """The RecurrentActorCriticPolicy of an sb3-contrib model (or the policy itself), else None."""
    policy = getattr(agent, "policy", agent)
    if hasattr(policy, "lstm_actor") and hasattr(policy, "mlp_extractor"):
        return policy
    return None


def _is_sb3(agent: Any) -> bool:
    mod = type(agent).__module__ or ""
    policy_mod = type(getattr(agent, "policy", None)).__module__ or ""
    return mod.startswith(("stable_baselines3", "sb3_contrib")) or policy_mod.startswith(
        ("stable_baselines3", "sb3_contrib")
    )


def _spec_from_sb3_env(model: Any) -> TaskSpec | None:
    """The TaskSpec of the model's (first) env, when it is one of this package's envs."""
    get_env = getattr(model, "get_env", None)
    venv = get_env() if callable(get_env) else None
    if venv is None:
        return None
    try:
        spec = venv.get_attr("task_spec", indices=[0])[0]
    except (AttributeError, IndexError, TypeError):
        return None
    return spec if isinstance(spec, TaskSpec) else None


def as_recordable(
    agent: Any,
    spec: TaskSpec | None = None,
    *,
    initial_state: Callable[[int], Any] | None = None,
    device: Any = None,
) -> Any:
    """``agent`` as an object the recorder plays (``hidden_and_outputs`` and ``.spec``).

    spec: the task the agent plays; defaults to ``agent.spec``, or for an sb3 model the task of
    its env. initial_state: ``initial_state(B) -> state`` for step-function agents without
    their own ``initial_state`` method. device: where a step-function agent's observations go
    (default: its parameters' device, else cpu).
    Anything else is a ValueError listing the supported kinds.
    """
    if spec is not None and not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be an envs.TaskSpec, got {type(spec).__name__}")
    if hasattr(agent, "hidden_and_outputs"):
        return agent
    net = getattr(agent, "network", agent)
    if hasattr(net, "forward") and hasattr(net, "activate"):
        return agent  # an agents.networks.Network: the recorder runs it over whole trials
    policy = _sb3_recurrent_policy(agent)
    if policy is not None:
        from multitask_evidence.agents.rl.sb3 import SB3Policy

        spec = spec or getattr(agent, "spec", None) or _spec_from_sb3_env(agent)
        if spec is None:
            raise ValueError("spec is required for this sb3 model (its env has no task_spec)")
        obs_shape = tuple(policy.observation_space.shape)
        if obs_shape != (spec.obs_dim,):
            raise ValueError(
                f"the sb3 model observes {obs_shape} but the task's trials have obs_dim "
                f"{spec.obs_dim} (TaskSpec n_tasks={spec.n_tasks}, latent_dim={spec.latent_dim}); "
                "pass the spec it was trained on"
            )
        return SB3Policy(spec, None, policy, n_report=spec.n_tasks)
    if _is_sb3(agent):
        raise ValueError(
            f"{type(agent).__name__} has no recurrent state to probe: use a recurrent policy "
            "(sb3-contrib RecurrentPPO with MlpLstmPolicy)"
        )
    step = getattr(agent, "step", None)
    module = agent
    if step is None and callable(agent) and initial_state is not None:
        step, module = agent, getattr(agent, "__self__", None)
    if step is not None:
        init = initial_state or getattr(agent, "initial_state", None)
        if init is None:
            raise ValueError(
                "a step-function agent needs initial_state(batch_size) -> state: pass "
                "initial_state=... or give the agent an initial_state method"
            )
        return StepAgent(step, init, spec or getattr(agent, "spec", None), module, device)
    raise ValueError(f"cannot record {type(agent).__name__}: expected one of: " + "; ".join(KINDS))
