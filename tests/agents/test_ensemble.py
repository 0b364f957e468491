"""Ensembles (agents.ensemble): batched trials equal envs.generate, member k equals its solo
run, member folders are ordinary runs, resume is exact, bad input is one clear error."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import multitask_evidence.agents.ensemble.trainer as ens_trainer
from multitask_evidence.agents import TrainConfig, load, train
from multitask_evidence.agents.ensemble import (
    EnsembleTrials,
    StackedNetwork,
    default_ensemble_dir,
    ensemble_members,
    train_ensemble,
)
from multitask_evidence.agents.run import build_network
from multitask_evidence.envs import TaskSpec, generate

torch.set_num_threads(1)

SMALL = TaskSpec(n_tasks=3, sigma=0.3, stimulus_steps=6)


def _cfg(**kw) -> TrainConfig:
    base = dict(
        batch_size=16,
        steps=200,
        eval_every=50,
        eval_trials=256,
        checkpoint_every=1000,
        progress=False,
        hidden_size=16,
        n_heads=4,
        mlp_size=32,
    )
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize(
    "base",
    [
        TaskSpec(n_tasks=4),
        TaskSpec(latent_dim=3, n_tasks=5, encoder="quadratic", targets="ddm_bound"),
        TaskSpec(targets="free_rt_paper", noise="ar1"),
        TaskSpec(encoder="none", targets="decision_only", prior="correlated", rho=0.3),
    ],
)
def test_batched_trials_equal_separate_generate_calls(base: TaskSpec) -> None:
    """K tasks (own encoder seed and noise level) and K streams: every array bit-equal to K
    separate envs.generate calls, batch after batch."""
    specs = [dataclasses.replace(base, seed=s, sigma=0.1 + 0.1 * s) for s in range(3)]
    trials = EnsembleTrials(specs)
    ours = [np.random.default_rng(10 + k) for k in range(3)]
    theirs = [np.random.default_rng(10 + k) for k in range(3)]
    for _ in range(2):
        got = trials.draw(8, ours)
        assert got.obs.shape == (3, 8, base.n_steps, base.obs_dim)
        for k, spec in enumerate(specs):
            ref = generate(spec, 8, theirs[k])
            np.testing.assert_array_equal(got.obs[k], ref.obs)
            np.testing.assert_array_equal(got.targets[k], ref.targets)
            np.testing.assert_array_equal(got.mask[k], ref.mask)
            np.testing.assert_array_equal(got.members[k].labels, ref.labels)
    # the encoders really differ between members (the task seeds are used)
    assert not np.allclose(got.obs[0, :, 2], got.obs[1, :, 2])


def _key_bias_free(state: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """The transformer's weights without the attention key biases: their gradient is zero in
    exact arithmetic (softmax ignores a constant per query), so Adam steps them along float
    rounding noise, differently in any two implementations; the outputs do not depend on them."""
    out = dict(state)
    for name, value in state.items():
        if name.endswith("qkv.bias"):
            out[name] = torch.cat([value[:width], value[2 * width :]])
    return out


@pytest.mark.parametrize(
    "arch,extra",
    [("rnn", {}), ("gru", {}), ("lstm", {"preset": "paper"}), ("transformer", {})],
)
def test_members_equal_their_solo_runs(arch: str, extra: dict, tmp_path) -> None:
    """200 steps: member k's weights, loss trace and evaluations equal the solo run with the
    same seeds (network seed, task seed); the transformer at its paper model (dropout 0.1, masks
    reproduced per member). Default preset: cosine schedule and per-member clipping at 1."""
    cfg = _cfg(arch=arch, **extra)
    specs, cfgs = ensemble_members(SMALL, cfg, seeds=[3, 5], task_seeds=[0, 1])
    dirs = [tmp_path / "ens" / f"m{k}" for k in range(2)]
    runs = train_ensemble(specs, cfgs, dirs)
    obs = torch.from_numpy(generate(SMALL, 32, np.random.default_rng(9)).obs)
    for k in range(2):
        solo = train(specs[k], cfgs[k])
        a, b = solo.network.state_dict(), runs[k].network.state_dict()
        if arch == "transformer":
            a, b = _key_bias_free(a, 16), _key_bias_free(b, 16)
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5, msg=name)
        assert [m["step"] for m in runs[k].metrics] == [50, 100, 150, 200]
        for ms, me in zip(solo.metrics, runs[k].metrics):
            assert me["loss"] == pytest.approx(ms["loss"], abs=1e-5)
            assert me["acc"] == pytest.approx(ms["acc"], abs=2 / (256 * 3))
        with torch.no_grad():
            torch.testing.assert_close(
                runs[k].network(obs)[0], solo.network(obs)[0], rtol=0, atol=1e-4
            )
        # the member's folder is an ordinary run: agents.load gives the same network
        loaded = load(dirs[k])
        assert loaded.spec == specs[k] and loaded.config == cfgs[k].resolve()
        for name, value in runs[k].network.state_dict().items():
            torch.testing.assert_close(loaded.network.state_dict()[name], value, rtol=0, atol=0)
        rows = [json.loads(x) for x in (dirs[k] / "metrics.jsonl").read_text().splitlines()]
        assert [r["loss"] for r in rows] == [m["loss"] for m in runs[k].metrics]
    assert runs[0].metrics[-1]["loss"] != runs[1].metrics[-1]["loss"]  # two different members


def _interrupt_at_batch(n: int, monkeypatch) -> object:
    """Make the n-th ensemble batch raise KeyboardInterrupt; returns the real ``draw``."""
    real = EnsembleTrials.draw
    calls = {"n": 0}

    def crashing(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("simulated interruption")
        return real(self, *a, **kw)

    monkeypatch.setattr(EnsembleTrials, "draw", crashing)
    return real


def test_member_folders_hold_solo_files_and_solo_checkpoints(tmp_path, monkeypatch) -> None:
    """Each member folder has the solo trainer's files; its checkpoint.pt is a solo checkpoint:
    the solo trainer resumes a cut member from it and ends where the solo run ends."""
    cfg = _cfg(arch="rnn", steps=12, eval_every=6, checkpoint_every=5)
    specs, cfgs = ensemble_members(SMALL, cfg, seeds=[1, 2])
    dirs = [tmp_path / "a", tmp_path / "b"]
    real = _interrupt_at_batch(8, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(specs, cfgs, dirs)
    monkeypatch.setattr(EnsembleTrials, "draw", real)
    files = {p.name for p in dirs[1].iterdir()}
    assert {"spec.json", "config.json", "model.pt", "checkpoint.pt", "metrics.jsonl"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert torch.load(dirs[1] / "checkpoint.pt", weights_only=True)["step"] == 5
    resumed = train(specs[1], cfgs[1], dirs[1], resume=True)  # the solo trainer takes it over
    whole = train(specs[1], cfgs[1])
    for name, value in whole.network.state_dict().items():
        torch.testing.assert_close(resumed.network.state_dict()[name], value, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_resumed_ensemble_equals_uninterrupted(arch: str, tmp_path, monkeypatch) -> None:
    """Interrupt after step 7 (joint checkpoint at 5), resume: bit-equal to one run, dropout
    streams included; each member's log holds every evaluation once."""
    cfg = _cfg(arch=arch, steps=12, eval_every=6, checkpoint_every=5)
    specs, cfgs = ensemble_members(SMALL, cfg, seeds=[0, 4], task_seeds=[2, 3])
    whole = train_ensemble(specs, cfgs, [tmp_path / "w0", tmp_path / "w1"])
    real = _interrupt_at_batch(8, monkeypatch)
    dirs = [tmp_path / "c0", tmp_path / "c1"]
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(specs, cfgs, dirs)
    monkeypatch.setattr(EnsembleTrials, "draw", real)
    joint = default_ensemble_dir(dirs) / "ensemble_checkpoint.pt"
    assert torch.load(joint, weights_only=True)["step"] == 5
    with pytest.raises(ValueError, match="already exists.*resume"):
        train_ensemble(specs, cfgs, dirs)
    resumed = train_ensemble(specs, cfgs, dirs, resume=True)
    for k in range(2):
        for name, value in whole[k].network.state_dict().items():
            torch.testing.assert_close(resumed[k].network.state_dict()[name], value, rtol=0, atol=0)
        rows = [json.loads(x) for x in (dirs[k] / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [6, 12]
        assert rows[-1]["loss"] == whole[k].final["loss"]
    with pytest.raises(ValueError, match="cannot resume.*lr"):
        train_ensemble(specs, [dataclasses.replace(c, lr=0.5) for c in cfgs], dirs, resume=True)


def test_stacked_initial_weights_are_the_solo_runs(tmp_path) -> None:
    """Before any step, member k holds exactly the network the solo trainer builds."""
    cfg = _cfg(arch="gru", steps=1)
    specs, cfgs = ensemble_members(SMALL, cfg, seeds=[7, 8, 9])
    nets = []
    for c in cfgs:
        torch.manual_seed(c.seed)
        nets.append(build_network(SMALL, c.resolve()))
    stacked = StackedNetwork(nets)
    for k, c in enumerate(cfgs):
        torch.manual_seed(c.seed)
        ref = build_network(SMALL, c.resolve()).state_dict()
        for name, value in stacked.member_state(k).items():
            assert torch.equal(value, ref[name]), name


def test_bad_input_is_one_clear_error(tmp_path) -> None:
    cfg = _cfg(steps=2)
    with pytest.raises(ValueError, match=r"specs must hold at least one TaskSpec.*K >= 1"):
        train_ensemble([], [])
    with pytest.raises(ValueError, match=r"configs\[1\]\.arch='gru' differs from configs\[0\]"):
        train_ensemble([SMALL, SMALL], [cfg, dataclasses.replace(cfg, arch="gru")])
    with pytest.raises(ValueError, match=r"configs\[1\]\.hidden_size=32 differs"):
        train_ensemble([SMALL, SMALL], [cfg, dataclasses.replace(cfg, hidden_size=32)])
    with pytest.raises(ValueError, match=r"specs\[1\]\.n_tasks=4 differs.*share"):
        train_ensemble([SMALL, dataclasses.replace(SMALL, n_tasks=4)], [cfg, cfg])
    with pytest.raises(ValueError, match="specs must be a sequence of TaskSpecs"):
        train_ensemble(SMALL, [cfg])
    with pytest.raises(ValueError, match="one entry per member, got 2 specs and 1 configs"):
        train_ensemble([SMALL, SMALL], [cfg])
    with pytest.raises(ValueError, match="run_dirs must be 2 distinct folders"):
        train_ensemble([SMALL, SMALL], [cfg, cfg], [tmp_path / "x", tmp_path / "x"])
    with pytest.raises(ValueError, match="run_dirs must be a sequence of 2 run folders"):
        train_ensemble([SMALL, SMALL], [cfg, cfg], tmp_path / "x")
    with pytest.raises(ValueError, match="networks must share one architecture.*leak"):
        StackedNetwork(
            [
                build_network(SMALL, cfg.resolve()),
                build_network(SMALL, dataclasses.replace(cfg, leak=0.5).resolve()),
            ]
        )
    with pytest.raises(ValueError, match="adam must be one of"):
        train_ensemble([SMALL], [cfg], adam="sgd")


def test_a_diverging_member_stops_the_ensemble(monkeypatch) -> None:
    real = ens_trainer.member_objective

    def poisoned(*a, **kw):
        out = real(*a, **kw)
        return torch.cat([out[:1], out[1:] * float("nan")])

    monkeypatch.setattr(ens_trainer, "member_objective", poisoned)
    specs, cfgs = ensemble_members(SMALL, _cfg(steps=3), seeds=[0, 1])
    with pytest.raises(ens_trainer.TrainingDivergedError, match=r"member\(s\) \[1\].*step 1"):
        train_ensemble(specs, cfgs)


# ---- hand-written BPTT (agents.ensemble.recurrences) ------------------------------------------


def _reference_scan(kind: str, gi, w_hh, b_hh, activation="relu", leak=1.0, keep=0.0):
    """The recurrences as plain autograd loops of torch's cell formulas, [K, T, B, .] layout."""
    kk, tt, bb, _ = gi.shape
    hh = w_hh.shape[-1]
    h = gi.new_zeros(kk, bb, hh)
    c = torch.zeros_like(h)
    act = torch.relu if activation == "relu" else torch.tanh
    out = []
    for t in range(tt):
        if kind == "elman":
            if b_hh is not None:
                pre = torch.baddbmm(b_hh[:, None], h, w_hh.transpose(1, 2)) + gi[:, t]
            else:
                pre = gi[:, t] + torch.bmm(h, w_hh.transpose(1, 2))
            h = keep * h + leak * act(pre)
        elif kind == "gru":
            gh = torch.baddbmm(b_hh[:, None], h, w_hh.transpose(1, 2))
            i_r, i_z, i_n = gi[:, t].chunk(3, dim=-1)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r, z = torch.sigmoid(h_r + i_r), torch.sigmoid(h_z + i_z)
            n = torch.tanh(i_n + h_n * r)
            h = (h - n) * z + n
        else:
            gates = torch.baddbmm(b_hh[:, None], h, w_hh.transpose(1, 2)) + gi[:, t]
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=1)


SCANS = [
    ("elman", 1, {"activation": "relu"}, True),
    ("elman", 1, {"activation": "tanh"}, True),
    ("elman", 1, {"activation": "tanh", "leak": 0.4, "keep": 0.6}, False),
    ("elman", 1, {"activation": "relu", "leak": 0.3, "keep": 1.0}, False),
    ("gru", 3, {}, True),
    ("lstm", 4, {}, True),
]


def _scan(kind: str, gi, w_hh, b_hh, **kw):
    from multitask_evidence.agents.ensemble.recurrences import elman_scan, gru_scan, lstm_scan

    if kind == "elman":
        return elman_scan(gi, w_hh, b_hh, **kw)
    return (gru_scan if kind == "gru" else lstm_scan)(gi, w_hh, b_hh)


def _scan_inputs(gates: int, with_bias: bool, dtype, k=2, t=5, b=3, h=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    gi = torch.randn(k, t, b, gates * h, generator=g, dtype=dtype)
    w_hh = 0.6 * torch.randn(k, gates * h, h, generator=g, dtype=dtype)
    b_hh = 0.3 * torch.randn(k, gates * h, generator=g, dtype=dtype) if with_bias else None
    return [x.requires_grad_() if x is not None else None for x in (gi, w_hh, b_hh)]


@pytest.mark.parametrize("kind,gates,kw,with_bias", SCANS)
def test_scan_gradients_pass_gradcheck(kind, gates, kw, with_bias) -> None:
    """float64, tiny sizes: the hand-written BPTT equals finite differences (a pre-activation
    within eps = 1e-6 of relu's kink has probability ~0 with these draws)."""
    gi, w_hh, b_hh = _scan_inputs(gates, with_bias, torch.float64)
    inputs = (gi, w_hh) if b_hh is None else (gi, w_hh, b_hh)

    def fn(*xs):
        return _scan(kind, xs[0], xs[1], xs[2] if len(xs) > 2 else None, **kw)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kind,gates,kw,with_bias", SCANS)
def test_scan_equals_the_autograd_loop(kind, gates, kw, with_bias) -> None:
    """float32, K = 3 members, T = 7: outputs equal the plain autograd loop of the same cell,
    and so do the gradients of gi, w_hh and b_hh (to float32 rounding)."""
    ours = _scan_inputs(gates, with_bias, torch.float32, k=3, t=7, b=5, h=8, seed=1)
    theirs = [x.detach().clone().requires_grad_() if x is not None else None for x in ours]
    y = _scan(kind, *ours, **kw)
    ref = _reference_scan(kind, *theirs, **kw)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-6)
    with torch.no_grad():  # the forward that saves nothing for the backward computes the same
        torch.testing.assert_close(_scan(kind, *ours, **kw), y, rtol=0, atol=0)
    w = torch.randn_like(ref)  # a loss that weighs every step and unit differently
    (y * w).sum().backward()
    (ref * w).sum().backward()
    for a, b, name in zip(ours, theirs, ("gi", "w_hh", "b_hh")):
        if a is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5, msg=name)
    assert ours[1].grad.abs().max() > 1e-3  # the gradients are not trivially zero


def test_scan_rejects_mismatched_shapes() -> None:
    from multitask_evidence.agents.ensemble.recurrences import elman_scan, lstm_scan

    with pytest.raises(ValueError, match=r"gi must be \[K, T, B, G\*H\]"):
        lstm_scan(torch.zeros(2, 3, 4, 8), torch.zeros(3, 8, 2), torch.zeros(3, 8))
    with pytest.raises(ValueError, match="4 gate"):
        lstm_scan(torch.zeros(2, 3, 4, 6), torch.zeros(2, 6, 2), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="activation must be 'relu' or 'tanh'"):
        elman_scan(torch.zeros(1, 2, 3, 4), torch.zeros(1, 4, 4), None, "gelu")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_scan_without_factors_refuses_to_backpropagate(cell: str) -> None:
    """A forward run without grads keeps no derivative factors; its backward says so rather than
    returning wrong gradients."""
    from multitask_evidence.agents.ensemble.recurrences import GatedScan

    g = 3 if cell == "gru" else 4
    gi = torch.randn(2, 3, 4, g * 5, requires_grad=True)
    w_hh = torch.randn(2, g * 5, 5, requires_grad=True)
    b_hh = torch.randn(2, g * 5, requires_grad=True)
    out = GatedScan.apply(gi, w_hh, b_hh, False, cell)
    with pytest.raises(RuntimeError, match=f"{cell}_scan ran without grads=True"):
        out.sum().backward()
