"""Peer comparison: our script and Stable-Baselines3's counterpart, same settings, interleaved.

For each seed, runs our script, then SB3's implementation of the same algorithm with the
hyperparameters of our script's `Args` (parsed from the same flags, so they match by construction),
one thread each, alternating ours and SB3 (A B A B ...) so that drifts in machine load hit both.
SB3 runs log the keys ours log (charts/episodic_return, eval/episodic_return, charts/SPS) under
runs/{env_id}__sb3_{algo}__{seed}__{time}, so benchmarks/report.py plots both side by side. The
speed ratio printed at the end is the median over seeds of ours / SB3 SPS of each pair.

Counterparts: td3_continuous -> SB3 TD3; ddpg_continuous -> SB3 DDPG (SB3's TD3 with one critic,
no policy delay and no target smoothing); ppo -> SB3 PPO (VecNormalize for our normalization
flags); a2c -> SB3 A2C (RMSprop with our alpha and epsilon); sac_continuous -> SB3 SAC;
dqn_rainbow -> SB3 DQN, with every Rainbow component switched off. Options SB3 has no
equivalent for (--per, --noise-type param, --layer-norm, --grad-clip, noise decay, several envs
for the off-policy scripts, the Rainbow components) are refused rather than silently dropped.

Usage: python benchmarks/peers.py td3_continuous --seeds 1 2 3 -- --env-id Pendulum-v1 \
           --total-timesteps 20000 --learning-starts 1000
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_script_args(script: str, flags: list[str]):
    """Our script's Args from the flags, exactly as the script itself would parse them."""
    import importlib

    import tyro

    module = importlib.import_module(script)
    return module, tyro.cli(module.Args, args=flags)


def check_supported(args) -> None:
    """Refuses options of our script that SB3's counterpart has no equivalent for."""
    unsupported = {
        "--per": getattr(args, "per", False),
        "--noise-type param": getattr(args, "noise_type", "") == "param",
        "--layer-norm": getattr(args, "layer_norm", False),
        "--grad-clip": getattr(args, "grad_clip", 0) > 0,
        "--noise-decay-to < 1": getattr(args, "noise_decay_to", 1) < 1,
        "--num-envs > 1": hasattr(args, "buffer_size") and args.num_envs > 1,
    }
    if hasattr(args, "distributional"):  # SB3's DQN is plain DQN: every Rainbow part off
        unsupported.update(
            {
                "--double": args.double,
                "--dueling": args.dueling,
                "--n-step > 1": args.n_step > 1,
                "--distributional": args.distributional,
                "--noisy": args.noisy,
            }
        )
    bad = [flag for flag, used in unsupported.items() if used]
    if bad:
        raise SystemExit(f"error: SB3's counterpart has no equivalent of {', '.join(bad)}")


def off_policy_kwargs(args) -> dict:
    """The settings SB3's TD3 and DQN take alike, from our Args."""
    return dict(
        learning_rate=args.learning_rate,
        buffer_size=args.buffer_size,
        learning_starts=args.learning_starts,
        batch_size=args.batch_size,
        gamma=args.gamma,
        seed=args.seed,
        device="cpu",
    )


def sb3_td3(script: str, args):
    """SB3's TD3 with our Args (DDPG: one critic, no policy delay, no target smoothing)."""
    import gymnasium as gym
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    env = gym.make(args.env_id)
    scale = (env.action_space.high - env.action_space.low) / 2
    zero = np.zeros(env.action_space.shape)
    if args.noise_type == "ou":
        noise = OrnsteinUhlenbeckActionNoise(
            zero, args.exploration_noise * scale, args.ou_theta, args.ou_dt
        )
    else:
        noise = NormalActionNoise(zero, args.exploration_noise * scale)
    td3 = script == "td3_continuous"
    return TD3(
        "MlpPolicy",
        env,
        tau=args.tau,
        train_freq=1,
        gradient_steps=max(1, round(args.updates_per_step)),
        action_noise=noise,
        policy_delay=args.policy_frequency if td3 else 1,
        target_policy_noise=args.policy_noise if td3 else 0.0,
        target_noise_clip=args.noise_clip if td3 else 0.0,
        policy_kwargs={"net_arch": list(args.hidden_sizes), "n_critics": 2 if td3 else 1},
        **off_policy_kwargs(args),
    )


def sb3_dqn(args):
    """SB3's DQN with our Args (all Rainbow components off): the same MLP, Huber loss, batch,
    train frequency, hard target updates, epsilon schedule, Adam epsilon and gradient clipping."""
    import gymnasium as gym
    from stable_baselines3 import DQN

    return DQN(
        "MlpPolicy",
        gym.make(args.env_id),
        train_freq=args.train_frequency,
        gradient_steps=1,
        target_update_interval=args.target_network_frequency,
        exploration_fraction=args.exploration_fraction,
        exploration_initial_eps=args.start_e,
        exploration_final_eps=args.end_e,
        max_grad_norm=args.max_grad_norm,
        policy_kwargs={
            "net_arch": list(args.hidden_sizes),
            "optimizer_kwargs": {"eps": args.adam_eps},
        },
        **off_policy_kwargs(args),
    )


def sb3_ppo(args):
    """SB3's PPO with our Args: same rollout, epochs, minibatches, clipping, value-loss weight,
    advantage normalization, separate networks and normalization wrapper. With --clip-vloss, SB3
    takes the clipped prediction's error alone where ours takes the larger of the two errors."""
    import torch.nn as nn
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = make_vec_env(args.env_id, n_envs=args.num_envs, seed=args.seed)
    if args.normalize_obs or args.normalize_reward:
        env = VecNormalize(
            env,
            norm_obs=args.normalize_obs,
            norm_reward=args.normalize_reward,
            clip_obs=args.obs_clip,
            clip_reward=args.reward_clip,
            gamma=args.gamma,
        )
    lr = (lambda left: args.learning_rate * left) if args.anneal_lr else args.learning_rate
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=lr,
        n_steps=args.num_steps,
        batch_size=args.num_envs * args.num_steps // args.num_minibatches,
        n_epochs=args.update_epochs,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        clip_range=args.clip_coef,
        clip_range_vf=args.clip_coef if args.clip_vloss else None,
        normalize_advantage=args.norm_adv,
        ent_coef=args.ent_coef,
        vf_coef=args.vf_coef / 2,  # SB3's value loss is the squared error, ours half of it
        max_grad_norm=args.max_grad_norm,
        target_kl=args.target_kl,
        seed=args.seed,
        device="cpu",
        policy_kwargs=dict(
            net_arch=dict(pi=list(args.hidden_sizes), vf=list(args.hidden_sizes)),
            activation_fn={"tanh": nn.Tanh, "relu": nn.ReLU}[args.activation],
            log_std_init=args.log_std_init,
        ),
    )


def sb3_a2c(args):
    """SB3's A2C with our Args: same rollout, n-step/GAE returns, value-loss weight, RMSprop
    settings, separate networks, no advantage normalization."""
    import torch
    import torch.nn as nn
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(args.env_id, n_envs=args.num_envs, seed=args.seed)
    lr = (lambda left: args.learning_rate * left) if args.anneal_lr else args.learning_rate
    return A2C(
        "MlpPolicy",
        env,
        learning_rate=lr,
        n_steps=args.num_steps,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        ent_coef=args.ent_coef,
        vf_coef=args.vf_coef / 2,  # SB3's value loss is the squared error, ours half of it
        max_grad_norm=args.max_grad_norm,
        normalize_advantage=False,
        seed=args.seed,
        device="cpu",
        policy_kwargs=dict(
            net_arch=dict(pi=list(args.hidden_sizes), vf=list(args.hidden_sizes)),
            activation_fn={"tanh": nn.Tanh, "relu": nn.ReLU}[args.activation],
            log_std_init=args.log_std_init,
            optimizer_class=torch.optim.RMSprop,
            optimizer_kwargs=dict(alpha=args.rms_alpha, eps=args.rms_eps, weight_decay=0),
        ),
    )


def sb3_sac(args):
    """SB3's SAC with our Args: the same networks, schedule and temperature (autotuned from 1
    toward -scale * |A|, or fixed)."""
    import gymnasium as gym
    from stable_baselines3 import SAC

    env = gym.make(args.env_id)
    return SAC(
        "MlpPolicy",
        env,
        tau=args.tau,
        train_freq=1,
        gradient_steps=max(1, round(args.updates_per_step)),
        ent_coef="auto_1.0" if args.autotune else args.alpha,
        target_entropy=-args.target_entropy_scale * env.action_space.shape[0],
        policy_kwargs={"net_arch": list(args.hidden_sizes)},
        **off_policy_kwargs(args),
    )


def run_sb3(script: str, flags: list[str], runs_dir: str) -> float:
    """Trains SB3's counterpart with our Args, logging our keys; returns its SPS (evaluation time
    excluded)."""
    import pybullet_envs_gymnasium  # noqa: F401
    import torch

    torch.set_num_threads(1)
    _, args = parse_script_args(script, flags)
    check_supported(args)
    if script == "ppo":
        model = sb3_ppo(args)
    elif script == "a2c":
        model = sb3_a2c(args)
    elif script == "sac_continuous":
        model = sb3_sac(args)
    elif script == "dqn_rainbow":
        model = sb3_dqn(args)
    else:
        model = sb3_td3(script, args)
    return learn_and_log(model, args, runs_dir, f"sb3_{script.split('_')[0]}")


def learn_and_log(model, args, runs_dir: str, exp_name: str) -> float:
    """model.learn for args.total_timesteps, logging our keys (episodic returns, deterministic
    evaluations of args.eval_episodes every args.eval_frequency steps and at the end, SPS without
    evaluation time) under runs_dir/runs/{env_id}__{exp_name}__{seed}__{time}; returns the SPS."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize
    from torch.utils.tensorboard import SummaryWriter

    run_name = f"{args.env_id}__{exp_name}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(os.path.join(runs_dir, "runs", run_name))

    class Logger(BaseCallback):
        """Logs our keys: episodic returns, deterministic evaluations, SPS without eval time."""

        def __init__(self):
            super().__init__()
            self.start, self.eval_seconds, self.last = time.perf_counter(), 0.0, 0

        def crossed(self, every: int) -> bool:
            return every > 0 and self.num_timesteps // every > self.last // every

        def evaluate(self) -> None:
            start = time.perf_counter()
            eval_env = make_vec_env(args.env_id, n_envs=1, seed=args.seed + 10_000)
            train_env = self.model.get_env()
            if isinstance(train_env, VecNormalize):  # the training statistics, frozen
                eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
                eval_env.obs_rms = train_env.obs_rms
            returns, _ = evaluate_policy(
                self.model,
                eval_env,
                args.eval_episodes,
                deterministic=True,
                return_episode_rewards=True,
            )
            writer.add_scalar("eval/episodic_return", np.mean(returns), self.num_timesteps)
            self.eval_seconds += time.perf_counter() - start

        def sps(self) -> float:
            return self.num_timesteps / (time.perf_counter() - self.start - self.eval_seconds)

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    writer.add_scalar(
                        "charts/episodic_return", info["episode"]["r"], self.num_timesteps
                    )
                    writer.add_scalar(
                        "charts/episodic_length", info["episode"]["l"], self.num_timesteps
                    )
            if self.crossed(1000):
                writer.add_scalar("charts/SPS", self.sps(), self.num_timesteps)
            if self.crossed(args.eval_frequency) and self.num_timesteps < args.total_timesteps:
                self.evaluate()
            self.last = self.num_timesteps
            return True

    logger = Logger()
    model.learn(total_timesteps=args.total_timesteps, callback=logger)
    sps = logger.sps()
    writer.add_scalar("charts/SPS", sps, logger.num_timesteps)
    logger.evaluate()
    writer.close()
    return sps


def last_sps(run_dir: str) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir)
    events.Reload()
    return events.Scalars("charts/SPS")[-1].value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "script",
        choices=[
            "td3_continuous",
            "ddpg_continuous",
            "sac_continuous",
            "ppo",
            "a2c",
            "dqn_rainbow",
        ],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--runs-dir", default=os.path.join(ROOT, "benchmarks", "runs"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args(own)
    if a.worker:
        print(json.dumps({"sps": run_sb3(a.script, flags, a.runs_dir)}))
        return 0

    _, args = parse_script_args(a.script, flags)
    check_supported(args)
    os.makedirs(a.runs_dir, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ratios = []

    def child(label: str, cmd: list[str]) -> str | None:
        """Runs one side of a pair; its stdout, or None (after saying why) if it failed."""
        out = subprocess.run(cmd, env=env, cwd=a.runs_dir, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{label} failed (seed {seed}): {' '.join(cmd)}\n{out.stderr[-2000:]}")
            return None
        return out.stdout

    for seed in a.seeds:
        seeded = [*flags, "--seed", str(seed)]
        before = set(glob.glob(os.path.join(a.runs_dir, "runs", "*")))
        if child("ours", [sys.executable, os.path.join(ROOT, f"{a.script}.py"), *seeded]) is None:
            return 1
        (run_dir,) = set(glob.glob(os.path.join(a.runs_dir, "runs", "*"))) - before
        peer_cmd = [
            sys.executable,
            os.path.abspath(__file__),
            a.script,
            "--worker",
            "--runs-dir",
            a.runs_dir,
            "--",
            *seeded,
        ]
        peer_out = child("SB3", peer_cmd)
        if peer_out is None:
            return 1
        ours_sps = last_sps(run_dir)
        sb3_sps = json.loads(peer_out.strip().splitlines()[-1])["sps"]
        ratios.append(ours_sps / sb3_sps)
        print(
            f"seed {seed}: ours {ours_sps:.0f} SPS, SB3 {sb3_sps:.0f} SPS, ratio {ratios[-1]:.2f}",
            flush=True,
        )
    print(
        f"speed ratio ours / SB3: median {np.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}) over {len(ratios)} pairs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
