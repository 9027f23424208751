"""Tests of what sac_continuous.py adds to the family: the squashed Gaussian's log-probability, the
soft critic target, the temperature's autotuning, and deterministic evaluation. The family's shared
behaviour (buffer, episodes, resume, logging, errors, learning) is tested in test_continuous.py."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

import sac_continuous as sac


def tiny(**overrides):
    return sac.Args(**{"hidden_sizes": (32, 32), **overrides})


def actor_and_critics(**overrides):
    torch.manual_seed(0)
    args = tiny(**overrides)
    actor = sac.Actor(3, gym.spaces.Box(-1.0, 1.0, (2,)), args)
    qf = sac.TwinQNetwork(3, 2, args)
    return args, actor, qf, sac.TwinQNetwork(3, 2, args)


def test_log_prob_is_the_gaussian_density_minus_the_tanh_jacobian():
    _, actor, _, _ = actor_and_critics()
    obs = torch.randn(256, 3)
    torch.manual_seed(1)
    action, log_prob = actor.sample(obs)
    mean, log_std = actor.net(obs).chunk(2, -1)
    reference = TransformedDistribution(Normal(mean, log_std.clamp(-20, 2).exp()), TanhTransform())
    # away from the bounds the two agree; TanhTransform's inverse loses precision near +-1
    inside = action.abs().max(-1).values < 0.99
    expected = reference.log_prob(action.clamp(-0.999999, 0.999999)).sum(-1)
    assert inside.sum() > 100
    assert torch.allclose(log_prob[inside], expected[inside], atol=1e-3)


def test_log_prob_stays_finite_at_the_action_bounds():
    _, actor, _, _ = actor_and_critics()
    with torch.no_grad():  # u = +-50 with std e^-20: tanh(u) rounds to +-1 in float32
        actor.net[-1].weight.zero_()
        actor.net[-1].bias.copy_(torch.tensor([50.0, -50.0, -20.0, -20.0]))
    action, log_prob = actor.sample(torch.zeros(64, 3))
    assert torch.all(action.abs() == 1.0)
    # per dimension: -eps^2 / 2 - log std - log(2 pi) / 2 - log(1 - tanh(50)^2), where
    # log(1 - tanh(u)^2) = 2 (log 2 - |u| - log(1 + e^(-2|u|))) = 2 log 2 - 100
    bound = 2 * (20.0 - 0.5 * np.log(2 * np.pi) + 100.0 - 2 * np.log(2.0))
    assert torch.isfinite(log_prob).all()
    assert torch.all(log_prob <= bound + 1e-3) and torch.all(log_prob > bound - 30.0)


def test_soft_target_takes_the_twin_minimum_and_the_entropy_term(monkeypatch):
    """r = 1, gamma = 0.5, Q'_1 = 3, Q'_2 = 5, alpha = 0.5, log pi(a'|s') = -2:
    y = 1 + 0.5 * (min(3, 5) - 0.5 * (-2)) = 3."""
    args, actor, qf, qf_target = actor_and_critics(gamma=0.5)
    n = 8
    monkeypatch.setattr(actor, "sample", lambda o: (torch.zeros(len(o), 2), torch.full((n,), -2.0)))
    monkeypatch.setattr(
        qf_target,
        "forward",
        lambda o, a: torch.stack([torch.full((n,), 3.0), torch.full((n,), 5.0)]),
    )
    obs, actions = torch.randn(n, 3), torch.rand(n, 2)
    data = (obs, actions, torch.ones(n), obs, torch.zeros(n), torch.ones(n))
    optimizer = torch.optim.SGD(qf.parameters(), lr=0.0)
    loss, q, td_abs = sac.update_critic(data, actor, qf, qf_target, optimizer, 0.5, args)
    assert torch.allclose(td_abs, (q - 3.0).abs().max(0).values)
    assert loss.item() == pytest.approx(((q - 3.0) ** 2).mean(-1).sum().item(), rel=1e-5)
    # a terminated transition's target is the reward alone
    data = (obs, actions, torch.ones(n), obs, torch.ones(n), torch.ones(n))
    _, q, td_abs = sac.update_critic(data, actor, qf, qf_target, optimizer, 0.5, args)
    assert torch.allclose(td_abs, (q - 1.0).abs().max(0).values)


def test_autotuning_lowers_alpha_above_the_target_entropy_and_raises_it_below():
    for log_prob, direction in [(-5.0, -1), (4.0, 1)]:  # entropy -log pi = 5 or -4; target -2
        temperature = sac.Temperature(2, tiny(learning_rate=0.1))
        assert temperature.alpha().item() == pytest.approx(1.0)
        assert temperature.target_entropy == -2.0
        for _ in range(5):
            temperature.update(torch.full((16,), log_prob))
        assert (temperature.alpha().item() - 1.0) * direction > 0.3


def test_fixed_alpha_without_autotune():
    temperature = sac.Temperature(2, tiny(autotune=False, alpha=0.05))
    temperature.update(torch.full((16,), -5.0))
    assert temperature.alpha().item() == pytest.approx(0.05)
    assert not temperature.log_alpha.requires_grad


def test_actor_update_uses_both_critics_and_soft_update_moves_the_target_critics_by_tau():
    args, actor, qf, qf_target = actor_and_critics(tau=0.25)
    before_target = [p.clone() for p in qf_target.parameters()]
    before_qf = [p.clone() for p in qf.parameters()]
    temperature = sac.Temperature(2, args)
    optimizer = torch.optim.Adam(actor.parameters())
    sac.update_actor(torch.randn(32, 3), actor, qf, optimizer, temperature, args)
    assert all(torch.equal(a, b) for a, b in zip(before_target, qf_target.parameters()))
    sac.soft_update([(qf, qf_target)], args.tau)
    for old, new, online in zip(before_target, qf_target.parameters(), qf.parameters()):
        assert torch.allclose(new, 0.75 * old + 0.25 * online)
    assert all(torch.equal(a, b) for a, b in zip(before_qf, qf.parameters()))
    assert all(p.grad is None for p in qf.parameters())
    assert temperature.alpha().item() != 1.0  # the temperature took its step too


def test_evaluation_acts_with_tanh_of_the_mean_not_a_sample():
    space = gym.spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 4.0]))
    actor = sac.Actor(3, space, tiny())
    obs = torch.randn(16, 3)
    with torch.no_grad():
        mean = actor.net(obs)[:, :2]
        expected = torch.tanh(mean) * torch.tensor([1.0, 2.0]) + torch.tensor([0.0, 2.0])
        assert torch.allclose(actor(obs), expected)
        assert torch.equal(actor(obs), actor(obs))
        sampled = actor.sample(obs)[0]
    assert not torch.allclose(sampled, expected)
    assert torch.all((sampled >= torch.tensor([-1.0, 0.0])) & (sampled <= torch.tensor([1.0, 4.0])))


def test_evaluate_returns_do_not_depend_on_the_torch_rng(in_tmp):
    args = tiny(env_id="Pendulum-v1", eval_episodes=1)
    actor = sac.Actor(3, gym.spaces.Box(-2.0, 2.0, (1,)), args)
    torch.manual_seed(0)
    first = sac.evaluate(actor, args, "cpu")
    torch.manual_seed(123)
    assert sac.evaluate(actor, args, "cpu") == first


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(alpha=0.0, autotune=False), "--alpha must be positive"),
        (dict(target_entropy_scale=float("inf")), "--target-entropy-scale must be finite"),
        (dict(target_entropy_scale=-1.0), "--target-entropy-scale must be positive"),
    ],
)
def test_bad_temperature_options_give_a_clear_error(in_tmp, overrides, message):
    with pytest.raises(ValueError, match=message):
        sac.train(tiny(env_id="Pendulum-v1", total_timesteps=100, **overrides))
