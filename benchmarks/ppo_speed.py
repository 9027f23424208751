"""Training speed of ppo.py against Stable-Baselines3's PPO, interleaved on one machine.

Both get the same rollout (envs x steps), epochs, minibatches, losses (clipped surrogate, value
clipping, advantage normalization), networks (separate policy and value MLPs, orthogonal
initialization) and normalization wrappers, one thread each, and no evaluation. Each run is its
own process, and the two alternate (A B A B ...). SPS is over the whole of training.

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

# Our flags per env: the defaults for CartPole-v1, and RL Zoo's settings for Hopper (ppo_runs.sh).
SETTINGS = {
    "CartPole-v1": {},
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

    return ppo, ppo.Args(
        env_id=env_id,
        total_timesteps=steps,
        eval_frequency=0,
        eval_episodes=1,
        cuda=False,
        **SETTINGS[env_id],
    )


def run_ours(env_id: str, steps: int) -> float:
    """SPS over the training loop (the final evaluation is not timed, as in SB3's learn())."""
    ppo, args = our_args(env_id, steps)
    return ppo.train(args)["sps"]


def run_sb3(env_id: str, steps: int) -> float:
    import pybullet_envs_gymnasium  # noqa: F401
    import torch.nn as nn
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    _, a = our_args(env_id, steps)
    env = make_vec_env(env_id, n_envs=a.num_envs, seed=a.seed)
    if a.normalize_obs or a.normalize_reward:
        env = VecNormalize(
            env,
            norm_obs=a.normalize_obs,
            norm_reward=a.normalize_reward,
            clip_obs=a.obs_clip,
            clip_reward=a.reward_clip,
            gamma=a.gamma,
        )
    lr = (lambda progress: a.learning_rate * progress) if a.anneal_lr else a.learning_rate
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=lr,
        n_steps=a.num_steps,
        batch_size=a.num_envs * a.num_steps // a.num_minibatches,
        n_epochs=a.update_epochs,
        gamma=a.gamma,
        gae_lambda=a.gae_lambda,
        clip_range=a.clip_coef,
        clip_range_vf=a.clip_coef if a.clip_vloss else None,
        normalize_advantage=a.norm_adv,
        ent_coef=a.ent_coef,
        vf_coef=a.vf_coef,
        max_grad_norm=a.max_grad_norm,
        target_kl=a.target_kl,
        seed=a.seed,
        device="cpu",
        policy_kwargs=dict(
            net_arch=dict(pi=list(a.hidden_sizes), vf=list(a.hidden_sizes)),
            activation_fn={"tanh": nn.Tanh, "relu": nn.ReLU}[a.activation],
            log_std_init=a.log_std_init,
        ),
    )
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
        run = run_sb3 if a.worker == "sb3" else run_ours
        print(json.dumps({"sps": run(a.env_id, a.steps)}))
        return

    worker_args = ["--env-id", a.env_id, "--steps", str(a.steps)]
    table = ratio_table(interleave(__file__, ["ours", "sb3"], worker_args, a.pairs))
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
