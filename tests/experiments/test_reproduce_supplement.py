"""The supplementary figures (S1 encoder, S3b factor correlation, S5c reaction time) and
`mte reproduce all`: their grids, pages against the controls, the index, and one real run of
the three at smoke scale."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest

from multitask_evidence.experiments.figures import registry
from multitask_evidence.experiments.figures.figS3b import off_diagonal_fraction
from multitask_evidence.experiments.reproduce import (
    INDEX,
    STATUS,
    figure_grid,
    finished,
    render,
    reproduce_all,
)
from multitask_evidence.experiments.sweep import parse_grid

SUPPLEMENT = ("figS1", "figS3b", "figS5c")


def test_supplement_grids_vary_one_thing_on_three_networks_per_condition():
    s1 = figure_grid("figS1", "quick").points()
    assert {(p.task["encoder"], p.task["n_tasks"]) for p in s1} == {
        (e, n) for e in ("relu_mlp", "quadratic") for n in (2, 6, 24)
    }
    assert len(s1) == 3 * 6 and all(p.agent["arch"] == "rnn" for p in s1)
    assert all(p.agent["preset"] == "default" and "steps" not in p.agent for p in s1)
    s3 = figure_grid("figS3b", "quick").points()
    assert sorted({p.task["rho"] for p in s3}) == [0.0, 0.5, 0.9, 0.99]
    assert {p.task["prior"] for p in s3} == {"correlated"} and len(s3) == 12
    paper = figure_grid("figS3b", "paper").points()
    assert max(p.task["rho"] for p in paper) == 0.99 and {p.seed for p in paper} == set(range(5))
    s5 = figure_grid("figS5c", "quick").points()
    assert {(p.task["targets"], p.task["n_tasks"]) for p in s5} == {
        (t, n) for t in ("paper", "free_rt_paper") for n in (2, 24)
    }
    # free-RT lines need tan(phi_i) finite: an odd N puts a line at pi / 2
    for scale in ("smoke", "quick", "paper"):
        assert all(p.task["n_tasks"] % 2 == 0 for p in figure_grid("figS5c", scale).points())
    # the same network draw under both conditions: only the varied field differs
    by = {(p.task["targets"], p.task["n_tasks"], p.seed): p for p in s5}
    a, b = by[("paper", 24, 1)], by[("free_rt_paper", 24, 1)]
    assert {k for k in a.task if a.task[k] != b.task.get(k)} == {"targets"}
    assert a.agent == b.agent
    assert registry.FIGURES["figS3b"].probe_full("quick")  # attractor_dim needs fixed points
    assert not registry.FIGURES["figS1"].probe_full("quick")


def test_off_diagonal_quadrants_empty_as_rho_grows():
    assert off_diagonal_fraction(0.0) == pytest.approx(0.25)
    assert off_diagonal_fraction(0.99) == pytest.approx(0.25 - math.asin(0.99) / (2 * math.pi))
    rng = np.random.default_rng(0)
    z = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 200_000)
    assert np.mean((z[:, 0] > 0) & (z[:, 1] < 0)) == pytest.approx(
        off_diagonal_fraction(0.9), abs=0.003
    )


def _row(values, untrained, inp=0.96, seed=0, **params):
    return {
        "status": "ok",
        "arch": "rnn",
        "seed": seed,
        "ood_r2": float(np.median(values)),
        "ood_r2_values": list(values),
        "untrained_ood_r2": float(np.median(untrained)),
        "untrained_ood_r2_values": list(untrained),
        "input_ood_r2": inp,
        "input_ood_r2_values": [inp] * 4,
        "mu_ood_r2": 0.973,
        "id_r2": 0.97,
        "angle_deg": 80.0,
        "ceiling": 0.976,
        "bayes_bound": 0.978,
        **params,
    }


def _csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


CONTROL_COLUMNS = ("untrained_ood_r2", "gain_over_untrained", "input_ood_r2", "mu_ood_r2")


def test_figS1_page_compares_the_encoders_against_their_own_inputs(tmp_path):
    # quadratic: the input average decodes poorly (0.4), the trained networks well
    rows = [
        _row(
            [0.6 + 0.012 * n + 0.01 * s] * 4,
            [0.5] * 4,
            inp=0.96 if e == "relu_mlp" else 0.4,
            seed=s,
            encoder=e,
            n_tasks=n,
        )
        for e in ("relu_mlp", "quadratic")
        for n in (2, 6, 24)
        for s in range(8)
    ]
    png, table, md, summary = render("figS1", "smoke", rows, tmp_path)
    got = _csv(table)
    assert [(r["encoder"], int(r["n_tasks"])) for r in got] == [
        (e, n) for e in ("quadratic", "relu_mlp") for n in (2, 6, 24)
    ]
    for r in got:
        assert int(r["n_networks"]) == 8
        for col in CONTROL_COLUMNS:
            assert math.isfinite(float(r[col])), col
        assert float(r["untrained_ood_r2"]) == pytest.approx(0.5)
    text = md.read_text()
    assert "### quadratic encoder" in text and "### ReLU encoder" in text
    # the primary contrast: the quadratic encoder's rise, 8 networks all rising by 0.264
    assert (
        "**Primary contrast**: RNN, encoder = quadratic: OOD r^2 at N = 24 - at N = 2: holds: "
        "+0.264 [95% CI +0.264, +0.264], p = 0.0078, n = 8 (primary)" in text
    )
    assert "- N = 24: quadratic encoder against ReLU encoder: not distinguishable: +0.000" in text
    # at N = 24 (0.888 to 0.958): above a 0.4 input baseline, below a 0.96 one; every sign
    # pattern agrees, but Holm over 19 secondary calls cannot reach 0.05 on 8 networks
    assert (
        "quadratic encoder at N = 24: trained against untrained: not distinguishable after Holm: "
        "+0.423 "
        "[95% CI +0.403, +0.443], p = 0.0078 (Holm 0.15), n = 8; against a linear decoder on "
        "their encoded input's average (0.400): not distinguishable after Holm: +0.523" in text
    )
    assert "19 x 2 / 2^8 = 0.15, not below 0.05" in text
    assert "- quadratic encoder: the rise of OOD r^2 with N: holds: +0.264" in text
    assert text.count("The claim holds for it only where both hold.") == 2
    # an input baseline above 0.9 is named: the encoder is then near-affine too
    assert "the quadratic encoder is close to affine" not in text
    assert png.exists() and png.with_suffix(".pdf").exists()
    head = registry.FIGURES["figS1"].headline(summary)
    assert head.startswith("At N = 24, OOD r^2 with ReLU encoder 0.923 (untrained 0.500")


def test_figS5c_page_compares_free_with_fixed_reaction_time(tmp_path):
    rows = [
        _row(
            [(0.9 if t == "free_rt_paper" else 0.8) + 0.01 * s] * 4,
            [0.6] * 4,
            seed=s,
            targets=t,
            n_tasks=n,
        )
        for t in ("paper", "free_rt_paper")
        for n in (2, 24)
        for s in range(8)
    ]
    _, table, md, summary = render("figS5c", "smoke", rows, tmp_path)
    got = _csv(table)
    assert len(got) == 4 and {r["targets"] for r in got} == {"paper", "free_rt_paper"}
    assert all(float(r["gain_over_untrained"]) > 0.19 for r in got)
    text = md.read_text()
    assert "- N = 24: free RT against fixed RT: not distinguishable after Holm: +0.100 [95% CI" in text
    assert "### fixed RT (`targets='paper'`" in text and "### free RT" in text
    # flat in N (0.8 / 0.9 at both ends): above the untrained networks, yet no rise to claim
    assert (
        "**Primary contrast**: RNN, targets = free_rt_paper: OOD r^2 at N = 24 - at N = 2: "
        "not distinguishable: +0.000" in text
    )
    assert "- free RT: the rise of OOD r^2 with N: not distinguishable: +0.000" in text


def test_figS3b_page_reports_the_attractor_dimension_per_network(tmp_path):
    rows = [
        _row(
            [0.95 - 0.2 * rho**8 + 0.005 * s] * 4,
            [0.7] * 4,
            seed=s,
            n_tasks=24,
            prior="correlated",
            rho=rho,
            attractor_dim=2 if rho < 0.95 else (1 if s else 2),
            ood_r2_folds={0: 0.9, 1: 0.5 - rho, 2: 0.5 - rho, 3: 0.9},
        )
        for rho in (0.0, 0.5, 0.9, 0.99)
        for s in range(8)
    ]
    png, table, md, summary = render("figS3b", "smoke", rows, tmp_path)
    got = _csv(table)
    assert [float(r["rho"]) for r in got] == [0.0, 0.5, 0.9, 0.99]
    assert [float(r["attractor_dim"]) for r in got] == [2, 2, 2, 1]
    assert json.loads(got[-1]["attractor_dim_per_network"]) == [2, 1, 1, 1, 1, 1, 1, 1]
    for r in got:
        for col in CONTROL_COLUMNS:
            assert math.isfinite(float(r[col])), col
    text = md.read_text()
    assert "- rho = 0.99: 2, 1, 1, 1, 1, 1, 1, 1 per network (median 1)" in text
    assert "each off-diagonal quadrant holds 2.3% of the trials" in text
    # every network on every held-out quadrant: the off-diagonal ones fail at large rho
    assert "| rho | seed | OOD r^2 | untrained | held out 0 | held out 1 | held out 2 |" in text
    # 0.95 - 0.2 x 0.99^8 + 0.005 x 7 = 0.800
    assert "| 0.99 | 7 | 0.800 | 0.700 | 0.900 | -0.490 | -0.490 | 0.900 |" in text
    assert (
        "per-network OOD r^2 from rho = 0.0 to rho = 0.99: falls: -0.185 [95% CI -0.185, "
        "-0.185], p = 0.0078, n = 8 (primary)" in text
    )
    assert "attractor dimension 1" in registry.FIGURES["figS3b"].headline(summary)
    # 0.95 - 0.2 rho^8: 0.9 falls by 0.086 (> 0.05), 0.99 by 0.185 and its attractor is a line
    assert "the claim holds at rho = 0.0, 0.5; it does NOT hold at rho = 0.9, 0.99." in text


# ---- mte reproduce all ------------------------------------------------------------------------

TOYS = ("toy_a", "toy_b", "toy_broken")


def toy_point(point, run_dir):
    """Trains nothing: an OOD r^2 that falls with sigma, beside fixed controls."""
    os.makedirs(run_dir, exist_ok=True)
    r2 = 0.9 - point.task["sigma"] + 0.01 * point.seed
    return {
        "ood_r2": r2,
        "ood_r2_values": [r2] * 4,
        "untrained_ood_r2": 0.3,
        "input_ood_r2": 0.95,
        "id_r2": 0.95,
        "ceiling": 0.97,
    }


def _toy_render(name):
    def draw(summary, out, caption):
        from multitask_evidence.experiments.figures.plots import errorbar, finish, pyplot

        plt = pyplot()
        fig, ax = plt.subplots(figsize=(3.0, 2.5))
        errorbar(ax, summary, "sigma", "ood_r2", label="OOD", color="C0")
        return finish(fig, out / f"{name}.png", caption), "toy body"

    return draw


def _toy_grid(scale):
    return parse_grid({"n_tasks": [2], "sigma": [0.1, 0.3]}, [0, 1], name="toy")


def _broken_grid(scale):
    raise RuntimeError("this toy grid cannot be built")


@pytest.fixture
def toy_registry():
    """The registry holding only three toy figures (the last one's grid raises)."""
    saved = dict(registry.FIGURES)
    registry.FIGURES.clear()
    try:
        for name in TOYS:
            registry.register(
                registry.Figure(
                    name,
                    f"Toy {name}",
                    "OOD r^2 falls as sigma grows.",
                    ("n_tasks", "sigma"),
                    _broken_grid if name == "toy_broken" else _toy_grid,
                    _toy_render(name),
                    probe_n=lambda scale: None,
                    probe_adam=lambda scale: False,
                )
            )
        yield
    finally:
        registry.FIGURES.clear()
        registry.FIGURES.update(saved)


def test_reproduce_all_runs_each_figure_once_and_indexes_them(toy_registry, tmp_path):
    logs = []
    kw = {"workers": 1, "progress": False, "point_fn": toy_point, "log": logs.append}
    done, errors, index = reproduce_all("smoke", tmp_path, **kw)
    assert [r.figure for r in done] == ["toy_a", "toy_b"] and not any(r.skipped for r in done)
    assert list(errors) == ["toy_broken"] and "cannot be built" in errors["toy_broken"]
    assert finished("toy_a", "smoke", tmp_path) and not finished("toy_a", "quick", tmp_path)
    status = json.loads((tmp_path / "toy_a" / STATUS).read_text())
    assert status["scale"] == "smoke" and status["n_points"] == 4 and status["n_failed"] == 0
    text = index.read_text()
    assert index == tmp_path / INDEX
    assert "| [toy_a](toy_a/toy_a.md) | 4 |" in text and "![toy_b](toy_b/toy_b.png)" in text
    # the generic headline: the range over conditions and the count against the controls;
    # 2 networks per condition cannot reach p < 0.05 (their smallest sign-flip p is 0.5)
    assert (
        "OOD r^2 0.605 to 0.805 (mean over networks) across 2 conditions and 4 networks; "
        "above the same networks untrained in 0 of 2 conditions (below in 0)" in text
    )
    assert "| toy_broken | - | - | - | not written: RuntimeError" in text

    # again: the finished figures are not rerun (their rows are not even read by a sweep)
    page = (tmp_path / "toy_a" / "toy_a.md").stat().st_mtime_ns
    done, errors, _ = reproduce_all("smoke", tmp_path, names=["toy_a", "toy_b"], **kw)
    assert all(r.skipped for r in done) and not errors
    assert (tmp_path / "toy_a" / "toy_a.md").stat().st_mtime_ns == page
    assert done[0].summary[0]["ood_r2_per_network"] == pytest.approx([0.8, 0.81])
    assert "already finished" in (tmp_path / INDEX).read_text()
    # a lost row makes the figure unfinished; force reruns finished ones
    row = next((tmp_path / "toy_b" / "sweep-smoke" / "rows").glob("*.json"))
    row.unlink()
    assert not finished("toy_b", "smoke", tmp_path)
    done, _, _ = reproduce_all("smoke", tmp_path, names=["toy_a", "toy_b"], force=True, **kw)
    assert [r.skipped for r in done] == [False, False] and row.exists()
    with pytest.raises(ValueError, match="figure must be one of"):
        reproduce_all("smoke", tmp_path, names=["fig9"], **kw)
    with pytest.raises(ValueError, match="scale must be one of"):
        reproduce_all("huge", tmp_path, **kw)


def test_mte_reproduce_all_redraws_from_finished_points(toy_registry, tmp_path, capsys):
    from multitask_evidence.experiments.cli import main

    reproduce_all("smoke", tmp_path, names=["toy_a"], workers=1, progress=False, point_fn=toy_point)
    argv = ["reproduce", "all", "--scale", "smoke", "--out", str(tmp_path), "--no-progress"]
    # toy_b has no points to draw and toy_broken's grid raises: both named, exit status 1
    assert main([*argv, "--plot-only"]) == 1
    captured = capsys.readouterr()
    assert "index:" in captured.out and "toy_b: no finished points" in captured.err
    assert "[toy_a](toy_a/toy_a.md)" in (tmp_path / INDEX).read_text()
    assert main(["reproduce", "toy_a", "--scale", "smoke", "--out", str(tmp_path), "--force"]) == 2
    assert "--force applies to `mte reproduce all` only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="'all' names every figure"):
        registry.register(registry.Figure("all", "", "", (), _toy_grid, _toy_render("all")))


@pytest.mark.slow
def test_supplement_figures_at_smoke_scale_end_to_end(tmp_path):
    """The three figures trained and probed for real (tiny budgets): tables of the right shape
    whose controls are measured, the attractor dimension probed, and the index."""
    done, errors, index = reproduce_all(
        "smoke", tmp_path, names=list(SUPPLEMENT), workers=2, progress=False
    )
    assert not errors and [r.n_failed for r in done] == [0, 0, 0]
    shapes = {"figS1": ("encoder", 2), "figS3b": ("rho", 2), "figS5c": ("targets", 2)}
    for name, (key, n_rows) in shapes.items():
        rows = _csv(tmp_path / name / f"{name}.csv")
        assert len(rows) == n_rows and len({r[key] for r in rows}) == n_rows, name
        for r in rows:
            assert int(r["n_networks"]) == 2
            assert -2.0 < float(r["ood_r2"]) < 1.0
            # the controls are measured on the same trials: the inputs decode x* well
            assert float(r["input_ood_r2"]) > 0.3 and float(r["mu_ood_r2"]) > 0.95, name
            assert -2.0 < float(r["untrained_ood_r2"]) < 1.0
            assert math.isfinite(float(r["gain_over_untrained"]))
            assert 0.9 < float(r["bayes_bound"]) <= 1.0
        assert (tmp_path / name / f"{name}.png").stat().st_size > 10_000
    s3 = _csv(tmp_path / "figS3b" / "figS3b.csv")
    assert all(len(json.loads(r["attractor_dim_per_network"])) == 2 for r in s3)
    text = index.read_text()
    assert all(f"[{n}]({n}/{n}.md)" in text for n in SUPPLEMENT)
    again, _, _ = reproduce_all("smoke", tmp_path, names=list(SUPPLEMENT), progress=False)
    assert all(r.skipped for r in again)


def _two_arch_grid(scale):
    return parse_grid(
        {"arch": ["rnn", "gru"], "n_tasks": [2], "sigma": [0.1, 0.3]}, [0, 1], name="toy"
    )


def test_reproduce_one_architecture_then_the_whole_figure_reuses_it(tmp_path):
    """--arch trains only that architecture's networks, in the figure's own sweep (same point
    ids), with its page in arch-<a>/; the whole figure afterwards trains only the rest."""
    from multitask_evidence.experiments.reproduce import check_archs, reproduce

    saved = dict(registry.FIGURES)
    rows = tmp_path / "toy_arch" / "sweep-smoke" / "rows"
    try:
        registry.FIGURES.clear()
        registry.register(
            registry.Figure(
                "toy_arch", "Toy by arch", "OOD r^2 falls as sigma grows.",
                ("arch", "n_tasks", "sigma"), _two_arch_grid, _toy_render("toy_arch"),
                probe_n=lambda scale: None, probe_adam=lambda scale: False,
            )
        )  # fmt: skip
        with pytest.raises(ValueError, match=r"toy_arch at scale smoke trains \['rnn', 'gru'\]"):
            check_archs("toy_arch", "smoke", ["lstm"])
        kw = {"workers": 1, "progress": False, "point_fn": toy_point}
        res = reproduce("toy_arch", "smoke", tmp_path, archs=["gru"], **kw)
        first = {p.name: p.read_text() for p in rows.glob("*.json")}
        assert len(first) == 4 and all(n.startswith("arch=gru") for n in first)
        assert res.page == tmp_path / "toy_arch" / "arch-gru" / "toy_arch.md"
        assert {r["arch"] for r in res.summary} == {"gru"}
        page = res.page.read_text()
        assert "mte reproduce toy_arch --scale smoke --arch gru" in page
        assert "`../sweep-smoke/results.csv`" in page
        status = json.loads((res.page.parent / "reproduce.json").read_text())
        assert (status["archs"], status["n_points"], status["n_ok"]) == (["gru"], 4, 4)
        whole = reproduce("toy_arch", "smoke", tmp_path, **kw)
        after = {p.name: p.read_text() for p in rows.glob("*.json")}
        assert len(after) == 8
        assert all(after[n] == first[n] for n in first)  # the GRU networks were reused
        assert whole.page == tmp_path / "toy_arch" / "toy_arch.md"
        assert {r["arch"] for r in whole.summary} == {"rnn", "gru"}
    finally:
        registry.FIGURES.clear()
        registry.FIGURES.update(saved)


def test_more_networks_per_condition_reuse_the_scales_own(toy_registry, tmp_path):
    """--networks 3 on a figure whose smoke scale trains 2 networks per condition: the two are
    reused (same point ids, rows untouched), one more per condition trains, and the page goes
    to networks-3/."""
    from multitask_evidence.experiments.reproduce import reproduce

    kw = {"workers": 1, "progress": False, "point_fn": toy_point}
    rows = tmp_path / "toy_a" / "sweep-smoke" / "rows"
    reproduce("toy_a", "smoke", tmp_path, **kw)
    first = {p.name: p.read_text() for p in rows.glob("*.json")}
    assert len(first) == 2 * 2  # 2 conditions x 2 networks
    res = reproduce("toy_a", "smoke", tmp_path, networks=3, **kw)
    after = {p.name: p.read_text() for p in rows.glob("*.json")}
    assert len(after) == 2 * 3 and all(after[n] == first[n] for n in first)
    assert sorted(n.split("seed=")[1][0] for n in set(after) - set(first)) == ["2", "2"]
    assert res.page == tmp_path / "toy_a" / "networks-3" / "toy_a.md"
    assert [r["n_networks"] for r in res.summary] == [3, 3]
    page = res.page.read_text()
    assert "mte reproduce toy_a --scale smoke --networks 3" in page
    assert "`../sweep-smoke/results.csv`" in page
    status = json.loads((res.page.parent / STATUS).read_text())
    assert (status["networks"], status["n_points"], status["n_ok"]) == (3, 6, 6)
    # the scale's own page is the one drawn from its 2 networks
    assert (tmp_path / "toy_a" / "toy_a.md").exists()


def test_with_networks_keeps_conditions_and_point_ids():
    from multitask_evidence.experiments.reproduce import figure_grid, with_networks

    grid = figure_grid("fig3", "quick")
    more = with_networks(grid, 5)
    assert len(more) == len(grid) // 3 * 5
    old = {p.id for p in grid.points()}
    new = {p.id: p for p in more.points()}
    assert old <= set(new)  # the quick scale's 3 networks keep their ids
    assert {p.seed for i, p in new.items() if i not in old} == {3, 4}
    for bad in (1, True, 2.0, "5"):
        with pytest.raises(ValueError, match="networks must be an integer >= 2"):
            with_networks(grid, bad)


def test_all_figures_with_more_networks_get_their_own_pages_and_index(toy_registry, tmp_path):
    """reproduce_all(networks=3): each figure's page in networks-3/, the index in
    index-networks-3.md beside the scale's own index; a second call finds them finished."""
    kw = {"workers": 1, "progress": False, "point_fn": toy_point}
    names = ["toy_a", "toy_b"]
    reproduce_all("smoke", tmp_path, names=names, **kw)
    assert finished("toy_a", "smoke", tmp_path) and not finished("toy_a", "smoke", tmp_path, 3)
    done, errors, index = reproduce_all("smoke", tmp_path, names=names, networks=3, **kw)
    assert not errors and index == tmp_path / "index-networks-3.md"
    assert [r.page for r in done] == [tmp_path / n / "networks-3" / f"{n}.md" for n in names]
    assert all(sum(s["n_networks"] for s in r.summary) == 2 * 3 for r in done)
    text = index.read_text()
    assert "`mte reproduce all --scale smoke --networks 3`" in text
    assert "| [toy_a](toy_a/networks-3/toy_a.md) | 6 |" in text
    assert (tmp_path / INDEX).exists()  # the scale's own index is still there
    assert finished("toy_a", "smoke", tmp_path, 3) and finished("toy_a", "smoke", tmp_path)
    again, _, _ = reproduce_all("smoke", tmp_path, names=names, networks=3, **kw)
    assert all(r.skipped for r in again)
    assert [r.page for r in again] == [r.page for r in done]
    assert [r.summary for r in again] == [r.summary for r in done]
