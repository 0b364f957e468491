"""Action heads for the native recurrent PPO: discrete and continuous action components.

An env's action space is flattened into C *components*, each either discrete (a categorical over
``n`` values: a choice, a wager with opt-out, a wait/commit) or continuous (a value in
``[low, high]``: a reported confidence). Supported spaces: ``Discrete``, ``MultiDiscrete``,
``MultiBinary``, a bounded ``Box``, and ``Tuple`` / ``Dict`` of those.

Inside the agent an action is one float tensor ``[..., C]`` (discrete components hold their index
as a float), so that rollout storage, log-probabilities and masks are uniform; ``ActionLayout``
converts to and from the env's own format. Log-probabilities and entropies are returned *per
component* (``[..., C]``), so the PPO loss can weight each component by whether it was scored at
that step (the report only at the decision, the commit component at every step).

Continuous components use either a Beta distribution on (0, 1) (``"beta"``, default; mean
m = sigmoid(u), concentration kappa = 2 + softplus(v), alpha = m kappa, beta = (1 - m) kappa) or a sigmoid-squashed Gaussian (``"gaussian"``), mapped affinely to
``[low, high]``. The deterministic action (``mode``) is the Beta mean / sigmoid of the Gaussian
mean: the *reported* confidence that evaluation scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CONTINUOUS_HEADS = ("beta", "gaussian")
_EPS = 1e-6  # keeps Beta / logit log-densities finite at the edges of (0, 1)


@dataclass(frozen=True)
class _Part:
    """One leaf space of the action space, covering components [start, start + size)."""

    kind: str  # "discrete" or "continuous"
    start: int
    size: int
    key: str | int | None  # Dict key / Tuple index (None for a non-composite space)
    space: gym.Space


class ActionLayout:
    """Flattening of a Gymnasium action space into C discrete / continuous components.

    Attributes:
        n_components: C.
        discrete_index: [Cd] indices of the discrete components; ``n_choices`` [Cd] their sizes.
        continuous_index: [Cc] indices of the continuous components; ``low`` / ``high`` [Cc].
    """

    def __init__(self, space: gym.Space):
        self.space = space
        self.parts: list[_Part] = []
        self._composite: str | None = None
        if isinstance(space, gym.spaces.Tuple):
            self._composite = "tuple"
            leaves = list(enumerate(space.spaces))
        elif isinstance(space, gym.spaces.Dict):
            self._composite = "dict"
            leaves = list(space.spaces.items())
        else:
            leaves = [(None, space)]
        disc_sizes: list[int] = []
        disc_idx: list[int] = []
        cont_idx: list[int] = []
        low: list[float] = []
        high: list[float] = []
        start = 0
        for key, leaf in leaves:
            if isinstance(leaf, gym.spaces.Discrete):
                if int(leaf.start) != 0:
                    raise ValueError(f"action space: Discrete start must be 0, got {leaf.start}")
                sizes = [int(leaf.n)]
                kind = "discrete"
            elif isinstance(leaf, gym.spaces.MultiDiscrete):
                if leaf.nvec.ndim != 1 or np.any(getattr(leaf, "start", 0) != 0):
                    raise ValueError(
                        f"action space: MultiDiscrete must be 1-D and start at 0, got {leaf}"
                    )
                sizes = [int(n) for n in leaf.nvec]
                kind = "discrete"
            elif isinstance(leaf, gym.spaces.MultiBinary):
                sizes = [2] * int(np.prod(leaf.shape))
                kind = "discrete"
            elif isinstance(leaf, gym.spaces.Box):
                if len(leaf.shape) != 1 or not (
                    np.all(np.isfinite(leaf.low)) and np.all(np.isfinite(leaf.high))
                ):
                    raise ValueError(
                        "action space: continuous components need a 1-D Box with finite bounds "
                        f"(e.g. Box(0, 1, (N,)) for confidence), got {leaf}"
                    )
                sizes = [1] * leaf.shape[0]
                kind = "continuous"
                low.extend(float(v) for v in leaf.low)
                high.extend(float(v) for v in leaf.high)
            else:
                raise ValueError(
                    f"action space {type(leaf).__name__} is not supported; allowed: Discrete, "
                    "MultiDiscrete, MultiBinary, bounded 1-D Box, or a Tuple/Dict of them"
                )
            size = len(sizes)
            if kind == "discrete":
                disc_sizes.extend(sizes)
                disc_idx.extend(range(start, start + size))
            else:
                cont_idx.extend(range(start, start + size))
            self.parts.append(_Part(kind, start, size, key, leaf))
            start += size
        self.n_components = start
        self.discrete_index = np.asarray(disc_idx, dtype=np.int64)
        self.n_choices = np.asarray(disc_sizes, dtype=np.int64)
        self.continuous_index = np.asarray(cont_idx, dtype=np.int64)
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)

    def to_env(self, actions: np.ndarray) -> object:
        """Agent actions [B, C] (float) -> a batch of env actions in the space's own format."""
        out: list[tuple[str | int | None, np.ndarray]] = []
        for p in self.parts:
            block = actions[:, p.start : p.start + p.size]
            if p.kind == "discrete":
                v = np.rint(block).astype(np.int64)
                if isinstance(p.space, gym.spaces.Discrete):
                    v = v[:, 0]
                elif isinstance(p.space, gym.spaces.MultiBinary):
                    v = v.astype(np.int8).reshape((-1, *p.space.shape))
            else:
                v = block.astype(np.float32)
            out.append((p.key, v))
        if self._composite == "tuple":
            return tuple(v for _, v in out)
        if self._composite == "dict":
            return dict(out)
        return out[0][1]


class ActionHead(nn.Module):
    """Policy head: hidden [..., H] -> a :class:`ComponentDistribution` over the C components.

    One linear layer (like the supervised readout), so that the hidden state a probe reads is the
    only place the policy keeps its estimate.
    """

    def __init__(self, layout: ActionLayout, hidden_size: int, continuous: str = "beta"):
        super().__init__()
        if continuous not in CONTINUOUS_HEADS:
            raise ValueError(
                f"continuous_head must be one of {list(CONTINUOUS_HEADS)}, got {continuous!r}"
            )
        self.layout = layout
        self.continuous = continuous
        self.max_choices = int(layout.n_choices.max()) if layout.n_choices.size else 0
        n_disc, n_cont = len(layout.discrete_index), len(layout.continuous_index)
        self.disc = nn.Linear(hidden_size, n_disc * self.max_choices) if n_disc else None
        self.cont = nn.Linear(hidden_size, 2 * n_cont) if n_cont else None
        # Small initial weights: a near-uniform initial policy (CleanRL uses std 0.01 for actors).
        for lin in (self.disc, self.cont):
            if lin is not None:
                nn.init.orthogonal_(lin.weight, 0.01)
                nn.init.zeros_(lin.bias)
        if self.cont is not None and continuous == "gaussian":
            with torch.no_grad():  # initial log-std about -0.5: a spread of ~0.6 in logit space
                self.cont.bias[n_cont:] = -0.5
        # invalid logits of shorter categoricals are masked out
        valid = (
            torch.arange(max(self.max_choices, 1))[None, :]
            < torch.as_tensor(layout.n_choices if n_disc else np.ones(1, dtype=np.int64))[:, None]
        )
        self.register_buffer("valid", valid, persistent=False)
        self.register_buffer("low", torch.as_tensor(layout.low), persistent=False)
        self.register_buffer("high", torch.as_tensor(layout.high), persistent=False)
        self.register_buffer("disc_idx", torch.as_tensor(layout.discrete_index), persistent=False)
        self.register_buffer("cont_idx", torch.as_tensor(layout.continuous_index), persistent=False)

    def forward(self, hidden: torch.Tensor) -> ComponentDistribution:
        logits = alpha = beta = mean = log_std = None
        if self.disc is not None:
            logits = self.disc(hidden).unflatten(-1, (-1, self.max_choices))
            logits = logits.masked_fill(~self.valid, -1e9)
        if self.cont is not None:
            a, b = self.cont(hidden).chunk(2, dim=-1)
            if self.continuous == "beta":
                # mean / concentration form: the mean is a sigmoid, so reports near 0 or 1 need
                # logits of a few units, not alpha or beta in the hundreds (which a 1 + softplus
                # form needs, and which left reports under-confident in practice)
                m = torch.sigmoid(a).clamp(1e-4, 1.0 - 1e-4)
                kappa = 2.0 + F.softplus(b)
                alpha, beta = m * kappa, (1.0 - m) * kappa
            else:
                mean, log_std = a, b.clamp(-5.0, 2.0)
        return ComponentDistribution(self, logits, alpha, beta, mean, log_std)


class ComponentDistribution:
    """Product distribution over C action components; every method works per component."""

    def __init__(
        self,
        head: ActionHead,
        logits: torch.Tensor | None,
        alpha: torch.Tensor | None,
        beta: torch.Tensor | None,
        mean: torch.Tensor | None,
        log_std: torch.Tensor | None,
    ):
        self.head = head
        self.logits = logits
        self.alpha, self.beta = alpha, beta
        self.mean, self.log_std = mean, log_std
        ref = logits if logits is not None else (alpha if alpha is not None else mean)
        self.batch_shape = ref.shape[:-2] if ref is logits else ref.shape[:-1]

    # -- helpers -------------------------------------------------------------------------------
    def _empty(self) -> torch.Tensor:
        ref = (
            self.logits
            if self.logits is not None
            else (self.alpha if self.alpha is not None else self.mean)
        )
        return ref.new_zeros((*self.batch_shape, self.head.layout.n_components))

    def _scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head.low, self.head.high - self.head.low

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous action in [low, high] -> (0, 1), clamped away from the edges."""
        low, span = self._scale()
        return ((x - low) / span).clamp(_EPS, 1.0 - _EPS)

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw actions [..., C] (discrete components as float indices)."""
        out = self._empty()
        if self.logits is not None:
            u = torch.rand(self.logits.shape, generator=generator, device=self.logits.device)
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
            out[..., self.head.disc_idx] = (self.logits + gumbel).argmax(-1).to(out.dtype)
        if self.alpha is not None or self.mean is not None:
            low, span = self._scale()
            if self.alpha is not None:
                # torch's Beta sampler takes no generator: continuous components use the
                # global torch RNG, which the trainer seeds.
                x = torch.distributions.Beta(self.alpha, self.beta).sample()
            else:
                eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device)
                x = torch.sigmoid(self.mean + self.log_std.exp() * eps)
            out[..., self.head.cont_idx] = low + span * x.clamp(_EPS, 1.0 - _EPS)
        return out

    def mode(self) -> torch.Tensor:
        """Deterministic actions [..., C]: most likely choice; Beta mean / sigmoid(Gaussian mean)."""
        out = self._empty()
        if self.logits is not None:
            out[..., self.head.disc_idx] = self.logits.argmax(-1).to(out.dtype)
        if self.alpha is not None or self.mean is not None:
            low, span = self._scale()
            out[..., self.head.cont_idx] = low + span * self.unit_mean()
        return out

    def unit_mean(self) -> torch.Tensor:
        """Reported value of each continuous component on (0, 1): [..., Cc]."""
        if self.alpha is not None:
            return self.alpha / (self.alpha + self.beta)
        return torch.sigmoid(self.mean)

    def probs(self) -> torch.Tensor:
        """Probabilities of the discrete components [..., Cd, max_choices]."""
        return torch.softmax(self.logits, dim=-1)

    # -- densities -----------------------------------------------------------------------------
    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability (density for continuous components) of actions [..., C] -> [..., C]."""
        out = self._empty()
        if self.logits is not None:
            idx = actions[..., self.head.disc_idx].round().long().unsqueeze(-1)
            logp = torch.log_softmax(self.logits, dim=-1).gather(-1, idx).squeeze(-1)
            out[..., self.head.disc_idx] = logp
        if self.alpha is not None or self.mean is not None:
            x = self._unit(actions[..., self.head.cont_idx])
            _, span = self._scale()
            if self.alpha is not None:
                lp = torch.distributions.Beta(self.alpha, self.beta).log_prob(x)
            else:
                logit = torch.log(x) - torch.log1p(-x)
                std = self.log_std.exp()
                lp = (
                    -0.5 * ((logit - self.mean) / std) ** 2
                    - self.log_std
                    - 0.5 * math.log(2 * math.pi)
                    - torch.log(x)  # change of variables through the sigmoid
                    - torch.log1p(-x)
                )
            out[..., self.head.cont_idx] = lp - torch.log(span)
        return out

    def entropy(self) -> torch.Tensor:
        """Per-component entropy [..., C] (for the squashed Gaussian: that of the pre-squash
        Gaussian, a standard stand-in without a closed form)."""
        out = self._empty()
        if self.logits is not None:
            logp = torch.log_softmax(self.logits, dim=-1)
            out[..., self.head.disc_idx] = -(logp.exp() * logp).sum(-1)
        if self.alpha is not None:
            out[..., self.head.cont_idx] = torch.distributions.Beta(self.alpha, self.beta).entropy()
        elif self.mean is not None:
            out[..., self.head.cont_idx] = self.log_std + 0.5 * math.log(2 * math.pi * math.e)
        return out
