"""Out of the box: each script with nothing but --env-id and a budget, beside the same
Stable-Baselines3 algorithm with SB3's own defaults, at the same budget and evaluation.

Every (script, env, budget) of the suite runs for each seed: ours as
`python {script}.py --env-id ENV --total-timesteps N --seed S` (plus the evaluation schedule, the
same for both: 10 deterministic episodes every N/10 steps and at the end), then SB3's algorithm
made with nothing but its policy, the env and the seed. Both log the same keys under
--runs-dir/runs/. The tasks are ones the defaults were not tuned on. Usage:
    python benchmarks/ootb.py --runs-dir benchmarks/runs/ootb --suite --seeds 1 2 3 --workers 2
    python benchmarks/ootb.py --runs-dir benchmarks/runs/ootb --tasks ppo:Acrobot-v1:100000 --ours-only
Then `python benchmarks/report.py --runs-dir benchmarks/runs/ootb/runs --name ootb --csv-only`
merges the runs into benchmarks/results/ootb_curves.csv, and `make_reports.sh` rebuilds the table
in docs/benchmarks.md from it (benchmarks/ootb_table.py) with each task's random-play return
(`python benchmarks/ootb.py --suite --random-play benchmarks/results/ootb_random.csv`) as the zero
of the normalized score.
"""

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SB3 = {
    "ppo": "PPO",
    "a2c": "A2C",
    "td3_continuous": "TD3",
    "ddpg_continuous": "DDPG",
    "sac_continuous": "SAC",
    "dqn_rainbow": "DQN",
}
SUITE = [  # script:env:budget; three discrete and three continuous tasks, none tuned for
    "dqn_rainbow:Acrobot-v1:50000",
    "dqn_rainbow:MountainCar-v0:100000",
    "ppo:Acrobot-v1:100000",
    "ppo:LunarLander-v3:200000",
    "ppo:LunarLanderContinuous-v3:200000",
    "ppo:InvertedPendulumBulletEnv-v0:100000",
    "td3_continuous:InvertedPendulumBulletEnv-v0:30000",
    "td3_continuous:LunarLanderContinuous-v3:100000",
    "sac_continuous:InvertedPendulumBulletEnv-v0:30000",
    "sac_continuous:LunarLanderContinuous-v3:100000",
    "ddpg_continuous:InvertedPendulumBulletEnv-v0:30000",
    "ppo:Hopper-v5:1000000",
]


def sb3_worker(script: str, env_id: str, steps: int, seed: int, runs_dir: str) -> None:
    """SB3's algorithm with its defaults, evaluated and logged as ours are."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import gymnasium as gym
    import pybullet_envs_gymnasium  # noqa: F401
    import stable_baselines3
    import torch

    from peers import learn_and_log

    torch.set_num_threads(1)
    algo = getattr(stable_baselines3, SB3[script])
    model = algo("MlpPolicy", gym.make(env_id), seed=seed, device="cpu")
    args = SimpleNamespace(
        env_id=env_id,
        seed=seed,
        total_timesteps=steps,
        eval_frequency=steps // 10,
        eval_episodes=10,
    )
    learn_and_log(model, args, runs_dir, f"sb3_{SB3[script].lower()}_defaults")


def random_play(env_ids: list[str], episodes: int, path: str) -> None:
    """Mean return of uniform random actions per env, the zero of the table's normalized score."""
    import gymnasium as gym
    import numpy as np
    import pybullet_envs_gymnasium  # noqa: F401

    rows = ["env_id,episodes,random_return"]
    for env_id in sorted(set(env_ids)):
        env = gym.make(env_id)
        env.action_space.seed(0)
        returns = []
        env.reset(seed=0)
        while len(returns) < episodes:
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total, done = total + float(reward), terminated or truncated
            returns.append(total)
            env.reset()
        env.close()
        rows.append(f"{env_id},{episodes},{np.mean(returns):.2f}")
        print(rows[-1], flush=True)
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=[], help="script:env_id:budget")
    parser.add_argument("--suite", action="store_true", help="every task of SUITE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs-dir", default=os.path.join(ROOT, "benchmarks", "runs", "ootb"))
    parser.add_argument("--workers", type=int, default=1, help="runs at a time (one core each)")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip SB3 (after a change to our code only)"
    )
    parser.add_argument(
        "--random-play",
        metavar="CSV",
        help="instead of training: write each task's random-play return to CSV (100 episodes)",
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        script, env_id, steps, seed = a.worker
        sb3_worker(script, env_id, int(steps), int(seed), a.runs_dir)
        return 0
    tasks = (SUITE if a.suite else []) + a.tasks
    if a.random_play:
        random_play([task.split(":")[1] for task in tasks], 100, a.random_play)
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    os.makedirs(a.runs_dir, exist_ok=True)
    jobs = []
    for task in tasks:
        script, env_id, steps = task.split(":")
        for seed in a.seeds:
            evals = ["--eval-frequency", str(int(steps) // 10), "--eval-episodes", "10"]
            ours = [sys.executable, os.path.join(ROOT, f"{script}.py"), "--env-id", env_id]
            ours += ["--total-timesteps", steps, "--seed", str(seed), *evals]
            peer = [sys.executable, os.path.abspath(__file__), "--runs-dir", a.runs_dir]
            peer += ["--worker", script, env_id, steps, str(seed)]
            jobs.append((f"{task} seed {seed} ours", ours))
            if not a.ours_only:
                jobs.append((f"{task} seed {seed} SB3", peer))

    def run(job) -> int:
        label, cmd = job
        out = subprocess.run(cmd, cwd=a.runs_dir, env=env, capture_output=True, text=True)
        status = "ok" if out.returncode == 0 else f"failed:\n{out.stderr[-1500:]}"
        print(f"{label}: {status}", flush=True)
        return out.returncode != 0

    with ThreadPoolExecutor(a.workers) as pool:  # each job is a process of its own
        failed = sum(pool.map(run, jobs))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
