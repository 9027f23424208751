"""Tests of ddpg_continuous.py, td3_continuous.py and sac_continuous.py: each option by its defining
effect, episode boundaries, resume, determinism, errors, logging, and (marked `learning`) Pendulum
returns. SAC's own pieces (squashed log-probability, soft target, temperature) are in test_sac.py.
"""

import copy
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import ddpg_continuous
import sac_continuous
import td3_continuous

SCRIPTS = [ddpg_continuous, td3_continuous]
"""the deterministic-policy scripts, which share exploration noise and the actor/critic updates"""
FAMILY = [ddpg_continuous, td3_continuous, sac_continuous]
"""every script of the family: buffer, episodes, checkpoints, logging and errors"""
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(script, **overrides):
    """Arguments for a run of a few seconds."""
    base = dict(
        env_id="Pendulum-v1",
        total_timesteps=600,
        learning_starts=200,
        batch_size=32,
        buffer_size=10_000,
        hidden_sizes=(32, 32),
        eval_frequency=0,
        eval_episodes=1,
    )
    return script.Args(**{**base, **overrides})


# ---------------------------------------------------------------- exploration noise


@pytest.mark.parametrize("script", SCRIPTS)
def test_ou_noise_is_correlated_in_time_and_added_in_half_ranges(script):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    space = gym.spaces.Box(-50.0, 50.0, (3,))
    actor = script.Actor(4, space, tiny(script))
    explorer = script.Exploration(actor, tiny(script, noise_type="ou", num_envs=2), None)
    obs = np.zeros((2, 4), dtype=np.float32)
    with torch.no_grad():
        mu = actor(torch.as_tensor(obs)).numpy()
    xs = []
    for _ in range(5000):
        actions = explorer.act(actor, obs, 0.2, space, rng, "cpu")
        expected = np.clip(mu + 50.0 * explorer.ou_x, -50.0, 50.0)
        np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-5)
        xs.append(explorer.ou_x[0, 0])
    lag1 = np.corrcoef(xs[:-1], xs[1:])[0, 1]
    white = rng.normal(size=5000)
    assert lag1 > 0.95 and abs(np.corrcoef(white[:-1], white[1:])[0, 1]) < 0.05


@pytest.mark.parametrize("script", SCRIPTS)
def test_parameter_noise_perturbs_weights_and_adapts_to_target_distance(script):
    torch.manual_seed(0)
    space = gym.spaces.Box(-2.0, 2.0, (2,))
    actor = script.Actor(3, space, tiny(script, layer_norm=True))
    args = tiny(script, noise_type="param", exploration_noise=1.0, param_noise_adapt=1.05)
    explorer = script.Exploration(actor, args, None)
    explorer.perturb(actor)
    deltas = [
        (p - q).abs().mean().item()
        for p, q in zip(actor.parameters(), explorer.perturbed.parameters())
    ]
    assert all(d > 0.1 for d in deltas)  # every weight perturbed, at about std
    obs = torch.randn(256, 3)
    for _ in range(300):  # std shrinks from 1 until the action distance sits at the target
        explorer.adapt(actor, obs, target=0.1)
    assert explorer.param_std < 0.5
    assert 0.05 < explorer.distance < 0.2
    with torch.no_grad():  # the learning actor itself is untouched
        assert not torch.equal(actor(obs), explorer.perturbed(obs))


@pytest.mark.parametrize("script", SCRIPTS)
def test_noise_decays_linearly_to_its_final_fraction(script, in_tmp, monkeypatch):
    stds = []
    real = script.Exploration.act
    monkeypatch.setattr(
        script.Exploration,
        "act",
        lambda self, actor, obs, std, *rest: stds.append(std) or real(self, actor, obs, std, *rest),
    )
    args = tiny(script, exploration_noise=0.2, noise_decay_to=0.25, learning_starts=0)
    script.train(args)
    assert len(stds) == args.total_timesteps
    assert stds[0] == pytest.approx(0.2)
    assert stds[300] == pytest.approx(0.125)
    assert stds[-1] == pytest.approx(0.05, abs=1e-3)
    assert np.allclose(np.diff(stds), np.diff(stds)[0])  # a straight line


# ---------------------------------------------------------------- replay buffer and PER


def filled_buffer(script, per: bool, n: int = 100):
    rb = script.ReplayBuffer(128, 3, 2, tiny(script, per=per, per_alpha=1.0), "cpu")
    obs = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    rb.add(obs, np.zeros((n, 2)), np.arange(n), obs + 1, np.zeros(n))
    return rb


@pytest.mark.parametrize("script", FAMILY)
def test_uniform_buffer_wraps_and_samples_whole_transitions(script):
    rb = filled_buffer(script, per=False, n=100)
    rb.add(
        np.full((50, 3), -1.0), np.zeros((50, 2)), np.full(50, -1.0), np.zeros((50, 3)), np.ones(50)
    )
    assert rb.size == 128 and rb.pos == (150 % 128)
    (obs, _, rewards, next_obs, _, weights), idx = rb.sample(64, np.random.default_rng(0), 0.4)
    assert torch.all(weights == 1.0)
    # every sampled row is one stored transition: reward and observations belong together
    assert torch.equal(rewards, rb.rewards[torch.as_tensor(idx)])
    assert torch.equal(next_obs[rewards >= 0], obs[rewards >= 0] + 1)


@pytest.mark.parametrize("script", FAMILY)
def test_per_samples_high_priority_more_and_weights_it_down(script):
    rb = filled_buffer(script, per=True, n=100)
    td = torch.full((100,), 0.01)
    td[7] = 10.0  # one transition with a large TD error
    rb.update_priorities(np.arange(100), td)
    counts = np.zeros(100)
    weights_of = {}
    rng = np.random.default_rng(0)
    for _ in range(200):
        data, idx = rb.sample(32, rng, beta=0.5)
        np.add.at(counts, idx, 1)
        weights_of.update(zip(idx.tolist(), data[5].tolist()))
    assert counts[7] > 20 * np.median(counts)
    weights = np.array(list(weights_of.values()))
    assert np.all((weights > 0) & (weights <= 1.0)) and weights.max() == pytest.approx(1.0)
    assert weights_of[7] < 0.1 * weights.max()
    # new transitions enter at the largest priority seen so far
    rb.add(np.zeros((1, 3)), np.zeros((1, 2)), np.zeros(1), np.zeros((1, 3)), np.zeros(1))
    assert rb.tree.priorities(np.array([100]))[0] == pytest.approx(rb.tree.max_priority)


# ---------------------------------------------------------------- networks and updates


@pytest.mark.parametrize("script", SCRIPTS)
def test_actions_are_scaled_to_each_dimensions_bounds(script):
    space = gym.spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 4.0]))
    actor = script.Actor(3, space, tiny(script))
    with torch.no_grad():
        actor.net[-1].bias.copy_(torch.tensor([100.0, -100.0]))  # saturate the tanh
        assert torch.allclose(actor(torch.zeros(1, 3)), torch.tensor([[1.0, 0.0]]))
        actor.net[-1].bias.copy_(torch.tensor([-100.0, 100.0]))
        assert torch.allclose(actor(torch.zeros(1, 3)), torch.tensor([[-1.0, 4.0]]))


@pytest.mark.parametrize("script", FAMILY)
def test_layer_norm_normalizes_hidden_activations(script):
    args = tiny(script, layer_norm=True)
    actor = script.Actor(3, gym.spaces.Box(-1.0, 1.0, (2,)), args)
    hidden = actor.net[:2](torch.randn(64, 3) * 100)  # Linear, then LayerNorm
    assert torch.allclose(hidden.mean(-1), torch.zeros(64), atol=1e-5)
    assert torch.allclose(hidden.std(-1, unbiased=False), torch.ones(64), atol=1e-3)


def networks(script, **overrides):
    args = tiny(script, **overrides)
    space = gym.spaces.Box(-1.0, 1.0, (2,))
    actor = script.Actor(3, space, args)
    qf = (script.TwinQNetwork if script is td3_continuous else script.QNetwork)(3, 2, args)
    return args, actor, copy.deepcopy(actor), qf, copy.deepcopy(qf)


def batch(n=32, reward=1.0):
    return (
        torch.randn(n, 3),
        torch.rand(n, 2) * 2 - 1,
        torch.full((n,), reward),
        torch.randn(n, 3),
        torch.zeros(n),
        torch.ones(n),
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_grad_clip_bounds_the_critic_gradient_norm(script):
    for clip, expect_clipped in [(1e-3, True), (0.0, False)]:
        torch.manual_seed(0)
        args, actor, actor_target, qf, qf_target = networks(script, grad_clip=clip)
        optimizer = torch.optim.Adam(qf.parameters())
        script.update_critic(batch(reward=1e4), actor_target, qf, qf_target, optimizer, args)
        norm = torch.norm(torch.stack([p.grad.norm() for p in qf.parameters()]))
        assert (norm <= 1e-3 + 1e-6) == expect_clipped


@pytest.mark.parametrize("script", SCRIPTS)
def test_actor_update_leaves_critic_weights_alone_and_soft_update_moves_targets_by_tau(script):
    torch.manual_seed(0)
    args, actor, actor_target, qf, qf_target = networks(script, tau=0.25)
    with torch.no_grad():
        for p in qf.parameters():
            p.add_(1.0)  # make online and target critics differ
    before_target = [p.clone() for p in qf_target.parameters()]
    before_qf = [p.clone() for p in qf.parameters()]
    optimizer = torch.optim.Adam(actor.parameters())
    script.update_actor(torch.randn(32, 3), actor, qf, optimizer, args)
    assert all(torch.equal(a, b) for a, b in zip(before_target, qf_target.parameters()))
    script.soft_update([(actor, actor_target), (qf, qf_target)], args.tau)
    for old, new, online in zip(before_target, qf_target.parameters(), qf.parameters()):
        assert torch.allclose(
            new, 0.75 * old + 0.25 * online
        )  # theta' <- tau theta + (1-tau) theta'
    assert all(torch.equal(a, b) for a, b in zip(before_qf, qf.parameters()))
    assert all(p.grad is None for p in qf.parameters())


def test_td3_twin_critics_are_independent_and_the_target_takes_their_minimum():
    torch.manual_seed(0)
    args, actor, actor_target, qf, qf_target = networks(td3_continuous, policy_noise=0.0, gamma=0.5)
    obs, actions = torch.randn(8, 3), torch.rand(8, 2)
    q = qf(obs, actions)
    assert q.shape == (2, 8) and not torch.allclose(q[0], q[1])
    assert torch.allclose(qf(obs, actions, n=1)[0], q[0])
    data = (obs, actions, torch.ones(8), obs, torch.zeros(8), torch.ones(8))
    with torch.no_grad():
        expected = 1.0 + 0.5 * qf_target(obs, actor_target(obs)).min(0).values
    optimizer = torch.optim.SGD(qf.parameters(), lr=0.0)
    loss, q_out, td_abs = td3_continuous.update_critic(
        data, actor_target, qf, qf_target, optimizer, args
    )
    assert torch.allclose(td_abs, (q_out - expected).abs().max(0).values)
    assert loss.item() == pytest.approx(((q_out - expected) ** 2).mean(-1).sum().item(), rel=1e-5)


def test_td3_target_policy_smoothing_noise_is_clipped():
    torch.manual_seed(0)
    args, actor, actor_target, qf, qf_target = networks(
        td3_continuous, policy_noise=10.0, noise_clip=0.3
    )
    seen = []
    real_forward = qf_target.forward
    qf_target.forward = lambda o, a, n=2: seen.append(a) or real_forward(o, a, n)
    obs = torch.randn(512, 3)
    data = (obs, torch.zeros(512, 2), torch.zeros(512), obs, torch.zeros(512), torch.ones(512))
    td3_continuous.update_critic(
        data, actor_target, qf, qf_target, torch.optim.SGD(qf.parameters(), lr=0.0), args
    )
    with torch.no_grad():
        offset = seen[0] - actor_target(obs)
    assert offset.abs().max() <= 0.3 + 1e-6 and offset.abs().max() > 0.29  # clipped, not zero


@pytest.mark.parametrize("script", SCRIPTS)
def test_policy_delay(script, in_tmp, monkeypatch):
    calls = []
    real = script.update_actor
    monkeypatch.setattr(script, "update_actor", lambda *a: calls.append(1) or real(*a))
    summary = script.train(tiny(script, total_timesteps=300, learning_starts=200))
    assert summary["update_count"] == 100
    assert len(calls) == (50 if script is td3_continuous else 100)


# ---------------------------------------------------------------- episodes and counting


@pytest.mark.parametrize("script", FAMILY)
def test_truncation_bootstraps_and_termination_does_not(script, in_tmp):
    """Constant reward 1 and gamma 0.5: Q -> 1 / (1 - gamma) = 2 only if truncated episodes
    bootstrap; on a terminating env the last transition's target is exactly 1."""
    args = dict(total_timesteps=3000, learning_starts=500, gamma=0.5, learning_rate=1e-3)
    buffers = {}
    for env_id in ["ConstantTruncated-v0", "ConstantTerminated-v0"]:
        captured = {}
        real_init = script.ReplayBuffer.__init__

        def capture(self, *a, **k):
            real_init(self, *a, **k)
            captured["rb"] = self

        script.ReplayBuffer.__init__ = capture
        try:
            summary = script.train(tiny(script, env_id=env_id, num_envs=2, **args))
        finally:
            script.ReplayBuffer.__init__ = real_init
        buffers[env_id] = (captured["rb"], summary)
    rb, summary = buffers["ConstantTruncated-v0"]
    # rows are (step in episode, env): the 5th step of every episode is its last
    assert rb.terminated[: rb.size].sum() == 0
    next_obs = rb.next_obs[: rb.size].reshape(-1, 5, 2, 2)
    assert torch.all(next_obs[:, 4] == 0.5) and torch.all(next_obs[:, :4] == 0.0)
    assert summary["episodic_returns"][:4] == [5.0] * 4
    rb_term, _ = buffers["ConstantTerminated-v0"]
    per_step = rb_term.terminated[: rb_term.size].reshape(-1, 5, 2).sum((0, 2))
    assert torch.equal(per_step, torch.tensor([0.0, 0.0, 0.0, 0.0, rb_term.size / 5]))
    # Every stored obs is 0: truncated, Q(0) = 1 + 0.5 Q(0) = 2; terminated, three of four
    # transitions bootstrap and one ends, Q(0) = (3 (1 + 0.5 Q(0)) + 1) / 4 = 1.6.
    q_truncated = last_q(buffers["ConstantTruncated-v0"][1]["run_dir"])
    q_terminated = last_q(buffers["ConstantTerminated-v0"][1]["run_dir"])
    assert q_truncated == pytest.approx(2.0, abs=0.15)
    assert q_terminated == pytest.approx(1.6, abs=0.15)


def last_q(run_dir: str) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir)
    events.Reload()
    return events.Scalars("losses/q_mean")[-1].value


@pytest.mark.parametrize("script", FAMILY)
def test_num_envs_counts_transitions_and_updates(script, in_tmp):
    summary = script.train(
        tiny(script, num_envs=3, total_timesteps=600, learning_starts=300, updates_per_step=0.5)
    )
    assert summary["global_step"] == 600
    assert summary["update_count"] == 150  # 300 transitions after learning starts, 0.5 each
    assert len(summary["episodic_returns"]) == 3  # Pendulum: 200-step episodes, 3 envs


# ---------------------------------------------------------------- determinism and resume


@pytest.mark.parametrize("script", FAMILY)
def test_two_seeded_runs_are_identical(script, in_tmp):
    noise = {} if script is sac_continuous else dict(noise_type="ou")
    runs = [script.train(tiny(script, total_timesteps=800, **noise)) for _ in range(2)]
    assert runs[0]["episodic_returns"] == runs[1]["episodic_returns"]
    assert runs[0]["eval_returns"] == runs[1]["eval_returns"]
    other = script.train(tiny(script, total_timesteps=800, seed=2, **noise))
    assert other["episodic_returns"] != runs[0]["episodic_returns"]


@pytest.mark.parametrize("script", FAMILY)
def test_resume_continues_with_saved_step_weights_optimizers_and_buffer(script, in_tmp):
    noise = {} if script is sac_continuous else dict(noise_type="param")
    first = script.train(tiny(script, save_model=True, save_buffer=True, per=True, **noise))
    saved = torch.load(first["checkpoint"], weights_only=True)
    assert saved["global_step"] == 600 and saved["buffer"]["size"] == 600
    # resuming with no steps left writes back exactly what it loaded
    again = script.train(
        tiny(
            script,
            resume=first["checkpoint"],
            total_timesteps=600,
            save_model=True,
            save_buffer=True,
        )
    )
    reloaded = torch.load(again["checkpoint"], weights_only=True)
    assert again["run_dir"] == first["run_dir"] and reloaded["global_step"] == 600
    networks = ["actor", "qf", "qf_target"]
    networks += ["temperature"] if script is sac_continuous else ["actor_target"]
    for key in networks:
        assert all(torch.equal(saved[key][k], reloaded[key][k]) for k in saved[key])
    optimizers = ["actor_optimizer", "q_optimizer"]
    optimizers += ["alpha_optimizer"] if script is sac_continuous else []
    for key in optimizers:
        assert torch.equal(saved[key]["state"][0]["exp_avg"], reloaded[key]["state"][0]["exp_avg"])
    for key in ["obs", "actions", "rewards", "next_obs", "terminated", "priorities"]:
        assert torch.equal(saved["buffer"][key], reloaded["buffer"][key])
    if script is not sac_continuous:
        assert reloaded["param_noise_std"] == saved["param_noise_std"]
    # and with more steps it goes on from step 600 with the saved hyperparameters (other hidden
    # sizes on the command line would not fit the saved weights)
    more = script.train(
        tiny(script, resume=first["checkpoint"], total_timesteps=800, hidden_sizes=(8, 8))
    )
    assert more["global_step"] == 800 and more["update_count"] == 600


@pytest.mark.parametrize("script", FAMILY)
def test_eval_checkpoint_and_video(script, in_tmp):
    first = script.train(tiny(script, total_timesteps=300, save_model=True))
    summary = script.train(
        tiny(script, eval_checkpoint=first["checkpoint"], eval_episodes=2, capture_video=True)
    )
    assert len(summary["eval_returns"]) == 2
    run_name = os.path.basename(first["run_dir"])
    assert any(f.endswith(".mp4") for f in os.listdir(in_tmp / "videos" / run_name))


@pytest.mark.parametrize("script", FAMILY)
def test_sigterm_saves_a_checkpoint_and_exits_nonzero(script, in_tmp):
    cmd = [
        sys.executable,
        os.path.join(ROOT, f"{script.__name__}.py"),
        "--env-id",
        "Pendulum-v1",
        "--total-timesteps",
        "1000000",
        "--learning-starts",
        "999999",
        "--save-model",
    ]
    proc = subprocess.Popen(cmd, cwd=in_tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not list(in_tmp.glob("runs/*")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    (checkpoint,) = in_tmp.glob("runs/*/*.pt")
    assert torch.load(checkpoint, weights_only=True)["global_step"] > 0


# ---------------------------------------------------------------- logging


@pytest.mark.parametrize("script", FAMILY)
def test_tensorboard_keys_and_wandb_offline_run(script, in_tmp):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = script.train(tiny(script, total_timesteps=1200, eval_frequency=1000, track=True))
    events = EventAccumulator(summary["run_dir"])
    events.Reload()
    keys = set(events.Tags()["scalars"])
    expected = {
        "charts/episodic_return",
        "charts/episodic_length",
        "charts/SPS",
        "eval/episodic_return",
        "losses/qf_loss",
        "losses/actor_loss",
        "losses/q_mean",
        "losses/q_min",
        "losses/q_max",
    }
    if script is sac_continuous:
        expected |= {"losses/alpha", "losses/alpha_loss", "charts/entropy"}
    assert expected <= keys
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [1000, 1200]
    assert list(in_tmp.glob(f"{summary['run_dir']}/wandb/offline-run-*"))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("script", FAMILY)
@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(env_id="Pendulum-v9"), "did you mean Pendulum-v1"),
        (dict(env_id="CartPole-v1"), "Discrete action space.*dqn_rainbow.py or ppo.py"),
        (dict(batch_size=512, buffer_size=256), "--batch-size 512 is larger than --buffer-size"),
        (dict(gamma=1.5), r"--gamma must be in \[0, 1\]"),
        (dict(total_timesteps=0), "--total-timesteps must be positive"),
        (dict(hidden_sizes=(64, 0)), "--hidden-sizes must be all positive"),
        (dict(num_envs=0), "--num-envs must be positive"),
        (dict(resume="missing.pt"), "checkpoint missing.pt does not exist"),
    ],
)
def test_bad_input_gives_a_clear_error(script, in_tmp, overrides, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        script.train(tiny(script, **overrides))


@pytest.mark.parametrize("script", FAMILY)
def test_corrupt_and_mismatched_checkpoints(script, in_tmp):
    (in_tmp / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt.pt could not be read"):
        script.train(tiny(script, resume="corrupt.pt"))
    first = script.train(tiny(script, total_timesteps=250, save_model=True))
    with pytest.raises(ValueError, match="does not fit the actor network"):
        ckpt = torch.load(first["checkpoint"], weights_only=True)
        ckpt["args"]["hidden_sizes"] = (16, 16)
        torch.save(ckpt, "edited.pt")
        script.train(tiny(script, eval_checkpoint="edited.pt"))


@pytest.mark.parametrize("script", FAMILY)
def test_command_line_error_is_one_line_and_nonzero(script, in_tmp):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, f"{script.__name__}.py"), "--env-id", "CartPole-v1"],
        cwd=in_tmp,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: --env-id CartPole-v1 has a")
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("script", FAMILY)
def test_non_finite_loss_stops_the_run_and_no_bad_checkpoint_is_written(
    script, in_tmp, monkeypatch
):
    real = script.update_critic

    def poisoned(*a):
        loss, q, td = real(*a)
        return loss * float("nan"), q, td

    monkeypatch.setattr(script, "update_critic", poisoned)
    with pytest.raises(FloatingPointError, match="losses/qf_loss is nan at step 1000"):
        script.train(tiny(script, total_timesteps=1500))
    module = torch.nn.Linear(2, 2)
    path = str(in_tmp / "good.pt")
    assert script.save_checkpoint(path, {"w": 1}, [module])
    with torch.no_grad():
        module.weight.fill_(float("nan"))
    assert not script.save_checkpoint(path, {"w": 2}, [module])
    assert torch.load(path, weights_only=True)["w"] == 1


# ---------------------------------------------------------------- glue a review found untested


def critic_loss(script, data, nets) -> float:
    """update_critic's loss with a learning rate of 0 (the critic stays as it is) and the same
    random draws every call (TD3's target smoothing noise, SAC's next actions)."""
    args, actor, actor_target, qf, qf_target = nets
    optimizer = torch.optim.SGD(qf.parameters(), lr=0.0)
    torch.manual_seed(1)
    if script is sac_continuous:
        return script.update_critic(data, actor, qf, qf_target, optimizer, 0.5, args)[0].item()
    return script.update_critic(data, actor_target, qf, qf_target, optimizer, args)[0].item()


@pytest.mark.parametrize("script", FAMILY)
def test_critic_loss_is_weighted_by_the_per_importance_weights(script):
    """Weights 0 on half the batch: what that half holds no longer changes the loss; weights 2
    double it."""
    torch.manual_seed(0)
    args = tiny(script, per=True)
    space = gym.spaces.Box(-1.0, 1.0, (2,))
    actor = script.Actor(3, space, args)
    qf = (script.QNetwork if script is ddpg_continuous else script.TwinQNetwork)(3, 2, args)
    nets = (args, actor, copy.deepcopy(actor), qf, copy.deepcopy(qf))
    n = 32
    obs, actions, next_obs = torch.randn(n, 3), torch.rand(n, 2) * 2 - 1, torch.randn(n, 3)
    rewards_a, rewards_b = torch.randn(n), torch.randn(n)
    rewards_b[n // 2 :] = rewards_a[n // 2 :]  # the two batches differ in their first half only
    half = torch.cat([torch.zeros(n // 2), torch.ones(n // 2)])

    def loss(rewards, weights):
        return critic_loss(script, (obs, actions, rewards, next_obs, torch.zeros(n), weights), nets)

    assert loss(rewards_a, half) == pytest.approx(loss(rewards_b, half), rel=1e-6)
    assert loss(rewards_a, torch.ones(n)) != pytest.approx(loss(rewards_b, torch.ones(n)), rel=1e-3)
    assert loss(rewards_a, 2 * torch.ones(n)) == pytest.approx(2 * loss(rewards_a, torch.ones(n)))


@pytest.mark.parametrize("script", SCRIPTS)
def test_ou_noise_restarts_from_zero_when_an_episode_ends(script, in_tmp, monkeypatch):
    """5-step truncated episodes, noise from the first step: the OU state before each sample is 0
    exactly at the first step of every episode."""
    before = []
    real = script.Exploration.act
    monkeypatch.setattr(
        script.Exploration,
        "act",
        lambda self, *a: before.append(self.ou_x.copy()) or real(self, *a),
    )
    args = dict(env_id="ConstantTruncated-v0", num_envs=2, noise_type="ou", learning_starts=0)
    script.train(tiny(script, total_timesteps=40, batch_size=4, **args))
    assert len(before) == 20
    for step, x in enumerate(before):
        assert np.all(x == 0.0) == (step % 5 == 0), step


@pytest.mark.parametrize("noise_type", ["param", "gaussian"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_evaluation_acts_with_the_unperturbed_actor_and_no_noise(script, noise_type, in_tmp):
    """The final evaluation of a run equals that of its saved (unperturbed) actor evaluated
    afresh, and evaluate() gives the same returns whatever the state of torch's and numpy's RNGs."""
    summary = script.train(
        tiny(script, total_timesteps=300, noise_type=noise_type, save_model=True)
    )
    again = script.train(tiny(script, eval_checkpoint=summary["checkpoint"]))
    assert again["eval_returns"] == summary["eval_returns"]
    args = tiny(script, noise_type=noise_type)
    actor = script.Actor(3, gym.make("Pendulum-v1").action_space, args)
    returns = []
    for seed in [0, 1]:
        torch.manual_seed(seed)
        np.random.seed(seed)
        returns.append(script.evaluate(actor, args, "cpu"))
    assert returns[0] == returns[1]


# ---------------------------------------------------------------- learning


@pytest.mark.learning
@pytest.mark.parametrize("script", FAMILY)
def test_pendulum_learns(script, in_tmp):
    """The final deterministic evaluation after 20k steps (default seed) reaches -200."""
    args = script.Args(
        env_id="Pendulum-v1",
        total_timesteps=20_000,
        learning_starts=1000,
        eval_frequency=0,
        eval_episodes=10,
    )
    summary = script.train(args)
    assert np.mean(summary["eval_returns"]) >= -200
