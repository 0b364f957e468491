"""`mte probe` end to end on the trained RNN fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from multitask_evidence.experiments.cli import main

FIXTURE = Path(__file__).parents[1] / "probes" / "data" / "rnn_default_n24"


def test_mte_probe_writes_the_report(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    out = tmp_path / "out"
    rc = main(
        [
            "probe",
            str(run),
            "--n",
            "2048",
            "--no-fixed-points",
            "--no-tuning",
            "--shuffles",
            "2",
            "--out",
            str(out),
            "--no-tensorboard",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "r2 of mu (Eq. 7)       0.976" in text and "OOD r2 median" in text
    data = json.loads((out / "probe.json").read_text())
    assert data["run"]["n"] == 2048
    assert 0.9 < data["in_distribution"]["r2"] <= 0.98
    assert (out / "figures" / "ood.png").exists() and (out / "probe.md").exists()
    assert not (out / "figures" / "tuning.png").exists()


def test_mte_probe_bad_input(tmp_path, capsys):
    for argv, match in [
        ([str(tmp_path / "missing")], "is not a folder"),
        ([str(tmp_path)], "is not a run folder"),
        ([str(tmp_path), "--n", "10"], "--n must be >= 64"),
    ]:
        assert main(["probe", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mte probe: error: ") and match in err and err.count("\n") == 1


def test_mte_probe_saves_the_recording_it_measured(tmp_path, capsys):
    from multitask_evidence import agents, probes

    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    path = tmp_path / "recs" / "rnn.npz"
    argv = [
        "probe",
        str(run),
        "--n",
        "128",
        "--seed",
        "7",
        "--no-fixed-points",
        "--no-tuning",
        "--no-figures",
        "--no-tensorboard",
        "--shuffles",
        "0",
        "--save-recording",
        str(path),
    ]
    assert main(argv) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    back = probes.load_recording(path)
    again = probes.record(agents.load(run), None, 128, 7)
    assert back.seed == 7 and back.spec == again.spec
    np.testing.assert_array_equal(back.hidden, again.hidden)
    np.testing.assert_array_equal(back.latent, again.latent)
    assert main(["probe", str(run), "--save-recording", str(tmp_path / "rec.pkl")]) == 2
    assert "--save-recording must name an .npz file" in capsys.readouterr().err


def test_mte_probe_of_a_saved_recording(tmp_path, capsys):
    import dataclasses

    from multitask_evidence import agents
    from multitask_evidence.probes.record import Recording, record
    from multitask_evidence.probes.report import _rows, probe_recording

    rec = record(agents.load(FIXTURE), None, 1024, 7)
    path = rec.save(tmp_path / "rnn24.npz")
    rc = main(["probe", str(path), "--shuffles", "2", "--no-figures"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "skipped untrained: a recording holds no network" in text
    data = json.loads((tmp_path / "rnn24_probe" / "probe.json").read_text())
    h = data["headline"]
    # the file's first 768 trials fit, its last 256 test: the same numbers as on those arrays
    direct = probe_recording(_rows(rec, slice(0, 768)), _rows(rec, slice(768, None)), n_shuffles=2)
    assert h["ood_r2_median"] == direct.headline["ood_r2_median"]
    assert data["run"]["n_test"] == 256 and data["run"]["seed"] == 7
    # the controls drawn again from the seed: the paper task's input average and mu
    assert 0.9 < h["input_ood_r2"] < 0.99 and 0.95 < h["mu_ood_r2"] < 0.99
    assert h["ideal_outputs_ood_r2"] > 0.8 and "untrained_ood_r2" not in h
    # without a seed the trials cannot be drawn again: no controls, and the page says why
    unseeded = dataclasses.replace(rec, seed=None)
    assert isinstance(unseeded, Recording)
    path2 = unseeded.save(tmp_path / "noseed.npz")
    assert main(["probe", str(path2), "--shuffles", "0", "--no-figures"]) == 0
    assert "skipped controls: the recording has no seed" in capsys.readouterr().out
    # flags that need the network are refused with one line
    assert main(["probe", str(path), "--adam"]) == 2
    assert "--adam need a run folder" in capsys.readouterr().err
    assert main(["probe", str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
