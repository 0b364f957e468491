"""Every finished sweep point leaves a tensorboard HParams record: read the event files back
and check the parameter names and values, the discrete domains and the metric values."""

from __future__ import annotations

import math
import shutil

import pytest

from multitask_evidence.experiments.backends import execute_point
from multitask_evidence.experiments.sweep import SweepPaths, parse_grid, run_sweep

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hp_meta  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402


def metrics_point(point, run_dir, fail_n=None):
    """Trains nothing: headline metrics computed from the point's parameters."""
    n = point.task["n_tasks"]
    if n == fail_n:
        raise RuntimeError("injected failure")
    return {
        "ood_r2": 1.0 - 1.0 / n,
        "id_r2": 0.9 + point.seed / 100,
        "untrained_ood_r2": 0.25,
        "input_ood_r2": 0.5,
        "ood_gain_over_untrained": 0.75 - 1.0 / n,
        "bayes_bound": 0.98,
        "ceiling": 0.976,
        "frac_ideal": float("nan"),  # not finite: left out
        "ood_r2_values": [0.1, 0.2],  # not a headline scalar: left out
    }


class Done:
    """A finished handle (hashable, as the engine keys its in-flight points by handle)."""

    def __init__(self, outcome):
        self.outcome = outcome


class InlineBackend:
    """The Backend protocol, run in this process (no pool to start)."""

    name = "inline"

    def start(self):
        pass

    def capacity(self):
        return 1

    def submit(self, fn, point, run_dir, kwargs):
        return Done(execute_point(fn, point, run_dir, kwargs))

    def wait(self, handles, timeout):
        return list(handles)

    def result(self, handle):
        return handle.outcome

    def close(self, cancel=False):
        pass


def read_hparams(folder):
    ea = EventAccumulator(str(folder))
    ea.Reload()
    content = ea.PluginTagToContent(hp_meta.PLUGIN_NAME)
    exp = plugin_data_pb2.HParamsPluginData.FromString(content[hp_meta.EXPERIMENT_TAG]).experiment
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content[hp_meta.SESSION_START_INFO_TAG]
    ).session_start_info
    params = {}
    for k, v in start.hparams.items():
        kind = v.WhichOneof("kind")
        params[k] = getattr(v, kind)
    scalars = {tag: ea.Scalars(tag)[-1].value for tag in ea.Tags()["scalars"]}
    domains = {
        h.name: [getattr(x, x.WhichOneof("kind")) for x in h.domain_discrete.values]
        for h in exp.hparam_infos
    }
    metric_names = [m.name.tag for m in exp.metric_infos]
    return params, scalars, domains, metric_names


def test_each_finished_point_has_its_hparams_and_metrics(tmp_path):
    grid = parse_grid({"n_tasks": [2, 4, 6], "arch": ["rnn", "gru"]}, [0, 1])
    res = run_sweep(
        grid,
        tmp_path,
        backend=InlineBackend(),
        point_fn=metrics_point,
        point_kwargs={"fail_n": 6},
        progress=False,
    )
    assert res.n_failed == 4
    paths = SweepPaths(tmp_path)
    written = sorted(p.name for p in paths.hparams.iterdir())
    assert written == sorted(r["id"] for r in res.rows if r["status"] == "ok")  # failures: none
    assert len(written) == 8
    for r in res.rows:
        if r["status"] != "ok":
            continue
        params, scalars, domains, metric_names = read_hparams(paths.hparams_dir(r["id"]))
        assert params == {
            "n_tasks": float(r["n_tasks"]),
            "arch": r["arch"],
            "seed": float(r["seed"]),
            "algo": "supervised",
        }
        expected = {
            "ood_r2": 1 - 1 / r["n_tasks"],
            "id_r2": 0.9 + r["seed"] / 100,
            "untrained_ood_r2": 0.25,
            "input_ood_r2": 0.5,
            "ood_gain_over_untrained": 0.75 - 1 / r["n_tasks"],
            "bayes_bound": 0.98,
            "ceiling": 0.976,
        }
        assert set(scalars) == set(expected) == set(metric_names)  # frac_ideal (NaN) left out
        for k, v in expected.items():
            assert scalars[k] == pytest.approx(v, abs=1e-6), k
        # the grid's values, for the HParams tab's filters
        assert domains["n_tasks"] == [2.0, 4.0, 6.0]
        assert domains["arch"] == ["gru", "rnn"]
        assert domains["seed"] == [0.0, 1.0]
    assert not any(p.name.startswith(".") for p in paths.hparams.iterdir())  # no temp folders


def test_rerun_writes_missing_records_and_the_retried_points(tmp_path):
    grid = parse_grid({"n_tasks": [2, 3]}, [0])
    opts = {"point_fn": metrics_point, "progress": False}
    run_sweep(grid, tmp_path, backend=InlineBackend(), point_kwargs={"fail_n": 3}, **opts)
    paths = SweepPaths(tmp_path)
    (done,) = [p for p in paths.hparams.iterdir()]
    shutil.rmtree(done)  # as if the driver had stopped before writing it
    res = run_sweep(grid, tmp_path, backend=InlineBackend(), **opts)
    assert res.ok and res.n_skipped == 1 and res.n_ran == 1
    for r in res.rows:
        params, scalars, _, _ = read_hparams(paths.hparams_dir(r["id"]))
        assert params["n_tasks"] == r["n_tasks"]
        assert math.isclose(scalars["ood_r2"], 1 - 1 / r["n_tasks"], rel_tol=1e-6)
