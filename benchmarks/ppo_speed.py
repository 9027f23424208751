"""Training speed of ppo.py against Stable-Baselines3's PPO, interleaved on one machine.

Both get the same rollout (envs x steps), epochs, minibatches, losses (clipped surrogate, value
clipping, advantage normalization), networks (separate policy and value MLPs, orthogonal
initialization) and normalization wrappers, one thread each, and no evaluation. Each run is its
own process, and the two alternate (A B A B ...). SPS is over the whole of training.

The `floor` row is no learner: it steps the same envs with random actions and runs the same
networks' forward and backward passes on as many minibatches as training would (no losses, no
optimizer, no rollout forward passes). Its ratio to SB3 bounds what a learner running these
networks' passes in eager PyTorch can reach on this machine.

Usage: python benchmarks/ppo_speed.py --env-id CartPole-v1 --pairs 3 --out benchmarks/results/ppo_speed_cartpole.md
"""

import argparse
import json
import os
import sys
import time
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from td3_speed import ROOT, interleave, machine, ratio_table  # noqa: E402

# Our flags per env: RL Zoo's CartPole-v1 settings (ppo.py's defaults for Discrete actions when
# ppo_speed_cartpole.md was measured), and RL Zoo's settings for Hopper (ppo_runs.sh).
SETTINGS = {
    "CartPole-v1": dict(
        num_envs=8,
        num_steps=32,
        learning_rate=1e-3,
        anneal_lr=True,
        gamma=0.98,
        gae_lambda=0.8,
        num_minibatches=1,
        update_epochs=20,
        clip_vloss=True,
    ),
    "HopperBulletEnv-v0": dict(
        num_envs=16,
        num_steps=512,
        num_minibatches=64,
        update_epochs=20,
        gamma=0.99,
        gae_lambda=0.9,
        learning_rate=3e-5,
        clip_coef=0.4,
        log_std_init=-2.0,
        hidden_sizes=(256, 256),
        activation="relu",
        normalize_obs=True,
        normalize_reward=True,
    ),
}


def our_args(env_id: str, steps: int):
    sys.path.insert(0, ROOT)
    import ppo

    args = ppo.Args(
        env_id=env_id,
        total_timesteps=steps,
        eval_frequency=0,
        eval_episodes=1,
        cuda=False,
        **SETTINGS[env_id],
    )
    return ppo, args


def run_ours(env_id: str, steps: int) -> float:
    """SPS over the training loop (the final evaluation is not timed, as in SB3's learn())."""
    ppo, args = our_args(env_id, steps)
    return ppo.train(args)["sps"]


def run_floor(env_id: str, steps: int) -> float:
    """SPS of the env steps and the networks' minibatch products alone (see the docstring)."""
    import torch

    ppo, args = our_args(env_id, steps)
    envs = ppo.make_vector_env(args)
    obs_dim = envs.single_observation_space.shape[0]
    agent = ppo.Agent(obs_dim, envs.single_action_space, args)
    envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    batch = args.num_envs * args.num_steps
    rollouts = -(-steps // batch)  # as many as train() runs
    x = torch.randn(batch // args.num_minibatches, obs_dim)
    start = time.perf_counter()
    for _ in range(rollouts):
        for _ in range(args.num_steps):
            envs.step(envs.action_space.sample())
        for _ in range(args.update_epochs * args.num_minibatches):
            (agent.actor(x).sum() + agent.critic(x).sum()).backward()
    envs.close()
    return rollouts * batch / (time.perf_counter() - start)


def run_sb3(env_id: str, steps: int) -> float:
    """SPS of SB3's PPO over model.learn, built from the same Args as ours."""
    import pybullet_envs_gymnasium  # noqa: F401
    from peers import sb3_ppo

    _, args = our_args(env_id, steps)
    model = sb3_ppo(args)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="CartPole-v1", choices=sorted(SETTINGS))
    parser.add_argument("--steps", type=int, default=50_000, help="training steps per run")
    parser.add_argument("--pairs", type=int, default=3, help="A B rounds, interleaved")
    parser.add_argument("--out", help="write the markdown report here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        import torch

        torch.set_num_threads(1)
        run = {"ours": run_ours, "floor": run_floor, "sb3": run_sb3}[a.worker]
        print(json.dumps({"sps": run(a.env_id, a.steps)}))
        return

    worker_args = ["--env-id", a.env_id, "--steps", str(a.steps)]
    table = ratio_table(interleave(__file__, ["ours", "floor", "sb3"], worker_args, a.pairs))
    print(table)
    if a.out:
        command = "python benchmarks/ppo_speed.py " + " ".join(sys.argv[1:])
        with open(a.out, "w") as f:
            f.write(
                f"# PPO training speed against Stable-Baselines3\n\n"
                f"{__doc__.split(chr(10), 2)[2]}\n{table}\n\n- env: {a.env_id}, {a.steps} "
                f"steps per run, {a.pairs} interleaved rounds, one thread each\n"
                f"- machine: {machine()}\n- date: {date.today()}\n- command: `{command}`\n"
            )


if __name__ == "__main__":
    main()
