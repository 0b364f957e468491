"""The recorder: the one part of :mod:`probes` that runs an agent.

``record(run, spec, n, seed)`` draws n trials from ``envs.generate``, feeds their observations to
the agent in batches (no gradient) and returns a :class:`Recording` of numpy arrays that every
metric reads. ``run`` is anything with ``hidden_and_outputs(obs [B, T, O] numpy) -> (hidden
[B, T, H], outputs [B, T, N])`` (what ``agents.load(run_dir)`` returns), a torch module with
the ``agents.networks.Network`` interface (``forward(obs) -> (readout, hidden)``, ``activate``),
an sb3-contrib recurrent model, or a step-function agent with an ``initial_state`` method
(:func:`probes.adapters.as_recordable` lists the kinds and adapts them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.envs import Region, TaskSpec, TrialBatch, generate

_FIELDS = ("hidden", "outputs", "latent", "labels", "mu", "step", "period")


@dataclass
class Recording:
    """Hidden states and outputs of an agent on n trials of ``spec``.

    hidden:  [n, T, H] float32, the agent's state read by the probes at each step.
    outputs: [n, T, N] float32, activated outputs (probabilities for sigmoid read-outs).
    latent:  [n, D] float64, x*.
    labels:  [n, N] float32 0/1 task labels.
    mu:      [n, T, D] float64, running evidence mean mu(t) = mean X(1..t); 0 before the stimulus,
             held at its final value after it.
    step:    [T] int, evidence steps seen at each step (t of mu(t)).
    period:  [T] int8, 0 fixation, 1 stimulus, 2 delay, 3 decision.
    """

    spec: TaskSpec
    hidden: np.ndarray
    outputs: np.ndarray
    latent: np.ndarray
    labels: np.ndarray
    mu: np.ndarray
    step: np.ndarray
    period: np.ndarray
    seed: int | None = None

    def __post_init__(self) -> None:
        n, t = self.latent.shape[0], self.period.shape[0]
        for name, arr, lead in (
            ("hidden", self.hidden, (n, t)),
            ("outputs", self.outputs, (n, t)),
            ("mu", self.mu, (n, t)),
        ):
            if arr.ndim != 3 or arr.shape[:2] != lead:
                raise ValueError(f"Recording.{name} must be [n={n}, T={t}, ...], got {arr.shape}")
        if self.latent.shape[1] != self.spec.latent_dim or self.mu.shape[2] != self.spec.latent_dim:
            raise ValueError(
                f"Recording latent/mu last axis must be latent_dim={self.spec.latent_dim}, got "
                f"{self.latent.shape}, {self.mu.shape}"
            )

    @property
    def n(self) -> int:
        return int(self.latent.shape[0])

    @property
    def decision_index(self) -> int:
        """Index of the (first) decision step, where the paper reads the hidden state. For
        targets='free_rt_paper' evidence arrives at this step too: ``step[decision_index]`` is
        T + 1 there (the official free-RT probe reads the last step, which is this one when
        decision_steps = 1)."""
        return int(self.spec.decision_start)

    def at(self, index: int | None = None) -> np.ndarray:
        """Hidden states [n, H] at step ``index`` (default: the decision step)."""
        return self.hidden[:, self.decision_index if index is None else index]

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz`` (the spec travels as JSON inside it)."""
        path = Path(path)
        arrays = {k: getattr(self, k) for k in _FIELDS}
        meta = {"spec": self.spec.to_dict(), "seed": self.seed}
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """Read a file written by :meth:`save` (``allow_pickle=False``: only plain arrays and the
        JSON metadata are read; nothing in the file can run code)."""
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in _FIELDS}
        return cls(spec=TaskSpec.from_dict(meta["spec"]), seed=meta["seed"], **arrays)


def running_mean(spec: TaskSpec, evidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mu [B, T, D] (running mean of the evidence, 0 before the stimulus, held after the last
    evidence step) and the evidence steps seen [T], from raw evidence [B, T, D] (0 outside the
    evidence steps). For targets='free_rt_paper' the decision steps carry evidence too, so at
    the decision step mu is the mean of T + 1 samples and ``seen`` is T + 1."""
    k = np.arange(spec.n_steps)
    stim = (k >= spec.stimulus_start) & (k < spec.evidence_stop)
    seen = np.cumsum(stim)
    total = np.cumsum(evidence * stim[None, :, None], axis=1)
    mu = total / np.maximum(seen, 1)[None, :, None]
    return mu, seen.astype(np.int64)


def _forward_fn(run: Any) -> Any:
    """A callable obs [B, T, O] numpy -> (hidden, outputs) numpy for any supported agent."""
    if hasattr(run, "hidden_and_outputs"):
        return run.hidden_and_outputs
    net = getattr(run, "network", run)
    if hasattr(net, "forward") and hasattr(net, "activate"):
        import torch

        def fn(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            device = next(net.parameters()).device
            was_training = net.training
            net.eval()
            with torch.no_grad():
                readout, hidden = net(torch.as_tensor(obs, device=device))
                out = net.activate(readout)
            net.train(was_training)
            return hidden.cpu().numpy(), out.cpu().numpy()

        return fn
    raise ValueError(
        "run must have hidden_and_outputs(obs) or be an agents Network (forward + activate), got "
        f"{type(run).__name__}"
    )


def record(
    run: Any,
    spec: TaskSpec | None = None,
    n: int = 4096,
    seed: int = 0,
    region: Region | dict | None = None,
    latent: np.ndarray | None = None,
    batch_size: int = 1024,
) -> Recording:
    """Run ``run`` on n fresh trials of ``spec`` and record its states.

    spec: defaults to ``run.spec``. region / latent: as ``envs.generate`` (restrict x* to orthants
    or a half-space, or give the latents [n, D], e.g. a grid for tuning maps).
    batch_size: trials per forward pass (memory only; the result does not depend on it).
    """
    from multitask_evidence.probes.adapters import as_recordable

    if spec is not None and not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be an envs.TaskSpec, got {type(spec).__name__}")
    run = as_recordable(run, spec)
    if spec is None:
        spec = getattr(run, "spec", None)
        if spec is None:
            raise ValueError("spec is required when run has no .spec")
    if not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be an envs.TaskSpec, got {type(spec).__name__}")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    fn = _forward_fn(run)
    batch = generate(spec, n, np.random.default_rng(seed), region=region, latent=latent)
    hiddens, outs = [], []
    for start in range(0, n, batch_size):  # a loop over batches, not trials
        h, o = fn(batch.obs[start : start + batch_size])
        hiddens.append(np.asarray(h, dtype=np.float32))
        outs.append(np.asarray(o, dtype=np.float32))
    hidden = np.concatenate(hiddens)
    outputs = np.concatenate(outs)
    if hidden.shape[:2] != (n, spec.n_steps) or outputs.shape[:2] != (n, spec.n_steps):
        raise ValueError(
            f"agent returned hidden {hidden.shape} / outputs {outputs.shape}; expected "
            f"[{n}, {spec.n_steps}, ...]: is the run's spec the one you passed?"
        )
    if not (np.isfinite(hidden).all() and np.isfinite(outputs).all()):
        raise ValueError("the agent produced non-finite hidden states or outputs")
    mu, seen = running_mean(spec, batch.evidence)
    return Recording(
        spec=spec,
        hidden=hidden,
        outputs=outputs,
        latent=batch.latent,
        labels=batch.labels,
        mu=mu,
        step=seen,
        period=batch.period,
        seed=int(seed),
    )


def regenerate(rec: Recording) -> TrialBatch:
    """The trials [n] of a recording drawn again from its seed (``envs.generate`` is
    deterministic given the seed): observations, raw evidence and labels of exactly those trials.

    Raises ValueError for a recording with no seed, RuntimeError when the regenerated latents
    differ from the recorded ones (a recording of given latents or of a region)."""
    if rec.seed is None:
        raise ValueError("the recording has no seed: its trials cannot be drawn again")
    batch = generate(rec.spec, rec.n, np.random.default_rng(int(rec.seed)))
    if not np.allclose(batch.latent, rec.latent):
        raise RuntimeError("regenerated trials differ from the recording's (given latents?)")
    return batch


def readout_logits(
    run: Any, obs: np.ndarray, index: int, batch_size: int = 1024
) -> np.ndarray | None:
    """The network's logits [n, N] (its read-out before the sigmoid) at step ``index`` of
    trials obs [n, T, O], or None when the agent has no such read-out (not an
    ``agents.networks.Network`` with sigmoid outputs, e.g. an RL policy: then only its
    probabilities are known). Logits keep what probabilities lose where they round to 0 or 1."""
    net = getattr(run, "network", run)
    if not (
        hasattr(net, "forward")
        and hasattr(net, "activate")
        and hasattr(net, "parameters")
        and getattr(net, "output", None) == "sigmoid"
    ):
        return None
    import torch

    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, obs.shape[0], batch_size):  # a loop over batches, not trials
                x = torch.as_tensor(np.asarray(obs[start : start + batch_size], dtype=np.float32))
                readout, _ = net(x.to(device))
                out.append(readout[:, index].double().cpu().numpy())
    finally:
        net.train(was_training)
    return np.concatenate(out)


def load_recording(path: str | Path) -> Recording:
    """A :class:`Recording` saved with ``Recording.save`` or ``mte probe --save-recording``."""
    return Recording.load(path)
