"""Run folders written before the network fields were shared (:class:`agents.config
.NetworkConfig`) load as they did: a stored supervised run, and config.json files in the flat
layout native PPO and sb3 write, give the same networks, built here from the stored values
directly with the core classes and compared number for number."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from multitask_evidence import agents
from multitask_evidence.agents.networks import CausalTransformer, ElmanRNN, GatedRNN, Network
from multitask_evidence.envs import TaskSpec, generate

torch.set_num_threads(1)

STORED = Path(__file__).parents[1] / "probes" / "data" / "rnn_default_n24"
SPEC = TaskSpec(n_tasks=2, sigma=0.1, stimulus_steps=4, encoder="none")

# config.json of a native PPO run as PPOConfig wrote it before it shared the network fields:
# env fields first, no init / dropout keys
PPO_FLAT = {
    "kind": "ppo", "env_id": "MultiTaskEvidence-v0", "env_kwargs": "{}", "arch": "gru",
    "hidden_size": 16, "activation": "relu", "leak": 1.0, "n_layers": 1, "n_heads": 8,
    "mlp_size": 256, "positional": "none", "critic_hidden": 64, "continuous_head": "beta",
    "num_envs": 32, "total_steps": 192, "max_seconds": 0.0, "lr": 0.003, "anneal_lr": True,
    "gamma": 1.0, "gae_lambda": 0.95, "update_epochs": 2, "num_minibatches": 2, "clip_coef": 0.2,
    "ratio": "component", "clip_vloss": False, "ent_coef": 0.003, "ent_coef_continuous": 0.0,
    "vf_coef": 0.5, "max_grad_norm": 1.0, "norm_adv": True, "mask_unscored": True,
    "eval_every": 20, "eval_trials": 64, "eval_seed": 1000003, "checkpoint_every": 20, "seed": 0,
    "device": "cpu", "num_threads": 1, "progress": False, "algo": "ppo",
}  # fmt: skip
SB3_FLAT = {
    "kind": "sb3", "env_id": "MultiTaskEvidence-v0", "env_kwargs": "{}", "lstm_hidden_size": 16,
    "n_lstm_layers": 1, "net_arch": 16, "n_envs": 2, "total_steps": 256, "max_seconds": 0.0,
    "n_steps": 64, "batch_size": 64, "n_epochs": 2, "lr": 0.0003, "gamma": 1.0,
    "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.0, "vf_coef": 0.5,
    "max_grad_norm": 0.5, "eval_every": 20000, "eval_trials": 64, "eval_seed": 1000003,
    "seed": 0, "device": "cpu", "num_threads": 1, "progress": False,
    "algo": "sb3-recurrent-ppo",
}  # fmt: skip


def _obs(spec: TaskSpec, n: int = 16) -> np.ndarray:
    return generate(spec, n, np.random.default_rng(3)).obs


def _write_run(path: Path, spec: TaskSpec, config: dict, state: dict) -> None:
    path.mkdir()
    (path / "spec.json").write_text(spec.to_json())
    (path / "config.json").write_text(json.dumps(config, indent=2))
    torch.save(state, path / "model.pt")


def test_stored_supervised_run_gives_the_same_network(tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(STORED, run)
    stored = json.loads((run / "config.json").read_text())
    loaded = agents.load(run)
    # every stored value comes back; a field added since (weight_decay) reads as unset
    cfg = loaded.config.to_dict()
    assert {k: cfg[k] for k in stored if k != "kind"} == {k: v for k, v in stored.items()
                                                         if k != "kind"}  # fmt: skip
    assert cfg["weight_decay"] is None
    # the network, built from the stored values with the core classes themselves
    spec = loaded.spec
    core = ElmanRNN(spec.obs_dim, stored["hidden_size"], stored["activation"], stored["leak"],
                    init=stored["init"])  # fmt: skip
    ref = Network(core, spec.n_tasks)
    ref.load_state_dict(torch.load(run / "model.pt", weights_only=True))
    obs = _obs(spec)
    with torch.no_grad():
        readout, hidden = ref.eval()(torch.from_numpy(obs))
    h, y = loaded.hidden_and_outputs(obs)
    np.testing.assert_array_equal(h, hidden.numpy())
    np.testing.assert_array_equal(y, torch.sigmoid(readout).numpy())


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_flat_ppo_config_gives_the_same_network(arch, tmp_path) -> None:
    from multitask_evidence.agents.rl.ppo import build_agent
    from multitask_evidence.agents.rl.ppo_config import PPOConfig

    flat = {**PPO_FLAT, "arch": arch}
    config = PPOConfig(**{k: v for k, v in flat.items() if k != "kind"})
    assert config.init is None and config.dropout is None
    torch.manual_seed(5)
    agent, _, _ = build_agent(SPEC, config)
    _write_run(tmp_path / "run", SPEC, flat, agent.state_dict())

    policy = agents.load(tmp_path / "run")
    core = policy.agent.core
    if arch == "gru":  # the torso the stored values name, nothing more
        assert isinstance(core, GatedRNN) and core.kind == "gru" and core.hidden_size == 16
    else:
        # PPO's transformer torso had no dropout, and an old config without the key keeps none
        assert isinstance(core, CausalTransformer) and len(core.blocks) == 1
        assert policy.config.model_value("dropout") == 0.0
        assert {m.p for m in core.modules() if isinstance(m, nn.Dropout)} == {0.0}
        ref = CausalTransformer(SPEC.obs_dim, 16, 1, 8, 256, 0.0, "none")
        ref.load_state_dict(core.state_dict())  # same parameter layout
    obs = _obs(SPEC)
    with torch.no_grad():
        h_ref, _, v_ref = agent.eval()(torch.from_numpy(obs))
    h, _ = policy.hidden_and_outputs(obs)
    np.testing.assert_array_equal(h, h_ref.numpy())
    with torch.no_grad():
        np.testing.assert_array_equal(policy.agent(torch.from_numpy(obs))[2], v_ref)


def test_flat_sb3_config_gives_the_same_policy(tmp_path) -> None:
    pytest.importorskip("sb3_contrib")
    from multitask_evidence.agents.rl.sb3 import SB3Config, SB3Policy, build_policy

    config = SB3Config(**{k: v for k, v in SB3_FLAT.items() if k != "kind"})
    torch.manual_seed(5)
    policy = build_policy(SPEC, config)
    _write_run(tmp_path / "run", SPEC, SB3_FLAT, policy.state_dict())

    loaded = agents.load(tmp_path / "run")
    assert loaded.policy.lstm_actor.hidden_size == 16
    obs = _obs(SPEC)
    h_ref, y_ref = SB3Policy(SPEC, config, policy, SPEC.n_tasks).hidden_and_outputs(obs)
    h, y = loaded.hidden_and_outputs(obs)
    np.testing.assert_array_equal(h, h_ref)
    np.testing.assert_array_equal(y, y_ref)
