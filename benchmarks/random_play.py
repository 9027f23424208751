"""Random play's mean episode score on the multi-agent tasks of maddpg_tennis.py: the bar a learning
curve must clear to show that something was learned. Uniform random actions in each agent's bounds,
episodes played side by side (one per court or env copy), scored as maddpg_tennis.py scores them
(Tennis: the better agent's return; PettingZoo: the sum over agents).

Usage: python benchmarks/random_play.py --env-ids Tennis simple_spread_v3 multiwalker_v9 \
           --episodes 1000 --out benchmarks/results/random_play.md
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maddpg_tennis  # noqa: E402


def random_scores(env_id: str, episodes: int, seed: int) -> np.ndarray:
    """Scores of `episodes` random-play episodes, each the first episode of its own court/copy."""
    env = maddpg_tennis.make_multi_agent_env(maddpg_tennis.Args(env_id=env_id), episodes, seed)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    returns = np.zeros((episodes, env.n_agents))
    running = np.ones(episodes, dtype=bool)
    while running.any():
        actions = rng.uniform(
            env.action_low, env.action_high, (episodes, env.n_agents, env.act_dim)
        )
        _, rewards, terminated, truncated, _ = env.step(actions)
        returns[running] += rewards[running]
        running &= ~(terminated.all(1) | truncated)
    return env.score(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-ids", nargs="+", default=["Tennis"])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write a markdown table here")
    args = parser.parse_args()
    rows = []
    for env_id in args.env_ids:
        scores = random_scores(env_id, args.episodes, args.seed)
        rows.append(
            f"| {env_id} | {len(scores)} | {scores.mean():.4f} | {scores.std():.4f} | "
            f"{np.percentile(scores, 90):.3f} | {scores.max():.3f} |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            "# Random play",
            "",
            f"`python {' '.join(sys.argv)}`, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}",
            "",
            "| env | episodes | mean score | std | 90th percentile | max |",
            "|-|-|-|-|-|-|",
            *rows,
            "",
        ]
    )
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
