"""Recurrent cores and the readout network (docs/science.md §4), one interface for all.

Every core maps observations ``obs [B, T, O]`` to hidden states ``hidden [B, T, H]`` (the state a
probe reads) and has a step-wise form ``step(obs_t [B, O], state) -> (hidden_t [B, H], state)``
that gives the same numbers as ``forward`` (RL rollouts use it). :class:`Network` adds the linear
per-task readout. Time is in steps; everything is batch-first.

The built-in architectures (registered in :mod:`agents.architectures`, whose
``build_core(arch, obs_dim, ...)`` builds any registered core):

- ``rnn``: Elman RNN with leak a, r_t = (1 - a) r_{t-1} + a act(W_in u_t + W_rec r_{t-1} + b),
  act relu or tanh (paper: relu, a = 1). With a = 1 the fused ``torch.nn.RNN`` kernel runs it.
- ``rnn_nonleaky``: r_t = r_{t-1} + a relu(W_in u_t + W_rec r_{t-1} + b) (the paper's "non-leaky").
- ``gru``, ``lstm``: ``torch.nn.GRU`` / ``torch.nn.LSTM`` (hidden = the LSTM's h).
- ``transformer``: GPT-style causal transformer (pre-LayerNorm blocks, linear input projection,
  positional embedding none/learned/sinusoidal; paper: 1 layer, 8 heads, width 64, MLP 256, none).
  hidden = the final residual stream after the final LayerNorm (what the readout reads).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from multitask_evidence.common.validate import check_choice, check_int, check_number

ACTIVATIONS = ("relu", "tanh")
POSITIONALS = ("none", "learned", "sinusoidal")
INITS = ("default", "torch", "orthogonal", "identity")
"""Weight inits. ``default``: the paper's model for the architecture (torch's layer init for the
RNNs, GPT-2's for the transformer); ``torch``: torch's layer init for every architecture;
``orthogonal`` / ``identity`` (IRNN): recurrent weights of the Elman RNN only."""
GPT2_INIT_STD = 0.02
"""GPT-2's init: every linear weight ~ N(0, 0.02^2), biases 0; the two projections that write into
the residual stream scaled by 1 / sqrt(2 n_layers) (Radford et al. 2019, the HF GPT2 model the
paper's transformer is built on)."""
OUTPUTS = ("sigmoid", "ddm", "linear")


class RecurrentCore(nn.Module):
    """Base class: ``forward(obs [B, T, O]) -> hidden [B, T, H]`` plus the step-wise form."""

    hidden_size: int
    obs_dim: int

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        """The state before the first step (zeros for the recurrent nets)."""
        raise NotImplementedError

    def step(self, obs_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step: ``obs_t [B, O]`` -> ``(hidden_t [B, H], new state)``."""
        raise NotImplementedError


class ElmanRNN(RecurrentCore):
    """Elman RNN with leak ``a`` (``rnn``) or the non-leaky integrator form (``rnn_nonleaky``).

    Parameters live in a ``torch.nn.RNN`` (``W_in = weight_ih_l0``, ``W_rec = weight_hh_l0``,
    ``b = bias_ih_l0 + bias_hh_l0``) so every variant shares one state-dict layout. The leaky
    a = 1 case uses the fused kernel; other cases loop over time in Python after computing
    ``W_in u_t`` for all steps in one matmul (the loop is over T steps, never over trials).
    """

    def __init__(
        self,
        obs_dim: int,
        hidden_size: int = 64,
        activation: str = "relu",
        leak: float = 1.0,
        nonleaky: bool = False,
        init: str = "default",
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        check_number("leak", leak, 0.0, 1.0, open_low=True)
        if nonleaky and activation != "relu":
            raise ValueError("rnn_nonleaky uses activation='relu' (docs/science.md §4)")
        check_choice("init", init, INITS)
        self.obs_dim, self.hidden_size = obs_dim, hidden_size
        self.activation, self.leak, self.nonleaky = activation, float(leak), nonleaky
        self.rnn = nn.RNN(obs_dim, hidden_size, nonlinearity=activation, batch_first=True)
        if init == "orthogonal":  # "default" and "torch" are both torch's init here (the paper's)
            nn.init.orthogonal_(self.rnn.weight_hh_l0)
        elif init == "identity":  # IRNN (Le et al. 2015): integrator-friendly start for relu
            with torch.no_grad():
                self.rnn.weight_hh_l0.copy_(torch.eye(hidden_size))
                self.rnn.bias_hh_l0.zero_()
                self.rnn.bias_ih_l0.zero_()
        self._fused = not nonleaky and self.leak == 1.0

    def _act(self, x: Tensor) -> Tensor:
        return torch.relu(x) if self.activation == "relu" else torch.tanh(x)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Tensor:
        w = self.rnn.weight_hh_l0
        return torch.zeros(batch_size, self.hidden_size, device=device or w.device, dtype=w.dtype)

    def _update(self, drive_t: Tensor, r: Tensor) -> Tensor:
        """r_t from the input drive W_in u_t + b [B, H] and r_{t-1} [B, H]."""
        pre = drive_t + r @ self.rnn.weight_hh_l0.T
        if self.nonleaky:
            return r + self.leak * torch.relu(pre)
        if self.leak == 1.0:
            return self._act(pre)
        return (1.0 - self.leak) * r + self.leak * self._act(pre)

    def forward(self, obs: Tensor) -> Tensor:
        if self._fused:
            return self.rnn(obs)[0]
        drive = F.linear(obs, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0)
        r = self.initial_state(obs.shape[0], obs.device)
        out = []
        for t in range(obs.shape[1]):
            r = self._update(drive[:, t], r)
            out.append(r)
        return torch.stack(out, dim=1)

    def step(self, obs_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        drive = F.linear(obs_t, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0)
        r = self._update(drive, state)
        return r, r


class GatedRNN(RecurrentCore):
    """``torch.nn.GRU`` or ``torch.nn.LSTM`` (one layer); hidden = h. LSTM state = (h, c)."""

    def __init__(self, obs_dim: int, hidden_size: int = 64, kind: str = "gru") -> None:
        super().__init__()
        self.obs_dim, self.hidden_size, self.kind = obs_dim, hidden_size, kind
        cls = nn.GRU if kind == "gru" else nn.LSTM
        self.rnn = cls(obs_dim, hidden_size, batch_first=True)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        w = self.rnn.weight_hh_l0
        h = torch.zeros(1, batch_size, self.hidden_size, device=device or w.device, dtype=w.dtype)
        return h if self.kind == "gru" else (h, torch.zeros_like(h))

    def forward(self, obs: Tensor) -> Tensor:
        return self.rnn(obs)[0]

    def step(self, obs_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        out, state = self.rnn(obs_t[:, None, :], state)
        return out[:, 0], state


def sinusoidal_table(n_pos: int, width: int) -> Tensor:
    """Fixed sinusoidal position table [n_pos, width] (Vaswani et al. 2017)."""
    pos = torch.arange(n_pos, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(n_pos, width)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)[:, : width // 2]
    return table


class _Block(nn.Module):
    """Pre-LayerNorm GPT block: x + attn(ln1 x), then x + mlp(ln2 x)."""

    def __init__(self, width: int, heads: int, mlp: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        # GPT-2's "gelu_new" is the tanh approximation
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp), nn.GELU(approximate="tanh"), nn.Linear(mlp, width)
        )
        self.drop = nn.Dropout(dropout)

    def _split(self, x: Tensor) -> Tensor:  # [B, T, W] -> [B, heads, T, W / heads]
        b, t, w = x.shape
        return x.view(b, t, self.heads, w // self.heads).transpose(1, 2)

    def attend(self, x: Tensor, cache: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Any]:
        """x [B, t, W] new positions; cache (K, V) of the past [B, heads, t0, W/heads] or None."""
        q, k, v = self.qkv(self.ln1(x)).split(x.shape[-1], dim=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        p = self.dropout if self.training else 0.0
        # a single new query attends to every cached key: causal without a mask
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=cache is None)
        y = y.transpose(1, 2).reshape(x.shape)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, (k, v)


class CausalTransformer(RecurrentCore):
    """GPT-style causal transformer. ``state`` of the step-wise form holds each layer's past keys
    and values (a KV cache) and the step index, so ``step`` equals ``forward`` exactly."""

    def __init__(
        self,
        obs_dim: int,
        hidden_size: int = 64,
        n_layers: int = 1,
        n_heads: int = 8,
        mlp_size: int = 256,
        dropout: float = 0.0,
        positional: str = "none",
        max_len: int = 512,
        init: str = "default",
    ) -> None:
        super().__init__()
        check_int("n_layers", n_layers, 1)
        check_int("n_heads", n_heads, 1)
        check_int("mlp_size", mlp_size, 1)
        check_int("max_len", max_len, 1)
        if hidden_size % n_heads:
            raise ValueError(
                f"n_heads must divide the transformer width hidden_size, got hidden_size="
                f"{hidden_size}, n_heads={n_heads}"
            )
        check_number("dropout", dropout, 0.0, 1.0, open_high=True)
        check_choice("positional", positional, POSITIONALS)
        check_choice("init", init, ("default", "torch"))  # "default" is GPT-2's
        self.obs_dim, self.hidden_size, self.positional, self.max_len = (
            obs_dim,
            hidden_size,
            positional,
            max_len,
        )
        self.inp = nn.Linear(obs_dim, hidden_size)
        if positional == "learned":
            self.pos = nn.Parameter(torch.zeros(max_len, hidden_size))
            nn.init.normal_(self.pos, std=0.02)
        elif positional == "sinusoidal":
            self.register_buffer("pos", sinusoidal_table(max_len, hidden_size), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            _Block(hidden_size, n_heads, mlp_size, dropout) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(hidden_size)
        if init == "default":
            self._gpt2_init(n_layers)

    def _gpt2_init(self, n_layers: int) -> None:
        """GPT-2's init (see ``GPT2_INIT_STD``)."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0.0, GPT2_INIT_STD)
                    m.bias.zero_()
            for block in self.blocks:
                for proj in (block.proj, block.mlp[2]):
                    proj.weight.normal_(0.0, GPT2_INIT_STD / math.sqrt(2 * n_layers))

    def _embed(self, obs: Tensor, start: int) -> Tensor:
        x = self.inp(obs)
        if self.positional != "none":
            stop = start + obs.shape[1]
            if stop > self.max_len:
                raise ValueError(f"sequence of {stop} steps exceeds max_len={self.max_len}")
            x = x + self.pos[start:stop]
        return self.drop(x)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        return {"t": 0, "cache": [None] * len(self.blocks)}

    def forward(self, obs: Tensor) -> Tensor:
        x = self._embed(obs, 0)
        for block in self.blocks:
            x, _ = block.attend(x, None)
        return self.ln_f(x)

    def step(self, obs_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        x = self._embed(obs_t[:, None, :], state["t"])
        caches = []
        for block, cache in zip(self.blocks, state["cache"]):
            x, kv = block.attend(x, cache)
            caches.append(kv)
        return self.ln_f(x)[:, 0], {"t": state["t"] + 1, "cache": caches}


class Network(nn.Module):
    """A core plus a linear readout per task.

    ``forward(obs [B, T, O]) -> (readout [B, T, N] pre-activation, hidden [B, T, H])``.
    output='sigmoid': probabilities sigmoid(readout) (the paper's BCE targets);
    output='ddm': ``ddm_bound * tanh(readout)`` (drift-diffusion targets 'ddm_bound' and
    'free_rt_paper', MSE); output='linear': the readout itself (targets='latent': x*, MSE).
    """

    def __init__(
        self, core: RecurrentCore, n_out: int, output: str = "sigmoid", ddm_bound: float = 5.0
    ) -> None:
        super().__init__()
        check_int("n_out", n_out, 1)
        check_choice("output", output, OUTPUTS)
        check_number("ddm_bound", ddm_bound, 0.0, open_low=True)
        self.core, self.output, self.ddm_bound = core, output, float(ddm_bound)
        self.readout = nn.Linear(core.hidden_size, n_out)

    @property
    def hidden_size(self) -> int:
        return self.core.hidden_size

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.core(obs)
        return self.readout(hidden), hidden

    def activate(self, readout: Tensor) -> Tensor:
        """Readout -> outputs: probabilities (sigmoid), ddm_bound * tanh (ddm) or as is
        (linear)."""
        if self.output == "sigmoid":
            return torch.sigmoid(readout)
        if self.output == "linear":
            return readout
        return self.ddm_bound * torch.tanh(readout)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        return self.core.initial_state(batch_size, device)

    def step(self, obs_t: Tensor, state: Any) -> tuple[Tensor, Tensor, Any]:
        """``obs_t [B, O]`` -> ``(readout_t [B, N], hidden_t [B, H], state)``."""
        hidden_t, state = self.core.step(obs_t, state)
        return self.readout(hidden_t), hidden_t, state
