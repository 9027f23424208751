"""Tests of dqn_rainbow.py: each Rainbow component by the effect that defines it, the pixel path on a
real Atari env, determinism, resume, errors and the CartPole learning test."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import dqn_rainbow as dqn


def tiny(**overrides):
    base = dict(
        total_timesteps=600,
        learning_starts=200,
        batch_size=32,
        buffer_size=5000,
        hidden_sizes=(32, 32),
        eval_frequency=0,
        eval_episodes=2,
    )
    return dqn.Args(**{**base, **overrides})


# ---------------------------------------------------------------- n-step returns


def collect(n, steps, gamma=0.5):
    """Feeds one env's (reward, terminated, truncated) steps; observations are the step index."""
    collector = dqn.NStepCollector(1, n, gamma)
    out = []
    for t, (reward, terminated, truncated) in enumerate(steps):
        out += collector.add(0, t, 0, reward, t + 1, terminated, truncated)
    return out


def test_n_step_returns_mid_episode_and_flushed_at_termination():
    # rewards 1, 2, 4, 8 then termination; n = 3, gamma = 0.5
    out = collect(
        3, [(1.0, False, False), (2.0, False, False), (4.0, False, False), (8.0, True, False)]
    )
    assert [(o, r, nxt, d) for o, _, r, nxt, d in out] == [
        (0, 1 + 0.5 * 2 + 0.25 * 4, 3, 0.125),  # a full 3-step return, bootstrapping from s_3
        (1, 2 + 0.5 * 4 + 0.25 * 8, 4, 0.0),  # its 3 steps end in termination: no bootstrap
        (2, 4 + 0.5 * 8, 4, 0.0),  # the tail is flushed with fewer steps
        (3, 8.0, 4, 0.0),
    ]


def test_n_step_truncation_bootstraps_and_nothing_leaks_into_the_next_episode():
    out = collect(
        3,
        [
            (1.0, False, False),
            (2.0, False, True),
            (100.0, False, False),
            (100.0, False, False),
            (100.0, False, False),
        ],
    )
    first_episode = [(o, r, nxt, d) for o, _, r, nxt, d in out if o < 2]
    assert first_episode == [(0, 1 + 0.5 * 2, 2, 0.25), (1, 2.0, 2, 0.5)]  # bootstrap from s_2
    # the next episode's first transition holds its own rewards only
    assert [(o, r) for o, _, r, _, _ in out if o >= 2] == [(2, 100 + 50 + 25)]


# ---------------------------------------------------------------- C51


def test_projection_conserves_mass_and_matches_a_hand_worked_case():
    support = torch.linspace(-2.0, 2.0, 5)  # atoms -2, -1, 0, 1, 2
    probs = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]])  # all mass on 0
    # R = 0.5: 0 -> 0.5, halfway between atoms 0 and 1
    out = dqn.project_distribution(probs, torch.tensor([0.5]), torch.tensor([0.9]), support)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]]))
    # an exact hit stays whole, and values past the ends land on the end atoms
    probs = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.2]])
    out = dqn.project_distribution(probs, torch.tensor([1.0]), torch.tensor([0.0]), support)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]]))
    out = dqn.project_distribution(probs, torch.tensor([5.0]), torch.tensor([1.0]), support)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]))
    rng = torch.Generator().manual_seed(0)
    many = torch.softmax(torch.randn(64, 5, generator=rng), -1)
    out = dqn.project_distribution(many, torch.randn(64, generator=rng), torch.rand(64), support)
    torch.testing.assert_close(out.sum(-1), torch.ones(64))
    assert torch.all(out >= 0)


# ---------------------------------------------------------------- network components


def test_noisy_layers_resample_noise_and_use_means_in_evaluation():
    torch.manual_seed(0)
    layer = dqn.NoisyLinear(4, 3, sigma0=0.5)
    x = torch.randn(2, 4)
    first = layer(x)
    assert torch.equal(first, layer(x))  # the same noise until it is resampled
    layer.reset_noise()
    assert not torch.allclose(first, layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
    layer.reset_noise()
    torch.testing.assert_close(layer(x), x @ layer.weight_mu.T + layer.bias_mu)


def test_dueling_advantages_are_centred():
    torch.manual_seed(0)
    net = dqn.QNetwork((4,), 3, tiny(distributional=False, noisy=False))
    obs = torch.randn(8, 4)
    h = net.torso(obs)
    value = net.value(h)  # (B, 1)
    q = net(obs)
    torch.testing.assert_close(q.mean(1, keepdim=True), value)  # Q - V has mean 0 over actions


def test_double_q_target_differs_from_the_max_target_on_a_constructed_case():
    args = tiny(distributional=False, noisy=False, dueling=False, per=False, gamma=1.0)
    online = dqn.QNetwork((2,), 2, args)
    target = dqn.QNetwork((2,), 2, args)
    for net, (q0, q1) in [(online, (1.0, 0.0)), (target, (0.0, 5.0))]:
        with torch.no_grad():
            last = net.advantage[-1]
            last.weight.zero_()
            last.bias.copy_(torch.tensor([q0, q1]))
    data = (
        torch.zeros(1, 2),
        torch.tensor([0]),
        torch.tensor([0.0]),
        torch.zeros(1, 2),
        torch.tensor([1.0]),
        torch.ones(1),
    )
    for double, y in [(True, 0.0), (False, 5.0)]:
        # double: the online net picks action 0, the target net values it at 0; max picks 5
        _, per_sample, q = dqn.dqn_loss(
            data, online, target, tiny(**{**vars(args), "double": double})
        )
        expected = torch.nn.functional.smooth_l1_loss(q, torch.tensor([y]), reduction="none")
        torch.testing.assert_close(per_sample, expected)


def test_take_picks_each_rows_action_from_q_values_and_from_atoms():
    out = torch.arange(24.0).view(4, 3, 2)  # (batch, actions, atoms)
    actions = torch.tensor([2, 0, 1, 2])
    picked = dqn.take(out, actions)
    assert picked.tolist() == [[4.0, 5.0], [6.0, 7.0], [14.0, 15.0], [22.0, 23.0]]
    assert dqn.take(out[..., 0], actions).tolist() == [4.0, 6.0, 14.0, 22.0]


@pytest.mark.parametrize("max_norm", [0.05, 1e6])  # over the bound, and within it
def test_gradient_clipping_matches_clip_grad_norm_bit_for_bit(max_norm):
    grads = []
    for clip in [torch.nn.utils.clip_grad_norm_, dqn.clip_grad_norm]:
        torch.manual_seed(0)
        net = dqn.QNetwork((3,), 2, tiny())
        net(torch.randn(8, 3)).sum().backward()
        params = list(net.parameters())
        before = torch.cat([p.grad.flatten() for p in params])
        clip(params, max_norm)
        grads.append(torch.cat([p.grad.flatten() for p in params]))
    assert torch.equal(grads[0], grads[1])
    assert torch.linalg.vector_norm(grads[1]) <= max_norm * (1 + 1e-6)
    assert torch.equal(grads[1], before) == (max_norm > 1)


def test_uniform_replay_has_no_weights_and_its_loss_is_the_plain_mean():
    args = tiny(per=False, distributional=False, noisy=False)
    rb = dqn.ReplayBuffer(64, gym.spaces.Box(-1.0, 1.0, (2,)), args, "cpu")
    for i in range(40):
        rb.add(np.full(2, i / 40), i % 2, float(i), np.zeros(2), 0.9)
    data, idx = rb.sample(16, np.random.default_rng(0), beta=0.4)
    assert data[5] is None and data[2].tolist() == idx.astype(np.float32).tolist()
    online, target = dqn.QNetwork((2,), 2, args), dqn.QNetwork((2,), 2, args)
    loss, per_sample, _ = dqn.dqn_loss(data, online, target, args)
    assert loss == per_sample.mean()


def test_per_weights_lie_in_0_1_and_high_priorities_are_sampled_more():
    space = gym.spaces.Box(-1.0, 1.0, (2,))
    rb = dqn.ReplayBuffer(128, space, tiny(per=True, per_alpha=1.0), "cpu")
    for i in range(100):
        rb.add(np.zeros(2), 0, float(i), np.zeros(2), 0.9)
    losses = torch.full((100,), 0.01)
    losses[42] = 10.0
    rb.update_priorities(np.arange(100), losses)
    rng = np.random.default_rng(0)
    counts, weight_of = np.zeros(100), {}
    for _ in range(100):
        data, idx = rb.sample(32, rng, beta=0.6)
        np.add.at(counts, idx, 1)
        weight_of.update(zip(idx.tolist(), data[5].tolist()))
    weights = np.array(list(weight_of.values()))
    assert np.all((weights > 0) & (weights <= 1.0))
    assert counts[42] > 20 * np.median(counts) and weight_of[42] == min(weight_of.values())
    # new transitions enter at the largest priority so far
    rb.add(np.zeros(2), 0, 0.0, np.zeros(2), 0.9)
    assert rb.tree.priorities(100) == pytest.approx(rb.tree.max_priority)


def test_epsilon_greedy_only_without_noisy_nets():
    assert dqn.epsilon(tiny(noisy=True), 0) == 0.0
    args = tiny(noisy=False, total_timesteps=1000, exploration_fraction=0.5)
    assert [dqn.epsilon(args, s) for s in (0, 250, 500, 900)] == pytest.approx(
        [1.0, 0.525, 0.05, 0.05]
    )


def test_default_c51_support_fits_the_task_family():
    assert dqn.atom_support(tiny(), pixels=False)[[0, -1]].tolist() == [-100.0, 100.0]
    assert dqn.atom_support(tiny(), pixels=True)[[0, -1]].tolist() == [-10.0, 10.0]
    assert dqn.atom_support(tiny(v_min=-5, v_max=7), pixels=True)[[0, -1]].tolist() == [-5, 7]


# ---------------------------------------------------------------- runs


def test_pixel_path_on_a_real_atari_env(in_tmp):
    summary = dqn.train(
        tiny(
            env_id="ALE/Pong-v5",
            total_timesteps=300,
            learning_starts=100,
            batch_size=8,
            buffer_size=400,
            eval_episodes=1,
            eval_checkpoint=None,
            save_model=True,
        )
    )
    ckpt = torch.load(summary["checkpoint"], weights_only=True)
    assert ckpt["q_network"]["torso.0.weight"].shape == (32, 4, 8, 8)  # the Nature CNN on 4 frames
    assert summary["update_count"] == 200 and summary["eval_returns"][0] <= 0


def test_two_seeded_runs_are_identical(in_tmp):
    runs = [dqn.train(tiny()) for _ in range(2)]
    assert runs[0]["episodic_returns"] == runs[1]["episodic_returns"]
    assert runs[0]["eval_returns"] == runs[1]["eval_returns"]


def test_resume_continues_with_the_saved_buffer(in_tmp):
    first = dqn.train(tiny(save_model=True, save_buffer=True))
    saved = torch.load(first["checkpoint"], weights_only=True)
    assert saved["buffer"]["size"] > 500 and saved["global_step"] == 600
    more = dqn.train(tiny(resume=first["checkpoint"], total_timesteps=800))
    assert more["global_step"] == 800 and more["update_count"] == 600
    assert more["run_dir"] == first["run_dir"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(env_id="Pendulum-v1"),
            "Box action space.*td3_continuous.py, ddpg_continuous.py or ppo.py",
        ),
        (dict(env_id="CartPole-v2"), "did you mean CartPole-v1"),
        (dict(v_min=5.0, v_max=1.0), "--v-min 5.0 must be below --v-max 1.0"),
        (dict(batch_size=64, buffer_size=32), "--batch-size 64 is larger than --buffer-size 32"),
        (dict(n_step=0), "--n-step must be positive"),
    ],
)
def test_bad_input_gives_a_clear_error(overrides, message, in_tmp):
    with pytest.raises(ValueError, match=message):
        dqn.train(tiny(**overrides))


@pytest.mark.learning
def test_cartpole_learns(in_tmp):
    """Default settings and seed: the final deterministic evaluation at 30k steps >= 475."""
    summary = dqn.train(dqn.Args(eval_frequency=0))
    assert np.mean(summary["eval_returns"]) >= 475
