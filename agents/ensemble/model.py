"""K networks of one architecture and shape as one batched model (docs/science.md §4).

:class:`StackedNetwork` takes K solo :class:`agents.networks.Network` objects and stacks each of
their parameters on a leading member axis ([K, ...], in the solo parameter order), so one forward
and one backward serve all members: batched matmuls (``torch.baddbmm``) over the member axis,
the recurrences as one loop over time with a hand-written backward
(:mod:`agents.ensemble.recurrences`), and the transformer's attention over K * B sequences.
Member k computes what its solo network computes (same formulas in the same order as torch's
CPU kernels; results agree to float32 rounding, since batched and unbatched matmuls may sum in
another order).

Dropout (transformer): member k draws its masks from its own ``torch.Generator``, in the solo
network's order and shapes (embedding, then per block attention weights, attention output, MLP
output). On CPU torch's dropout draws ``bernoulli_(1 - p)`` on a tensor of the input's shape from
the global generator, and attention dropout is the math kernel's dropout of the softmax weights,
so a generator holding the state the solo run's global generator had after building the network
reproduces the solo masks exactly. On CUDA torch's fused dropout kernel draws from its own
Philox stream, which ``bernoulli_`` does not reproduce: members get independent masks from
their own generators with the right statistics, not the solo run's masks.

Shapes: K members, B trials, T steps, O = obs_dim, H hidden units, N tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from multitask_evidence.agents.ensemble.recurrences import elman_scan, gru_scan, lstm_scan
from multitask_evidence.agents.networks import CausalTransformer, ElmanRNN, GatedRNN, Network


def architecture(network: Network) -> dict[str, Any]:
    """What fixes a network's computation apart from its weights (the ensemble's members must
    agree on it): core type and hyperparameters, output, parameter names and shapes."""
    core = network.core
    out: dict[str, Any] = {"output": network.output, "ddm_bound": network.ddm_bound}
    if isinstance(core, ElmanRNN):
        out |= {
            "core": "elman",
            "activation": core.activation,
            "leak": core.leak,
            "nonleaky": core.nonleaky,
        }
    elif isinstance(core, GatedRNN):
        out |= {"core": core.kind}
    elif isinstance(core, CausalTransformer):
        out |= {
            "core": "transformer",
            "heads": core.blocks[0].heads,
            "dropout": core.drop.p,
            "positional": core.positional,
            "max_len": core.max_len,
        }
    else:
        raise ValueError(
            f"networks must have an rnn, gru, lstm or transformer core, got {type(core).__name__}"
        )
    out["parameters"] = [(n, tuple(p.shape)) for n, p in network.named_parameters()]
    return out


class StackedNetwork(nn.Module):
    """K solo networks as one model: parameter ``name`` of member k is ``self[name][k]``.

    ``forward(obs [K, B, T, O], generators) -> (readout [K, B, T, N], hidden [K, B, T, H])``;
    ``generators``: one ``torch.Generator`` per member (on the model's device) for the dropout
    masks, needed only when training with dropout.
    """

    def __init__(self, networks: Sequence[Network]) -> None:
        super().__init__()
        networks = list(networks)
        if not networks:
            raise ValueError("networks must hold at least one Network (K >= 1 members)")
        arch = architecture(networks[0])
        for k, net in enumerate(networks[1:], start=1):
            other = architecture(net)
            if other != arch:
                diff = sorted(key for key in arch if arch[key] != other[key])
                raise ValueError(
                    f"networks must share one architecture and shape; member {k} differs from "
                    f"member 0 in {diff} ({', '.join(f'{d}={other[d]!r} vs {arch[d]!r}' for d in diff if d != 'parameters')})"
                )
        self.arch = arch
        self.output, self.ddm_bound = networks[0].output, networks[0].ddm_bound
        self.names = [n for n, _ in networks[0].named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(
                torch.stack([dict(net.named_parameters())[n].detach() for net in networks])
            )
            for n in self.names
        )
        self._index = {n: i for i, n in enumerate(self.names)}
        core = networks[0].core
        if isinstance(core, CausalTransformer) and core.positional == "sinusoidal":
            self.register_buffer("pos_table", core.pos.clone(), persistent=False)

    @property
    def k(self) -> int:
        """Number of members K."""
        return self.stacked[0].shape[0]

    def __getitem__(self, name: str) -> Tensor:
        """The stacked parameter [K, ...] of solo parameter ``name``."""
        return self.stacked[self._index[name]]

    # ---- members <-> solo networks --------------------------------------------------------
    def member_state(self, k: int) -> dict[str, Tensor]:
        """Member k's weights as a solo state dict (CPU copies, the solo key layout)."""
        return {n: p[k].detach().cpu().clone() for n, p in zip(self.names, self.stacked)}

    def copy_to(self, k: int, network: Network) -> Network:
        """Write member k's weights into a solo ``network`` of the same architecture."""
        with torch.no_grad():
            for n, p in network.named_parameters():
                p.copy_(self[n][k])
        return network

    def activate(self, readout: Tensor) -> Tensor:
        """Readout -> outputs, as :meth:`Network.activate` (sigmoid, or ddm_bound * tanh)."""
        return Network.activate(self, readout)  # type: ignore[arg-type]

    # ---- building blocks ------------------------------------------------------------------
    def _linear(self, x: Tensor, prefix: str, weight: str = "weight", bias: str = "bias") -> Tensor:
        """Member-wise ``F.linear``: x [K, ..., I] with ``prefix.weight`` [K, O, I] and
        ``prefix.bias`` [K, O]."""
        w, b = self[f"{prefix}.{weight}"], self[f"{prefix}.{bias}"]
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        out = torch.baddbmm(b.unsqueeze(1), flat, w.transpose(1, 2))
        return out.view(*x.shape[:-1], w.shape[1])

    def _layer_norm(self, x: Tensor, prefix: str) -> Tensor:
        w, b = self[prefix + ".weight"], self[prefix + ".bias"]
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return F.layer_norm(x, x.shape[-1:]) * w.view(shape) + b.view(shape)

    def _dropout(self, x: Tensor, generators: Sequence[torch.Generator] | None) -> Tensor:
        """Inverted dropout with member k's mask [x.shape[1:]] drawn from ``generators[k]``
        (torch's CPU dropout: bernoulli_(1 - p), divided by 1 - p)."""
        p = self.arch.get("dropout", 0.0)
        if not self.training or p == 0.0:
            return x
        noise = torch.empty_like(x)
        if generators is None:
            noise.bernoulli_(1 - p)
        else:
            for k, g in enumerate(generators):
                noise[k].bernoulli_(1 - p, generator=g)
        noise.div_(1 - p)
        return x * noise

    # ---- cores ----------------------------------------------------------------------------
    def _drive(self, obs: Tensor, weight: str, bias: Tensor) -> Tensor:
        """Input drive of every step, obs [K, B, T, O] -> [K, T, B, X] (the recurrences'
        layout, see :mod:`agents.ensemble.recurrences`): ``W u_t + bias`` in one matmul."""
        kk, bb, tt, o = obs.shape
        w = self[weight]
        x = obs.transpose(1, 2).reshape(kk, tt * bb, o)
        return torch.baddbmm(bias.unsqueeze(1), x, w.transpose(1, 2)).view(kk, tt, bb, -1)

    def _elman(self, obs: Tensor) -> Tensor:
        """obs [K, B, T, O] -> r [K, T, B, H]."""
        a = self.arch
        b_ih, b_hh = self["core.rnn.bias_ih_l0"], self["core.rnn.bias_hh_l0"]
        w_hh = self["core.rnn.weight_hh_l0"]
        if not a["nonleaky"] and a["leak"] == 1.0:
            # the fused torch.nn.RNN adds (W_rec r + b_hh) + (W_in u + b_ih)
            drive = self._drive(obs, "core.rnn.weight_ih_l0", b_ih)
            return elman_scan(drive, w_hh, b_hh, a["activation"])
        # the Python loop of ElmanRNN adds (W_in u + b_ih + b_hh) + W_rec r
        drive = self._drive(obs, "core.rnn.weight_ih_l0", b_ih + b_hh)
        keep = 1.0 if a["nonleaky"] else 1.0 - a["leak"]
        return elman_scan(drive, w_hh, None, a["activation"], a["leak"], keep)

    def _gated(self, obs: Tensor) -> Tensor:
        """obs [K, B, T, O] -> h [K, T, B, H] (torch's GRU / LSTM cell)."""
        scan = lstm_scan if self.arch["core"] == "lstm" else gru_scan
        gi = self._drive(obs, "core.rnn.weight_ih_l0", self["core.rnn.bias_ih_l0"])
        return scan(gi, self["core.rnn.weight_hh_l0"], self["core.rnn.bias_hh_l0"])

    def _attention(self, q: Tensor, k: Tensor, v: Tensor, generators: Any) -> Tensor:
        """Causal attention of q, k, v [K, B, heads, T, d] -> [K, B, heads, T, d]."""
        kk, bb = q.shape[:2]
        flat = [x.reshape(kk * bb, *x.shape[2:]) for x in (q, k, v)]
        p = self.arch["dropout"]
        if not self.training or p == 0.0:
            return F.scaled_dot_product_attention(*flat, is_causal=True).view(q.shape)
        # with dropout: torch's math kernel (what CPU runs then), with member-wise masks
        scale = math.sqrt(1.0 / math.sqrt(q.shape[-1]))
        scores = torch.matmul(flat[0] * scale, flat[1].transpose(-2, -1) * scale)
        t = q.shape[-2]
        causal = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
        weights = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        weights = self._dropout(weights.view(kk, bb, *weights.shape[1:]), generators)
        return torch.matmul(weights, v)

    def _transformer(self, obs: Tensor, generators: Any) -> Tensor:
        a = self.arch
        tt = obs.shape[2]
        x = self._linear(obs, "core.inp")
        if a["positional"] != "none":
            if tt > a["max_len"]:
                raise ValueError(f"sequence of {tt} steps exceeds max_len={a['max_len']}")
            pos = (
                self["core.pos"][:, None, :tt]
                if a["positional"] == "learned"
                else self.pos_table[:tt]
            )
            x = x + pos
        x = self._dropout(x, generators)
        heads = a["heads"]
        n_layers = sum(1 for n in self.names if n.endswith(".ln1.weight"))
        for i in range(n_layers):
            pre = f"core.blocks.{i}."
            qkv = self._linear(self._layer_norm(x, pre + "ln1"), pre + "qkv")
            kk, bb, _, w3 = qkv.shape
            q, k, v = (
                y.reshape(kk, bb, tt, heads, w3 // (3 * heads)).transpose(2, 3)
                for y in qkv.split(w3 // 3, dim=-1)
            )
            y = self._attention(q, k, v, generators).transpose(2, 3).reshape(kk, bb, tt, w3 // 3)
            x = x + self._dropout(self._linear(y, pre + "proj"), generators)
            m = F.gelu(
                self._linear(self._layer_norm(x, pre + "ln2"), pre + "mlp.0"), approximate="tanh"
            )
            x = x + self._dropout(self._linear(m, pre + "mlp.2"), generators)
        return self._layer_norm(x, "core.ln_f")

    def forward(
        self, obs: Tensor, generators: Sequence[torch.Generator] | None = None
    ) -> tuple[Tensor, Tensor]:
        """obs [K, B, T, O] -> (readout [K, B, T, N] pre-activation, hidden [K, B, T, H])."""
        if obs.dim() != 4 or obs.shape[0] != self.k:
            raise ValueError(f"obs must have shape [K={self.k}, B, T, O], got {tuple(obs.shape)}")
        if generators is not None and len(generators) != self.k:
            raise ValueError(
                f"generators must hold one torch.Generator per member ({self.k}), "
                f"got {len(generators)}"
            )
        core = self.arch["core"]
        if core == "transformer":
            hidden = self._transformer(obs, generators)
            return self._linear(hidden, "readout"), hidden
        # the recurrences run time-second [K, T, B, H]: read out there, hand back [K, B, T, .]
        hidden = self._elman(obs) if core == "elman" else self._gated(obs)
        return self._linear(hidden, "readout").transpose(1, 2), hidden.transpose(1, 2)
