"""The ensemble's recurrences over time with hand-written backpropagation through time.

Each recurrence is one ``torch.autograd.Function`` over all K members: the forward loop over T
steps runs without building an autograd graph (one batched matmul ``torch.baddbmm`` over the
member axis per step, then the cell's elementwise update into preallocated buffers), and the
backward runs the reverse loop by hand: per step one batched matmul for the gradient reaching
the previous hidden state plus two or three elementwise products. The gated cells compute their
derivative factors (e.g. (1 - z)(1 - n^2) for the GRU) in the forward, step by step while that
step's gates are still in cache, rather than in passes over whole [K, T, B, .] tensors, which at
the ensemble's sizes (K = 32, B = 16, H = 64: megabytes per tensor) run from memory rather than
cache. The recurrent weight and bias gradients are one batched matmul and one sum over every
(step, trial) after the loop.

The forward formulas are torch's CPU cells, term for term (as ``agents.networks`` runs them for a
solo network), so member k computes what its solo network computes up to float32 rounding.

Layout: member-major and time-second, ``[K, T, B, X]`` (K members, T steps, B trials, X
features): the input projection of all steps is one ``[K, T * B, O] @ [K, O, X]`` matmul, and
step t's slice ``[:, t]`` is K contiguous ``[B, X]`` blocks. Inputs: ``gi`` the input drive of
every step (``W_ih u_t + b_ih``), ``w_hh [K, G * H, H]``, ``b_hh [K, G * H]`` (G gates: 1 for
the Elman RNN, 3 for the GRU, 4 for the LSTM); output the hidden states ``[K, T, B, H]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

aten = torch.ops.aten


def _check(gi: Tensor, w_hh: Tensor, gates: int) -> None:
    if gi.dim() != 4 or w_hh.dim() != 3 or gi.shape[0] != w_hh.shape[0]:
        raise ValueError(
            f"gi must be [K, T, B, G*H] and w_hh [K, G*H, H] with one K, got gi "
            f"{tuple(gi.shape)} and w_hh {tuple(w_hh.shape)}"
        )
    if w_hh.shape[1] != gates * w_hh.shape[2] or gi.shape[-1] != w_hh.shape[1]:
        raise ValueError(
            f"gi's last axis and w_hh must hold {gates} gate(s) of H = {w_hh.shape[2]} units, "
            f"got gi {tuple(gi.shape)} and w_hh {tuple(w_hh.shape)}"
        )


def _weight_grads(d_pre: Tensor, hidden: Tensor, with_bias: bool) -> tuple[Tensor, Tensor | None]:
    """Gradients of w_hh [K, G*H, H] and b_hh [K, G*H] from the pre-activation gradients
    d_pre [K, T, B, G*H] and the hidden states [K, T, B, H] (step t's matmul reads h_{t-1},
    and h_{-1} = 0 contributes nothing)."""
    kk, tt, bb, gh = d_pre.shape
    if tt > 1:
        rows = d_pre[:, 1:].reshape(kk, (tt - 1) * bb, gh)
        prev = hidden[:, :-1].reshape(kk, (tt - 1) * bb, hidden.shape[-1])
        d_w = torch.bmm(rows.transpose(1, 2), prev)
    else:
        d_w = d_pre.new_zeros(kk, gh, hidden.shape[-1])
    d_b = d_pre.sum(dim=(1, 2)) if with_bias else None
    return d_w, d_b


class ElmanScan(torch.autograd.Function):
    """Elman recurrence ``r_t = keep * r_{t-1} + leak * act(pre_t)`` from r_{-1} = 0; see
    :func:`elman_scan`."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        gi: Tensor,
        w_hh: Tensor,
        b_hh: Tensor | None,
        relu: bool,
        leak: float,
        keep: float,
    ) -> Tensor:
        kk, tt, bb, hh = gi.shape
        w_t = w_hh.transpose(1, 2).contiguous()  # MKL multiplies a stored W^T faster
        plain = keep == 0.0 and leak == 1.0  # r_t = act(pre_t): no separate act buffer
        out = gi.new_empty(kk, tt, bb, hh)
        act = out if plain else gi.new_empty(kk, tt, bb, hh)
        pre = gi.new_empty(kk, bb, hh)
        r = gi.new_zeros(kk, bb, hh)
        bias = None if b_hh is None else b_hh.unsqueeze(1)
        for t in range(tt):
            if bias is not None:
                torch.baddbmm(bias, r, w_t, out=pre)
                pre.add_(gi[:, t])
            else:
                torch.baddbmm(gi[:, t], r, w_t, out=pre)
            if relu:
                torch.clamp_min(pre, 0.0, out=act[:, t])
            else:
                torch.tanh(pre, out=act[:, t])
            if not plain:
                # (1 - a) r + a act(pre), or r + a relu(pre): the solo loop's products and sum
                torch.add(r * keep if keep != 1.0 else r, act[:, t] * leak, out=out[:, t])
            r = out[:, t]
        ctx.save_for_backward(w_hh, act, out)
        ctx.relu, ctx.leak, ctx.keep, ctx.bias = relu, leak, keep, b_hh is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        w_hh, act, out = ctx.saved_tensors
        grad = grad.contiguous()
        tt = grad.shape[1]
        d_pre = torch.empty_like(grad)
        d_r = grad[:, tt - 1]
        for t in range(tt - 1, -1, -1):
            # d pre_t = d r_t * leak * act'(pre_t): relu's gradient passes where its output > 0
            if ctx.relu:
                aten.threshold_backward.grad_input(d_r, act[:, t], 0, grad_input=d_pre[:, t])
            else:
                aten.tanh_backward.grad_input(d_r, act[:, t], grad_input=d_pre[:, t])
            if ctx.leak != 1.0:
                d_pre[:, t].mul_(ctx.leak)
            if t == 0:
                break
            carry = grad[:, t - 1]
            if ctx.keep != 0.0:
                carry = carry + d_r * ctx.keep if ctx.keep != 1.0 else carry + d_r
            d_r = torch.baddbmm(carry, d_pre[:, t], w_hh)
        d_w, d_b = _weight_grads(d_pre, out, ctx.bias)
        return d_pre, d_w, d_b, None, None, None


def _tanh_into(x: Tensor, out: Tensor) -> Tensor:
    """``out = tanh(x)`` computed as 2 sigmoid(2x) - 1 (``out`` may be ``x``): torch's CPU tanh
    is several times slower than its sigmoid at these sizes (benchmarks/results/ensemble.md),
    and the two agree to float32 rounding."""
    torch.mul(x, 2.0, out=out)
    return out.sigmoid_().mul_(2.0).sub_(1.0)


def _gated_setup(
    gi: Tensor, w_hh: Tensor, b_hh: Tensor, gates: int
) -> tuple[int, int, Tensor, Tensor, Tensor, Tensor]:
    """What a gated cell's forward needs first: B, H, W_hh^T [K, H, G*H] (contiguous, for the
    per-step ``h @ W_hh^T``), b_hh as [K, 1, G*H], the output [K, T, B, H] and the per-step
    store of one gate [K, T, B, H] that the backward reads (z for the GRU, f for the LSTM)."""
    kk, tt, bb, g = gi.shape
    hh = g // gates
    out = gi.new_empty(kk, tt, bb, hh)
    return bb, hh, w_hh.transpose(1, 2).contiguous(), b_hh.unsqueeze(1), out, torch.empty_like(out)


def _gate_factors(gi: Tensor, hh: int, grads: bool) -> Tensor | None:
    """A [K, T, B, 3 or 4, H] buffer of per-step derivative factors (None without grads)."""
    kk, tt, bb, g = gi.shape
    return gi.new_empty(kk, tt, bb, g // hh, hh) if grads else None


def _gru_forward(
    gi: Tensor, w_hh: Tensor, b_hh: Tensor, grads: bool
) -> tuple[Tensor, tuple[Tensor | None, ...]]:
    """The GRU's forward loop: (h [K, T, B, H], what its backward reads)."""
    kk, tt = gi.shape[:2]
    bb, hh, w_t, bias, out, z_all = _gated_setup(gi, w_hh, b_hh, 3)
    # d pre_{r,z,n} / d h_t (into gi) and d gh_{r,z,n} / d h_t (into W_hh h + b_hh), per
    # step while its gates are in cache: the backward loop then multiplies only
    f_in, f_hh = _gate_factors(gi, hh, grads), _gate_factors(gi, hh, grads)
    gh = gi.new_empty(kk, bb, 3 * hh)
    rz = gi.new_empty(kk, bb, 2 * hh)
    n = gi.new_empty(kk, bb, hh)
    h = gi.new_zeros(kk, bb, hh)
    for t in range(tt):
        torch.baddbmm(bias, h, w_t, out=gh)
        torch.add(gh[..., : 2 * hh], gi[:, t, :, : 2 * hh], out=rz)
        rz.sigmoid_()
        r, z = rz[..., :hh], rz[..., hh:]
        gh_n = gh[..., 2 * hh :]
        torch.addcmul(gi[:, t, :, 2 * hh :], gh_n, r, out=n)
        _tanh_into(n, n)
        h_minus_n = h - n
        torch.addcmul(n, h_minus_n, z, out=out[:, t])
        z_all[:, t] = z
        if f_in is not None and f_hh is not None:
            fi, fh = f_in[:, t], f_hh[:, t]
            one_minus_z = 1.0 - z
            torch.mul(one_minus_z, 1.0 - n * n, out=fi[:, :, 2])  # (1 - z)(1 - n^2)
            torch.mul(h_minus_n, z * one_minus_z, out=fi[:, :, 1])  # (h - n) z (1 - z)
            torch.mul(fi[:, :, 2], gh_n * (r * (1.0 - r)), out=fi[:, :, 0])
            fh[:, :, :2] = fi[:, :, :2]
            torch.mul(fi[:, :, 2], r, out=fh[:, :, 2])
        h = out[:, t]
    return out, (w_hh, z_all, f_in, f_hh, out)


def _gru_backward(saved: tuple[Tensor, ...], grad: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """d gi [K, T, B, 3H], d W_hh, d b_hh of the GRU from the saved tensors of its forward."""
    w_hh, z, f_in, f_hh, out = saved
    kk, tt, bb, hh = out.shape
    d_gi = torch.empty_like(f_in)
    d_gh = torch.empty_like(f_hh)
    dh = grad[:, tt - 1]
    for t in range(tt - 1, -1, -1):
        dh3 = dh.unsqueeze(2)
        torch.mul(dh3, f_in[:, t], out=d_gi[:, t])
        torch.mul(dh3, f_hh[:, t], out=d_gh[:, t])
        if t == 0:
            break
        carry = torch.addcmul(grad[:, t - 1], dh, z[:, t])
        dh = torch.baddbmm(carry, d_gh[:, t].view(kk, bb, 3 * hh), w_hh)
    d_w, d_b = _weight_grads(d_gh.view(kk, tt, bb, 3 * hh), out, True)
    return d_gi.view(kk, tt, bb, 3 * hh), d_w, d_b


def _lstm_forward(
    gi: Tensor, w_hh: Tensor, b_hh: Tensor, grads: bool
) -> tuple[Tensor, tuple[Tensor | None, ...]]:
    """The LSTM's forward loop: (h [K, T, B, H], what its backward reads)."""
    kk, tt = gi.shape[:2]
    bb, hh, w_t, bias, out, forget = _gated_setup(gi, w_hh, b_hh, 4)
    # per step, while in cache: d pre_{i,f,g} / d c_t, d pre_o / d h_t, and d c_t / d h_t
    f_gates = _gate_factors(gi, hh, grads)
    f_cell = torch.empty_like(out) if grads else None
    pre = gi.new_empty(kk, bb, 4 * hh)
    h = gi.new_zeros(kk, bb, hh)
    c = gi.new_zeros(kk, bb, hh)
    for t in range(tt):
        torch.baddbmm(bias, h, w_t, out=pre)
        pre.add_(gi[:, t])
        # one sigmoid over all four gates: g's slice holds sigmoid(2 x_g) and becomes tanh(x_g)
        g = pre[..., 2 * hh : 3 * hh].mul_(2.0)
        pre.sigmoid_()
        g.mul_(2.0).sub_(1.0)
        i, f, o = pre[..., :hh], pre[..., hh : 2 * hh], pre[..., 3 * hh :]
        c_new = torch.mul(f, c)
        c_new.addcmul_(i, g)
        tanh_c = _tanh_into(c_new, torch.empty_like(c_new))
        torch.mul(o, tanh_c, out=out[:, t])
        forget[:, t] = f
        if f_gates is not None and f_cell is not None:
            fg = f_gates[:, t]
            torch.mul(o, 1.0 - tanh_c * tanh_c, out=f_cell[:, t])
            torch.mul(g, i * (1.0 - i), out=fg[:, :, 0])
            torch.mul(c, f * (1.0 - f), out=fg[:, :, 1])
            torch.mul(i, 1.0 - g * g, out=fg[:, :, 2])
            torch.mul(tanh_c, o * (1.0 - o), out=fg[:, :, 3])
        h, c = out[:, t], c_new
    return out, (w_hh, forget, f_gates, f_cell, out)


def _lstm_backward(
    saved: tuple[Tensor, ...], grad: Tensor
) -> tuple[Tensor, Tensor, Tensor | None]:
    """d gi [K, T, B, 4H], d W_hh, d b_hh of the LSTM from the saved tensors of its forward."""
    w_hh, forget, f_gates, f_cell, out = saved
    kk, tt, bb, hh = out.shape
    d_pre = torch.empty_like(f_gates)
    dh = grad[:, tt - 1]
    dc = torch.mul(dh, f_cell[:, tt - 1])
    for t in range(tt - 1, -1, -1):
        torch.mul(dc.unsqueeze(2), f_gates[:, t, :, :3], out=d_pre[:, t, :, :3])
        torch.mul(dh, f_gates[:, t, :, 3], out=d_pre[:, t, :, 3])
        if t == 0:
            break
        dh = torch.baddbmm(grad[:, t - 1], d_pre[:, t].view(kk, bb, 4 * hh), w_hh)
        dc = torch.addcmul(dc * forget[:, t], dh, f_cell[:, t - 1])
    d_w, d_b = _weight_grads(d_pre.view(kk, tt, bb, 4 * hh), out, True)
    return d_pre.view(kk, tt, bb, 4 * hh), d_w, d_b


_GATED_CELLS = {"gru": (_gru_forward, _gru_backward), "lstm": (_lstm_forward, _lstm_backward)}
"""Each gated cell's forward loop and hand-written backward."""


class GatedScan(torch.autograd.Function):
    """A gated cell (``"gru"`` or ``"lstm"``, torch's cells) over T steps from zero state; see
    :func:`gru_scan` and :func:`lstm_scan`. The forward keeps the derivative factors only with
    ``grads``; the backward then needs them."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, gi: Tensor, w_hh: Tensor, b_hh: Tensor, grads: bool, cell: str
    ) -> Tensor:
        out, saved = _GATED_CELLS[cell][0](gi, w_hh, b_hh, grads)
        ctx.cell = cell
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        saved = ctx.saved_tensors
        if saved[2] is None:  # the factor buffers
            raise RuntimeError(
                f"{ctx.cell}_scan ran without grads=True; it cannot backpropagate"
            )
        return (*_GATED_CELLS[ctx.cell][1](saved, grad.contiguous()), None, None)


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def elman_scan(
    gi: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    activation: str = "relu",
    leak: float = 1.0,
    keep: float = 0.0,
) -> Tensor:
    """Elman recurrence ``r_t = keep * r_{t-1} + leak * act(pre_t)`` from r_{-1} = 0.

    ``pre_t = (W_hh r_{t-1} + b_hh) + gi_t`` when ``b_hh`` [K, H] is given (torch's fused
    ``nn.RNN``: keep = 0, leak = 1), else ``pre_t = gi_t + W_hh r_{t-1}`` (``gi`` then holds
    both biases, as ``agents.networks.ElmanRNN``'s loop). activation: 'relu' or 'tanh'.
    keep: 1 - leak (leaky RNN) or 1 (the non-leaky integrator). gi [K, T, B, H], w_hh
    [K, H, H] -> r [K, T, B, H].
    """
    _check(gi, w_hh, 1)
    if activation not in ("relu", "tanh"):
        raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
    return ElmanScan.apply(gi, w_hh, b_hh, activation == "relu", float(leak), float(keep))


def gru_scan(gi: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """torch's GRU cell over T steps from h_{-1} = 0 (gates r, z, n in that order):
    gh = W_hh h + b_hh; r = sigmoid(gh_r + gi_r); z = sigmoid(gh_z + gi_z);
    n = tanh(gi_n + gh_n * r); h' = (h - n) * z + n. gi [K, T, B, 3H], w_hh [K, 3H, H],
    b_hh [K, 3H] -> h [K, T, B, H]."""
    _check(gi, w_hh, 3)
    return GatedScan.apply(gi, w_hh, b_hh, _needs_grad(gi, w_hh, b_hh), "gru")


def lstm_scan(gi: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """torch's LSTM cell over T steps from h_{-1} = c_{-1} = 0 (gates i, f, g, o):
    gates = (W_hh h + b_hh) + gi; c' = sigmoid(f) c + sigmoid(i) tanh(g);
    h' = sigmoid(o) tanh(c'). gi [K, T, B, 4H], w_hh [K, 4H, H], b_hh [K, 4H] -> h [K, T, B, H]."""
    _check(gi, w_hh, 4)
    return GatedScan.apply(gi, w_hh, b_hh, _needs_grad(gi, w_hh, b_hh), "lstm")
