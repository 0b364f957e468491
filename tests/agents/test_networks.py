"""Networks: causality, step == forward, shapes, bad configurations."""

from __future__ import annotations

import pytest
import torch

from multitask_evidence.agents.architectures import build_core
from multitask_evidence.agents.networks import Network

torch.set_num_threads(1)

OBS, H, N, B, T = 7, 16, 3, 4, 9

CASES = [
    ("rnn", {}),
    ("rnn", {"activation": "tanh", "leak": 0.3}),
    ("rnn", {"init": "identity"}),
    ("rnn_nonleaky", {"leak": 0.2}),
    ("gru", {}),
    ("lstm", {}),
    ("transformer", {"n_heads": 4, "mlp_size": 32}),
    ("transformer", {"n_heads": 2, "n_layers": 2, "positional": "learned"}),
    ("transformer", {"n_heads": 4, "positional": "sinusoidal"}),
]


def _net(arch: str, cfg: dict) -> Network:
    torch.manual_seed(0)
    net = Network(build_core(arch, OBS, hidden_size=H, **cfg), N).double().eval()
    return net


@pytest.mark.parametrize(("arch", "cfg"), CASES)
def test_shapes_and_causality(arch: str, cfg: dict) -> None:
    net = _net(arch, cfg)
    x = torch.randn(B, T, OBS, dtype=torch.float64)
    readout, hidden = net(x)
    assert readout.shape == (B, T, N) and hidden.shape == (B, T, H)
    for t in (0, 3, T - 2):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn(B, T - t - 1, OBS, dtype=torch.float64) * 5
        r2, h2 = net(x2)
        # outputs up to t do not move when inputs after t change ...
        torch.testing.assert_close(h2[:, : t + 1], hidden[:, : t + 1], rtol=0, atol=1e-12)
        torch.testing.assert_close(r2[:, : t + 1], readout[:, : t + 1], rtol=0, atol=1e-12)
        # ... and the perturbation does reach the later steps (the test can fail)
        assert (h2[:, t + 1 :] - hidden[:, t + 1 :]).abs().max() > 1e-6


@pytest.mark.parametrize(("arch", "cfg"), CASES)
def test_step_equals_forward(arch: str, cfg: dict) -> None:
    net = _net(arch, cfg)
    x = torch.randn(B, T, OBS, dtype=torch.float64)
    readout, hidden = net(x)
    state = net.initial_state(B)
    if isinstance(state, torch.Tensor):
        state = state.double()
    elif isinstance(state, tuple):
        state = tuple(s.double() for s in state)
    for t in range(T):
        r_t, h_t, state = net.step(x[:, t], state)
        torch.testing.assert_close(h_t, hidden[:, t], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(r_t, readout[:, t], rtol=1e-10, atol=1e-10)


def test_leaky_rnn_follows_the_equation() -> None:
    """r_t = (1 - a) r_{t-1} + a relu(W_in u_t + W_rec r_{t-1} + b), written out by hand."""
    core = build_core("rnn", OBS, hidden_size=H, leak=0.25).double()
    x = torch.randn(B, T, OBS, dtype=torch.float64)
    w_in, w_rec = core.rnn.weight_ih_l0, core.rnn.weight_hh_l0
    b = core.rnn.bias_ih_l0 + core.rnn.bias_hh_l0
    r = torch.zeros(B, H, dtype=torch.float64)
    expect = []
    for t in range(T):
        r = 0.75 * r + 0.25 * torch.relu(x[:, t] @ w_in.T + r @ w_rec.T + b)
        expect.append(r)
    torch.testing.assert_close(core(x), torch.stack(expect, 1))
    nonleaky = build_core("rnn_nonleaky", OBS, hidden_size=H, leak=0.5).double()
    nonleaky.load_state_dict(core.state_dict())
    h = nonleaky(x)
    # non-leaky: increments are non-negative (r_t = r_{t-1} + a relu(.))
    assert (h[:, 1:] - h[:, :-1] >= 0).all()


def test_fused_relu_rnn_matches_the_python_loop() -> None:
    core = build_core("rnn", OBS, hidden_size=H).double()
    x = torch.randn(B, T, OBS, dtype=torch.float64)
    core._fused = False
    slow = core(x)
    core._fused = True
    torch.testing.assert_close(core(x), slow)


def test_outputs() -> None:
    net = Network(build_core("gru", OBS, hidden_size=H), N, output="ddm", ddm_bound=5.0)
    z = torch.tensor([-100.0, 0.0, 100.0])
    torch.testing.assert_close(net.activate(z), torch.tensor([-5.0, 0.0, 5.0]))
    net = Network(build_core("gru", OBS, hidden_size=H), N)
    torch.testing.assert_close(net.activate(torch.zeros(2)), torch.full((2,), 0.5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"arch": "mamba"}, "arch must be one of"),
        ({"arch": "rnn", "hidden_size": 0}, "hidden_size"),
        ({"arch": "gru", "obs_dim": -1}, "obs_dim"),
        ({"arch": "transformer", "hidden_size": 64, "n_heads": 7}, "n_heads must divide"),
        ({"arch": "transformer", "n_layers": 0}, "n_layers"),
        ({"arch": "transformer", "positional": "rope"}, "positional must be one of"),
        ({"arch": "rnn", "activation": "gelu"}, "activation must be one of"),
        ({"arch": "rnn", "leak": 1.5}, "leak"),
        ({"arch": "rnn", "init": "xavier"}, "init must be one of"),
    ],
)
def test_bad_configs(kwargs: dict, match: str) -> None:
    kwargs = {"obs_dim": OBS} | kwargs
    with pytest.raises(ValueError, match=match):
        build_core(**kwargs)


def test_bad_network() -> None:
    core = build_core("rnn", OBS)
    with pytest.raises(ValueError, match="output must be one of"):
        Network(core, N, output="softmax")
    with pytest.raises(ValueError, match="n_out"):
        Network(core, 0)
