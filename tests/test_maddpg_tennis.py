"""Tests of maddpg_tennis.py: the Tennis physics against ../shared/TENNIS_SPEC.md, its PettingZoo
API, the MADDPG pieces by their defining effects, PettingZoo envs through the same code, resume,
determinism, errors and (marked `learning`) a short Tennis run against random play."""

import math
import os

import numpy as np
import pytest
import torch
from torch import nn
from pettingzoo.test import parallel_api_test

import maddpg_tennis as mt
from maddpg_tennis import Tennis

A, B = 0, 1


def court(**state) -> Tennis:
    """One court, reset, then with the given state arrays overwritten (rackets parked far back
    and at rest on the floor unless said otherwise)."""
    env = Tennis(1, seed=0)
    env.reset(seed=0)
    env.racket_pos[0] = [[-11.0, Tennis.RACKET_REST_Y], [11.0, Tennis.RACKET_REST_Y]]
    for name, value in state.items():
        getattr(env, name)[0] = value
    return env


def idle(n: int = 1) -> np.ndarray:
    """Actions that neither move nor jump."""
    return np.tile([0.0, -1.0], (n, 2, 1))


# ---------------------------------------------------------------- physics against the spec


def test_dropped_ball_reaches_the_floor_in_step_15_and_penalizes_that_side():
    env = court(ball_pos=[-6.0, 6.0])
    for step in range(1, 30):
        _, rewards, terminated, truncated, final_obs = env.step(idle())
        if terminated.any():
            break
    assert step == 15  # the spec's sanity figure: about 1.43 s, env step 15
    assert terminated.all() and not truncated.any()
    np.testing.assert_allclose(rewards[0], [-0.01, 0.0])
    # The last observation shows the ball at the floor slab (centre at -2.75), falling at 9.
    assert final_obs[0, A, -3] == pytest.approx(-2.75, abs=0.2)
    assert final_obs[0, A, -1] == pytest.approx(-9.0)


def test_floor_touch_on_b_side_penalizes_b_only():
    env = court(ball_pos=[5.0, -2.6], ball_vel=[0.0, -5.0])
    _, rewards, terminated, _, _ = env.step(idle())
    np.testing.assert_allclose(rewards[0], [0.0, -0.01])
    assert terminated.all()


def test_ball_hit_by_a_resting_racket_leaves_along_the_reflection_about_the_face():
    # The ball falls onto the middle of A's face (normal (cos 55, sin 55)) from just above it.
    ay = np.array([-math.sin(Tennis.RACKET_TILT), math.cos(Tennis.RACKET_TILT)])
    normal = np.array([math.cos(Tennis.RACKET_TILT), math.sin(Tennis.RACKET_TILT)])
    racket = np.array([-6.0, Tennis.RACKET_REST_Y])
    centre = racket + Tennis.RACKET_OFFSET * ay
    start = centre + (Tennis.RACKET_HALF[0] + 0.5 + 0.02) * normal
    env = court(racket_pos=[racket, [11.0, Tennis.RACKET_REST_Y]], ball_pos=start)
    env.ball_vel[0] = [0.0, -6.0]
    rewards = np.zeros((1, 2))
    for _ in range(3):
        incoming = env.ball_vel[0].copy()
        incoming[1] -= Tennis.GRAVITY * Tennis.DT
        env._physics_step(np.zeros((1, 2)), np.zeros((1, 2), bool), np.ones(1, bool), rewards)
        if env.last_hitter[0] == A:
            break
    assert env.last_hitter[0] == A
    expected = incoming - 2 * (incoming @ normal) * normal
    np.testing.assert_allclose(env.ball_vel[0], expected, atol=1e-9)
    assert expected[0] > 0 and expected[1] > 0  # toward the net and up: what the tilt is for
    # The ball was pushed out of the racket: its centre is a radius from the face.
    d = env.ball_pos[0] - centre
    assert d @ normal == pytest.approx(Tennis.RACKET_HALF[0] + 0.5, abs=1e-9)


def test_a_moving_racket_adds_its_velocity_in_the_contact():
    """Kinematic racket: the ball's velocity relative to the racket is reflected about the normal,
    then the racket's velocity is added back; a step then clamps each component to +-9."""
    normal = np.array([math.cos(Tennis.RACKET_TILT), math.sin(Tennis.RACKET_TILT)])
    ay = np.array([-math.sin(Tennis.RACKET_TILT), math.cos(Tennis.RACKET_TILT)])
    racket = np.array([-6.0, Tennis.RACKET_REST_Y])
    ball = racket + Tennis.RACKET_OFFSET * ay + (Tennis.RACKET_HALF[0] + 0.45) * normal
    env = court(racket_pos=[racket, [11.0, Tennis.RACKET_REST_Y]])
    env.racket_vel[0, A] = [30.0, 0.0]
    pos, vel, hit = env._racket_contact(A, ball[None], np.array([[0.0, -2.0]]))
    rel = np.array([-30.0, -2.0])
    expected = rel - 2 * (rel @ normal) * normal + [30.0, 0.0]
    assert hit[0] and expected[0] > 9.0 and expected[1] > 9.0
    np.testing.assert_allclose(vel[0], expected, atol=1e-9)
    np.testing.assert_allclose((pos[0] - ball) @ normal, 0.05, atol=1e-9)  # pushed out


def test_ball_over_the_net_rewards_the_last_hitter():
    env = court(ball_pos=[-0.3, 2.0], ball_vel=[9.0, 0.0], last_hitter=A)
    _, rewards, terminated, _, _ = env.step(idle())
    np.testing.assert_allclose(rewards[0], [0.1, 0.0])
    assert not terminated.any()
    env = court(ball_pos=[0.3, 2.0], ball_vel=[-9.0, 0.0], last_hitter=B)
    _, rewards, _, _, _ = env.step(idle())
    np.testing.assert_allclose(rewards[0], [0.0, 0.1])


def test_net_and_back_wall_penalize_the_last_hitter_and_end_the_episode():
    env = court(ball_pos=[-0.7, -2.0], ball_vel=[9.0, 0.0], last_hitter=A)
    _, rewards, terminated, _, _ = env.step(idle())
    np.testing.assert_allclose(rewards[0], [-0.01, 0.0])
    assert terminated.all()
    env = court(ball_pos=[11.5, 3.0], ball_vel=[9.0, 0.0], last_hitter=A)
    _, rewards, terminated, _, _ = env.step(idle())
    np.testing.assert_allclose(rewards[0], [-0.01, 0.0])
    assert terminated.all()


def test_first_observation_has_the_spec_layout():
    obs = Tennis(4, seed=3).reset(seed=3)
    assert obs.shape == (4, 2, 24) and obs.dtype == np.float32
    assert np.all(obs[..., :16] == 0.0)
    last = obs[..., 16:]
    assert np.all((last[..., 0] >= -8) & (last[..., 0] <= -6))  # own racket, seen from the left
    assert np.all(last[..., 1] == -1.5) and np.all(last[..., 2:4] == 0.0)
    assert np.all((np.abs(last[..., 4]) >= 6) & (np.abs(last[..., 4]) <= 8))
    assert np.all(last[..., 5] == 6.0) and np.all(last[..., 6:] == 0.0)
    np.testing.assert_allclose(last[:, A, 4], -last[:, B, 4])  # the ball, mirrored


def test_observations_are_mirror_images_through_play():
    """A court and its mirror image (A and B swapped, x negated), driven by swapped actions, give
    each agent the observations its counterpart sees."""
    rng = np.random.default_rng(0)
    env, mirror = Tennis(1, seed=0), Tennis(1, seed=0)
    env.reset(seed=0)
    mirror.reset(seed=0)
    env.racket_pos[0] = [[-4.0, -1.5], [6.5, -2.0]]
    env.ball_pos[0], env.ball_vel[0] = [-3.5, 3.0], [0.0, 0.0]
    mirror.racket_pos[0] = [[-6.5, -2.0], [4.0, -1.5]]
    mirror.ball_pos[0], mirror.ball_vel[0] = [3.5, 3.0], [0.0, 0.0]
    env.frames[:], mirror.frames[:] = 0.0, 0.0  # forget the frames of the reset state
    for _ in range(25):
        actions = rng.uniform(-1, 1, (1, 2, 2))
        obs, _, terminated, _, final = env.step(actions)
        obs_m, _, terminated_m, _, final_m = mirror.step(actions[:, ::-1])
        np.testing.assert_allclose(final[0, A], final_m[0, B], atol=1e-5)
        np.testing.assert_allclose(final[0, B], final_m[0, A], atol=1e-5)
        assert terminated[0, 0] == terminated_m[0, 0]
        if terminated.any():
            break


def test_rackets_cannot_cross_toward_the_net():
    env = court(racket_pos=[[-3.0, Tennis.RACKET_REST_Y], [3.0, Tennis.RACKET_REST_Y]])
    env.ball_pos[0] = [-9.0, 100.0]  # far above: no contact, no floor for a while
    toward_net = np.array([[[1.0, -1.0], [1.0, -1.0]]])  # action x is mirrored for B
    for _ in range(5):
        env.step(toward_net)
    assert env.racket_pos[0, A, 0] == -1.0 and env.racket_pos[0, B, 0] == 1.0


def test_jump_happens_only_from_the_ground():
    env = court(ball_pos=[-9.0, 100.0])
    env.step(np.array([[[0.0, 1.0], [0.0, -1.0]]]))
    assert env.racket_pos[0, A, 1] > Tennis.RACKET_REST_Y + 0.5  # A jumped
    assert env.racket_pos[0, B, 1] == Tennis.RACKET_REST_Y  # B did not ask
    # Jump held for 6 s of physics: every new rise starts from rest on the floor.
    env = court(ball_pos=[-9.0, 1000.0])
    jump, no_move = np.ones((1, 2), bool), np.zeros((1, 2))
    heights, launches = [], []
    for t in range(300):
        before = env.racket_pos[0, A].copy(), env.racket_vel[0, A, 1]
        env._physics_step(no_move, jump, np.ones(1, bool), np.zeros((1, 2)))
        heights.append(env.racket_pos[0, A, 1])
        if env.racket_vel[0, A, 1] > 1.0 and before[1] <= 0.0:  # a rise begins
            launches.append(before[0][1])
    assert len(launches) >= 2  # it came down and went up again
    assert all(h == Tennis.RACKET_REST_Y for h in launches)  # each time from the floor
    assert max(heights) == pytest.approx(-1.5 + 7.0**2 / (2 * 9.81), abs=0.2)


def test_racket_settles_on_the_floor_slab_at_its_rest_height():
    env = court()
    env.reset(seed=0)
    for _ in range(10):
        env.step(idle())
        if env.steps[0] == 0:  # the ball landed and the court was reset: keep waiting
            env.ball_pos[0] = [-9.0, 100.0]
    assert np.allclose(env.racket_pos[0, :, 1], Tennis.RACKET_REST_Y)
    # Its lowest corner sits on the slab top (y = -3.25).
    corner = Tennis.RACKET_REST_Y + Tennis.RACKET_OFFSET * math.cos(Tennis.RACKET_TILT)
    corner -= Tennis.RACKET_HALF[0] * math.sin(Tennis.RACKET_TILT)
    corner -= Tennis.RACKET_HALF[1] * math.cos(Tennis.RACKET_TILT)
    assert corner == pytest.approx(-3.25)
    assert Tennis.RACKET_REST_Y < Tennis.JUMP_BELOW  # so a jump is possible at rest


def test_courts_are_independent_and_match_single_courts():
    rng = np.random.default_rng(1)
    many = Tennis(3, seed=5)
    many.reset(seed=5)
    singles = []
    for i in range(3):
        single = Tennis(1)
        single.reset(seed=0)
        for name in ["racket_pos", "racket_vel", "ball_pos", "ball_vel", "frames"]:
            getattr(single, name)[0] = getattr(many, name)[i]
        singles.append(single)
    for _ in range(12):
        actions = rng.uniform(-1, 1, (3, 2, 2))
        _, rewards, terminated, _, final = many.step(actions)
        for i, single in enumerate(singles):
            _, r, t, _, f = single.step(actions[i : i + 1])
            np.testing.assert_allclose(final[i], f[0], atol=1e-6)
            np.testing.assert_allclose(rewards[i], r[0])
            if t.any():  # resets draw from different generators: stop comparing this court
                singles[i] = None
                break
        singles = [s for s in singles if s is not None] + [None] * 0
        if len(singles) < 3:
            break


def test_step_cap_truncates_and_resets():
    env = Tennis(1, max_steps=5, seed=0)
    env.reset(seed=0)
    env.ball_pos[0] = [-9.0, 100.0]
    for step in range(1, 6):
        obs, _, terminated, truncated, final = env.step(idle())
    assert truncated[0] and not terminated.any()
    assert final[0, A, -3] > 50 and obs[0, A, -3] == 6.0  # final observation vs reset one


def test_pettingzoo_parallel_api_and_render():
    env = mt.TennisParallelEnv(max_steps=50, render_mode="rgb_array")
    parallel_api_test(env, num_cycles=200)
    env.reset(seed=0)
    image = env.render()
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert (image == (230, 180, 20)).all(-1).sum() > 20  # the ball is drawn


# ---------------------------------------------------------------- MADDPG pieces


def tiny(**overrides) -> mt.Args:
    base = dict(
        total_timesteps=400,
        learning_starts=100,
        batch_size=32,
        buffer_size=5_000,
        hidden_sizes=(32, 32),
        eval_frequency=0,
        eval_episodes=2,
        max_episode_steps=50,
        # the tests of single pieces use separate networks and decaying noise
        shared_actor=False,
        shared_critic=False,
        noise_decay_to=0.2,
    )
    return mt.Args(**{**base, **overrides})


def test_defaults_are_the_benchmarked_tennis_settings():
    """benchmarks/maddpg_runs.sh tennis: --shared-actor --shared-critic --noise-decay-to 1.0."""
    args = mt.Args()
    assert args.env_id == "Tennis" and args.shared_actor and args.shared_critic
    assert args.noise_decay_to == 1.0


def test_sharing_networks_between_unlike_agents_is_refused(in_tmp):
    with pytest.raises(ValueError, match="sharing networks needs symmetric agents"):
        mt.train(mt.Args(env_id="simple_adversary_v3", total_timesteps=400, learning_starts=100))


def test_batched_mlp_equals_separate_networks():
    torch.manual_seed(0)
    net = mt.BatchedMLP(3, [5, 8, 2])
    x = torch.randn(3, 4, 5)
    with torch.no_grad():
        out = net(x)
        for k in range(3):
            h = torch.relu(x[k] @ net.weights[0][k] + net.biases[0][k])
            torch.testing.assert_close(out[k], h @ net.weights[1][k] + net.biases[1][k])


@pytest.mark.parametrize("independent", [False, True])
def test_centralized_critic_sees_every_agent_and_independent_only_its_own(independent):
    torch.manual_seed(0)
    critic = mt.Critic(2, 3, 2, tiny(independent=independent))
    obs, actions = torch.randn(4, 2, 3), torch.randn(2, 4, 2, 2)
    q = critic(obs, actions)
    other_obs, other_actions = obs.clone(), actions.clone()
    other_obs[:, B] += 1.0
    other_actions[A, :, B] += 1.0  # critic A is asked about a different action of agent B
    q2 = critic(other_obs, other_actions)
    assert q.shape == (2, 4)
    moved = not torch.allclose(q[A], q2[A])
    assert moved != independent


def test_actor_update_moves_each_agent_up_its_own_critic_only():
    """Agent A's actor gradient comes from critic A alone: with critic B's weights zeroed out of
    the loss (its output multiplied by zero), A's actor still learns, and B's does not."""
    torch.manual_seed(0)
    args = tiny(grad_clip=0.0)
    actor = mt.Actor(2, 3, 2, -np.ones((2, 2)), np.ones((2, 2)), args)
    critic = mt.Critic(2, 3, 2, args)
    with torch.no_grad():
        critic.net.weights[-1][B].zero_()
        critic.net.biases[-1][B].zero_()
    actor_target, critic_target = mt.copy.deepcopy(actor), mt.copy.deepcopy(critic)
    actor_opt = torch.optim.SGD(actor.parameters(), lr=0.1)
    critic_opt = torch.optim.SGD(critic.parameters(), lr=0.0)
    data = (torch.randn(8, 2, 3), torch.rand(8, 2, 2), torch.zeros(8, 2), torch.randn(8, 2, 3))
    data += (torch.zeros(8, 2),)
    before = [w.detach().clone() for w in actor.net.weights]
    mt.update(data, actor, actor_target, critic, critic_target, actor_opt, critic_opt, args)
    changed = [(w - b).abs().sum(dim=(1, 2)) for w, b in zip(actor.net.weights, before)]
    assert all(c[A] > 0 for c in changed) and all(c[B] == 0 for c in changed)


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_target_policy_smoothing_adds_clipped_noise_in_action_units(noise):
    """The critics' targets see mu'(o') plus Gaussian noise of std noise * half the action range,
    clipped to +- target_noise_clip of it and to the bounds; without it they see mu'(o') exactly."""
    torch.manual_seed(0)
    args = tiny(target_policy_noise=noise, target_noise_clip=0.3)
    low, high = np.full((2, 2), -2.0), np.full((2, 2), 2.0)
    actor = mt.Actor(2, 3, 2, low, high, args)
    critic = mt.Critic(2, 3, 2, args)
    seen = []

    class Recorder(nn.Module):
        def __init__(self, critic):
            super().__init__()
            self.critic = critic

        def forward(self, obs, actions):
            seen.append(actions[0].detach().clone())
            return self.critic(obs, actions)

    actor_target, critic_target = mt.copy.deepcopy(actor), Recorder(mt.copy.deepcopy(critic))
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.0) for m in (actor, critic)]
    batch = 4096
    next_obs = torch.randn(batch, 2, 3)
    data = (torch.randn(batch, 2, 3), torch.rand(batch, 2, 2), torch.zeros(batch, 2), next_obs)
    data += (torch.zeros(batch, 2),)
    mt.update(data, actor, actor_target, critic, critic_target, *optimizers, args)
    with torch.no_grad():
        clean = actor_target(next_obs)
    diff = seen[0] - clean
    if noise == 0.0:
        assert torch.equal(diff, torch.zeros_like(diff))
        return
    assert seen[0].abs().max() <= 2.0
    assert diff.abs().max() <= 0.3 * 2.0 + 1e-6 and diff.abs().max() > 0.5
    inside = clean.abs() < 1.0  # far from the bounds: only the noise clip acts
    clipped = torch.randn(1_000_000).mul(noise).clamp(-0.3, 0.3).std().item() * 2.0
    assert diff[inside].std().item() == pytest.approx(clipped, rel=0.05)


def test_shared_actor_is_one_network_for_both_agents():
    torch.manual_seed(0)
    shared = mt.Actor(2, 3, 2, -np.ones((2, 2)), np.ones((2, 2)), tiny(shared_actor=True))
    separate = mt.Actor(2, 3, 2, -np.ones((2, 2)), np.ones((2, 2)), tiny())
    obs = torch.randn(5, 1, 3).expand(5, 2, 3)  # both agents see the same thing
    assert torch.equal(shared(obs)[:, A], shared(obs)[:, B])
    assert not torch.allclose(separate(obs)[:, A], separate(obs)[:, B])
    assert sum(p.numel() for p in separate.parameters()) == 2 * sum(
        p.numel() for p in shared.parameters()
    )


@pytest.mark.parametrize("n", [2, 3])
def test_shared_critic_is_one_network_that_puts_each_agent_first(n):
    """Relabeling the agents relabels the shared critic's outputs the same way (critic i is the
    one network asked from agent i's seat), and it has one agent's share of parameters."""
    torch.manual_seed(0)
    shared = mt.Critic(n, 3, 2, tiny(shared_critic=True))
    obs, actions = torch.randn(4, n, 3), torch.randn(n, 4, n, 2)
    q = shared(obs, actions)
    shift = (torch.arange(n) + 1) % n  # new agent j is old agent j + 1
    q_shifted = shared(obs[:, shift], actions[shift][:, :, shift])
    torch.testing.assert_close(q_shifted, q[shift])
    separate = mt.Critic(n, 3, 2, tiny())
    assert not torch.allclose(separate(obs[:, shift], actions[shift][:, :, shift]), q[shift])
    assert sum(p.numel() for p in separate.parameters()) == n * sum(
        p.numel() for p in shared.parameters()
    )


def test_gradient_clipping_is_per_agent():
    w = torch.nn.Parameter(torch.zeros(2, 3, 4))
    w.grad = torch.ones(2, 3, 4)
    w.grad[B] *= 0.01  # norm 0.0346: under the limit, left alone
    mt.clip_grad_norm_per_agent([w], 1.0)
    assert w.grad[A].norm() == pytest.approx(1.0, rel=1e-4)
    assert torch.allclose(w.grad[B], torch.full((3, 4), 0.01))


def test_ou_noise_is_correlated_in_time_and_noise_decays_linearly():
    rng = np.random.default_rng(0)
    ou = mt.OrnsteinUhlenbeckNoise((1, 2, 2), theta=0.15, dt=1e-2)
    xs = np.array([ou.sample(0.2, rng)[0, 0, 0] for _ in range(3000)])
    assert np.corrcoef(xs[:-1], xs[1:])[0, 1] > 0.95
    args = tiny(exploration_noise=0.4, noise_decay_to=0.25, total_timesteps=1000)
    assert mt.exploration_std(args, 0) == pytest.approx(0.4)
    assert mt.exploration_std(args, 500) == pytest.approx(0.25)
    assert mt.exploration_std(args, 1000) == pytest.approx(0.1)


# ---------------------------------------------------------------- training runs


def test_every_court_episode_counts_once_and_determinism(in_tmp):
    summary = mt.train(tiny(num_envs=4, total_timesteps=400))
    again = mt.train(tiny(num_envs=4, total_timesteps=400))
    assert summary["episodic_returns"] == again["episodic_returns"]
    # 4 courts x 100 steps: every court finishes an episode at least every 50 steps (the cap).
    assert len(summary["episodic_returns"]) >= 4 * 2
    assert summary["global_step"] == 400 and len(summary["eval_returns"]) == 2
    assert all(-0.011 < s < 10 for s in summary["episodic_returns"])


def test_ou_noise_restarts_from_zero_when_an_episode_ends(in_tmp, monkeypatch):
    """Episodes of at most 5 steps, noise from the first step: the OU state before a sample is 0
    exactly at the first step and after each finished episode."""
    events = []
    real = mt.OrnsteinUhlenbeckNoise.sample
    monkeypatch.setattr(
        mt.OrnsteinUhlenbeckNoise,
        "sample",
        lambda self, sigma, rng: events.append(self.x.copy()) or real(self, sigma, rng),
    )
    real_log = mt.Run.log_episode
    monkeypatch.setattr(mt.Run, "log_episode", lambda *a: events.append("end") or real_log(*a))
    args = dict(num_envs=1, max_episode_steps=5, learning_starts=0, noise_type="ou")
    mt.train(tiny(total_timesteps=40, batch_size=4, **args))
    ends = [isinstance(e, str) for e in events]
    assert sum(ends) >= 8
    starts = [True] + ends[:-1]
    samples = [(x, start) for x, start in zip(events, starts) if not isinstance(x, str)]
    assert len(samples) == 40
    for step, (x, start) in enumerate(samples):
        assert np.all(x == 0.0) == start, step


def test_resume_continues_the_same_run_with_its_buffer_and_scores(in_tmp):
    first = mt.train(tiny(total_timesteps=300, save_model=True, save_buffer=True))
    ckpt = torch.load(first["checkpoint"], weights_only=True)
    assert ckpt["global_step"] == 300 and ckpt["buffer"]["size"] == 300
    assert len(ckpt["scores"]) == len(first["episodic_returns"])
    resumed = mt.train(tiny(total_timesteps=500, resume=first["checkpoint"], save_model=True))
    assert resumed["run_dir"] == first["run_dir"] and resumed["global_step"] == 500
    assert resumed["episodic_returns"][: len(first["episodic_returns"])] == pytest.approx(
        first["episodic_returns"]
    )


def test_eval_checkpoint_records_video(in_tmp):
    summary = mt.train(tiny(total_timesteps=200, save_model=True))
    out = mt.train(tiny(eval_checkpoint=summary["checkpoint"], capture_video=True, eval_episodes=1))
    assert len(out["eval_returns"]) == 1
    videos = os.listdir(os.path.join("videos", os.path.basename(summary["run_dir"])))
    assert videos == ["eval_checkpoint.mp4"]


def test_wandb_offline_run_is_written(in_tmp):
    mt.train(tiny(total_timesteps=150, track=True))
    assert any(
        d.startswith("offline-run")
        for d in os.listdir(in_tmp / "runs" / os.listdir(in_tmp / "runs")[0] / "wandb")
    )


@pytest.mark.parametrize(
    "env_id, n_agents, obs_dim, act_dim",
    [("simple_spread_v3", 3, 18, 5), ("multiwalker_v9", 3, 31, 4)],
)
def test_pettingzoo_envs_run_through_the_same_code(in_tmp, env_id, n_agents, obs_dim, act_dim):
    env = mt.make_multi_agent_env(tiny(env_id=env_id), 2, seed=0)
    obs = env.reset(seed=0)
    assert obs.shape == (2, n_agents, obs_dim) and env.act_dim == act_dim
    summary = mt.train(tiny(env_id=env_id, total_timesteps=160, learning_starts=60))
    assert summary["global_step"] == 160 and len(summary["eval_returns"]) == 2


def test_pettingzoo_env_copies_are_closed_after_training_and_evaluation(in_tmp, monkeypatch):
    closed, made = [], []

    def counted(*args, **kwargs):
        vec = make(*args, **kwargs)
        for env in vec.envs:
            env.close = lambda env=env: closed.append(env) or type(env).close(env)
        made.extend(vec.envs)
        return vec

    make = mt.make_multi_agent_env
    monkeypatch.setattr(mt, "make_multi_agent_env", counted)
    args = tiny(env_id="simple_spread_v3", total_timesteps=160, save_model=True)
    summary = mt.train(args)
    mt.train(tiny(env_id="simple_spread_v3", eval_checkpoint=summary["checkpoint"]))
    # training, its final evaluation, the checkpoint's env (for the sizes) and its evaluation
    assert len(made) == args.num_envs + 2 * args.eval_episodes + 1
    assert closed == made


def test_errors_name_the_flag(in_tmp):
    with pytest.raises(ValueError, match="did you mean simple_spread_v3"):
        mt.train(tiny(env_id="simple_sprad_v3"))
    with pytest.raises(ValueError, match="Box"):
        mt.train(tiny(env_id="pursuit_v5"))
    with pytest.raises(ValueError, match="--gamma"):
        mt.train(tiny(gamma=1.5))
    with pytest.raises(ValueError, match="--target-policy-noise"):
        mt.train(tiny(target_policy_noise=-0.1))
    with pytest.raises(ValueError, match="--batch-size"):
        mt.train(tiny(batch_size=100, buffer_size=50))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mt.train(tiny(resume="missing.pt"))


def test_observation_standardization_comes_from_the_buffer_and_is_applied():
    torch.manual_seed(0)
    rb = mt.ReplayBuffer(100, 2, 3, 2, "cpu")
    obs = np.random.default_rng(0).normal([0.0, 10.0, -5.0], [1.0, 30.0, 0.1], (50, 2, 3))
    rb.add(obs, np.zeros((50, 2, 2)), np.zeros((50, 2)), obs, np.zeros((50, 2)))
    args = tiny()
    actor = mt.Actor(2, 3, 2, -np.ones((2, 2)), np.ones((2, 2)), args)
    critic = mt.Critic(2, 3, 2, args)
    x = torch.randn(4, 2, 3)
    raw = actor(x)
    mt.set_obs_normalization(rb, [actor, critic])
    flat = obs.reshape(-1, 3)
    np.testing.assert_allclose(actor.obs_mean, flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(critic.obs_std, flat.std(0, ddof=1), rtol=1e-4)
    torch.testing.assert_close(actor(x * actor.obs_std + actor.obs_mean), raw)


@pytest.mark.learning
def test_tennis_learns_to_rally_beyond_random_play(in_tmp):
    """Random play scores 0.015 (benchmarks/results/random_play.md); a short run of the
    defaults (the benchmarked Tennis settings: shared actor and critic, constant noise) reaches a
    100-episode mean of 0.1 (several balls over the net), and its deterministic agents score 0.5,
    five balls over the net an episode (0.646 measured at this budget and seed)."""
    summary = mt.train(mt.Args(total_timesteps=10_000, eval_frequency=0, eval_episodes=10))
    scores = np.array(summary["episodic_returns"])
    assert len(scores) >= 100
    mean100 = np.convolve(scores, np.ones(100) / 100, "valid")
    assert mean100.max() >= 0.1
    assert np.mean(summary["eval_returns"]) >= 0.5
