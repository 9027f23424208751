"""The CUDA path, checked on a GPU machine: every torch script trains briefly on the GPU, saves a
checkpoint, and evaluates it again from the checkpoint; two seeded TD3 runs on CUDA must be
identical; and TD3's update steps timed eager against --compile on the GPU and on the CPU.

Usage (on a machine with a GPU, from the repository root):
    python benchmarks/cuda_check.py --out benchmarks/results/cuda_check.md
"""

import argparse
import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OFF_POLICY = dict(env_id="Pendulum-v1", total_timesteps=2000, learning_starts=500)
SHORT = dict(eval_frequency=0, eval_episodes=2, save_model=True)
CASES = [
    ("td3_continuous", OFF_POLICY),
    ("ddpg_continuous", OFF_POLICY),
    ("sac_continuous", OFF_POLICY),
    ("td3_continuous", {**OFF_POLICY, "per": True, "noise_type": "param", "num_envs": 2}),
    ("dqn_rainbow", dict(env_id="CartPole-v1", total_timesteps=2000, learning_starts=500)),
    ("ppo", dict(env_id="CartPole-v1", total_timesteps=4096)),
    ("ppo", dict(env_id="Pendulum-v1", total_timesteps=4096)),
    ("a2c", dict(env_id="CartPole-v1", total_timesteps=4096)),
    ("reinforce", dict(env_id="CartPole-v1", total_timesteps=3000)),
    ("maddpg_tennis", dict(total_timesteps=2000, learning_starts=500)),
]


def run(name: str, **kwargs):
    """train() in this process; returns (summary or None, seconds, error or None)."""
    module = importlib.import_module(name)
    start = time.perf_counter()
    try:
        return module.train(module.Args(**kwargs)), time.perf_counter() - start, None
    except Exception as e:  # a failure is a row of the table, not the end of the check
        return None, time.perf_counter() - start, f"{type(e).__name__}: {e}"[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="cuda_check.md")
    out = os.path.abspath(parser.parse_args().out)
    os.chdir(tempfile.mkdtemp())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    rows = []
    for name, kwargs in CASES:
        summary, _, error = run(name, **kwargs, **SHORT)
        if error is None:  # the checkpoint reloads and evaluates
            _, _, error = run(name, **kwargs, eval_checkpoint=summary["checkpoint"])
        flags = " ".join(
            f"--{k.replace('_', '-')}" for k in ("per", "noise_type", "num_envs") if k in kwargs
        )
        detail = error or (
            f"step {summary['global_step']}, eval {np.mean(summary['eval_returns']):.1f}, "
            f"SPS {summary['sps']:.0f}"
        )
        rows.append(
            f"| {name} | {kwargs.get('env_id', 'Tennis')} {flags} | {'ok' if error is None else 'FAIL'} | {detail} |"
        )
        print(rows[-1], flush=True)
    twice = [
        run("td3_continuous", **OFF_POLICY, **{**SHORT, "save_model": False})[0] for _ in range(2)
    ]
    same = all(twice) and all(
        twice[0][k] == twice[1][k] for k in ("episodic_returns", "eval_returns")
    )
    rows.append(
        f"| td3_continuous, seed 1 twice | Pendulum-v1 | {'identical' if same else 'DIFFERENT'} | |"
    )
    timing = []
    base = dict(env_id="Pendulum-v1", total_timesteps=4000, learning_starts=1000, eval_frequency=0)
    variants = [
        ("cuda eager", {}),
        ("cuda --compile", {"compile": True}),
        ("cpu eager", {"cuda": False}),
    ]
    for label, kwargs in variants * 2:  # the second round runs with compiled code cached
        summary, seconds, error = run("td3_continuous", **base, eval_episodes=1, **kwargs)
        timing.append(
            f"| {label} | {summary['sps']:.0f} | {seconds:.1f} |"
            if summary
            else f"| {label} | {error} | |"
        )
        print(timing[-1], flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with open(out, "w") as f:
        f.write(
            f"# CUDA path check\n\n`python benchmarks/cuda_check.py`, commit {commit}, torch {torch.__version__}, {gpu}, "
        )
        f.write(
            f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), {time.strftime('%Y-%m-%d')}.\n\n"
        )
        f.write("| script | task | result | detail |\n|-|-|-|-|\n" + "\n".join(rows) + "\n\n")
        f.write(
            "TD3 on Pendulum-v1, 4000 steps (3000 updates): SPS of the loop and wall time with start-up (and compilation)\n\n"
        )
        f.write("| variant | SPS | wall s |\n|-|-|-|\n" + "\n".join(timing) + "\n")


if __name__ == "__main__":
    main()
