"""Training speed of sac_continuous.py against Stable-Baselines3's SAC, interleaved on one machine.

Both learners get the same hyperparameters (256-256 MLPs, batch 256, lr 3e-4, buffer 1e6, gamma
0.99, tau 0.005, the temperature autotuned from 1 toward -|A|, one critic, actor and temperature
update per step), one thread each, and no evaluation. Each run is its own process, and the variants
alternate (A B A B ...) so that drifts in machine load hit them alike. SPS is taken over the whole
run (warm-up and learning) for both.

The `floor` variant is no learner: it takes the same random warm-up steps, then each step it takes
one env step with a random action and runs the networks' passes of one SAC update on a batch of the same size (the actor's sample at s' and
the twin target critics forward, the twin critics forward and backward, and the actor's sample at
s through both critics forward and backward), with no sampling from a buffer, losses, optimizer or
target updates. Its ratio to SB3 bounds what a learner running these passes in eager PyTorch can
reach on this machine.

Usage: python benchmarks/sac_speed.py --pairs 3 --out benchmarks/results/sac_speed.md
"""

import argparse
import json
import os
import sys
import time
from datetime import date

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from td3_speed import interleave, machine, ratio_table  # noqa: E402


def run_ours(env_id: str, warmup: int, steps: int) -> float:
    sys.path.insert(0, ROOT)
    import sac_continuous as sac

    args = sac.Args(
        env_id=env_id,
        total_timesteps=warmup + steps,
        learning_starts=warmup,
        eval_frequency=0,
        eval_episodes=1,
        cuda=False,
    )
    return sac.train(args)["sps"]


def run_floor(env_id: str, warmup: int, steps: int) -> float:
    """SPS of the env steps and one update's network passes per step (see the docstring)."""
    sys.path.insert(0, ROOT)
    import torch

    import sac_continuous as sac

    args = sac.Args(env_id=env_id, cuda=False)
    env = sac.make_env(env_id, args.seed)()
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    actor = sac.Actor(obs_dim, env.action_space, args)
    qf, qf_target = (sac.TwinQNetwork(obs_dim, act_dim, args) for _ in range(2))
    obs, actions = torch.randn(args.batch_size, obs_dim), torch.randn(args.batch_size, act_dim)
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    start = time.perf_counter()
    for step in range(warmup + steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        if step < warmup:
            continue
        with torch.no_grad():
            qf_target(obs, actor.sample(obs)[0])
        qf(obs, actions).sum().backward()
        qf.requires_grad_(False)
        sampled, log_prob = actor.sample(obs)
        (qf(obs, sampled).min(0).values - log_prob).sum().backward()
        qf.requires_grad_(True)
    return (warmup + steps) / (time.perf_counter() - start)


def run_sb3(env_id: str, warmup: int, steps: int) -> float:
    """SPS of Stable-Baselines3's SAC over model.learn, with the same hyperparameters."""
    import gymnasium as gym
    import pybullet_envs_gymnasium  # noqa: F401
    from stable_baselines3 import SAC

    env = gym.make(env_id)
    model = SAC(
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
        ent_coef="auto_1.0",
        target_entropy=-float(env.action_space.shape[0]),
        policy_kwargs={"net_arch": [256, 256]},
        seed=1,
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(total_timesteps=warmup + steps)
    return (warmup + steps) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="HopperBulletEnv-v0")
    parser.add_argument("--warmup", type=int, default=1_000, help="random steps before learning")
    parser.add_argument("--steps", type=int, default=4_000, help="learning steps timed per run")
    parser.add_argument("--pairs", type=int, default=3, help="A B rounds, interleaved")
    parser.add_argument(
        "--variants", nargs="+", default=["ours", "floor", "sb3"], choices=["ours", "floor", "sb3"]
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
            sps = run_floor(a.env_id, a.warmup, a.steps)
        else:
            sps = run_ours(a.env_id, a.warmup, a.steps)
        print(json.dumps({"sps": sps}))
        return

    worker_args = ["--env-id", a.env_id, "--warmup", str(a.warmup), "--steps", str(a.steps)]
    table = ratio_table(interleave(__file__, a.variants, worker_args, a.pairs))
    print(table)
    if a.out:
        command = "python benchmarks/sac_speed.py " + " ".join(sys.argv[1:])
        with open(a.out, "w") as f:
            f.write(
                f"# SAC training speed against Stable-Baselines3\n\n{__doc__.split(chr(10), 2)[2]}\n"
            )
            f.write(
                f"{table}\n\n- env: {a.env_id}, {a.warmup} random steps then {a.steps} "
                f"learning steps per run, {a.pairs} interleaved rounds, one thread each\n"
            )
            f.write(f"- machine: {machine()}\n- date: {date.today()}\n- command: `{command}`\n")


if __name__ == "__main__":
    main()
