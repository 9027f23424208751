"""Tests of tabular.py: value iteration against hand-worked optima, each update rule against a
hand-worked case, the learned greedy policies against the optimal ones, Sutton and Barto's
CliffWalking example (SARSA safe, Q-learning on the edge), checkpoints, logging and errors."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import tabular

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIFF = dict(env_id="CliffWalking-v1", gamma=1.0, learning_rate=0.5, learning_rate_end=0.05)
CLIFF.update(epsilon_start=0.1, epsilon_end=0.1, total_timesteps=30_000, eval_episodes=1)


def optimal(env_id: str, gamma: float, **kwargs):
    env = gym.make(env_id, **kwargs)
    n_states, n_actions = env.observation_space.n, env.action_space.n
    return tabular.value_iteration(env.unwrapped.P, n_states, n_actions, gamma)


def test_value_iteration_finds_the_hand_worked_optima():
    # deterministic FrozenLake: the goal is 6 moves away, its reward comes on the 6th: gamma^5
    v, q = optimal("FrozenLake-v1", 0.9, is_slippery=False)
    assert v[0] == pytest.approx(0.9**5)
    assert v[15] == 0.0  # the goal is terminal
    # CliffWalking, undiscounted: 13 steps of -1 along the cliff's edge
    v, _ = optimal("CliffWalking-v1", 1.0)
    assert v[36] == pytest.approx(-13.0)
    # the Bellman optimality equation holds in every state of slippery FrozenLake
    env = gym.make("FrozenLake-v1")
    v, q = optimal("FrozenLake-v1", 0.95)
    for s in range(16):
        backup = [
            sum(p * (r + 0.95 * (not d) * v[s2]) for p, s2, r, d in env.unwrapped.P[s][a])
            for a in range(4)
        ]
        assert max(backup) == pytest.approx(v[s], abs=1e-8)


def test_td_targets_bootstrap_as_each_method_defines():
    q = np.array([[0.0, 0.0], [1.0, 3.0]])
    args = lambda m: tabular.Args(method=m, gamma=0.5)  # noqa: E731
    # s' = 1, a' = 0; pi(.|1) with epsilon 0.2 = (0.1, 0.9)
    assert tabular.td_target(q, 1.0, 1, 0, False, 0.2, args("sarsa")) == pytest.approx(1.5)
    assert tabular.td_target(q, 1.0, 1, 0, False, 0.2, args("q-learning")) == pytest.approx(2.5)
    expected = 1.0 + 0.5 * (0.1 * 1.0 + 0.9 * 3.0)
    assert tabular.td_target(q, 1.0, 1, 0, False, 0.2, args("expected-sarsa")) == pytest.approx(
        expected
    )
    for method in ["sarsa", "q-learning", "expected-sarsa"]:  # a termination does not bootstrap
        assert tabular.td_target(q, 1.0, 1, 0, True, 0.2, args(method)) == 1.0


def test_monte_carlo_first_and_every_visit_on_a_hand_worked_episode():
    """(s0, a0, r 1), (s1, a0, r 0), (s0, a0, r 2), terminated, gamma 0.5: G_2 = 2, G_1 = 1,
    G_0 = 1.5. Alpha 0.5 from Q = 0: every-visit takes G_2 then G_0 for (s0, a0): 1, then 1.25;
    first-visit takes G_0 alone: 0.75. Both give (s1, a0) 0.5."""
    episode = [(0, 0, 1.0), (1, 0, 0.0), (0, 0, 2.0)]
    for method, expected in [("mc-every-visit", 1.25), ("mc-first-visit", 0.75)]:
        q = np.zeros((2, 2))
        tabular.monte_carlo_update(q, episode, 0.0, 0.5, tabular.Args(method=method, gamma=0.5))
        assert q[0, 0] == pytest.approx(expected) and q[1, 0] == pytest.approx(0.5)
    q = np.zeros((2, 2))  # a truncated episode starts from the value of its last state
    tabular.monte_carlo_update(q, [(0, 0, 1.0)], 4.0, 1.0, tabular.Args(gamma=0.5))
    assert q[0, 0] == pytest.approx(3.0)


def test_epsilon_greedy_explores_at_its_rate_and_breaks_ties_at_random():
    rng = np.random.default_rng(0)
    q = np.array([[0.0, 1.0, 1.0, 0.0]])
    picks = np.array([tabular.epsilon_greedy(q, 0, 0.2, rng) for _ in range(20_000)])
    share = np.bincount(picks, minlength=4) / len(picks)
    # greedy ties share 0.8; each action also gets 0.2 / 4 from exploration
    np.testing.assert_allclose(share, [0.05, 0.45, 0.45, 0.05], atol=0.015)
    np.testing.assert_allclose(tabular.policy_probs(q, 0, 0.2), [0.05, 0.45, 0.45, 0.05])


@pytest.mark.parametrize(
    "env_id, slippery, start, best_return",
    [("FrozenLake-v1", False, 0, 1.0), ("CliffWalking-v1", True, 36, -13.0)],
)
def test_q_learning_reaches_the_optimum_on_deterministic_tasks(
    env_id, slippery, start, best_return, in_tmp
):
    """The greedy policy scores what the optimal one does, and Q(start, greedy) is V*(start)."""
    args = tabular.Args(env_id=env_id, slippery=slippery, total_timesteps=30_000, eval_episodes=1)
    summary = tabular.train(args)
    v, _ = optimal(env_id, args.gamma, **({} if slippery else {"is_slippery": False}))
    assert summary["eval_returns"] == [best_return]
    assert summary["q"][start].max() == pytest.approx(v[start], rel=0.02)


@pytest.mark.learning
def test_q_learning_reaches_the_optimal_average_return_on_taxi(in_tmp):
    args = tabular.Args(env_id="Taxi-v4", total_timesteps=200_000, eval_episodes=200)
    summary = tabular.train(args)
    _, q_star = optimal("Taxi-v4", args.gamma)
    best = np.mean(tabular.evaluate(q_star, args))  # the same 200 start states
    assert np.mean(summary["eval_returns"]) >= best - 0.25


def test_q_learning_reaches_the_optimal_success_rate_on_slippery_frozenlake(in_tmp):
    """Default options, 100k steps: within 0.03 of the optimal policy's success over the same
    2000 evaluation episodes (the optimum here is about 0.72)."""
    args = tabular.Args(total_timesteps=100_000, eval_episodes=2000, eval_frequency=0)
    summary = tabular.train(args)
    _, q_star = optimal("FrozenLake-v1", args.gamma)
    best = np.mean(tabular.evaluate(q_star, args))
    assert best > 0.65
    assert np.mean(summary["eval_returns"]) >= best - 0.03


def test_cliff_walking_sarsa_walks_safe_and_q_learning_walks_the_edge(in_tmp):
    """Sutton and Barto, Example 6.6: with epsilon 0.1, Q-learning learns the optimal path along
    the cliff (greedy return -13) but falls off while exploring, so its online returns are worse;
    SARSA learns a longer path away from the edge."""
    runs = {m: tabular.train(tabular.Args(method=m, **CLIFF)) for m in ["sarsa", "q-learning"]}
    assert runs["q-learning"]["eval_returns"] == [-13.0]
    assert runs["sarsa"]["eval_returns"][0] in (-15.0, -17.0)  # one or two rows from the edge
    online = {m: np.mean(r["episodic_returns"][-300:]) for m, r in runs.items()}
    assert online["sarsa"] > online["q-learning"] + 15


@pytest.mark.parametrize("method", ["mc-first-visit", "mc-every-visit", "expected-sarsa"])
def test_every_method_solves_deterministic_frozenlake(method, in_tmp):
    args = tabular.Args(
        method=method, slippery=False, total_timesteps=30_000, eval_episodes=1, eval_frequency=0
    )
    assert tabular.train(args)["eval_returns"] == [1.0]


def test_two_seeded_runs_are_identical(in_tmp):
    runs = [tabular.train(tabular.Args(total_timesteps=5000, eval_episodes=5)) for _ in range(2)]
    assert runs[0]["episodic_returns"] == runs[1]["episodic_returns"]
    assert np.array_equal(runs[0]["q"], runs[1]["q"])
    other = tabular.train(tabular.Args(total_timesteps=5000, eval_episodes=5, seed=2))
    assert other["episodic_returns"] != runs[0]["episodic_returns"]


def test_checkpoint_round_trip_video_and_foreign_files(in_tmp):
    first = tabular.train(tabular.Args(slippery=False, total_timesteps=20_000, save_model=True))
    summary = tabular.train(
        tabular.Args(eval_checkpoint=first["checkpoint"], eval_episodes=2, capture_video=True)
    )
    assert summary["eval_returns"] == [1.0, 1.0]
    run_name = os.path.basename(first["run_dir"])
    assert any(f.endswith(".mp4") for f in os.listdir(in_tmp / "videos" / run_name))
    (in_tmp / "bad.npz").write_bytes(b"not a table")
    with pytest.raises(ValueError, match="bad.npz could not be read"):
        tabular.train(tabular.Args(eval_checkpoint="bad.npz"))
    with pytest.raises(ValueError, match=r"holds a \(16, 4\) table; Taxi-v4 needs \(500, 6\)"):
        q, meta = tabular.load_checkpoint(first["checkpoint"])
        meta["args"]["env_id"] = "Taxi-v4"
        tabular.save_checkpoint("edited.npz", q, tabular.Args(**meta["args"]), "x", 0)
        tabular.train(tabular.Args(eval_checkpoint="edited.npz"))
    q, meta = tabular.load_checkpoint(first["checkpoint"])
    tabular.save_checkpoint("other.npz", q, tabular.Args(), "x", 0)
    with np.load("other.npz") as data:
        meta = json.loads(str(data["meta"]))
    meta["args"]["no_such_option"] = 1
    np.savez("other.npz", q=q, meta=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match="options this script lacks .no_such_option"):
        tabular.load_checkpoint("other.npz")
    meta["script"] = "ppo.py"
    np.savez("other.npz", q=q, meta=np.array(json.dumps(meta)))
    with pytest.raises(ValueError, match="written by ppo.py; use that script"):
        tabular.load_checkpoint("other.npz")


def test_tensorboard_keys_and_wandb_offline_run(in_tmp):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = tabular.train(tabular.Args(total_timesteps=3000, eval_frequency=2000, track=True))
    events = EventAccumulator(summary["run_dir"])
    events.Reload()
    keys = set(events.Tags()["scalars"])
    assert {"charts/episodic_return", "charts/episodic_length", "charts/SPS"} <= keys
    assert {"eval/episodic_return", "losses/q_mean", "losses/q_min", "losses/q_max"} <= keys
    assert [e.step for e in events.Scalars("eval/episodic_return")] == [2000, 3000]
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]
    assert list(in_tmp.glob(f"{summary['run_dir']}/wandb/offline-run-*"))
    source = open(os.path.join(ROOT, "tabular.py")).read()
    assert "import torch" not in source


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(env_id="FrozenLake-v9"), "did you mean FrozenLake-v1"),
        (dict(env_id="CartPole-v1"), "Box observation space.*dqn_rainbow.py or ppo.py"),
        (dict(gamma=1.5), r"--gamma must be in \[0, 1\]"),
        (dict(learning_rate=float("inf")), r"--learning-rate must be in \(0, 1\], got inf"),
        (dict(total_timesteps=0), "--total-timesteps must be positive"),
        (dict(eval_checkpoint="missing.npz"), "checkpoint missing.npz does not exist"),
    ],
)
def test_bad_input_gives_a_clear_error(overrides, message, in_tmp):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        tabular.train(tabular.Args(**overrides))


def test_command_line_error_is_one_line_and_nonzero(in_tmp):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tabular.py"), "--env-id", "CartPole-v1"],
        cwd=in_tmp,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: --env-id CartPole-v1 has a Box")
