"""Action heads: layouts of every supported space, densities against torch.distributions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from multitask_evidence.agents.rl.heads import ActionHead, ActionLayout


def _head(space: gym.Space, continuous: str = "beta", hidden: int = 8) -> ActionHead:
    torch.manual_seed(0)
    head = ActionHead(ActionLayout(space), hidden, continuous)
    with torch.no_grad():  # non-trivial distributions
        for p in head.parameters():
            p.normal_(0.0, 1.0)
    return head


def test_layout_multidiscrete_with_commit() -> None:
    lay = ActionLayout(gym.spaces.MultiDiscrete([3, 3, 3, 2]))
    assert lay.n_components == 4
    assert lay.n_choices.tolist() == [3, 3, 3, 2]
    a = np.array([[2.0, 0.0, 1.0, 1.0]], dtype=np.float32)
    env_a = lay.to_env(a)
    assert env_a.dtype == np.int64 and env_a.tolist() == [[2, 0, 1, 1]]


def test_layout_box_tuple_dict() -> None:
    box = ActionLayout(gym.spaces.Box(0.0, 1.0, (3,), dtype=np.float32))
    assert box.continuous_index.tolist() == [0, 1, 2] and box.discrete_index.size == 0
    tup = ActionLayout(gym.spaces.Tuple((gym.spaces.Box(0.0, 1.0, (2,)), gym.spaces.Discrete(2))))
    out = tup.to_env(np.array([[0.3, 0.7, 1.0]], dtype=np.float32))
    assert isinstance(out, tuple) and out[1].tolist() == [1]
    np.testing.assert_allclose(out[0], [[0.3, 0.7]], rtol=1e-6)
    dct = ActionLayout(gym.spaces.Dict({"c": gym.spaces.MultiBinary(2)}))
    assert dct.to_env(np.array([[1.0, 0.0]]))["c"].tolist() == [[1, 0]]


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-np.inf, np.inf, (2,)),
        gym.spaces.Box(0.0, 1.0, (2, 2)),
        gym.spaces.Text(5),
        gym.spaces.Discrete(3, start=1),
    ],
)
def test_layout_rejects_unsupported_spaces(space: gym.Space) -> None:
    with pytest.raises(ValueError, match="action space"):
        ActionLayout(space)


def test_head_rejects_unknown_continuous_kind() -> None:
    with pytest.raises(ValueError, match="continuous_head"):
        ActionHead(ActionLayout(gym.spaces.Box(0.0, 1.0, (2,))), 8, "cauchy")


def test_categorical_density_entropy_and_sampling() -> None:
    head = _head(gym.spaces.MultiDiscrete([3, 2]))
    h = torch.randn(5, 8)
    d = head(h)
    ref0 = torch.distributions.Categorical(logits=d.logits[:, 0, :3])
    ref1 = torch.distributions.Categorical(logits=d.logits[:, 1, :2])
    a = torch.tensor([[2.0, 1.0]]).expand(5, 2)
    lp = d.log_prob(a)
    torch.testing.assert_close(lp[:, 0], ref0.log_prob(torch.full((5,), 2)))
    torch.testing.assert_close(lp[:, 1], ref1.log_prob(torch.full((5,), 1)))
    torch.testing.assert_close(d.entropy()[:, 0], ref0.entropy())
    torch.testing.assert_close(d.entropy()[:, 1], ref1.entropy())
    # the padded third value of the binary component is never sampled; frequencies match probs
    g = torch.Generator().manual_seed(1)
    hs = h[:1].expand(20000, 8)
    s = head(hs).sample(g)
    assert set(s[:, 1].unique().tolist()) <= {0.0, 1.0}
    freq = torch.bincount(s[:, 0].long(), minlength=3).float() / len(s)
    torch.testing.assert_close(freq, ref0.probs[0], atol=0.015, rtol=0)


def test_beta_head_density_mode_and_bounds() -> None:
    head = _head(gym.spaces.Box(0.0, 2.0, (2,)), "beta")
    d = head(torch.randn(4, 8))
    x = torch.full((4, 2), 0.5)  # env value 0.5 of [0, 2] = 0.25 on the unit interval
    ref = torch.distributions.Beta(d.alpha, d.beta).log_prob(torch.full((4, 2), 0.25))
    torch.testing.assert_close(d.log_prob(x), ref - np.log(2.0))
    mode = d.mode()
    torch.testing.assert_close(mode, 2.0 * d.alpha / (d.alpha + d.beta))
    s = d.sample()
    assert torch.all((s > 0) & (s < 2))


def test_squashed_gaussian_density_integrates_to_one() -> None:
    head = ActionHead(ActionLayout(gym.spaces.Box(0.0, 1.0, (1,))), 8, "gaussian")
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0.0, 0.3)  # moderate log-std: (almost) all mass inside the grid
    u = torch.linspace(1e-5, 1 - 1e-5, 8001)
    h = torch.randn(3, 8)[None].expand(len(u), 3, 8)
    logp = head(h).log_prob(u[:, None, None].expand(-1, 3, 1))[..., 0]  # [G, 3]
    mass = torch.trapezoid(logp.exp(), u, dim=0)
    torch.testing.assert_close(mass, torch.ones(3), atol=2e-3, rtol=0)
