"""Tests of ppo.py: GAE and the clipped objective against hand-worked cases, truncation
bootstrapping, normalization statistics through checkpoints, each flag by its effect, both action
types, determinism, errors, and the CartPole learning test."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo


def tiny(**overrides):
    base = dict(
        total_timesteps=1024,
        num_envs=4,
        num_steps=64,
        num_minibatches=4,
        update_epochs=2,
        hidden_sizes=(16, 16),
        eval_frequency=0,
        eval_episodes=2,
    )
    return ppo.Args(**{**base, **overrides})


def test_gae_matches_a_hand_worked_case_across_an_episode_end():
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.5], [0.6], [0.7]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])  # the episode ends at step 1
    advantages, returns = ppo.compute_gae(rewards, values, dones, torch.tensor([0.8]), 0.9, 0.5)
    # t=2: 1 + 0.9 * 0.8 - 0.7 = 1.02; t=1 (done): 1 - 0.6 = 0.4; t=0: 1 + 0.9 * 0.6 - 0.5
    # = 1.04, plus 0.9 * 0.5 * 0.4 = 0.18 from the next step's advantage
    torch.testing.assert_close(advantages[:, 0], torch.tensor([1.22, 0.4, 1.02]))
    torch.testing.assert_close(returns[:, 0], torch.tensor([1.72, 1.0, 1.72]))
    # lambda = 1: Monte Carlo returns bootstrapped from the last value
    _, mc = ppo.compute_gae(rewards, values, torch.zeros(3, 1), torch.tensor([0.8]), 0.5, 1.0)
    torch.testing.assert_close(mc[:, 0], torch.tensor([1.85, 1.7, 1.4]))


@pytest.mark.parametrize(
    "env_id, expected", [("DiscreteTruncated-v0", 2.0), ("DiscreteTerminated-v0", 1.53)]
)
def test_truncated_episodes_bootstrap_and_terminated_ones_do_not(env_id, expected, in_tmp):
    """gamma 0.5, lambda 1: with truncation V(0) = 1 + 0.5 V(0) = 2; with termination the four
    steps' returns are 1.875, 1.75, 1.5 and 1, averaging 1.53."""
    summary = ppo.train(
        tiny(
            env_id=env_id,
            gamma=0.5,
            gae_lambda=1.0,
            total_timesteps=16384,
            learning_rate=3e-3,
            clip_vloss=False,
            save_model=True,
        )
    )
    agent = ppo.Agent(2, gym.spaces.Discrete(2), tiny())
    agent.load_state_dict(torch.load(summary["checkpoint"], weights_only=True)["agent"])
    with torch.no_grad():
        assert agent.value(torch.zeros(1, 2)).item() == pytest.approx(expected, abs=0.12)


def agent_and_batch(discrete=True, n=64):
    torch.manual_seed(0)
    space = gym.spaces.Discrete(3) if discrete else gym.spaces.Box(-1.0, 1.0, (2,))
    agent = ppo.Agent(4, space, tiny())
    obs = torch.randn(n, 4)
    with torch.no_grad():
        actions = agent.dist(obs).sample()
        logprobs = agent.dist(obs).log_prob(actions)
    return agent, obs, actions, logprobs


def policy_grad(agent, obs, actions, old_logprobs, advantages, **overrides):
    args = tiny(**{"norm_adv": False, "ent_coef": 0.0, "vf_coef": 0.0, **overrides})
    agent.zero_grad()
    loss, _ = ppo.ppo_loss(
        agent,
        obs,
        actions,
        old_logprobs,
        torch.zeros(len(obs)),
        advantages,
        torch.zeros(len(obs)),
        args,
    )
    loss.backward()
    return torch.cat([p.grad.flatten() for p in agent.actor.parameters()])


@pytest.mark.parametrize("discrete", [True, False])
def test_clipped_objective_has_no_gradient_outside_the_clip_range(discrete):
    agent, obs, actions, logprobs = agent_and_batch(discrete)
    ones = torch.ones(len(obs))
    # ratio = 1.5 > 1 + 0.2 with A > 0 (and 0.5 < 1 - 0.2 with A < 0): clipped, no gradient
    assert torch.all(policy_grad(agent, obs, actions, logprobs - np.log(1.5), ones) == 0)
    assert torch.all(policy_grad(agent, obs, actions, logprobs - np.log(0.5), -ones) == 0)
    # the other sides of the clip, and inside the range, the gradient flows
    assert policy_grad(agent, obs, actions, logprobs - np.log(1.5), -ones).abs().sum() > 0
    assert policy_grad(agent, obs, actions, logprobs - np.log(1.1), ones).abs().sum() > 0
    # ratio 1 inside the range: the gradient of -A * ratio is -A * grad log pi
    agent.zero_grad()
    (-(agent.dist(obs).log_prob(actions))).mean().backward()
    expected = torch.cat([p.grad.flatten() for p in agent.actor.parameters()])
    torch.testing.assert_close(policy_grad(agent, obs, actions, logprobs, ones), expected)


def test_value_clipping_stops_the_value_moving_past_the_clip_range():
    agent, obs, actions, logprobs = agent_and_batch()
    with torch.no_grad():
        values = agent.value(obs)
    old = values - 1.0  # the values already moved 1 above the rollout's, toward the returns
    for clip, moves in [(True, False), (False, True)]:
        agent.zero_grad()
        loss, parts = ppo.ppo_loss(
            agent,
            obs,
            actions,
            logprobs,
            old,
            torch.zeros(len(obs)),
            values + 5.0,
            tiny(clip_vloss=clip, vf_coef=1.0, ent_coef=0.0),
        )
        loss.backward()
        grad = sum(p.grad.abs().sum() for p in agent.critic.parameters() if p.grad is not None)
        assert (grad > 0) == moves
        # clipped: the max picks the error of old + 0.2, that is 5.8, over 5
        assert parts["value_loss"].item() == pytest.approx(
            0.5 * (5.8**2 if clip else 25.0), rel=1e-4
        )


def test_advantage_normalization_makes_the_loss_independent_of_their_scale():
    agent, obs, actions, logprobs = agent_and_batch()
    adv = torch.randn(len(obs))
    small = policy_grad(agent, obs, actions, logprobs - 0.05, adv, norm_adv=True)
    large = policy_grad(agent, obs, actions, logprobs - 0.05, 100 * adv, norm_adv=True)
    torch.testing.assert_close(small, large)


def test_running_mean_std_matches_numpy_over_batches():
    rms = ppo.RunningMeanStd((3,))
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0, 2.0, (n, 3)) for n in (10, 1, 57)]
    for b in batches:
        rms.update(torch.as_tensor(b))
    data = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-4)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-4)


def test_normalization_statistics_are_saved_restored_and_used_in_evaluation(in_tmp):
    args = tiny(env_id="Pendulum-v1", normalize_obs=True, normalize_reward=True, save_model=True)
    first = ppo.train(args)
    saved = torch.load(first["checkpoint"], weights_only=True)
    assert saved["agent"]["obs_rms.count"] > 1000 and saved["return_rms"]["count"] > 1000
    assert not torch.allclose(saved["agent"]["obs_rms.mean"], torch.zeros(3, dtype=torch.float64))
    again = ppo.train(tiny(resume=first["checkpoint"], total_timesteps=1024, save_model=True))
    reloaded = torch.load(again["checkpoint"], weights_only=True)
    for key in ["obs_rms.mean", "obs_rms.var", "obs_rms.count"]:
        assert torch.equal(saved["agent"][key], reloaded["agent"][key])
    assert torch.equal(saved["return_rms"]["var"], reloaded["return_rms"]["var"])
    # evaluating the checkpoint (with its statistics) repeats the run's final evaluation exactly
    evaluated = ppo.train(tiny(eval_checkpoint=first["checkpoint"]))
    assert evaluated["eval_returns"] == first["eval_returns"]


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir)
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


def test_target_kl_stops_epochs_early_and_the_learning_rate_anneals(in_tmp):
    early = ppo.train(tiny(env_id="CartPole-v1", update_epochs=10, target_kl=1e-9))
    assert set(scalars(early["run_dir"], "losses/epochs")) == {1.0}
    full = ppo.train(tiny(env_id="CartPole-v1", update_epochs=3, anneal_lr=True))
    assert set(scalars(full["run_dir"], "losses/epochs")) == {3.0}
    lrs = scalars(full["run_dir"], "charts/learning_rate")
    np.testing.assert_allclose(lrs, [3e-4 * (1 - k / 4) for k in range(4)], rtol=1e-6)
    constant = ppo.train(tiny(env_id="CartPole-v1"))
    assert set(scalars(constant["run_dir"], "charts/learning_rate")) == {np.float32(3e-4)}


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_both_action_types_train_and_evaluate(env_id, in_tmp):
    summary = ppo.train(tiny(env_id=env_id))
    assert summary["global_step"] == 1024 and summary["update_count"] == 4
    assert len(summary["eval_returns"]) == 2 and summary["episodic_returns"]


def test_two_seeded_runs_are_identical(in_tmp):
    runs = [ppo.train(tiny(env_id="CartPole-v1")) for _ in range(2)]
    assert runs[0]["episodic_returns"] == runs[1]["episodic_returns"]
    other = ppo.train(tiny(env_id="CartPole-v1", seed=2))
    assert other["episodic_returns"] != runs[0]["episodic_returns"]


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (dict(num_minibatches=3), ValueError, "--num-minibatches 3 must divide the rollout"),
        (dict(gae_lambda=1.5), ValueError, r"--gae-lambda must be in \[0, 1\]"),
        (dict(env_id="CartPole-v7"), ValueError, "did you mean CartPole-v1"),
        (dict(update_epochs=0), ValueError, "--update-epochs must be positive"),
        (dict(eval_checkpoint="nope.pt"), FileNotFoundError, "checkpoint nope.pt does not exist"),
    ],
)
def test_bad_input_gives_a_clear_error(overrides, error, message, in_tmp):
    with pytest.raises(error, match=message):
        ppo.train(tiny(**{"env_id": "CartPole-v1", **overrides}))


@pytest.mark.learning
def test_cartpole_learns(in_tmp):
    """Default settings and seed: the final deterministic evaluation at 100k steps >= 475."""
    summary = ppo.train(ppo.Args(eval_frequency=0))
    assert np.mean(summary["eval_returns"]) >= 475


def test_runs_started_in_the_same_second_get_their_own_directories(in_tmp):
    names = {ppo.new_run_name(tiny()) for _ in range(3)}
    assert len(names) == 3 and all((in_tmp / "runs" / n).is_dir() for n in names)


def gsde_agent(**overrides):
    env = gym.make("Pendulum-v1")
    args = tiny(env_id="Pendulum-v1", gsde=True, log_std_init=-1.0, **overrides)
    return ppo.Agent(env.observation_space.shape[0], env.action_space, args)


def test_gsde_noise_scale_depends_on_the_state_and_matches_its_log_probability():
    torch.manual_seed(0)
    agent = gsde_agent()
    obs = torch.tensor([[1.0, 0.0, 0.5], [-0.3, 2.0, -1.5]])
    with torch.no_grad():
        dist, features = agent.dist_and_features(obs)
        # The two states explore with different standard deviations (a plain Gaussian policy
        # would give both the same one).
        assert not torch.allclose(dist.stddev[0], dist.stddev[1], rtol=1e-3)
        # Actions drawn as features @ W with fresh weights W have the variance whose density
        # the log-probabilities use.
        noise = torch.stack(
            [(features.unsqueeze(1) @ agent.noise_weights(2)).squeeze(1) for _ in range(20000)]
        )
    np.testing.assert_allclose(noise.var(0), dist.variance, rtol=0.05)


def test_gsde_holds_its_noise_weights_for_sde_sample_freq_steps(monkeypatch, in_tmp):
    """A rollout of 64 steps draws weights at steps 0, 16, 32, 48 with a frequency of 16, and
    once (at the start of the rollout) with 0."""
    draws = []
    original = ppo.Agent.noise_weights

    def counted(self, num_envs):
        draws.append(num_envs)
        return original(self, num_envs)

    monkeypatch.setattr(ppo.Agent, "noise_weights", counted)
    ppo.train(tiny(env_id="Pendulum-v1", gsde=True, sde_sample_freq=16, total_timesteps=256))
    assert draws == [4] * 4
    draws.clear()
    ppo.train(tiny(env_id="Pendulum-v1", gsde=True, sde_sample_freq=0, total_timesteps=512))
    assert draws == [4] * 2


def test_gsde_on_a_discrete_env_is_a_clear_error(in_tmp):
    with pytest.raises(ValueError, match="--gsde is for Box action spaces"):
        ppo.train(tiny(env_id="CartPole-v1", gsde=True))


@pytest.mark.parametrize("ortho_init", [True, False])
def test_ortho_init_gives_orthogonal_layers_with_a_small_policy_head(ortho_init):
    """Orthogonal init: every layer's columns orthogonal with its gain (sqrt 2 hidden, 0.01 policy
    head, 1 value head), zero biases. Off: PyTorch's default uniform init, whose columns are not."""
    torch.manual_seed(0)
    env = gym.make("Pendulum-v1")
    agent = ppo.Agent(3, env.action_space, tiny(hidden_sizes=(32, 32), ortho_init=ortho_init))
    for net, head_gain in [(agent.actor, 0.01), (agent.critic, 1.0)]:
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        for layer in linears:
            gain = head_gain if layer is linears[-1] else np.sqrt(2)
            w = layer.weight.detach()
            gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
            orthogonal = torch.allclose(gram, gain**2 * torch.eye(len(gram)), atol=1e-4)
            assert orthogonal == ortho_init
            assert bool((layer.bias == 0).all()) == ortho_init


def test_defaults_are_sb3s_ppo_defaults():
    """One set of defaults for Discrete and Box actions: Stable-Baselines3's PPO defaults (the PPO
    paper's MuJoCo settings) but for the value loss's weight, read from SB3's own signature so a
    drift on either side shows."""
    import inspect

    from stable_baselines3 import PPO

    sb3 = {k: v.default for k, v in inspect.signature(PPO.__init__).parameters.items()}
    ours = ppo.Args()
    assert ours.num_envs * ours.num_steps == sb3["n_steps"]
    assert ours.num_envs * ours.num_steps // ours.num_minibatches == sb3["batch_size"]
    pairs = dict(learning_rate="learning_rate", update_epochs="n_epochs", gamma="gamma")
    pairs |= dict(gae_lambda="gae_lambda", clip_coef="clip_range", norm_adv="normalize_advantage")
    pairs |= dict(ent_coef="ent_coef", max_grad_norm="max_grad_norm")
    pairs |= dict(target_kl="target_kl", gsde="use_sde")
    assert {ours_: getattr(ours, ours_) for ours_ in pairs} == {o: sb3[s] for o, s in pairs.items()}
    # SB3 keeps the learning rate constant and does not clip the value update by default
    assert not ours.anneal_lr and not ours.clip_vloss and sb3["clip_range_vf"] is None
    # the one difference, documented in docs/ppo.md: our value loss is half the squared error
    # (Baselines, CleanRL), SB3's the whole, so SB3 weighs it twice as much as ours
    weight_on_squared_error = 0.5 * ours.vf_coef
    assert sb3["vf_coef"] == 2 * weight_on_squared_error
