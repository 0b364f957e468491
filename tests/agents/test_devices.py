"""Device strings in configs: any torch.device spelling is accepted when the config is built;
training refuses a device this machine lacks, before writing anything."""

from __future__ import annotations

import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.agents.devices import check_device, device_available, pick_device
from multitask_evidence.agents.rl.ppo_config import PPOConfig
from multitask_evidence.agents.rl.sb3 import SB3Config
from multitask_evidence.envs import TaskSpec

GOOD = ["auto", "cpu", "cuda", "cuda:1", "mps"]


@pytest.mark.parametrize("device", GOOD)
@pytest.mark.parametrize("cls", [agents.TrainConfig, PPOConfig, SB3Config])
def test_configs_accept_torch_device_strings(cls, device):
    assert cls(device=device).device == device  # spelling only: no hardware needed here


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "", "cuda:-1", "gpu0"])
@pytest.mark.parametrize(("cls", "owner"), [(agents.TrainConfig, "TrainConfig"),
                                            (PPOConfig, "PPOConfig"), (SB3Config, "SB3Config")])
def test_configs_refuse_other_strings(cls, owner, device):
    with pytest.raises(ValueError, match=rf"{owner}\.device must be 'auto' or a torch device"):
        cls(device=device)
    with pytest.raises(ValueError, match="must be a string"):
        check_device(1, owner)


def _no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_pick_device_checks_availability(monkeypatch):
    _no_accelerators(monkeypatch)
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto") == torch.device("cpu")
    for dev in ("cuda", "cuda:1", "mps"):
        with pytest.raises(ValueError, match=rf"device='{dev}' is not available.*available: cpu"):
            pick_device(dev)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_available(torch.device("cuda:1"))
    assert not device_available(torch.device("cuda:2"))
    assert device_available(torch.device("cuda"))
    assert not device_available(torch.device("meta"))  # parses, but nothing trains there
    with pytest.raises(ValueError, match=r"available: cpu, cuda:0, cuda:1\)"):
        pick_device("cuda:2", "PPOConfig")


def test_training_refuses_a_missing_device_before_writing(monkeypatch, tmp_path):
    _no_accelerators(monkeypatch)
    spec = TaskSpec(n_tasks=2, stimulus_steps=3)
    cfg = agents.TrainConfig(device="cuda:1", steps=2, batch_size=4, progress=False)
    with pytest.raises(ValueError, match=r"TrainConfig\.device='cuda:1' is not available"):
        agents.train(spec, cfg, run_dir=tmp_path / "sup")
    from multitask_evidence.agents.rl import sb3

    sb3_cfg = SB3Config(device="mps", total_steps=16, progress=False)
    with pytest.raises(ValueError, match=r"SB3Config\.device='mps' is not available"):
        sb3.train(spec, sb3_cfg, run_dir=tmp_path / "rl")
    assert not (tmp_path / "sup").exists() and not (tmp_path / "rl").exists()
