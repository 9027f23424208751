"""Training speed of td3_continuous.py against Stable-Baselines3's TD3, interleaved on one machine.

Both learners get the same hyperparameters (256-256 MLPs, batch 256, lr 3e-4, buffer 1e6, gamma 0.99,
tau 0.005, Gaussian exploration noise 0.1, policy delay 2, target noise 0.2 clipped at 0.5, one
update per step), one thread each, and no evaluation. Each run is its own process, and the variants
alternate (A B A B ...) so that drifts in machine load hit them alike. SPS counts only the learning
phase: the wall time from the end of the random warm-up to the last step.

The `floor` variant is no learner: each step it takes one env step with a random action and runs
the networks' passes of one TD3 update on a batch of the same size (target actor and twin target
critics forward, twin critics forward and backward, and every second step the actor through Q_1
forward and backward), with no sampling, losses, optimizer or target updates. Its ratio to SB3
bounds what a learner running these networks' passes in eager PyTorch can reach on this machine.

Usage: python benchmarks/td3_speed.py --pairs 3 --out benchmarks/results/td3_speed.md
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_ours(env_id: str, warmup: int, steps: int, compile: bool) -> float:
    """SPS of td3_continuous.py over the training loop (its final evaluation is not timed)."""
    sys.path.insert(0, ROOT)
    import td3_continuous as td3

    args = td3.Args(
        env_id=env_id,
        total_timesteps=warmup + steps,
        learning_starts=warmup,
        eval_frequency=0,
        eval_episodes=1,
        compile=compile,
        cuda=False,
    )
    return td3.train(args)["sps"]


def run_floor(env_id: str, steps: int) -> float:
    """SPS of the env steps and one update's network passes per step (see the docstring)."""
    sys.path.insert(0, ROOT)
    import torch

    import td3_continuous as td3

    args = td3.Args(env_id=env_id, cuda=False)
    env = td3.make_env(env_id, args.seed)()
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    actor, actor_target = (td3.Actor(obs_dim, env.action_space, args) for _ in range(2))
    qf, qf_target = (td3.TwinQNetwork(obs_dim, act_dim, args) for _ in range(2))
    obs, actions = torch.randn(args.batch_size, obs_dim), torch.randn(args.batch_size, act_dim)
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    start = time.perf_counter()
    for step in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        with torch.no_grad():
            qf_target(obs, actor_target(obs))
        qf(obs, actions).sum().backward()
        if step % args.policy_frequency == 0:
            qf.requires_grad_(False)
            qf(obs, actor(obs), n=1).sum().backward()
            qf.requires_grad_(True)
    return steps / (time.perf_counter() - start)


def run_sb3(env_id: str, warmup: int, steps: int) -> float:
    """SPS of Stable-Baselines3's TD3 over model.learn, with the same hyperparameters."""
    import gymnasium as gym
    import numpy as np
    import pybullet_envs_gymnasium  # noqa: F401
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make(env_id)
    n = env.action_space.shape[0]
    model = TD3(
        "MlpPolicy",
        env,
        learning_rate=3e-4,
        buffer_size=1_000_000,
        learning_starts=warmup,
        batch_size=256,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        policy_delay=2,
        target_policy_noise=0.2,
        target_noise_clip=0.5,
        policy_kwargs={"net_arch": [256, 256]},
        seed=1,
        device="cpu",
        action_noise=NormalActionNoise(np.zeros(n), 0.1 * np.ones(n)),
    )
    start = time.perf_counter()
    model.learn(total_timesteps=warmup + steps)
    return (warmup + steps) / (time.perf_counter() - start)


def machine() -> str:
    cpu = next(
        (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if "model name" in l), "?"
    )
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def interleave(script: str, variants: list[str], worker_args: list[str], pairs: int) -> dict:
    """Runs `script --worker VARIANT worker_args` for each variant in turn, `pairs` rounds, each
    in its own single-thread process; returns variant -> [SPS of each round]."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    results: dict[str, list[float]] = {v: [] for v in variants}
    for round_ in range(pairs):
        for variant in variants:
            cmd = [sys.executable, os.path.abspath(script), "--worker", variant, *worker_args]
            out = subprocess.run(cmd, env=env, cwd="/tmp", capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{variant} failed:\n{out.stderr[-2000:]}")
            sps = json.loads(out.stdout.strip().splitlines()[-1])["sps"]
            results[variant].append(sps)
            print(f"round {round_ + 1}: {variant:13s} {sps:7.1f} SPS", flush=True)
    return results


def ratio_table(results: dict[str, list[float]]) -> str:
    """Markdown: each variant's SPS per round, median, and the ratio to SB3 round by round."""
    import numpy as np

    base = results.get("sb3")
    lines = [
        "| variant | SPS per run | median SPS | ratio to SB3 (median of pairs, min-max) |",
        "|-|-|-|-|",
    ]
    for variant, values in results.items():
        ratio = "-"
        if base and variant != "sb3":
            r = np.array(values) / np.array(base)
            ratio = f"{np.median(r):.2f}x ({r.min():.2f}-{r.max():.2f})"
        runs = ", ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {variant} | {runs} | {np.median(values):.1f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="HopperBulletEnv-v0")
    parser.add_argument("--warmup", type=int, default=1_000, help="random steps before learning")
    parser.add_argument("--steps", type=int, default=5_000, help="learning steps timed per run")
    parser.add_argument("--pairs", type=int, default=3, help="A B rounds, interleaved")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["ours", "sb3"],
        choices=["ours", "ours-compile", "floor", "sb3"],
    )
    parser.add_argument("--out", help="write the markdown report here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        import torch

        torch.set_num_threads(1)
        if a.worker == "sb3":
            sps = run_sb3(a.env_id, a.warmup, a.steps)
        elif a.worker == "floor":
            sps = run_floor(a.env_id, a.steps)
        else:
            sps = run_ours(a.env_id, a.warmup, a.steps, compile=a.worker == "ours-compile")
        print(json.dumps({"sps": sps}))
        return

    worker_args = ["--env-id", a.env_id, "--warmup", str(a.warmup), "--steps", str(a.steps)]
    table = ratio_table(interleave(__file__, a.variants, worker_args, a.pairs))
    print(table)
    if a.out:
        command = "python benchmarks/td3_speed.py " + " ".join(sys.argv[1:])
        with open(a.out, "w") as f:
            f.write(
                f"# TD3 training speed against Stable-Baselines3\n\n{__doc__.split(chr(10), 2)[2]}\n"
            )
            f.write(
                f"{table}\n\n- env: {a.env_id}, {a.warmup} random steps then {a.steps} "
                f"learning steps per run, {a.pairs} interleaved rounds, one thread each\n"
            )
            f.write(f"- machine: {machine()}\n- date: {date.today()}\n- command: `{command}`\n")


if __name__ == "__main__":
    main()
