"""TaskSpec: defaults are the paper's task, every bad field raises, JSON round-trips."""

from __future__ import annotations

import pytest

from multitask_evidence.envs import TaskSpec
from multitask_evidence.envs.spec import field_names


def test_defaults_are_the_paper_task():
    s = TaskSpec()
    assert (s.latent_dim, s.n_tasks, s.sigma) == (2, 24, 0.2)
    assert (s.fixation_steps, s.stimulus_steps, s.delay_steps, s.decision_steps) == (1, 20, 0, 1)
    assert s.n_steps == 22 and s.decision_start == 21 and s.stimulus_start == 1
    assert s.boundaries == "lines" and s.encoder == "relu_mlp"
    assert s.obs_dim == 41  # 40 encoded channels + go


def test_auto_boundaries_follow_dimension():
    assert TaskSpec(latent_dim=3).boundaries == "random"
    assert TaskSpec().replace(latent_dim=5).boundaries == "random"
    assert TaskSpec(latent_dim=5).replace(latent_dim=2).boundaries == "random"  # explicit kept


def test_json_round_trip_and_hash():
    s = TaskSpec(n_tasks=6, noise="ar1", prior="correlated", rho=0.3, encoder_sizes=(8, 4), seed=3)
    t = TaskSpec.from_json(s.to_json())
    assert t == s and hash(t) == hash(s)
    assert set(s.to_dict()) == set(field_names())


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("latent_dim", 0, "latent_dim"),
        ("latent_dim", 2.5, "latent_dim"),
        ("n_tasks", 0, "n_tasks"),
        ("n_tasks", True, "n_tasks"),
        ("sigma", 0.0, "sigma"),
        ("sigma", float("nan"), "sigma"),
        ("stimulus_steps", 0, "stimulus_steps"),
        ("fixation_steps", -1, "fixation_steps"),
        ("decision_steps", 0, "decision_steps"),
        ("boundaries", "spirals", "boundaries"),
        ("prior", "beta", "prior"),
        ("noise", "cauchy", "noise"),
        ("encoder", "conv", "encoder"),
        ("encoder_sizes", (), "encoder_sizes"),
        ("encoder_sizes", (10, 0), "encoder_sizes"),
        ("targets", "mse", "targets"),
        ("ddm_bound", -1.0, "ddm_bound"),
        ("seed", -1, "seed"),
        ("ar_coef", 1.0, "ar_coef"),
        ("anisotropy", 0.0, "anisotropy"),
        ("offset_scale", 0.7, "offset_scale"),
    ],
)
def test_bad_fields_name_the_field(field, value, words):
    with pytest.raises(ValueError, match=words):
        TaskSpec(**{field: value})


def test_bad_combinations():
    with pytest.raises(ValueError, match="latent_dim=2"):
        TaskSpec(latent_dim=3, boundaries="lines")
    with pytest.raises(ValueError, match="divisible by 4"):
        TaskSpec(boundaries="hyperbolic", n_tasks=6)
    with pytest.raises(ValueError, match="rho"):
        TaskSpec(prior="correlated", rho=1.0)
    with pytest.raises(ValueError, match="rho"):
        TaskSpec(prior="uniform", rho=0.5)
    with pytest.raises(ValueError, match="rho"):
        TaskSpec(latent_dim=3, prior="correlated", rho=-0.6)  # not positive definite
    with pytest.raises(ValueError, match="ddm_bound"):
        TaskSpec(targets="ddm_bound", boundaries="circles")
    for bad in (
        dict(latent_dim=3),
        dict(boundaries="random"),
        dict(offset_scale=0.1),
        dict(delay_steps=2),
    ):
        with pytest.raises(ValueError, match="free_rt_paper"):
            TaskSpec(targets="free_rt_paper", **bad)
    with pytest.raises(ValueError, match="unknown TaskSpec field"):
        TaskSpec().replace(n_task=3)
    with pytest.raises(ValueError, match="unknown TaskSpec field"):
        TaskSpec.from_dict({"sigmaa": 0.1})


def test_evidence_steps():
    s = TaskSpec(stimulus_steps=7, decision_steps=2)
    assert s.evidence_steps == 7 and s.evidence_stop == 8 and not s.ddm_targets
    f = s.replace(targets="free_rt_paper")
    assert f.evidence_steps == 9 and f.evidence_stop == f.n_steps == 10 and f.ddm_targets
    assert TaskSpec(targets="ddm_bound").ddm_targets
    assert TaskSpec.from_json(f.to_json()) == f
