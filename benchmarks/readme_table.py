"""README's results table: each algorithm's headline result at the current code, from the
committed curve CSVs in benchmarks/results/, beside the peer's (or a reference's) number.

A row is the final deterministic evaluation of each seed's run of one variant on one task (mean
+- std over seeds, and a 95% bootstrap CI of the mean), with the commits that made the runs. The
peer column reads committed data too: SB3's curves in benchmarks/results/peers/ (value at the same
step), SB3's runs in the same CSV, the optimal policy (tabular_optimal.csv), random play
(random_play.md), or a published figure written in ROWS with its source.
`bash benchmarks/make_reports.sh` calls this; to change a headline, edit ROWS.

Usage: python benchmarks/readme_table.py [--readme README.md]
"""

import argparse
import csv
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import (  # noqa: E402
    bootstrap_ci,
    collect_csv,
    commits_of,
    finals,
    mean_std,
    read_peer,
    update_readme,
    value_at,
)

RESULTS = "benchmarks/results"
PEERS = f"{RESULTS}/peers"
# CleanRL's published figures (docs.cleanrl.dev, 3 seeds, 1M steps, gymnasium's v4 tasks): the mean
# episodic return of training episodes with exploration noise, not a deterministic evaluation.
CLEANRL = "CleanRL, {}-v4 at 1M (training episodes): {}"
# (script, what it is, curve CSV, env, variant, peers: a list of (kind, source, label))
ROWS = [
    ("dqn_rainbow.py", "Rainbow DQN", "dqn_fused_adam", "LunarLander-v3", "dqn_rainbow", []),
    ("ddpg_continuous.py", "DDPG", "hopper_family", "HopperBulletEnv-v0", "ddpg_continuous", []),
    (
        "td3_continuous.py",
        "TD3",
        "hopper_family_1m",
        "HopperBulletEnv-v0",
        "td3_continuous",
        [("ref", None, "RL Zoo TD3 at 1M: 2681.6")],
    ),
    (
        "sac_continuous.py",
        "SAC",
        "hopper_family_1m",
        "HopperBulletEnv-v0",
        "sac_continuous",
        [("ref", None, "RL Zoo SAC at 1M: 2603.5")],
    ),
    ("reinforce.py", "REINFORCE", "reinforce", "CartPole-v1", "reinforce", []),
    ("a2c.py", "A2C", "a2c", "CartPole-v1", "a2c", [("csv", "sb3_a2c", "SB3 A2C, same settings")]),
    (
        "ppo.py",
        "PPO",
        "ppo_fused_adam",
        "HopperBulletEnv-v0",
        "ppo_default_init",
        [("jsonl", f"{PEERS}/sb3_ppo_HopperBulletEnv-v0_seed1.jsonl", "SB3 PPO, RL Zoo settings")],
    ),
    # gymnasium's MuJoCo tasks with the scripts' defaults
    (
        "ppo.py",
        "PPO",
        "ppo_mujoco",
        "Hopper-v5",
        "ppo",
        [
            ("csv", "sb3_ppo_defaults", "SB3 PPO, its defaults"),
            ("ref", None, CLEANRL.format("Hopper", "2382.9 +- 271.7")),
        ],
    ),
    (
        "ppo.py",
        "PPO",
        "ppo_mujoco",
        "HalfCheetah-v5",
        "ppo",
        [("ref", None, CLEANRL.format("HalfCheetah", "1442.6 +- 46.0"))],
    ),
    (
        "ppo.py",
        "PPO",
        "ppo_mujoco",
        "Walker2d-v5",
        "ppo",
        [("ref", None, CLEANRL.format("Walker2d", "2288.0 +- 571.8"))],
    ),
    (
        "td3_continuous.py",
        "TD3",
        "td3_mujoco",
        "Hopper-v5",
        "td3_continuous",
        [("ref", None, CLEANRL.format("Hopper", "3134.6 +- 360.2"))],
    ),
    (
        "td3_continuous.py",
        "TD3",
        "td3_mujoco",
        "HalfCheetah-v5",
        "td3_continuous",
        [("ref", None, CLEANRL.format("HalfCheetah", "9583.2 +- 126.1"))],
    ),
    (
        "maddpg_tennis.py",
        "MADDPG",
        "maddpg",
        "Tennis",
        "maddpg_tennis",
        [("random", f"{RESULTS}/random_play.md", "random play")],
    ),
    (
        "tabular.py",
        "Q-learning (tabular)",
        "tabular",
        "Taxi-v4",
        "q-learning",
        [("optimal", f"{RESULTS}/tabular_optimal.csv", "optimal policy")],
    ),
]


def peer_cell(peers: list, groups: dict, env: str, step: int) -> str:
    return "; ".join(one_peer(peer, groups, env, step) for peer in peers) or "-"


def one_peer(peer: tuple, groups: dict, env: str, step: int) -> str:
    kind, source, label = peer
    if kind == "ref":  # a published figure, written out in the label
        return label
    if kind == "jsonl":
        _, curve = read_peer(f"{label}={source}")
        value = value_at(curve, step)
        return f"{label}, 1 seed: {value:.1f}" if value is not None else "-"
    if kind == "csv":
        last = finals(groups[(env, source)])
        return f"{label}, {len(last)} seeds: {mean_std(last)}"
    if kind == "optimal":
        with open(source) as f:
            value = {r["env_id"]: r["optimal_eval_return"] for r in csv.DictReader(f)}[env]
        return f"{label}: {float(value):.1f}"
    with open(source) as f:  # random play: the table row "| env | episodes | mean score | ..."
        found = re.search(rf"^\| {re.escape(env)} \| \d+ \| ([-0-9.]+) \|", f.read(), re.MULTILINE)
    return f"{label}: {float(found.group(1)):.3f}"


def table() -> str:
    lines = [
        "| script | task | seeds x steps | final evaluation (mean +- std) | 95% CI | peers at the same "
        "steps, or published figures | commit | docs |",
        "|-|-|-|-|-|-|-|-|",
    ]
    for script, what, name, env, variant, peers in ROWS:
        groups = collect_csv([f"{RESULTS}/{name}_curves.csv"])
        seeds = groups[(env, variant)]
        last = finals(seeds)
        steps = max(run["eval"][-1][0] for run in seeds.values())
        lo, hi = bootstrap_ci(last, np.random.default_rng(0))
        commits = commits_of(seeds)
        if " " in commits:  # a headline is one code version: older seeds are rerun, not mixed in
            sys.exit(f"{name}_curves.csv: {variant} on {env} mixes runs of commits {commits}")
        docs = f"docs/{script[:-3]}.md"
        lines.append(
            f"| [`{script}`]({script}) {what} | {env} (`{variant}`) | {len(last)} x "
            f"{steps // 1000}k | {mean_std(last)} | [{lo:.1f}, {hi:.1f}] | "
            f"{peer_cell(peers, groups, env, steps)} | {commits} | [{script[:-3]}]({docs}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", default="README.md")
    a = parser.parse_args()
    text = table()
    print(text)
    update_readme(a.readme, text, "python benchmarks/readme_table.py")


if __name__ == "__main__":
    main()
