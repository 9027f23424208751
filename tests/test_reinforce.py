"""Tests of reinforce.py: returns against hand-worked cases, whole-episode batches, each credit
flag by its effect, both action types, determinism, resume, errors and the CartPole learning test.
"""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

import reinforce


def tiny(**overrides):
    base = dict(
        total_timesteps=2000,
        num_envs=2,
        episodes_per_update=4,
        hidden_sizes=(16, 16),
        eval_frequency=0,
        eval_episodes=2,
    )
    return reinforce.Args(**{**base, **overrides})


def test_returns_match_hand_worked_cases():
    rewards = np.array([1.0, 2.0, 3.0])
    # rewards to go, gamma 0.5: G2 = 3, G1 = 2 + 0.5 * 3 = 3.5, G0 = 1 + 0.5 * 3.5 = 2.75
    np.testing.assert_allclose(reinforce.episode_returns(rewards, 0.5, True), [2.75, 3.5, 3.0])
    # the whole episode's return for every step
    np.testing.assert_allclose(reinforce.episode_returns(rewards, 0.5, False), [2.75] * 3)
    # a truncated episode bootstraps: G3 = V(s_3) = 4
    np.testing.assert_allclose(
        reinforce.episode_returns(rewards, 0.5, True, bootstrap=4.0), [3.25, 4.5, 5.0]
    )
    np.testing.assert_allclose(reinforce.episode_returns(rewards, 1.0, True), [6.0, 5.0, 3.0])


def make(args):
    envs = reinforce.make_vector_env(args)
    policy = reinforce.Policy(
        envs.single_observation_space.shape[0], envs.single_action_space, args
    )
    value = reinforce.mlp([policy.net[0].in_features, *args.hidden_sizes, 1], False)
    return envs, policy, value


def test_batches_hold_whole_episodes_an_equal_share_from_each_env():
    torch.manual_seed(0)
    args = tiny(env_id="CartPole-v1", num_envs=4, episodes_per_update=8)
    envs, policy, value = make(args)
    episodes, steps = reinforce.collect_episodes(envs, policy, value, args, "cpu", seed=0)
    assert len(episodes) == 8
    lengths = [len(ep["rewards"]) for ep in episodes]
    # CartPole pays 1 a step: each episode's return is its length, and it ended (not cut short)
    assert all(ep["episodic_return"] == len(ep["rewards"]) == len(ep["obs"]) for ep in episodes)
    assert steps % 4 == 0 and steps >= sum(lengths) and steps >= 4 * max(lengths)
    envs.close()


@pytest.mark.parametrize(
    "env_id, bootstraps", [("DiscreteTerminated-v0", False), ("DiscreteTruncated-v0", True)]
)
def test_only_truncated_episodes_bootstrap_from_the_baseline(env_id, bootstraps):
    args = tiny(env_id=env_id)
    envs, policy, value = make(args)
    with torch.no_grad():
        value[-1].bias.fill_(7.0)
        value[-1].weight.zero_()
    episodes, steps = reinforce.collect_episodes(envs, policy, value, args, "cpu", seed=0)
    assert steps == 16 and all(len(ep["rewards"]) == 4 for ep in episodes)  # 2 envs x 2 x 4
    assert all(ep["bootstrap"] == (7.0 if bootstraps else 0.0) for ep in episodes)
    envs.close()


def sgd_step(episodes, **overrides):
    """Parameter change of one update under plain SGD (Adam would hide the gradient's scale)."""
    torch.manual_seed(0)
    args = tiny(env_id="DiscreteTerminated-v0", **overrides)
    envs, policy, value = make(args)
    envs.close()
    with torch.no_grad():
        value[-1].bias.fill_(2.0)
        value[-1].weight.zero_()
    before = copy.deepcopy(policy)
    reinforce.update(
        episodes,
        policy,
        value,
        torch.optim.SGD(policy.parameters(), lr=1e-3),
        torch.optim.SGD(value.parameters(), lr=0.0),
        args,
        "cpu",
    )
    return before, torch.cat(
        [(p - q).flatten() for p, q in zip(policy.parameters(), before.parameters())]
    )


def episodes_with(rewards_scale: float):
    rng = np.random.default_rng(0)
    return [
        {
            "obs": rng.normal(size=(4, 2)).astype(np.float32),
            "actions": rng.integers(0, 2, 4),
            "rewards": rewards_scale * rng.random(4),
            "bootstrap": 0.0,
        }
        for _ in range(3)
    ]


def test_normalization_makes_the_step_independent_of_the_reward_scale():
    _, small = sgd_step(episodes_with(1.0), normalize_returns=True, baseline=False)
    _, large = sgd_step(episodes_with(100.0), normalize_returns=True, baseline=False)
    torch.testing.assert_close(small, large)
    _, small = sgd_step(episodes_with(1.0), normalize_returns=False, baseline=False)
    _, large = sgd_step(episodes_with(100.0), normalize_returns=False, baseline=False)
    torch.testing.assert_close(large, 100 * small)


def test_baseline_subtracts_the_value_from_the_returns():
    episodes = episodes_with(1.0)
    before, step = sgd_step(episodes, normalize_returns=False, baseline=True, gamma=0.9)
    # by hand: -lr * grad of -(1/m) sum log pi(a|s) (G - 2), the value being 2 everywhere
    obs = torch.as_tensor(np.concatenate([ep["obs"] for ep in episodes]))
    actions = torch.as_tensor(np.concatenate([ep["actions"] for ep in episodes]))
    returns = np.concatenate(
        [reinforce.episode_returns(ep["rewards"], 0.9, True) for ep in episodes]
    )
    loss = (
        -(before.dist(obs).log_prob(actions) * (torch.as_tensor(returns).float() - 2.0)).sum() / 3
    )
    grads = torch.autograd.grad(loss, list(before.parameters()))
    torch.testing.assert_close(step, torch.cat([-1e-3 * g.flatten() for g in grads]))


def test_value_regression_fits_the_returns():
    args = tiny(env_id="DiscreteTerminated-v0", value_epochs=200, value_learning_rate=1e-2)
    envs, policy, value = make(args)
    envs.close()
    episodes = episodes_with(1.0)
    returns = np.concatenate(
        [reinforce.episode_returns(ep["rewards"], args.gamma, True) for ep in episodes]
    )
    losses = reinforce.update(
        episodes,
        policy,
        value,
        torch.optim.Adam(policy.parameters(), lr=1e-3),
        torch.optim.Adam(value.parameters(), lr=1e-2),
        args,
        "cpu",
    )
    assert losses["value_loss"].item() < 0.1 * returns.var()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_both_action_types_train_and_evaluate(env_id, in_tmp):
    summary = reinforce.train(tiny(env_id=env_id, total_timesteps=1000, save_model=True))
    assert summary["global_step"] >= 1000 and len(summary["eval_returns"]) == 2
    ckpt = torch.load(summary["checkpoint"], weights_only=True)
    continuous = env_id == "Pendulum-v1"
    assert ("log_std" in ckpt["policy"]) == continuous
    if continuous:  # the Gaussian's spread is learned
        assert not torch.equal(ckpt["policy"]["log_std"], torch.zeros(1))


def test_deterministic_evaluation_takes_the_most_likely_action_or_the_clipped_mean():
    args = tiny()
    policy = reinforce.Policy(2, gym.spaces.Discrete(3), args)
    obs = torch.randn(5, 2)
    assert torch.equal(policy(obs), policy.dist(obs).probs.argmax(-1))
    policy = reinforce.Policy(2, gym.spaces.Box(-1.0, 1.0, (1,)), args)
    with torch.no_grad():
        policy.net[-1].bias.fill_(5.0)
    assert torch.all(policy(obs) == 1.0)


def test_two_seeded_runs_are_identical(in_tmp):
    runs = [reinforce.train(tiny(env_id="CartPole-v1")) for _ in range(2)]
    assert runs[0]["episodic_returns"] == runs[1]["episodic_returns"]
    other = reinforce.train(tiny(env_id="CartPole-v1", seed=2))
    assert other["episodic_returns"] != runs[0]["episodic_returns"]


def test_resume_continues_from_the_saved_step_and_weights(in_tmp):
    first = reinforce.train(tiny(env_id="CartPole-v1", save_model=True))
    saved = torch.load(first["checkpoint"], weights_only=True)
    again = reinforce.train(
        tiny(
            env_id="CartPole-v1",
            resume=first["checkpoint"],
            total_timesteps=first["global_step"],
            save_model=True,
        )
    )
    reloaded = torch.load(again["checkpoint"], weights_only=True)
    assert again["run_dir"] == first["run_dir"] and reloaded["global_step"] == saved["global_step"]
    for key in ["policy", "value"]:
        assert all(torch.equal(saved[key][k], reloaded[key][k]) for k in saved[key])
    more = reinforce.train(
        tiny(
            env_id="CartPole-v1",
            resume=first["checkpoint"],
            total_timesteps=first["global_step"] + 500,
        )
    )
    assert more["global_step"] >= first["global_step"] + 500
    assert more["update_count"] > saved["update_count"]


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (
            dict(num_envs=3),
            ValueError,
            "--episodes-per-update 4 must be a multiple of --num-envs 3",
        ),
        (dict(gamma=-0.1), ValueError, r"--gamma must be in \[0, 1\]"),
        (dict(env_id="CartPol-v1"), ValueError, "did you mean CartPole-v1"),
        (dict(learning_rate=0.0), ValueError, "--learning-rate must be positive"),
        (dict(resume="nope.pt"), FileNotFoundError, "checkpoint nope.pt does not exist"),
    ],
)
def test_bad_input_gives_a_clear_error(overrides, error, message, in_tmp):
    with pytest.raises(error, match=message):
        reinforce.train(tiny(**{"env_id": "CartPole-v1", **overrides}))


@pytest.mark.learning
def test_cartpole_learns(in_tmp):
    """Default settings and seed: the final deterministic evaluation after 200k steps >= 475."""
    summary = reinforce.train(reinforce.Args(eval_frequency=0))
    assert np.mean(summary["eval_returns"]) >= 475
