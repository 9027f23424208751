"""Learning curves of tabular.py's methods on the toy-text tasks, beside the optimal value.

`run` trains every method on every task for several seeds (tabular.py's defaults; one more
CliffWalking task with Sutton and Barto's Example 6.6 settings) and writes every greedy evaluation,
with the mean online return since the previous one, to benchmarks/results/tabular_curves.csv, and
the optimal policy's evaluation return (value iteration on the task's transition table, evaluated on
the same episodes) to benchmarks/results/tabular_optimal.csv. `report` turns those two committed
files into the table and plots (through benchmarks/report.py) and the Example 6.6 table, so the
page is rebuilt from what git holds.

Usage: python benchmarks/tabular_curves.py run --seeds 1 2 3
       python benchmarks/tabular_curves.py report
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
METHODS = ["q-learning", "sarsa", "expected-sarsa", "mc-first-visit", "mc-every-visit"]
EXAMPLE_6_6 = dict(gamma=1.0, learning_rate=0.5, learning_rate_end=0.05)
EXAMPLE_6_6.update(epsilon_start=0.1, epsilon_end=0.1)
TASKS = {
    # label: (env_id, steps, evaluation every, options)
    "FrozenLake-v1": ("FrozenLake-v1", 100_000, 5_000, {}),
    "FrozenLake-v1-not-slippery": ("FrozenLake-v1", 30_000, 1_500, {"slippery": False}),
    "CliffWalking-v1": ("CliffWalking-v1", 30_000, 1_500, {}),
    "CliffWalking-v1-example-6.6": ("CliffWalking-v1", 30_000, 1_500, EXAMPLE_6_6),
    "Taxi-v4": ("Taxi-v4", 200_000, 10_000, {}),
}


def run(seeds: list[int]) -> None:
    sys.path.insert(0, ROOT)
    import gymnasium as gym

    import tabular

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from report import COLUMNS, head_commit

    commit = head_commit()  # the code these runs are made with
    os.chdir(tempfile.mkdtemp())
    rows, optimal = [], []
    for label, (env_id, steps, every, options) in TASKS.items():
        for method in METHODS:
            for seed in seeds:
                args = tabular.Args(
                    env_id=env_id,
                    method=method,
                    seed=seed,
                    total_timesteps=steps,
                    eval_frequency=every,
                    eval_episodes=100,
                    **options,
                )
                summary = tabular.train(args)
                lengths = np.cumsum(episode_lengths(summary["run_dir"]))
                returns = np.array(summary["episodic_returns"])
                previous = 0
                for step, value in summary["eval_history"]:
                    window = returns[(lengths > previous) & (lengths <= step)]
                    online = f"{window.mean():.3f}" if len(window) else ""
                    rows.append(
                        [
                            "tabular.py",
                            label,
                            method,
                            seed,
                            step,
                            f"{value:.3f}",
                            "",
                            commit,
                            online,
                        ]
                    )
                    previous = step
        args = tabular.Args(env_id=env_id, eval_episodes=100, **options)
        slippery = {"is_slippery": options["slippery"]} if "slippery" in options else {}
        env = gym.make(env_id, **slippery)
        n_states, n_actions = env.observation_space.n, env.action_space.n
        _, q_star = tabular.value_iteration(env.unwrapped.P, n_states, n_actions, args.gamma)
        optimal.append([label, f"{np.mean(tabular.evaluate(q_star, args)):.3f}"])
    write(os.path.join(RESULTS, "tabular_curves.csv"), COLUMNS + ["online_return"], rows)
    write(os.path.join(RESULTS, "tabular_optimal.csv"), ["env_id", "optimal_eval_return"], optimal)


def episode_lengths(run_dir: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    events.Reload()
    return [int(e.value) for e in events.Scalars("charts/episodic_length")]


def write(path: str, header: list[str], rows: list) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def report() -> None:
    with open(os.path.join(RESULTS, "tabular_optimal.csv")) as f:
        optimal = {r["env_id"]: float(r["optimal_eval_return"]) for r in csv.DictReader(f)}
    baselines = [f"--baseline={env}=optimal policy={value}" for env, value in optimal.items()]
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "report.py"), "--name", "tabular"]
    cmd += ["--from-csv", os.path.join(RESULTS, "tabular_curves.csv"), "--out", RESULTS]
    subprocess.run(cmd + baselines, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(RESULTS, "tabular_curves.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r["env_id"] == "CliffWalking-v1-example-6.6"]
    lines = [
        "| method | seeds | greedy return at 30k (mean, each seed) | online return, last 9k steps |",
        "|-|-|-|-|",
    ]
    for method in METHODS:
        mine = [r for r in rows if r["exp_name"] == method]
        final = max(int(r["step"]) for r in mine)
        greedy = [float(r["eval_return"]) for r in mine if int(r["step"]) == final]
        late = [float(r["online_return"]) for r in mine if int(r["step"]) > 0.7 * final]
        lines.append(
            f"| {method} | {len(greedy)} | {np.mean(greedy):.1f} "
            f"({', '.join(f'{g:.0f}' for g in greedy)}) | {np.mean(late):.1f} |"
        )
    lines.append(f"| optimal policy | - | {optimal['CliffWalking-v1-example-6.6']:.1f} | - |")
    with open(os.path.join(RESULTS, "tabular_cliff.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(open(os.path.join(RESULTS, "tabular.md")).read())
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["run", "report"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    a = parser.parse_args()
    if a.mode == "run":
        run(a.seeds)
    else:
        report()
