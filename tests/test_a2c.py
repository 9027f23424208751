"""Tests of a2c.py: n-step returns, episode boundaries, the equivalence with ppo.py's update when
PPO's additions are switched off, the optimizer, checkpoints, logging, errors and (marked
`learning`) CartPole."""

import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import a2c
import ppo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(**overrides):
    base = dict(
        env_id="CartPole-v1",
        total_timesteps=1000,
        num_envs=4,
        num_steps=5,
        hidden_sizes=(16, 16),
        eval_frequency=0,
        eval_episodes=2,
    )
    return a2c.Args(**{**base, **overrides})


def test_n_step_returns_match_a_hand_worked_case():
    """gamma 0.5, lambda 1, rewards 1, 2, 3 and V(s_3) = 4: R_2 = 3 + 0.5 * 4 = 5,
    R_1 = 2 + 0.5 * 5 = 4.5, R_0 = 1 + 0.5 * 4.5 = 3.25; an episode ending at step 1 cuts the
    bootstrap there: R_1 = 2, R_0 = 1 + 0.5 * 2 = 2."""
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [0.6], [0.7]])
    next_value = torch.tensor([4.0])
    advantages, returns = a2c.compute_gae(rewards, values, torch.zeros(3, 1), next_value, 0.5, 1.0)
    torch.testing.assert_close(returns[:, 0], torch.tensor([3.25, 4.5, 5.0]))
    torch.testing.assert_close(advantages, returns - values)
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    _, returns = a2c.compute_gae(rewards, values, dones, next_value, 0.5, 1.0)
    torch.testing.assert_close(returns[:, 0], torch.tensor([2.0, 2.0, 5.0]))


@pytest.mark.parametrize(
    "env_id, expected", [("DiscreteTruncated-v0", 2.0), ("DiscreteTerminated-v0", 1.53)]
)
def test_truncated_episodes_bootstrap_and_terminated_ones_do_not(env_id, expected, in_tmp):
    """gamma 0.5: with truncation V(0) = 1 + 0.5 V(0) = 2; with termination the four steps'
    returns are 1.875, 1.75, 1.5 and 1, averaging 1.53 (every observation is 0)."""
    summary = a2c.train(
        tiny(env_id=env_id, gamma=0.5, total_timesteps=20_000, learning_rate=3e-3, save_model=True)
    )
    agent = a2c.Agent(2, gym.spaces.Discrete(2), tiny())
    agent.load_state_dict(torch.load(summary["checkpoint"], weights_only=True)["agent"])
    with torch.no_grad():
        assert agent.value(torch.zeros(1, 2)).item() == pytest.approx(expected, abs=0.12)


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("ent_coef", [0.0, 0.01])
def test_a2c_update_is_ppos_with_its_additions_switched_off(discrete, ent_coef):
    """Huang et al. 2022, "A2C is a special case of PPO": one epoch, one minibatch (so the ratio
    is 1), no clipping of either loss and no advantage normalization give A2C's gradient, so the
    same optimizer takes the same step."""
    torch.manual_seed(0)
    space = gym.spaces.Discrete(3) if discrete else gym.spaces.Box(-1.0, 1.0, (2,))
    a2c_args = tiny(ent_coef=ent_coef, hidden_sizes=(8, 8))
    ppo_args = ppo.Args(
        hidden_sizes=(8, 8),
        ent_coef=ent_coef,
        update_epochs=1,
        num_minibatches=1,
        clip_coef=1e9,
        clip_vloss=False,
        norm_adv=False,
    )
    agent_a2c = a2c.Agent(4, space, a2c_args)
    agent_ppo = ppo.Agent(4, space, ppo_args)
    agent_ppo.load_state_dict(agent_a2c.state_dict())
    obs, advantages, returns = torch.randn(40, 4), torch.randn(40), torch.randn(40)
    with torch.no_grad():
        actions = agent_a2c.dist(obs).sample()
        old_logprobs, old_values = agent_a2c.dist(obs).log_prob(actions), agent_a2c.value(obs)
    loss, _ = a2c.a2c_loss(agent_a2c, obs, actions, advantages, returns, a2c_args)
    grads_a2c = torch.autograd.grad(loss, list(agent_a2c.parameters()), allow_unused=True)
    loss, _ = ppo.ppo_loss(
        agent_ppo, obs, actions, old_logprobs, old_values, advantages, returns, ppo_args
    )
    grads_ppo = torch.autograd.grad(loss, list(agent_ppo.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads_a2c)
    for g_a2c, g_ppo in zip(grads_a2c, grads_ppo):
        if g_a2c is None or g_ppo is None:
            assert g_a2c is None and g_ppo is None
        else:
            torch.testing.assert_close(g_a2c, g_ppo)
    # and PPO's defaults (advantage normalization, clipping) give another gradient
    loss, _ = ppo.ppo_loss(
        agent_ppo, obs, actions, old_logprobs - 0.5, old_values, advantages, returns, ppo.Args()
    )
    changed = torch.autograd.grad(loss, list(agent_ppo.parameters()), allow_unused=True)
    flat = lambda grads: torch.cat([g.flatten() for g in grads if g is not None])  # noqa: E731
    assert not torch.allclose(flat(changed), flat(grads_a2c))


def test_the_optimizer_is_rmsprop_with_the_flags_settings(in_tmp):
    summary = a2c.train(tiny(rms_alpha=0.9, rms_eps=1e-3, save_model=True, anneal_lr=False))
    ckpt = torch.load(summary["checkpoint"], weights_only=True)
    group = ckpt["optimizer"]["param_groups"][0]
    assert group["alpha"] == 0.9 and group["eps"] == 1e-3 and group["lr"] == 7e-4
    assert "square_avg" in ckpt["optimizer"]["state"][0]  # RMSprop's running average
    assert summary["update_count"] == 1000 // 20  # one gradient step per rollout


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_both_action_types_train_and_evaluate(env_id, in_tmp):
    summary = a2c.train(tiny(env_id=env_id))
    assert summary["global_step"] == 1000 and summary["update_count"] == 50
    assert len(summary["eval_returns"]) == 2 and summary["episodic_returns"]


def test_two_seeded_runs_are_identical_and_resume_continues(in_tmp):
    runs = [a2c.train(tiny(save_model=True)) for _ in range(2)]
    assert runs[0]["episodic_returns"] == runs[1]["episodic_returns"]
    other = a2c.train(tiny(seed=2))
    assert other["episodic_returns"] != runs[0]["episodic_returns"]
    more = a2c.train(tiny(resume=runs[0]["checkpoint"], total_timesteps=2000))
    assert more["global_step"] == 2000 and more["update_count"] == 100
    assert more["run_dir"] == runs[0]["run_dir"]


def test_eval_checkpoint_and_video(in_tmp):
    first = a2c.train(tiny(save_model=True))
    summary = a2c.train(tiny(eval_checkpoint=first["checkpoint"], capture_video=True))
    assert len(summary["eval_returns"]) == 2
    run_name = os.path.basename(first["run_dir"])
    assert any(f.endswith(".mp4") for f in os.listdir(in_tmp / "videos" / run_name))
    ppo_run = ppo.train(
        ppo.Args(
            total_timesteps=256, num_steps=256, num_minibatches=4, eval_episodes=1, save_model=True
        )
    )
    with pytest.raises(ValueError, match="written by ppo.py; use that script"):
        a2c.train(tiny(eval_checkpoint=ppo_run["checkpoint"]))


def test_tensorboard_keys_and_wandb_offline_run(in_tmp):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = a2c.train(tiny(total_timesteps=1200, eval_frequency=1000, track=True))
    events = EventAccumulator(summary["run_dir"])
    events.Reload()
    keys = set(events.Tags()["scalars"])
    expected = {"charts/episodic_return", "charts/episodic_length", "charts/SPS"}
    expected |= {"eval/episodic_return", "losses/policy_loss", "losses/value_loss"}
    assert expected | {"losses/entropy", "charts/learning_rate"} <= keys
    assert list(in_tmp.glob(f"{summary['run_dir']}/wandb/offline-run-*"))


def test_sigterm_saves_a_checkpoint_and_exits_nonzero(in_tmp):
    cmd = [sys.executable, os.path.join(ROOT, "a2c.py"), "--total-timesteps", "10000000"]
    proc = subprocess.Popen(cmd + ["--save-model"], cwd=in_tmp, stdout=subprocess.PIPE)
    deadline = time.time() + 60
    while not list(in_tmp.glob("runs/*")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    (checkpoint,) = in_tmp.glob("runs/*/*.pt")
    assert torch.load(checkpoint, weights_only=True)["global_step"] > 0


def test_non_finite_loss_stops_the_run(in_tmp, monkeypatch):
    real = a2c.a2c_loss

    def poisoned(*a):
        loss, parts = real(*a)
        return loss, {**parts, "value_loss": parts["value_loss"] * float("nan")}

    monkeypatch.setattr(a2c, "a2c_loss", poisoned)
    with pytest.raises(FloatingPointError, match="losses/value_loss is nan at step 20"):
        a2c.train(tiny())


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (dict(gae_lambda=1.5), ValueError, r"--gae-lambda must be in \[0, 1\]"),
        (dict(env_id="CartPole-v7"), ValueError, "did you mean CartPole-v1"),
        (dict(rms_eps=0.0), ValueError, "--rms-eps must be positive"),
        (dict(learning_rate=float("nan")), ValueError, "--learning-rate must be"),
        (dict(total_timesteps=10), ValueError, "less than one rollout of 20"),
        (dict(env_id="Blackjack-v1"), ValueError, "Tuple-shaped observations"),
        (dict(eval_checkpoint="nope.pt"), FileNotFoundError, "checkpoint nope.pt does not exist"),
    ],
)
def test_bad_input_gives_a_clear_error(overrides, error, message, in_tmp):
    with pytest.raises(error, match=message):
        a2c.train(tiny(**overrides))


def test_command_line_error_is_one_line_and_nonzero(in_tmp):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "a2c.py"), "--env-id", "CartPole-v7"],
        cwd=in_tmp,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: --env-id CartPole-v7 is not")


@pytest.mark.learning
def test_cartpole_learns(in_tmp):
    """Default settings and seed: the final deterministic evaluation reaches 475."""
    summary = a2c.train(a2c.Args(eval_frequency=0))
    assert np.mean(summary["eval_returns"]) >= 475


# ---------------------------------------------------------------- glue a review found untested


def test_reward_normalizer_restarts_its_discounted_return_at_episode_ends(in_tmp):
    """4-step episodes of reward 1: the running discounted return takes the values 1, 1 + g,
    1 + g + g^2 and 1 + g + g^2 + g^3 and starts again, so its running mean is their mean."""
    args = tiny(env_id="DiscreteTerminated-v0", normalize_reward=True, save_model=True)
    summary = a2c.train(args)
    saved = torch.load(summary["checkpoint"], weights_only=True)
    g = saved["args"]["gamma"]
    expected = np.mean([sum(g**k for k in range(t + 1)) for t in range(4)])
    assert saved["return_rms"]["mean"].item() == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("script", [a2c, ppo], ids=lambda m: m.__name__)
def test_evaluation_takes_the_most_likely_action_or_the_clipped_mean(script, in_tmp):
    """The agent called on raw observations (what evaluate() runs) gives the argmax of the
    Categorical's probabilities, or the Gaussian's mean clipped to the bounds, however wide the
    exploration; and evaluate() does not depend on torch's or numpy's RNG."""
    torch.manual_seed(0)
    obs = torch.randn(64, 3) * 3
    for space in [gym.spaces.Discrete(4), gym.spaces.Box(-0.1, 0.1, (2,))]:
        agent = script.Agent(3, space, script.Args(hidden_sizes=(16, 16), log_std_init=2.0))
        with torch.no_grad():
            dist = agent.dist(agent.normalize(obs))
            if agent.discrete:
                expected = dist.probs.argmax(-1)
            else:
                expected = dist.mean.clamp(-0.1, 0.1)
            assert torch.equal(agent(obs), expected)
    args = script.Args(env_id="Pendulum-v1", eval_episodes=1, hidden_sizes=(16, 16))
    agent = script.Agent(3, gym.make("Pendulum-v1").action_space, args)
    returns = []
    for seed in [0, 1]:
        torch.manual_seed(seed)
        np.random.seed(seed)
        returns.append(script.evaluate(agent, args, "cpu"))
    assert returns[0] == returns[1]
