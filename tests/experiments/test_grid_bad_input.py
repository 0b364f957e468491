"""Hostile or damaged sweep input: grid files nested too deeply, keys given twice, alias bombs,
grids and seed ranges too large to build, bad names in grid files, damaged row files. Each ends
in one message naming the file (or option) and what is wrong, quickly and before anything
trains; a damaged row makes its point run again."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from multitask_evidence.common.limits import (
    MAX_NESTING,
    MAX_POINTS,
    MAX_VALUES,
    MESSAGE_CHARS,
    short_repr,
)
from multitask_evidence.experiments.cli import main
from multitask_evidence.experiments.sweep import (
    Grid,
    SweepPaths,
    grid_from_cli,
    load_grid_file,
    load_results,
    parse_grid,
    parse_seeds,
    read_rows,
    run_sweep,
)

torch.set_num_threads(1)


def mte_sweep(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run `mte sweep argv`; return (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["mte", "sweep", *argv])
    try:
        rc = main(["sweep", *argv])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("mte sweep: error: "), err
    for n in needles:
        assert n in err, (n, err)


def fake_point(point, run_dir):
    """Trains nothing: counts its calls in run_dir/calls.txt, returns a metric."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "calls.txt"), "a") as fh:
        fh.write("x\n")
    return {"ood_r2": 0.5}


def calls(run_dir: Path) -> int:
    f = run_dir / "calls.txt"
    return len(f.read_text().splitlines()) if f.exists() else 0


def alias_bomb(key: str) -> str:
    """Nine levels of nine aliases: 9**9 values from a few hundred bytes of YAML."""
    levels = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        levels.append(f"&{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return f"grid: {{n_tasks: [2]}}\n{key}: [" + ", ".join(levels) + "]\n"


# ---- nesting ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "grid:\n  n_tasks: " + "[" * 10000 + "]" * 10000 + "\n"),
        ("deep.json", '{"n_tasks": ' + "[" * 10000 + "]" * 10000 + "}"),
        ("mid.yaml", "grid:\n  n_tasks: " + "[" * 300 + "]" * 300 + "\n"),  # parses, then refused
        ("loop.yaml", "grid:\n  n_tasks: &a [*a]\n"),  # a list that holds itself
    ],
)
def test_grid_file_nested_too_deeply(name, text, tmp_path, monkeypatch, capsys) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ValueError) as err:
        load_grid_file(f)
    assert str(err.value) == (
        f"grid file {f} is nested too deeply: more than {MAX_NESTING} levels of lists / mappings"
    )
    rc, _, out_err = mte_sweep(["--file", str(f), "--dry-run"], monkeypatch, capsys)
    one_line_error(rc, out_err, str(f), "nested too deeply")


def test_grid_file_nesting_up_to_the_limit_is_read(tmp_path) -> None:
    f = tmp_path / "g.yaml"
    inner = MAX_NESTING - 2  # the top mapping and 'grid:' are two levels
    value = "[" * inner + "2" + "]" * inner
    f.write_text(f"grid:\n  n_tasks: {value}\n")
    assert load_grid_file(f)["grid"]["n_tasks"] == json.loads(value)
    f.write_text("grid:\n  n_tasks: " + "[" * (inner + 1) + "2" + "]" * (inner + 1) + "\n")
    with pytest.raises(ValueError, match="nested too deeply"):
        load_grid_file(f)


def test_set_json_value_nested_too_deeply() -> None:
    deep = "[" * 10000 + "]" * 10000
    with pytest.raises(ValueError) as err:
        grid_from_cli([f"encoder_sizes={deep}"])
    assert "grid field 'encoder_sizes' is nested too deeply" in str(err.value)


# ---- keys given twice ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("top.yaml", "grid: {n_tasks: [2]}\ngrid: {n_tasks: [3]}\n", "key 'grid' given twice"),
        ("axis.yaml", "grid:\n  n_tasks: [2]\n  n_tasks: [3]\n", "key 'n_tasks' given twice"),
        ("flow.yaml", "{sigma: [0.1], sigma: [0.2]}\n", "key 'sigma' given twice"),
        ("axis.json", '{"n_tasks": [2], "n_tasks": [3]}', "key 'n_tasks' given twice"),
        ("deep.json", '{"grid": {"n_tasks": [2]}, "point": {"a": 1, "a": 2}}', "key 'a' given"),
    ],
)
def test_grid_file_key_given_twice(name, text, needle, tmp_path, monkeypatch, capsys) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ValueError) as err:
        load_grid_file(f)
    msg = str(err.value)
    assert msg.startswith(f"grid file {f}: {needle}") and msg.endswith("give each key once"), msg
    if name == "axis.yaml":
        assert "(line 3)" in msg
    rc, _, out_err = mte_sweep(["--file", str(f), "--dry-run"], monkeypatch, capsys)
    one_line_error(rc, out_err, str(f), needle)


def test_grid_file_yaml_stays_safe_and_merges_still_override(tmp_path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("grid: !!python/object/apply:os.system ['echo pwned > pwned']\n")
    with pytest.raises(ValueError) as err:
        load_grid_file(f)
    assert f"grid file {f}: not valid YAML" in str(err.value)
    assert "could not determine a constructor" in str(err.value)
    assert not (tmp_path / "pwned").exists()
    # a key after a merge ('<<') overrides the merged one: that is YAML, not a repeat
    f.write_text("grid:\n  <<: {n_tasks: [2], sigma: [0.1]}\n  n_tasks: [3]\n")
    assert load_grid_file(f)["grid"] == {"n_tasks": [3], "sigma": [0.1]}


# ---- alias bombs and long values in messages ------------------------------------------------
@pytest.mark.parametrize("key", ["name", "seeds", "point"])
def test_alias_bomb_is_refused_at_once(key, tmp_path, monkeypatch, capsys) -> None:
    f = tmp_path / "lol.yaml"
    f.write_text(alias_bomb(key))
    assert f.stat().st_size < 600
    with pytest.raises(ValueError) as err:
        load_grid_file(f)
    assert str(err.value).startswith(
        f"grid file {f} holds more than {MAX_VALUES:,} values (an alias counted each time"
    )
    rc, _, out_err = mte_sweep(["--file", str(f), "--dry-run"], monkeypatch, capsys)
    one_line_error(rc, out_err, str(f), f"more than {MAX_VALUES:,} values")


def test_alias_bomb_as_a_grid_value_is_refused(tmp_path) -> None:
    f = tmp_path / "lol.yaml"
    f.write_text(alias_bomb("x").replace("grid: {n_tasks: [2]}\nx:", "n_tasks:"))
    with pytest.raises(ValueError, match=f"more than {MAX_VALUES:,} values"):
        grid_from_cli(file=f)


def test_messages_quote_at_most_200_characters_of_a_value(tmp_path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("grid: {n_tasks: [2]}\nname: [" + ", ".join(map(str, range(5000))) + "]\n")
    with pytest.raises(ValueError) as err:
        load_grid_file(f)
    assert str(err.value) == (
        f"grid file {f}: 'name' must be a string, got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]"
    )
    # a value quoted by the type check of a field
    f.write_text("grid:\n  n_tasks: [[" + ", ".join(map(str, range(5000))) + "]]\n")
    with pytest.raises(ValueError) as err:
        grid_from_cli(file=f)
    msg = str(err.value)
    assert msg.startswith("grid field 'n_tasks': type mismatch, expected an integer, got [0, 1")
    assert msg.endswith("...") and len(msg) == MESSAGE_CHARS
    # repeats
    with pytest.raises(ValueError) as err:
        parse_grid({"n_tasks": [2, 3]}, list(range(3000)) * 2)
    assert str(err.value) == (
        "grid field 'seed' repeats the value(s) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]"
    )
    long_name = "n" * 1000
    with pytest.raises(ValueError) as err:
        parse_grid({long_name: [2, 2]})
    assert str(err.value) == f"grid field {short_repr(long_name)} repeats the value(s) [2]"


def test_short_repr_is_bounded_for_an_alias_bomb_value() -> None:
    bomb: list = ["lol"] * 9
    for _ in range(9):
        bomb = [bomb] * 9  # 9**10 strings once expanded
    text = short_repr(bomb)
    assert len(text) == 200 and text.endswith("...") and text.startswith("[[[[")
    assert short_repr("x" * 10) == repr("x" * 10)


# ---- points counted before they are built ---------------------------------------------------
def test_million_point_grid_is_refused_before_it_is_built(tmp_path, monkeypatch, capsys) -> None:
    axes = {
        "n_tasks": range(2, 12),
        "sigma": [round(0.1 * i, 1) for i in range(1, 11)],
        "steps": range(10, 20),
        "hidden_size": range(8, 18),
        "batch_size": range(8, 18),
        "latent_dim": range(2, 12),
    }
    f = tmp_path / "big.json"
    f.write_text(json.dumps({"grid": {k: list(v) for k, v in axes.items()}}))
    expected = (
        f"the grid holds 1,000,000 points, more than the limit of {MAX_POINTS:,}; choose fewer "
        "values, or raise the limit with --max-points (mte sweep) or max_points="
    )
    rc, out, err = mte_sweep(["--file", str(f), "--dry-run"], monkeypatch, capsys)
    one_line_error(rc, err, expected)
    assert out == ""
    with pytest.raises(ValueError) as e:
        parse_grid({k: list(v) for k, v in axes.items()})
    assert str(e.value) == expected
    # the limit is the caller's to choose
    argv = ["--set", "n_tasks=2,3,4", "--seeds", "0-1", "--dry-run"]
    rc, _, err = mte_sweep([*argv, "--max-points", "5"], monkeypatch, capsys)
    one_line_error(rc, err, "the grid holds 6 points, more than the limit of 5")
    rc, out, _ = mte_sweep([*argv, "--max-points", "6"], monkeypatch, capsys)
    assert rc == 0 and out.startswith("6 points")
    rc, _, err = mte_sweep([*argv, "--max-points", "0"], monkeypatch, capsys)
    one_line_error(rc, err, "--max-points must be >= 1, got 0")


def test_seeds_range_is_counted_before_it_is_built(monkeypatch, capsys) -> None:
    expected = (
        f"--seeds range '0-1000000000' holds 1,000,000,001 points, more than the limit of "
        f"{MAX_POINTS:,}"
    )
    with pytest.raises(ValueError) as err:
        parse_seeds("0-1000000000")
    assert str(err.value).startswith(expected)
    argv = ["--set", "n_tasks=2", "--seeds", "0-1000000000", "--dry-run"]
    one_line_error(*mte_sweep(argv, monkeypatch, capsys)[::2], expected, "--max-points")
    assert parse_seeds("3-5", max_points=3) == [3, 4, 5]
    with pytest.raises(ValueError, match="holds 4 points, more than the limit of 3"):
        parse_seeds("3-6", max_points=3)


def test_seed_axis_at_the_limit_is_compared_in_linear_time() -> None:
    """1e5 seeds: naming the points must not compare every pair of seeds (5e9 comparisons)."""
    grid = Grid({"n_tasks": [2], "seed": parse_seeds(f"0-{MAX_POINTS - 1}")})
    assert len(grid) == MAX_POINTS and grid.varying == ["seed"]


# ---- names in grid files ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["../x", "ABS", "''", "..", ".", '"a\\0b"'])
@pytest.mark.parametrize("flag", [[], ["--name", "ok"], ["--dir", "DIR"]])
def test_grid_file_name_is_checked_whatever_names_the_folder(
    bad, flag, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = str(tmp_path / "x") if bad == "ABS" else bad
    flag = [str(tmp_path / "d") if a == "DIR" else a for a in flag]
    f = tmp_path / "g.yaml"
    f.write_text(f"grid: {{n_tasks: [2]}}\nname: {bad}\n")
    rc, out, err = mte_sweep(["--file", str(f), *flag, "--dry-run"], monkeypatch, capsys)
    one_line_error(rc, err, f"grid file {f}: 'name' must be a folder name")
    assert out == "" and not (tmp_path / "x").exists() and not (tmp_path / "d").exists()


def test_valid_grid_file_name_with_name_given(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "g.yaml"
    f.write_text("grid: {n_tasks: [2]}\nname: grp/fromfile\n")
    rc, out, _ = mte_sweep(["--file", str(f), "--name", "cli", "--dry-run"], monkeypatch, capsys)
    assert rc == 0 and out.startswith(f"1 points -> {Path('runs', 'sweeps', 'cli')}")


# ---- damaged row files -----------------------------------------------------------------------
DAMAGE = [b'{"id": "x", "status": "ok", "metr', b"", b"[1, 2]", b"\xff\xfe not text", b'{"id": 1}']


def test_damaged_rows_are_named_and_their_points_run_again(tmp_path, capsys) -> None:
    """Rows cut short, empty, not a record, not UTF-8: each is named on stderr, its point shows
    as pending and runs again on the next run; the intact point does not."""
    grid = parse_grid({"n_tasks": list(range(2, 3 + len(DAMAGE)))})
    assert run_sweep(grid, tmp_path, workers=1, point_fn=fake_point, progress=False).ok
    paths = SweepPaths(tmp_path)
    *victims, intact = grid.points()
    for p, damage in zip(victims, DAMAGE):
        paths.row(p.id).write_bytes(damage)
    capsys.readouterr()
    rows = read_rows(grid.points(), paths)
    assert [r["status"] for r in rows] == ["pending"] * len(DAMAGE) + ["ok"]
    err = capsys.readouterr().err
    for p in victims:
        assert f"sweep: {paths.row(p.id)}: unreadable (" in err
    assert err.count("its point counts as not done") == len(DAMAGE)
    res = run_sweep(grid, tmp_path, workers=1, point_fn=fake_point, progress=False)
    assert res.ok and res.n_ran == len(DAMAGE) and res.n_skipped == 1
    assert [calls(paths.run_dir(p.id)) for p in grid.points()] == [2] * len(DAMAGE) + [1]
    assert all(json.loads(paths.row(p.id).read_text())["status"] == "ok" for p in victims)
    assert [r["status"] for r in load_results(tmp_path)] == ["ok"] * (len(DAMAGE) + 1)


def test_damaged_error_file_and_results_json(tmp_path, capsys) -> None:
    grid = parse_grid({"n_tasks": [2]})
    paths = SweepPaths(tmp_path)
    paths.rows.mkdir(parents=True)
    (pid,) = [p.id for p in grid.points()]
    paths.error(pid).write_text("{not json")
    res = run_sweep(
        grid, tmp_path, workers=1, point_fn=fake_point, progress=False, retry_failed=False
    )
    assert res.ok and res.n_ran == 1  # the unreadable error file did not count as a failure
    assert f"sweep: {paths.error(pid)}: unreadable" in capsys.readouterr().err
    paths.json.write_text('[{"id": ')
    with pytest.raises(ValueError) as err:
        load_results(tmp_path)
    assert str(err.value).startswith(f"{paths.json}: not valid JSON (")
