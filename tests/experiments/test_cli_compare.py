"""`mte compare A B`: the numbers it prints and writes are compare_codes on the recordings'
arrays; a code against a rotated copy of itself reads CKA 1; recordings of different trials and
run folders of different tasks are one-line errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.envs import TaskSpec
from multitask_evidence.experiments.cli import main
from multitask_evidence.probes.compare import MAX_RSA_TRIALS, compare_codes
from multitask_evidence.probes.record import Recording, load_recording, record
from multitask_evidence.probes.synthetic import IdealAgent

torch.set_num_threads(1)

FIXTURE = Path(__file__).parents[1] / "probes" / "data" / "rnn_default_n24"
SPEC = TaskSpec(encoder="none")
N = MAX_RSA_TRIALS + 100  # more trials than RSA takes one by one: it bins by the latents


def ideal_recording(seed: int = 3, agent_seed: int = 0, noise: float = 1e-3) -> Recording:
    """N trials of the ideal agent (a rotated embedding of mu plus noise), drawn with ``seed``."""
    return record(IdealAgent(SPEC, hidden=16, noise=noise, seed=agent_seed), SPEC, N, seed)


def one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert err.startswith("mte compare: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


def test_the_json_holds_compare_codes_of_the_recordings(tmp_path, capsys):
    a = ideal_recording()
    b = ideal_recording(agent_seed=1, noise=0.05)  # another basis and more noise, same trials
    pa, pb = a.save(tmp_path / "a.npz"), b.save(tmp_path / "b.npz")
    out = tmp_path / "out" / "cmp.json"
    argv = ["compare", str(pa), str(pb), "--permutations", "49", "--seed", "7", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    want = compare_codes(a.at(), b.at(), latent=a.latent, n_permutations=49, seed=7)
    assert data["comparison"] == want.to_dict()
    assert data["a"] == str(pa) and data["at"] == "decision" and data["trials_seed"] == 3
    c = data["comparison"]
    assert (c["n"], c["units_a"], c["units_b"]) == (N, 16, 16)
    assert (c["rsa_over"], c["rsa_items"]) == ("latent bins", 64)
    assert 0.9 < c["cka"] < 1 and c["cka_p"] == pytest.approx(1 / 50) and c["rsa_p"] == c["cka_p"]
    assert f"{'CKA':8}{c['cka']:>10.4f}" in text and f"wrote {out}" in text
    # whole trajectories: T x 16 units a side
    assert main([*argv[:3], "--at", "all", "--permutations", "0", "--json", str(out)]) == 0
    c = json.loads(out.read_text())["comparison"]
    assert c["units_a"] == SPEC.n_steps * 16 and c["cka_p"] is None
    whole = (a.hidden.reshape(N, -1), b.hidden.reshape(N, -1))
    want = compare_codes(*whole, latent=a.latent, n_permutations=0)
    assert c["cka"] == want.cka and c["rsa"] == want.rsa


def test_a_recording_against_a_rotated_copy_of_itself_reads_cka_one(tmp_path, capsys):
    a = ideal_recording()
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((16, 16)))[0]
    rotated = dataclasses.replace(a, hidden=(a.hidden @ q).astype(np.float32))
    pa, pb = a.save(tmp_path / "a.npz"), rotated.save(tmp_path / "rot.npz")
    out = tmp_path / "cmp.json"
    assert main(["compare", str(pa), str(pb), "--permutations", "19", "--json", str(out)]) == 0
    c = json.loads(out.read_text())["comparison"]
    assert c["cka"] == pytest.approx(1.0, abs=1e-5) and c["cka_p"] == pytest.approx(1 / 20)
    assert f"{'CKA':8}{1.0:>10.4f}" in capsys.readouterr().out


def test_recordings_of_different_trials_are_one_line(tmp_path, capsys):
    a = ideal_recording(seed=3)
    pa = a.save(tmp_path / "a.npz")
    pb = ideal_recording(seed=4).save(tmp_path / "b.npz")
    rc = main(["compare", str(pa), str(pb), "--permutations", "0"])
    one_line_error(rc, capsys.readouterr().err, str(pa), str(pb), "their latents differ")
    short = dataclasses.replace(
        a,
        **{k: getattr(a, k)[:100] for k in ("hidden", "outputs", "latent", "labels", "mu")},
    )
    pc = short.save(tmp_path / "c.npz")
    rc = main(["compare", str(pa), str(pc), "--permutations", "0"])
    one_line_error(rc, capsys.readouterr().err, f"n = {N} and n = 100", str(pc))


def test_bad_input_is_one_line(tmp_path, capsys):
    pa = ideal_recording().save(tmp_path / "a.npz")
    (tmp_path / "notes.txt").write_text("x")
    for argv, needles in [
        ([str(pa), str(tmp_path / "missing.npz")], ["no such file"]),
        ([str(pa), str(tmp_path / "notes.txt")], ["must each be a run folder or a recording"]),
        ([str(pa), str(tmp_path)], ["is not a run folder"]),
        ([str(pa), str(pa), "--permutations", "-1"], ["--permutations must be >= 0"]),
        ([str(pa), str(pa), "--n", "100"], ["--n is for two run folders"]),
        ([str(pa), str(pa), "--json", str(tmp_path)], ["--json", "not a file path"]),
    ]:
        one_line_error(main(["compare", *argv]), capsys.readouterr().err, *needles)


def test_run_folders_are_recorded_on_the_same_trials(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    out = tmp_path / "cmp.json"
    argv = ["--n", "256", "--seed", "5", "--permutations", "19", "--json", str(out)]
    assert main(["compare", str(FIXTURE), str(run), *argv]) == 0
    c = json.loads(out.read_text())["comparison"]
    assert c["n"] == 256 and c["cka"] == pytest.approx(1.0, abs=1e-12)
    assert c["rsa"] == pytest.approx(1.0, abs=1e-12) and c["cka_p"] == pytest.approx(1 / 20)
    # a run against a recording of it: recorded on the file's own trials (its n and seed)
    saved = record(agents.load(FIXTURE), None, 300, 9).save(tmp_path / "rec.npz")
    assert main(["compare", str(run), str(saved), "--permutations", "0", "--json", str(out)]) == 0
    c = json.loads(out.read_text())["comparison"]
    assert c["n"] == 300 and c["cka"] == pytest.approx(1.0, abs=1e-12)
    assert load_recording(saved).seed == 9
    capsys.readouterr()
    # run folders of different tasks would not see the same trials
    spec = json.loads((run / "spec.json").read_text())
    (run / "spec.json").write_text(json.dumps({**spec, "sigma": 0.3}))
    rc = main(["compare", str(FIXTURE), str(run), "--n", "64"])
    one_line_error(rc, capsys.readouterr().err, "were trained on different tasks", "sigma")
    rc = main(["compare", str(saved), str(run)])
    one_line_error(rc, capsys.readouterr().err, "was trained on another task", str(saved))
