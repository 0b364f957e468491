"""Nothing a run folder holds can run code: a pickle payload planted in each file that resume or
loading reads is refused (a ValueError naming the file) or ignored, and never executed."""

from __future__ import annotations

import pathlib
import pickle
import shutil
import zipfile

import pytest
import torch

from multitask_evidence.agents import TrainConfig, load, train
from multitask_evidence.agents.rl import ALGOS
from multitask_evidence.agents.rl import load as rl_load
from multitask_evidence.agents.rl.ppo_config import PPOConfig
from multitask_evidence.agents.rl.sb3 import SB3Config
from multitask_evidence.envs import TaskSpec

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")

TINY = TaskSpec(n_tasks=1, sigma=0.1, stimulus_steps=3, encoder="none")


class Payload:
    """Unpickling this touches ``marker`` (what a crafted checkpoint could do with a shell)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _payload_files(marker: pathlib.Path, where: pathlib.Path) -> dict[str, bytes]:
    """Raw pickle bytes and a torch zip whose data.pkl holds the payload."""
    torch.save({"model": Payload(marker), "policy": Payload(marker)}, where / "evil.pt")
    return {"raw": pickle.dumps(Payload(marker)), "torch": (where / "evil.pt").read_bytes()}


def test_the_payload_runs_when_unpickled(tmp_path) -> None:
    """Positive control: the payload does run under plain unpickling, so the tests below that
    find no marker mean the package refused it."""
    marker = tmp_path / "MARKER"
    files = _payload_files(marker, tmp_path)
    pickle.loads(files["raw"])
    assert marker.exists()
    marker.unlink()
    # the checkpoint's own pickle entry carries the same live payload (read as plain pickle,
    # which is what an unsafe torch.load would run)
    with zipfile.ZipFile(tmp_path / "evil.pt") as z:
        entry = next(n for n in z.namelist() if n.endswith("data.pkl"))
        pickle.loads(z.read(entry))
    assert marker.exists()


def _sup_cfg() -> TrainConfig:
    return TrainConfig(
        arch="gru", hidden_size=8, steps=4, batch_size=8, eval_every=2, eval_trials=64,
        checkpoint_every=2, progress=False, device="cpu", num_threads=1,
    )  # fmt: skip


def _sb3_cfg() -> SB3Config:
    return SB3Config(
        total_steps=256, eval_every=128, eval_trials=32, n_envs=2, n_steps=64, batch_size=64,
        n_epochs=1, lstm_hidden_size=8, net_arch=0, progress=False,
    )  # fmt: skip


def _ppo_cfg() -> PPOConfig:
    return PPOConfig(
        arch="gru", hidden_size=8, critic_hidden=0, num_envs=16, total_steps=16 * 6 * 2,
        eval_every=1, eval_trials=32, progress=False, device="cpu",
    )  # fmt: skip


KINDS = {
    "supervised": (
        lambda d, resume: train(TINY, _sup_cfg(), d, resume),
        load,
        ["checkpoint.pt", "model.pt", "spec.json", "config.json", "metrics.jsonl", "EVENTS"],
    ),
    "ppo": (
        lambda d, resume: ALGOS["ppo"][1](TINY, _ppo_cfg(), d, resume),
        rl_load,
        ["checkpoint.pt", "model.pt", "spec.json", "config.json", "metrics.jsonl", "EVENTS"],
    ),
    "sb3": (
        lambda d, resume: ALGOS["sb3-recurrent-ppo"][1](TINY, _sb3_cfg(), d, resume),
        rl_load,
        ["sb3_checkpoint.pt", "model.pt", "spec.json", "config.json", "metrics.jsonl", "EVENTS"],
    ),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind, (fit, _, _) in KINDS.items():
        fit(root / kind, False)
        out[kind] = root / kind
    return out


@pytest.mark.parametrize("form", ["raw", "torch"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_payload_in_any_file_never_runs(kind: str, form: str, trained, tmp_path) -> None:
    fit, loader, names = KINDS[kind]
    marker = tmp_path / "MARKER"
    payload = _payload_files(marker, tmp_path)[form]
    for name in names:
        d = tmp_path / f"{kind}-{name}"
        shutil.copytree(trained[kind], d)
        if name == "EVENTS":
            targets = sorted(d.rglob("events.out.tfevents.*"))
            assert targets, "the run wrote tensorboard events"
        else:
            targets = [d / name]
        for t in targets:
            t.write_bytes(payload)
        for action, arg in ((fit, (d, True)), (loader, (d,))):
            try:
                action(*arg)
            except ValueError as e:
                # the error names the file it refused
                assert any(str(t) in str(e) or t.name in str(e) for t in targets), str(e)
            assert not marker.exists(), f"{kind}: payload in {name} ran"


def test_sb3_zip_checkpoint_is_never_opened(trained, tmp_path) -> None:
    """A folder with only SB3's own zip (which RecurrentPPO.load would unpickle) is refused."""
    marker = tmp_path / "MARKER"
    d = tmp_path / "old"
    shutil.copytree(trained["sb3"], d)
    (d / "sb3_checkpoint.pt").unlink()
    (d / "sb3_checkpoint.zip").write_bytes(_payload_files(marker, tmp_path)["torch"])
    with pytest.raises(ValueError, match="sb3_checkpoint.zip.*not read"):
        ALGOS["sb3-recurrent-ppo"][1](TINY, _sb3_cfg(), d, True)
    assert not marker.exists()


def test_no_reader_in_the_package_can_unpickle() -> None:
    """Source scan: every torch.load is weights-only, np.load refuses pickles, YAML is read
    with safe_load, and nothing calls pickle / SB3's zip loader / eval / exec."""
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    files = [
        p
        for pkg in ("common", "envs", "agents", "probes", "experiments")
        for p in (root / pkg).rglob("*.py")
    ]
    assert len(files) > 20
    bad = []
    for path in files:
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(([^()]|\([^()]*\))*\)", text):
            if "weights_only=True" not in m.group(0):
                bad.append(f"{path.name}: {m.group(0)}")
        for m in re.finditer(r"np\.load\(([^()]|\([^()]*\))*\)", text):
            if "allow_pickle=False" not in m.group(0):
                bad.append(f"{path.name}: {m.group(0)}")
        for pattern in (
            r"pickle\.loads?\(",
            r"yaml\.(unsafe_)?load\(",
            r"yaml\.full_load",
            r"\b(RecurrentPPO|PPO|BaseAlgorithm)\.load\(",
            r"load_from_zip_file",
            r"(?<![\w.])(eval|exec)\(",
            r"dill|cloudpickle\.load|joblib\.load|shelve\.open",
        ):
            bad += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not bad, bad
