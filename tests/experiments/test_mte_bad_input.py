"""Bad input to every `mte` command: one line on stderr naming the flag, file or field and what
is allowed, exit status 2, nothing written where it should not be; valid input still works."""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
from pathlib import Path

import pytest
import torch

from multitask_evidence.experiments.cli import main

torch.set_num_threads(1)

FIXTURE = Path(__file__).parents[1] / "probes" / "data" / "rnn_default_n24"
TINY = [
    "--n-tasks", "2", "--sigma", "0.1", "--stimulus-steps", "3", "--encoder", "none",
    "--steps", "4", "--batch-size", "8", "--eval-every", "2", "--eval-trials", "64",
    "--hidden-size", "8", "--no-progress",
]  # fmt: skip


def mte(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """Run `mte argv`; return (exit status, stderr). A SystemExit from argparse counts too."""
    monkeypatch.setattr(sys, "argv", ["mte", *argv])  # train's options depend on --algo
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    return rc, capsys.readouterr().err


def one_line_error(rc: int, err: str, command: str, *needles: str) -> None:
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith(f"mte {command}: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


# ---- argparse --------------------------------------------------------------------------------
def test_abbreviations_are_not_accepted(tmp_path, monkeypatch, capsys) -> None:
    rc, err = mte(["train", "--n-task", "6", "--runs-dir", str(tmp_path)], monkeypatch, capsys)
    one_line_error(rc, err, "train", "unrecognized arguments: --n-task")
    assert not any(tmp_path.iterdir())


def test_wrongly_typed_flag_is_one_line(monkeypatch, capsys) -> None:
    rc, err = mte(["train", "--n-tasks", "six"], monkeypatch, capsys)
    one_line_error(rc, err, "train", "--n-tasks", "invalid int value: 'six'")


# ---- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../escaped", "ABS", "a/../../escaped"])
def test_train_name_stays_in_runs_dir(name, tmp_path, monkeypatch, capsys) -> None:
    runs = tmp_path / "runs"
    name = str(tmp_path / "escaped") if name == "ABS" else name
    rc, err = mte(["train", *TINY, "--name", name, "--runs-dir", str(runs)], monkeypatch, capsys)
    one_line_error(rc, err, "train", "--name must be a folder name")
    assert not (tmp_path / "escaped").exists() and not runs.exists()


def test_train_name_may_be_a_path_under_runs_dir(tmp_path, monkeypatch, capsys) -> None:
    argv = ["train", *TINY, "--name", "grp/r1", "--runs-dir", str(tmp_path)]
    rc, _ = mte(argv, monkeypatch, capsys)
    assert rc == 0 and (tmp_path / "grp" / "r1" / "model.pt").exists()


def test_sweep_names_stay_in_runs_sweeps(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("../x", str(tmp_path / "x")):
        rc, err = mte(
            ["sweep", "--set", "n_tasks=2", "--name", name, "--dry-run"], monkeypatch, capsys
        )
        one_line_error(rc, err, "sweep", "--name must be a folder name")
    grid = tmp_path / "g.yaml"
    grid.write_text("grid: {n_tasks: [2]}\nname: ../../x\n")
    rc, err = mte(["sweep", "--file", str(grid), "--dry-run"], monkeypatch, capsys)
    one_line_error(rc, err, "sweep", "'name' must be a folder name")
    assert not (tmp_path / "x").exists()


def test_train_and_sweep_refuse_a_symlink_out_of_their_folder(tmp_path, monkeypatch, capsys):
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "link").symlink_to(outside)
    (runs / "victim").symlink_to(outside / "victim")
    for argv in (["--name", "link/x"], ["--resume", "--name", "victim"]):
        rc, err = mte(["train", *TINY, *argv, "--runs-dir", str(runs)], monkeypatch, capsys)
        one_line_error(rc, err, "train", "leads out of", "through a symlink")
    assert sorted(p.name for p in outside.rglob("*")) == ["victim"]  # nothing written there
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "sweeps").mkdir()
    (tmp_path / "runs" / "sweeps" / "swlink").symlink_to(outside)
    rc, err = mte(
        ["sweep", "--set", "n_tasks=2", "--name", "swlink/x", "--dry-run"], monkeypatch, capsys
    )
    one_line_error(rc, err, "sweep", "leads out of", "through a symlink")


# ---- resume ------------------------------------------------------------------------------------
def test_resume_errors_and_override(tmp_path, monkeypatch, capsys) -> None:
    base = ["train", "--runs-dir", str(tmp_path), "--name", "r"]
    rc, err = mte([*base, "--resume"], monkeypatch, capsys)
    one_line_error(rc, err, "train", "no run", "drop --resume")
    assert not (tmp_path / "r").exists()
    assert mte([*base, *TINY], monkeypatch, capsys)[0] == 0
    stored = json.loads((tmp_path / "r" / "config.json").read_text())
    rc, err = mte([*base, "--resume", "--lr", "0.5", "--sigma", "0.3"], monkeypatch, capsys)
    one_line_error(rc, err, "train", "--lr 0.5 (stored", "--sigma 0.3 (stored 0.1)", "--override")
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == stored
    rc, err = mte([*base, "--override", "--steps", "6"], monkeypatch, capsys)
    one_line_error(rc, err, "train", "--override applies to --resume only")
    # runtime flags may differ; --override changes the stored settings and continues
    assert mte([*base, "--resume", "--max-seconds", "60"], monkeypatch, capsys)[0] == 0
    assert mte([*base, "--resume", "--override", "--steps", "6"], monkeypatch, capsys)[0] == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["steps"] == 6
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]


def test_huge_sizes_in_train(tmp_path, monkeypatch, capsys) -> None:
    argv = ["train", *TINY, "--hidden-size", "1000000", "--runs-dir", str(tmp_path)]
    rc, err = mte(argv, monkeypatch, capsys)
    one_line_error(rc, err, "train", "TrainConfig.hidden_size=1000000", "of memory")
    rc, err = mte(["train", "--n-tasks", "1000000000"], monkeypatch, capsys)
    one_line_error(rc, err, "train", "TaskSpec n_tasks=1000000000", "GiB")


# ---- probe -------------------------------------------------------------------------------------
@pytest.fixture
def probe_run(tmp_path):
    d = tmp_path / "run"
    shutil.copytree(FIXTURE, d)
    return d


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--n-test", "0"], "--n-test must be >= 1"),
        (["--n-test", "-5"], "--n-test must be >= 1"),
        (["--shuffles", "-1"], "--shuffles must be >= 0"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--n", "10"], "--n must be >= 64"),
        (["--n", "100000000000"], "of memory"),
    ],
)
def test_probe_counts(flags, needle, probe_run, monkeypatch, capsys) -> None:
    rc, err = mte(["probe", str(probe_run), *flags], monkeypatch, capsys)
    one_line_error(rc, err, "probe", needle)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("model.pt", b"", "model.pt: not a readable weights-only checkpoint"),
        ("model.pt", "HALF", "model.pt: not a readable weights-only checkpoint"),
        ("config.json", b"{oops", "config.json: not valid JSON"),
        ("spec.json", b"{oops", "spec.json: not valid JSON"),
        ("metrics.jsonl", b"\x80\x04", "metrics.jsonl: not a metrics log"),
    ],
)
def test_probe_damaged_run(name, content, needle, probe_run, monkeypatch, capsys) -> None:
    path = probe_run / name
    if content == "HALF":
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    rc, err = mte(["probe", str(probe_run), "--no-figures"], monkeypatch, capsys)
    one_line_error(rc, err, "probe", needle)


def test_probe_model_spec_mismatch(probe_run, monkeypatch, capsys) -> None:
    spec = json.loads((probe_run / "spec.json").read_text())
    (probe_run / "spec.json").write_text(json.dumps({**spec, "n_tasks": 7}))
    rc, err = mte(["probe", str(probe_run), "--no-figures"], monkeypatch, capsys)
    one_line_error(rc, err, "probe", "model.pt: the weights do not fit")


# ---- sweep -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("grid: {n_tasks: [2, 3]\n", "not valid YAML"),
        ("grid: {n_tasks: [2]}\npoint: 5\n", "'point' must be a mapping"),
        ("grid: {n_tasks: [2]}\nname: [a, b]\n", "'name' must be a string"),
        ("grid: {n_tasks: [2]}\npoint: {probe_nn: 5}\n", "point option(s) ['probe_nn'] unknown"),
        ("grid: {n_tasks: [2]}\npoint: {probe_n: many}\n", "point option probe_n"),
        ("grid: {n_tasks: [2], seed: [0, 1]}\nseeds: [3]\n", "give the seeds once"),
        ("grid: [1, 2]\n", "'grid' must be a mapping"),
    ],
)
def test_sweep_grid_files(text, needle, tmp_path, monkeypatch, capsys) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text(text)
    rc, err = mte(["sweep", "--file", str(grid), "--dry-run"], monkeypatch, capsys)
    one_line_error(rc, err, "sweep", str(grid) if "point option" not in needle else "", needle)


def test_sweep_missing_file_and_double_seeds(tmp_path, monkeypatch, capsys) -> None:
    rc, err = mte(["sweep", "--file", str(tmp_path / "no.yaml")], monkeypatch, capsys)
    one_line_error(rc, err, "sweep", "no.yaml: no such file")
    argv = ["sweep", "--set", "n_tasks=2", "--set", "seed=0,1", "--seeds", "3", "--dry-run"]
    one_line_error(*mte(argv, monkeypatch, capsys), "sweep", "give the seeds once")


def test_sweep_cli_seeds_replace_the_files(tmp_path, monkeypatch, capsys) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text("grid: {n_tasks: [2]}\nseeds: [0, 1]\n")
    assert main(["sweep", "--file", str(grid), "--seeds", "5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 points") and '"seed": 5' in out


# ---- reproduce ---------------------------------------------------------------------------------
def test_plot_only_on_an_empty_folder(tmp_path, monkeypatch, capsys) -> None:
    argv = ["reproduce", "fig3", "--plot-only", "--out", str(tmp_path)]
    one_line_error(*mte(argv, monkeypatch, capsys), "reproduce", "--plot-only: no finished points")
    assert not (tmp_path / "fig3" / "fig3.png").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fig3", "--networks", "1"], "networks must be an integer >= 2"),
        (["all", "--networks", "0"], "networks must be an integer >= 2"),
    ],
)
def test_reproduce_networks_is_checked_before_anything_runs(
    argv, needle, tmp_path, monkeypatch, capsys
) -> None:
    rc, err = mte(["reproduce", *argv, "--out", str(tmp_path)], monkeypatch, capsys)
    one_line_error(rc, err, "reproduce", needle)
    assert not any(tmp_path.iterdir())


# ---- a pickle payload through the command line -------------------------------------------------
class Payload:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_sb3_resume_and_probe_never_unpickle(tmp_path, monkeypatch, capsys) -> None:
    runs = tmp_path / "runs"
    argv = [
        "train", "--algo", "sb3-recurrent-ppo", "--n-tasks", "1", "--stimulus-steps", "3",
        "--encoder", "none", "--total-steps", "128", "--n-envs", "2", "--n-steps", "32",
        "--batch-size", "64", "--n-epochs", "1", "--eval-every", "64", "--eval-trials", "16",
        "--lstm-hidden-size", "8", "--no-progress", "--name", "s", "--runs-dir", str(runs),
    ]  # fmt: skip
    assert mte(argv, monkeypatch, capsys)[0] == 0
    marker = tmp_path / "MARKER"
    for name in ("sb3_checkpoint.pt", "model.pt"):
        torch.save({"policy": Payload(marker)}, runs / "s" / name)
    resume = ["train", "--algo", "sb3-recurrent-ppo", "--resume", "--name", "s"]
    rc, err = mte([*resume, "--runs-dir", str(runs)], monkeypatch, capsys)
    one_line_error(rc, err, "train", "sb3_checkpoint.pt", "refused; nothing in it ran")
    rc, err = mte(["probe", str(runs / "s"), "--no-figures"], monkeypatch, capsys)
    one_line_error(rc, err, "probe", "model.pt", "refused; nothing in it ran")
    assert not marker.exists()


def test_train_and_sweep_refuse_what_would_fail_later(tmp_path, monkeypatch, capsys) -> None:
    runs = str(tmp_path / "runs")
    rc, err = mte(["train", "--name", "", "--steps", "5", "--runs-dir", runs], monkeypatch, capsys)
    one_line_error(rc, err, "train", "--name must be a folder name under --runs-dir")
    # an id that is not this package's env: the trainers would pass it a TaskSpec
    argv = ["train", "--algo", "ppo", "--env-id", "CartPole-v1", "--runs-dir", runs, "--name", "cp"]
    rc, err = mte(argv, monkeypatch, capsys)
    one_line_error(rc, err, "train", "'CartPole-v1' is not this package's env")
    # the probes' trials are counted before any point trains
    sweep = ["sweep", "--set", "n_tasks=2", "--dry-run", "--dir", str(tmp_path / "sw")]
    rc, err = mte([*sweep, "--probe-n", str(10**12)], monkeypatch, capsys)
    one_line_error(rc, err, "sweep", "--probe-n 1000000000000 (trials recorded per point)")
    assert not (tmp_path / "runs").exists()
