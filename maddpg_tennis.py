"""MADDPG: Multi-Agent DDPG, on Tennis (built in) and PettingZoo parallel environments.

Each agent acts from its own observation with a deterministic actor; each agent's critic sees every
agent's observation and action during training, so the others' changing policies do not make its
targets non-stationary (Lowe et al. 2017, https://arxiv.org/abs/1706.02275). The Tennis task of the
Unity ML-Agents toolkit is re-implemented below in NumPy, vectorized over courts.

Usage: python maddpg_tennis.py            (Tennis; --env-id simple_spread_v3 or multiwalker_v9)
"""

import contextlib
import copy
import difflib
import importlib
import io
import math
import os
import pkgutil
import random
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Literal

if __name__ == "__main__":  # Ctrl-C while the libraries below load ends in one line
    interrupted = "interrupted (Ctrl-C) outside the training loop"
    signal.signal(signal.SIGINT, lambda *_: os._exit(print(interrupted, file=sys.stderr) or 1))

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro
from pettingzoo import ParallelEnv
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    seed: int = 1
    """seed of random, numpy, torch and the environments"""
    torch_deterministic: bool = True
    """make torch deterministic (two seeded CPU runs give identical returns)"""
    cuda: bool = True
    """use CUDA when available"""
    track: bool = False
    """log to Weights & Biases"""
    wandb_project_name: str = "single-file-rl"
    """the W&B project"""
    wandb_entity: str | None = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of evaluation episodes to videos/{run_name}/"""
    save_model: bool = False
    """write a checkpoint to runs/{run_name}/{exp_name}.pt at the end (and on Ctrl-C or SIGTERM)"""
    checkpoint_frequency: int = 0
    """also write the checkpoint every this many transitions (0: only at the end)"""
    save_buffer: bool = False
    """include the replay buffer in checkpoints, so a resumed run continues as the same run"""
    resume: str | None = None
    """continue the run saved in this checkpoint (its hyperparameters and run name are kept)"""
    eval_checkpoint: str | None = None
    """evaluate the agents in this checkpoint (video with --capture-video), then exit"""
    eval_frequency: int = 10_000
    """run a deterministic evaluation every this many transitions (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    env_id: str = "Tennis"
    """Tennis (built in) or a PettingZoo parallel env with Box actions, e.g. simple_spread_v3"""
    total_timesteps: int = 50_000
    """joint transitions to collect, summed over all environments"""
    num_envs: int = 1
    """parallel environments (Tennis: courts simulated together as arrays)"""

    # Algorithm specific arguments
    max_episode_steps: int = 1000
    """Tennis: steps after which a rally is cut off (a truncation, not a termination)"""
    actor_learning_rate: float = 1e-3
    """Adam learning rate of the actors"""
    critic_learning_rate: float = 1e-3
    """Adam learning rate of the critics"""
    buffer_size: int = 200_000
    """replay buffer capacity in joint transitions"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 0.01
    """target smoothing coefficient: theta' <- tau * theta + (1 - tau) * theta'"""
    batch_size: int = 256
    """joint transitions per gradient update"""
    learning_starts: int = 300
    """transitions of uniformly random actions before learning starts"""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """hidden layer sizes of every actor and critic"""
    updates_per_step: float = 2.0
    """gradient updates (of every agent) per transition collected"""
    target_policy_noise: float = 0.0
    """std of the clipped Gaussian noise added to the target actors' actions in the critics' targets,
    in half action ranges (TD3's target policy smoothing, as MATD3 uses it; 0: plain MADDPG)"""
    target_noise_clip: float = 0.5
    """target policy noise is clipped to +- this, in half action ranges"""
    grad_clip: float = 1.0
    """clip each agent's gradient norm, per network, to this (0: no clipping)"""
    noise_type: Literal["gaussian", "ou"] = "ou"
    """exploration noise added to the actions: Gaussian or Ornstein-Uhlenbeck"""
    exploration_noise: float = 0.1
    """action-noise std (OU: sigma) in units of half the action range"""
    noise_decay_to: float = 1.0
    """exploration noise falls linearly to this fraction of its scale over the run (1: no decay)"""
    ou_theta: float = 0.15
    """Ornstein-Uhlenbeck mean reversion rate"""
    ou_dt: float = 1.0
    """Ornstein-Uhlenbeck time step (1: the discrete process most MADDPG code uses, std about
    sigma / sqrt(2 theta))"""
    shared_actor: bool = True
    """one actor for all agents (parameter sharing; the agents must be symmetric)"""
    shared_critic: bool = True
    """one critic for all agents, each agent's own inputs first (parameter sharing; the agents
    must be symmetric)"""
    independent: bool = False
    """each critic sees only its own agent's observation and action (independent DDPG)"""
    normalize_obs: bool = True
    """standardize observations with statistics of the random-action phase (frozen after it)"""


class BatchedMLP(nn.Module):
    """k MLPs of one shape (ReLU between layers) evaluated as one: each layer is a batched matrix
    product over weights (k, in, out), so n agents' networks cost the kernels of one."""

    def __init__(self, k: int, sizes: list[int]):
        super().__init__()
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialization
            self.weights.append(
                nn.Parameter(torch.empty(k, fan_in, fan_out).uniform_(-bound, bound))
            )
            self.biases.append(nn.Parameter(torch.empty(k, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (k, B, in) -> (k, B, out)
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias, x, weight)
            if i < len(self.weights) - 1:
                x = torch.relu(x)
        return x


class Actor(nn.Module):
    """Every agent's deterministic policy mu_i(o_i), tanh squashed and scaled to its action
    bounds; with shared_actor one network serves all agents."""

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, low, high, args: Args):
        super().__init__()
        self.shared = args.shared_actor
        sizes = [obs_dim, *args.hidden_sizes, act_dim]
        self.net = BatchedMLP(1 if self.shared else n_agents, sizes)
        low, high = (torch.as_tensor(b, dtype=torch.float32) for b in (low, high))
        self.register_buffer("action_scale", (high - low) / 2)  # (n_agents, act_dim)
        self.register_buffer("action_bias", (high + low) / 2)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # (B, n, obs_dim) -> (B, n, act_dim)
        batch, n, _ = obs.shape
        obs = (obs - self.obs_mean) / self.obs_std
        if self.shared:
            x = self.net(obs.reshape(1, batch * n, -1)).reshape(batch, n, -1)
        else:
            x = self.net(obs.transpose(0, 1)).transpose(0, 1)
        return torch.tanh(x) * self.action_scale + self.action_bias


class Critic(nn.Module):
    """Every agent's centralized Q_i(o_1..o_n, a_1..a_n) (with independent: Q_i(o_i, a_i)). With
    shared_critic one network serves all agents: critic i sees agent i's observation and action
    first and the others after it in cyclic order, so every transition trains it n times."""

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, args: Args):
        super().__init__()
        self.independent, self.shared = args.independent, args.shared_critic
        in_dim = obs_dim + act_dim if self.independent else n_agents * (obs_dim + act_dim)
        self.net = BatchedMLP(1 if self.shared else n_agents, [in_dim, *args.hidden_sizes, 1])
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        ids = torch.arange(n_agents)
        # Row i lists the agents in critic i's order: i, i+1, ..., i-1 (not saved in checkpoints).
        self.register_buffer("order", (ids[:, None] + ids[None]) % n_agents, persistent=False)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """obs (B, n, obs_dim); actions (n, B, n, act_dim): the joint action each critic i is
        asked about. Returns Q (n, B)."""
        n, batch = actions.shape[:2]
        obs = (obs - self.obs_mean) / self.obs_std
        if self.independent:
            own_actions = torch.diagonal(actions, dim1=0, dim2=2).permute(2, 0, 1)  # (n, B, act)
            x = torch.cat([obs.transpose(0, 1), own_actions], -1)
        elif self.shared:
            joint_obs = obs[:, self.order].transpose(0, 1).reshape(n, batch, -1)
            own_first = actions[self.order[:, :1], :, self.order].transpose(1, 2)
            x = torch.cat([joint_obs, own_first.reshape(n, batch, -1)], -1)
        else:
            joint_obs = obs.reshape(1, batch, -1).expand(n, -1, -1)
            x = torch.cat([joint_obs, actions.reshape(n, batch, -1)], -1)
        if self.shared:
            return self.net(x.reshape(1, n * batch, -1)).reshape(n, batch)
        return self.net(x).squeeze(-1)


class ReplayBuffer:
    """Joint transitions (all agents' observations, actions, rewards, terminations) in
    preallocated tensors used as a ring, sampled uniformly. A truncated transition keeps its true
    final observation as next_obs and bootstraps from it, so truncation needs no flag."""

    def __init__(self, capacity: int, n_agents: int, obs_dim: int, act_dim: int, device):
        self.capacity, self.device, self.pos, self.size = capacity, device, 0, 0
        self.obs = torch.zeros((capacity, n_agents, obs_dim))
        self.next_obs = torch.zeros((capacity, n_agents, obs_dim))
        self.actions = torch.zeros((capacity, n_agents, act_dim))
        self.rewards = torch.zeros((capacity, n_agents))
        self.terminated = torch.zeros((capacity, n_agents))

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Adds one joint transition per env (arrays with a leading num_envs axis)."""
        idx = (self.pos + np.arange(len(obs))) % self.capacity
        for store, value in zip(
            [self.obs, self.actions, self.rewards, self.next_obs, self.terminated],
            [obs, actions, rewards, next_obs, terminated],
        ):
            store[idx] = torch.as_tensor(value, dtype=torch.float32)
        self.pos = int(idx[-1] + 1) % self.capacity
        self.size = min(self.size + len(obs), self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator):
        t = torch.as_tensor(rng.integers(0, self.size, batch_size))
        batch = (self.obs, self.actions, self.rewards, self.next_obs, self.terminated)
        return tuple(x[t].to(self.device, non_blocking=True) for x in batch)

    def state_dict(self) -> dict:
        n = self.size
        names = ["obs", "next_obs", "actions", "rewards", "terminated"]
        # clones: a saved slice would write the whole preallocated storage
        return {"pos": self.pos, "size": n, **{k: getattr(self, k)[:n].clone() for k in names}}

    def load_state_dict(self, state: dict) -> None:
        n = self.size = state["size"]
        self.pos = state["pos"]
        for name in ["obs", "next_obs", "actions", "rewards", "terminated"]:
            getattr(self, name)[:n] = state[name]


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise per env, agent and action dimension:
    x <- x + theta * (0 - x) * dt + sigma * sqrt(dt) * N(0, 1); reset to 0 when an episode ends."""

    def __init__(self, shape: tuple[int, ...], theta: float, dt: float):
        self.theta, self.dt = theta, dt
        self.x = np.zeros(shape)

    def sample(self, sigma: float, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self.x.shape)
        self.x = self.x - self.theta * self.x * self.dt + sigma * np.sqrt(self.dt) * noise
        return self.x

    def reset(self, done: np.ndarray) -> None:
        self.x[done] = 0.0


def exploration_std(args: Args, global_step: int) -> float:
    """The exploration noise scale, decaying linearly to noise_decay_to of its start over the run."""
    progress = global_step / args.total_timesteps
    return args.exploration_noise * (1.0 - (1.0 - args.noise_decay_to) * progress)


def set_obs_normalization(rb: ReplayBuffer, modules: list[nn.Module]) -> None:
    """Fixes the networks' observation standardization to the mean and std of the observations
    collected so far (the random-action phase), pooled over agents. Velocities of up to 30 next to
    positions of a few units would otherwise dominate the first layer; frozen statistics keep the
    inputs of the critic's targets from drifting."""
    obs = rb.obs[: rb.size].reshape(-1, rb.obs.shape[-1])
    mean, std = obs.mean(0), obs.std(0).clamp(min=1e-2)
    for module in modules:
        module.obs_mean.copy_(mean)
        module.obs_std.copy_(std)


def clip_grad_norm_per_agent(params: list[nn.Parameter], max_norm: float) -> None:
    """Scales each agent's slice of the gradients (the leading axis) to at most max_norm, as if
    every agent's network were clipped on its own."""
    norms = torch.stack([p.grad.flatten(1).pow(2).sum(1) for p in params]).sum(0).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))


def update(data, actor, actor_target, critic, critic_target, actor_opt, critic_opt, args: Args):
    """One MADDPG step for every agent at once: critics toward r_i + gamma * Q'_i(x', mu'(o')),
    actors up their own critic with the other agents' actions taken from the replay, then Polyak
    updates of the targets. Returns (critic loss, actor loss, Q)."""
    obs, actions, rewards, next_obs, terminated = data
    n = obs.shape[1]
    with torch.no_grad():
        next_actions = actor_target(next_obs)
        if args.target_policy_noise > 0:
            # A smoother critic target, so the actors cannot exploit a narrow peak of Q.
            clip = args.target_noise_clip
            noise = (torch.randn_like(next_actions) * args.target_policy_noise).clamp(-clip, clip)
            scale, bias = actor_target.action_scale, actor_target.action_bias
            next_actions = torch.clamp(next_actions + noise * scale, bias - scale, bias + scale)
        next_actions = next_actions[None].expand(n, -1, -1, -1)
        next_q = critic_target(next_obs, next_actions)  # (n, B)
        y = rewards.T + args.gamma * (1.0 - terminated.T) * next_q
    q = critic(obs, actions[None].expand(n, -1, -1, -1))
    # Summed over agents: each critic's parameters get the gradient of its own mean squared error.
    critic_loss = (q - y).pow(2).mean(1).sum()
    critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    if args.grad_clip > 0:
        clip_grad_norm_per_agent(list(critic.parameters()), args.grad_clip)
    critic_opt.step()

    critic.requires_grad_(False)
    # Critic i is asked about agent i's current action and the others' replayed actions.
    own = torch.eye(n, device=obs.device).view(n, 1, n, 1)
    joint = own * actor(obs)[None] + (1.0 - own) * actions[None]
    actor_loss = -critic(obs, joint).mean(1).sum()
    actor_opt.zero_grad(set_to_none=True)
    actor_loss.backward()
    if args.grad_clip > 0:
        clip_grad_norm_per_agent(list(actor.parameters()), args.grad_clip)
    actor_opt.step()
    critic.requires_grad_(True)
    with torch.no_grad():
        for net, target in [(actor, actor_target), (critic, critic_target)]:
            torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), args.tau)
    return critic_loss.detach(), actor_loss.detach(), q.detach()


def train(args: Args) -> dict:
    """Runs the whole training; returns a summary (global_step, episodic_returns (scores),
    eval_returns, sps, run_dir, solved_episode)."""
    validate_args(args)
    check_common_args(args)
    if args.eval_checkpoint:
        return evaluate_checkpoint(args)
    ckpt = load_checkpoint(args.resume) if args.resume else None
    args = resumed_args(args, ckpt)
    use_cuda = args.cuda and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    rng = seed_everything(args.seed, args.torch_deterministic, use_cuda)
    envs = make_multi_agent_env(args, args.num_envs, args.seed)
    check_agents(args, envs)
    n, obs_dim, act_dim = envs.n_agents, envs.obs_dim, envs.act_dim
    low, high = envs.action_low, envs.action_high  # (n_agents, act_dim)
    actor = Actor(n, obs_dim, act_dim, low, high, args).to(device)
    critic = Critic(n, obs_dim, act_dim, args).to(device)
    actor_target, critic_target = copy.deepcopy(actor), copy.deepcopy(critic)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=args.actor_learning_rate, fused=True)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=args.critic_learning_rate, fused=True)
    report_buffer_memory(args.buffer_size, 4 * n * (2 * obs_dim + act_dim + 2))
    rb = ReplayBuffer(args.buffer_size, n, obs_dim, act_dim, device)
    ou = OrnsteinUhlenbeckNoise((args.num_envs, n, act_dim), args.ou_theta, args.ou_dt)
    nets = [actor, actor_target, critic, critic_target]
    parts = dict(zip(["actor", "actor_target", "critic", "critic_target"], nets))
    parts.update(actor_optimizer=actor_opt, critic_optimizer=critic_opt)
    run = Run(args, parts, rb, ou, actor, device, rng, ckpt)
    critic_loss = actor_loss = q = torch.zeros(())
    episode_returns = np.zeros((args.num_envs, n))
    episode_lengths = np.zeros(args.num_envs, dtype=np.int64)
    obs = envs.reset(seed=args.seed + run.global_step)
    try:
        while run.global_step < args.total_timesteps and not run.stop.requested:
            noise_std = exploration_std(args, run.global_step)
            if run.global_step < args.learning_starts:
                actions = rng.uniform(low, high, (args.num_envs, n, act_dim))
            else:
                with torch.no_grad():
                    actions = actor(torch.as_tensor(obs, device=device)).cpu().numpy()
                if args.noise_type == "gaussian":
                    noise = rng.normal(0.0, noise_std, actions.shape)
                else:
                    noise = ou.sample(noise_std, rng)
                actions = (actions + noise * (high - low) / 2).clip(low, high)
            next_obs, rewards, terminated, truncated, final_obs = envs.step(actions)
            rb.add(obs, actions, rewards, final_obs, terminated)
            obs = next_obs
            episode_returns += rewards
            episode_lengths += 1
            run.global_step += args.num_envs
            global_step = run.global_step
            # Every finished episode counts once, in court order, so counts match one court's.
            finished = terminated.all(1) | truncated
            for i in np.flatnonzero(finished):
                run.log_episode(float(envs.score(episode_returns[i])), episode_lengths[i])
            episode_returns[finished] = 0.0
            episode_lengths[finished] = 0
            ou.reset(finished)
            if args.normalize_obs and run.update_count == 0 and global_step > args.learning_starts:
                set_obs_normalization(rb, nets)
            if global_step > run.learn_after:
                # updates_per_step may be fractional: the fractions carry over to the next steps
                run.pending_updates += args.num_envs * args.updates_per_step
                while run.pending_updates >= 1.0:
                    run.pending_updates -= 1.0
                    data = rb.sample(args.batch_size, rng)
                    critic_loss, actor_loss, q = update(data, *nets, actor_opt, critic_opt, args)
                    run.update_count += 1
                if crossed(global_step, args.num_envs, LOG_EVERY) and run.update_count > 0:
                    run.log_losses(critic_loss, actor_loss, q)
            run.end_step()
    finally:
        run.close()
        envs.close()
    return run.finish()


SESSION_FIELDS = ["resume", "total_timesteps", "cuda", "track", "save_model", "save_buffer"]
SESSION_FIELDS += ["checkpoint_frequency", "capture_video"]
"""fields a resumed run takes from the command line; all others come from its checkpoint"""
FIX = "try lower learning rates or --grad-clip"  # what a diverging loss's message suggests
LOG_EVERY = 1_000  # transitions between loss logs (each costs a host-device sync)
SOLVED_SCORE = 0.5
"""Tennis counts as solved when the mean score of 100 consecutive episodes reaches this"""


class Run:
    """The run's bookkeeping, so that train() reads as the algorithm: the restored checkpoint, run
    directory, TensorBoard and W&B, progress bar, scores, evaluations, checkpoints and stops."""

    def __init__(self, args: Args, parts: dict, rb: ReplayBuffer, ou, policy, device, rng, ckpt):
        self.args, self.parts, self.rb, self.ou, self.policy = args, parts, rb, ou, policy
        self.device, self.rng, self.wandb_id = device, rng, None
        self.global_step, self.update_count, self.pending_updates = 0, 0, 0.0
        self.scores, self.solved_episode, self.learn_after = [], None, args.learning_starts
        if ckpt is not None:
            for name, part in parts.items():
                if isinstance(part, nn.Module):
                    load_weights(part, ckpt[name], args.resume, name)
                else:
                    part.load_state_dict(ckpt[name])
            if "buffer" in ckpt:
                rb.load_state_dict(ckpt["buffer"])
            else:  # learning from a near-empty buffer would overfit it: refill it first
                self.learn_after = ckpt["global_step"] + args.learning_starts
                reason = "holds no replay buffer (written without --save-buffer)"
                refill = f"collecting {args.learning_starts} transitions before learning again"
                print(f"warning: {args.resume} {reason}; {refill}")
            set_rng_states(ckpt["rng"], rng)
            ou.x = ckpt["ou_x"].numpy().copy()
            self.global_step, self.update_count = ckpt["global_step"], ckpt["update_count"]
            self.pending_updates, self.wandb_id = ckpt["pending_updates"], ckpt["wandb_id"]
            self.scores, self.solved_episode = ckpt["scores"].tolist(), ckpt["solved_episode"]
        self.run_name = ckpt["run_name"] if ckpt is not None else new_run_name(args)
        self.run_dir = os.path.join("runs", self.run_name)
        self.checkpoint_path = os.path.join(self.run_dir, f"{args.exp_name}.pt")
        if args.track:
            import wandb

            self.wandb_id, self.wandb = self.wandb_id or uuid.uuid4().hex[:12], wandb
            os.makedirs(self.run_dir, exist_ok=True)
            wandb.init(
                project=args.wandb_project_name,
                entity=args.wandb_entity,
                config=vars(args),
                name=self.run_name,
                id=self.wandb_id,
                resume="allow",
                sync_tensorboard=True,
                save_code=True,
                dir=self.run_dir,
            )
        # A resume replaces what was logged after its checkpoint; what was logged at its step came
        # before it, but for a finished run's final evaluation, which finishing again logs anew.
        finished = self.global_step >= args.total_timesteps
        purge = None if ckpt is None else self.global_step + (0 if finished else 1)
        self.writer = SummaryWriter(self.run_dir, purge_step=purge)
        log_hyperparameters(self.writer, args)
        self.video_dir = os.path.join("videos", self.run_name) if args.capture_video else None
        self.stop = StopRequest()
        tty = sys.stdout.isatty()
        self.bar = tqdm(
            total=args.total_timesteps, initial=self.global_step, unit="step", disable=not tty
        )
        self.eval_history: list[tuple[int, float]] = []
        self.start_step, self.eval_seconds = self.global_step, 0.0
        self.start_time = time.perf_counter()

    def log_episode(self, score: float, length: int) -> None:
        """Logs an episode's score; Tennis is solved once the last 100 average SOLVED_SCORE."""
        self.scores.append(score)
        step, mean100 = self.global_step, float(np.mean(self.scores[-100:]))
        self.writer.add_scalar("charts/episodic_return", score, step)
        self.writer.add_scalar("charts/episodic_length", length, step)
        self.writer.add_scalar("charts/score_mean100", mean100, step)
        self.writer.add_scalar("charts/episodes", len(self.scores), step)
        solved = len(self.scores) >= 100 and mean100 >= SOLVED_SCORE
        if self.args.env_id == "Tennis" and self.solved_episode is None and solved:
            self.solved_episode = len(self.scores)
            self.writer.add_scalar("charts/solved_episode", self.solved_episode, step)
            tqdm.write(f"solved: 100-episode mean {mean100:.3f} at episode {self.solved_episode}")

    def log_losses(self, critic_loss, actor_loss, q: torch.Tensor) -> None:
        step = self.global_step
        for name, loss in [("qf_loss", critic_loss), ("actor_loss", actor_loss)]:
            log_loss(self.writer, name, loss, step, FIX)
        for stat in ["mean", "min", "max"]:
            self.writer.add_scalar(f"losses/q_{stat}", getattr(q, stat)().item(), step)

    def end_step(self) -> None:
        """After a step: speed and progress, then an evaluation and a checkpoint when due."""
        steps, step, total = self.args.num_envs, self.global_step, self.args.total_timesteps
        self.bar.update(steps)
        log_now = crossed(step, steps, LOG_EVERY)
        print_now = self.bar.disable and crossed(step, steps, max(total // 20, 1))
        if log_now or print_now:
            elapsed = time.perf_counter() - self.start_time - self.eval_seconds
            sps, episodes = (step - self.start_step) / elapsed, len(self.scores)
            recent = np.mean(self.scores[-100:]) if self.scores else float("nan")
            if log_now:
                self.writer.add_scalar("charts/SPS", sps, step)
                self.bar.set_postfix(sps=f"{sps:.0f}", episodes=episodes, score100=f"{recent:.3f}")
            if print_now:
                line = f"sps {sps:.0f} episodes {episodes} score(last 100) {recent:.3f}"
                print(f"step {step}/{total} {line}", flush=True)
        if crossed(step, steps, self.args.eval_frequency) and step < total:
            eval_start = time.perf_counter()
            self.evaluation()
            self.eval_seconds += time.perf_counter() - eval_start
        if self.args.save_model and crossed(step, steps, self.args.checkpoint_frequency):
            self.save()

    def evaluation(self) -> list[float]:
        prefix = f"eval_step{self.global_step}"
        returns = evaluate(self.policy, self.args, self.device, self.video_dir, prefix)
        self.eval_history.append((self.global_step, float(np.mean(returns))))
        self.writer.add_scalar("eval/episodic_return", np.mean(returns), self.global_step)
        return returns

    def save(self) -> bool:
        state = {name: part.state_dict() for name, part in self.parts.items()}
        state.update(args=asdict(self.args), run_name=self.run_name, wandb_id=self.wandb_id)
        state.update(rng=rng_states(self.rng), global_step=self.global_step)
        state.update(update_count=self.update_count, pending_updates=self.pending_updates)
        state.update(ou_x=torch.as_tensor(self.ou.x), solved_episode=self.solved_episode)
        state.update(scores=torch.as_tensor(self.scores, dtype=torch.float64))
        if self.args.save_buffer:
            state["buffer"] = self.rb.state_dict()
        modules = [part for part in self.parts.values() if isinstance(part, nn.Module)]
        return save_checkpoint(self.checkpoint_path, state, modules)

    def close(self) -> None:
        self.stop.restore()
        self.bar.close()
        if sys.exc_info()[0] is not None:  # an error ends the run: write out what it logged
            self.writer.close()

    def finish(self) -> dict:
        """The final evaluation (none after a stop), the last checkpoint; returns the summary."""
        eval_returns: list[float] = []
        step, episodes, solved_episode = self.global_step, len(self.scores), self.solved_episode
        if not self.stop.requested:
            eval_returns = self.evaluation()
            solved = f"solved at episode {solved_episode}" if solved_episode else "not solved"
            mean, std, n = np.mean(eval_returns), np.std(eval_returns), len(eval_returns)
            line = f"evaluation score {mean:.3f} +- {std:.3f} over {n} episodes"
            print(f"step {step}, {episodes} episodes ({solved}): {line}", flush=True)
        saved = self.args.save_model and self.save()
        if self.stop.requested:
            where = f"checkpoint in {self.checkpoint_path}" if saved else "no checkpoint written"
            hint = "" if self.args.save_model else " (--save-model writes one)"
            print(f"stopped at step {step}: {where}{hint}", flush=True)
        elapsed = time.perf_counter() - self.start_time - self.eval_seconds
        sps = (step - self.start_step) / max(elapsed, 1e-9)
        self.writer.add_scalar("charts/SPS", sps, step)
        self.writer.close()
        if self.args.track:
            self.wandb.finish()
        return {
            "global_step": step,
            "update_count": self.update_count,
            "episodic_returns": self.scores,
            "eval_returns": eval_returns,
            "eval_history": self.eval_history,
            "solved_episode": solved_episode,
            "sps": sps,
            "run_dir": self.run_dir,
            "checkpoint": self.checkpoint_path if self.args.save_model else None,
            "interrupted": self.stop.requested,
        }


def check_rules(args, rules: list) -> None:
    """Raises ValueError naming the first flag that breaks a rule (flag names, test, what it must be)."""
    for names, test, what in rules:
        for name in names:
            if not test(getattr(args, name)):
                flag = f"--{name.replace('_', '-')}"
                raise ValueError(f"{flag} must be {what}, got {getattr(args, name)}")


POSITIVE = ["total_timesteps", "num_envs", "eval_episodes", "batch_size", "buffer_size"]
POSITIVE += ["max_episode_steps", "actor_learning_rate", "critic_learning_rate"]
NONNEGATIVE = ["checkpoint_frequency", "eval_frequency", "learning_starts", "updates_per_step"]
NONNEGATIVE += ["target_policy_noise", "target_noise_clip", "exploration_noise"]
RULES = [
    (POSITIVE, lambda v: v > 0, "positive"),
    (NONNEGATIVE, lambda v: v >= 0, ">= 0"),
    (["hidden_sizes"], lambda v: all(h > 0 for h in v), "all positive"),
    (["gamma", "noise_decay_to"], lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    (["tau"], lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
    (["grad_clip"], lambda v: v >= 0, ">= 0 (0 disables it)"),
]


def validate_args(args: Args) -> None:
    """Raises ValueError naming the flag and the fix before anything is built."""
    check_rules(args, RULES)
    if args.batch_size > args.buffer_size:
        sizes = f"--batch-size {args.batch_size} is larger than --buffer-size {args.buffer_size}"
        raise ValueError(f"{sizes}; lower the batch or raise the buffer")


def check_agents(args: Args, envs) -> None:
    """Refuses to share networks between agents that differ (bounds or observation sizes)."""
    low, high = envs.action_low, envs.action_high  # (n_agents, act_dim)
    if args.shared_actor and not (np.all(low == low[0]) and np.all(high == high[0])):
        raise ValueError(
            f"--shared-actor needs agents with equal action bounds; {args.env_id}'s differ: "
            "pass --no-shared-actor"
        )
    obs_dims = getattr(envs, "obs_dims", [envs.obs_dim] * envs.n_agents)  # Tennis: both alike
    if (args.shared_actor or args.shared_critic) and len(set(obs_dims)) > 1:
        raise ValueError(
            f"{args.env_id}'s agents observe {obs_dims} values: sharing networks needs "
            "symmetric agents; pass --no-shared-actor --no-shared-critic"
        )


class Tennis:
    """Two-player Tennis of Unity ML-Agents (v0.4, as in the Udacity course), in NumPy, for many
    courts at once. Facts from the ML-Agents sources, as gathered in the project's TENNIS_SPEC.md;
    units are Unity's (metres, seconds), x points from agent A (left) to agent B, y up.

        y                     |<- "over" plane x = 0, y in [-1, 9]: +0.1 to the last hitter
        6  .  ball drop (x = +-U(6, 8))
           .                  |
       -1  .                 |#|  net: x in [-0.05, 0.05], y in [-5, -1]
      -1.5   /A  (reset)     |#|              B\\  rackets tilted 55 degrees, mirrored
    -3.25 ===================|#|===================  scoring floors A (x < 0) and B (x > 0)
          x = -12.27 wall A           0           wall B x = +12.27

    Per physics step (0.02 s; an env step repeats the action over 5 of them, 0.1 s), for agent A
    (m = +1) and B (m = -1): vx = 30 * m * clip(a0, -1, 1) is set, not forced; if clip(a1) > 0.5 and
    the racket is below y = -1.5 its vy is set to 7 (a jump); gravity 9.81 pulls racket and ball.
    The spec's "below -1.5" means "on the ground", but a racket of this geometry rests lower (at
    about -2.55), so a racket falling through that band could jump again in mid-air; here it must
    not be falling (vy >= 0): it keeps being pushed at 7 until it passes -1.5, as in Unity, and can
    jump again only once it has landed.
    A racket's x stays in [-12.27, -1] (A) or [1, 12.27] (B); its lowest corner stays above the
    floor slab (y = -3.25). Ball velocity components are clamped to [-9, 9].

    Contact model (the spec's materials, written down here): the racket is velocity-controlled,
    so it is kinematic in a contact. Its collider is a 1.1 x 1.875 box turned by +-55 degrees whose
    centre sits 0.5 along the racket's long axis above the racket's origin; at rest on the slab the
    origin is at y = RACKET_REST_Y (about -2.55). When the ball (radius 0.5) overlaps the box, it
    is pushed out along the contact normal and, if approaching, its velocity relative to the racket
    is reflected about that normal (bounciness 1, friction 0), then the racket's velocity is added
    back. The tilt is what sends a ball falling on the face up and toward the net.

    Rewards: a ball crossing x = 0 above the net gives the last hitter +0.1. A ball touching a
    floor slab gives that side -0.01; touching the net or a back wall gives the last hitter -0.01.
    Either ends the episode (a termination for both agents). Rewards add up over the 5 physics steps.
    A rally longer than max_steps is truncated.

    Observation per agent: 8 numbers per frame, the 3 latest frames stacked oldest first (24),
    mirrored so that both agents play from the left: [m*x_racket, y_racket, m*vx_racket, vy_racket,
    m*x_ball, y_ball, m*vx_ball, vy_ball]. At reset the two older frames are zeros. The v0.4 build
    observed the racket's velocity again in slots 6-7 (a bug); here they hold the ball's velocity.
    """

    DT, SUBSTEPS, GRAVITY = 0.02, 5, 9.81
    FLOOR_Y, WALL_X, BALL_RADIUS, BALL_MAX_SPEED = -3.25, 12.27, 0.5, 9.0
    NET_HALF_WIDTH, NET_BOTTOM, NET_TOP, OVER_TOP = 0.05, -5.0, -1.0, 9.0
    RACKET_HALF = (0.55, 0.9375)
    RACKET_TILT = math.radians(55.0)
    RACKET_OFFSET = 0.5
    RACKET_SPEED, JUMP_SPEED, JUMP_BELOW, NET_GAP = 30.0, 7.0, -1.5, 1.0
    RACKET_REST_Y = (
        FLOOR_Y
        + RACKET_HALF[0] * math.sin(RACKET_TILT)
        + RACKET_HALF[1] * math.cos(RACKET_TILT)
        - RACKET_OFFSET * math.cos(RACKET_TILT)
    )
    N_AGENTS, OBS_DIM, ACT_DIM, FRAMES = 2, 24, 2, 3

    def __init__(
        self, num_envs: int = 1, max_steps: int = 1000, seed: int | None = None, autoreset=True
    ):
        self.num_envs, self.max_steps, self.autoreset = num_envs, max_steps, autoreset
        self.n_agents, self.obs_dim, self.act_dim = self.N_AGENTS, self.OBS_DIM, self.ACT_DIM
        self.action_low, self.action_high = -np.ones((2, 2)), np.ones((2, 2))
        self.rng = np.random.default_rng(seed)
        self.mirror = np.array([1.0, -1.0])  # m per agent: A plays from the left, B is mirrored
        tilt = self.RACKET_TILT * self.mirror
        self.axis_x = np.stack([np.cos(tilt), np.sin(tilt)], -1)  # (2, 2): box's local x, per agent
        self.axis_y = np.stack([-np.sin(tilt), np.cos(tilt)], -1)  # long axis
        n = num_envs
        self.racket_pos, self.racket_vel = np.zeros((n, 2, 2)), np.zeros((n, 2, 2))
        self.ball_pos, self.ball_vel = np.zeros((n, 2)), np.zeros((n, 2))
        self.last_hitter = np.full(n, -1)
        self.steps = np.zeros(n, dtype=np.int64)
        self.frames = np.zeros((n, 2, self.FRAMES, 8))

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Resets every court; returns observations (num_envs, 2, 24)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset_courts(np.ones(self.num_envs, dtype=bool))
        return self.observations()

    def _reset_courts(self, mask: np.ndarray) -> None:
        k = int(mask.sum())
        self.racket_pos[mask, :, 0] = -self.mirror * self.rng.uniform(6.0, 8.0, (k, 2))
        self.racket_pos[mask, :, 1] = -1.5
        self.racket_vel[mask] = 0.0
        side = np.where(self.rng.random(k) < 0.5, -1.0, 1.0)
        self.ball_pos[mask, 0] = side * self.rng.uniform(6.0, 8.0, k)
        self.ball_pos[mask, 1] = 6.0
        self.ball_vel[mask] = 0.0
        self.last_hitter[mask] = -1
        self.steps[mask] = 0
        self.frames[mask] = 0.0
        self.frames[mask, :, -1] = self._frame()[mask]

    def _frame(self) -> np.ndarray:
        """The current 8-number frame of each agent, mirrored: (num_envs, 2, 8)."""
        m = self.mirror[None, :]
        ball_pos = np.broadcast_to(self.ball_pos[:, None], self.racket_pos.shape)
        ball_vel = np.broadcast_to(self.ball_vel[:, None], self.racket_vel.shape)
        return np.stack(
            [
                m * self.racket_pos[..., 0],
                self.racket_pos[..., 1],
                m * self.racket_vel[..., 0],
                self.racket_vel[..., 1],
                m * ball_pos[..., 0],
                ball_pos[..., 1],
                m * ball_vel[..., 0],
                ball_vel[..., 1],
            ],
            -1,
        )

    def observations(self) -> np.ndarray:
        return self.frames.reshape(self.num_envs, 2, self.OBS_DIM).astype(np.float32)

    @staticmethod
    def score(returns: np.ndarray) -> np.ndarray:
        """An episode's score: the better of the two agents' returns."""
        return returns.max(-1)

    def step(self, actions: np.ndarray):
        """Steps every court with actions (num_envs, 2, 2). Returns (obs, rewards (num_envs, 2),
        terminated (num_envs, 2), the same for both agents, truncated (num_envs,), final_obs).
        With autoreset a finished court is reset at once: obs holds its first observation and
        final_obs its last one (final_obs equals obs for courts still playing)."""
        actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        move_x = actions[..., 0] * self.mirror[None, :]
        jump = actions[..., 1] > 0.5
        rewards = np.zeros((self.num_envs, 2))
        done = np.zeros(self.num_envs, dtype=bool)
        for _ in range(self.SUBSTEPS):
            done |= self._physics_step(move_x, jump, ~done, rewards)
        self.steps += 1
        self.frames = np.concatenate([self.frames[:, :, 1:], self._frame()[:, :, None]], axis=2)
        final_obs = self.observations()
        truncated = ~done & (self.steps >= self.max_steps)
        finished = done | truncated
        if self.autoreset and finished.any():
            self._reset_courts(finished)
        terminated = np.repeat(done[:, None], 2, axis=1)
        return self.observations(), rewards.astype(np.float32), terminated, truncated, final_obs

    def _physics_step(self, move_x, jump, live, rewards) -> np.ndarray:
        """One 0.02 s step of the courts in `live` (others stay frozen); adds rewards in place and
        returns which courts ended in it."""
        dt, lv = self.DT, live[:, None]
        vel = self.racket_vel.copy()
        vel[..., 0] = self.RACKET_SPEED * move_x
        # A falling racket cannot jump again before it lands (see the class docstring).
        can_jump = (self.racket_pos[..., 1] < self.JUMP_BELOW) & (vel[..., 1] >= 0.0)
        vel[..., 1] = np.where(jump & can_jump, self.JUMP_SPEED, vel[..., 1])
        vel[..., 1] -= self.GRAVITY * dt
        pos = self.racket_pos + vel * dt
        # Rackets stay on their side of the net, in the court, and above the floor slab.
        near, far = self.NET_GAP, self.WALL_X
        pos[:, 0, 0] = np.clip(pos[:, 0, 0], -far, -near)
        pos[:, 1, 0] = np.clip(pos[:, 1, 0], near, far)
        grounded = pos[..., 1] <= self.RACKET_REST_Y
        pos[..., 1] = np.where(grounded, self.RACKET_REST_Y, pos[..., 1])
        vel[..., 1] = np.where(grounded, np.maximum(vel[..., 1], 0.0), vel[..., 1])
        self.racket_pos = np.where(lv[..., None], pos, self.racket_pos)
        self.racket_vel = np.where(lv[..., None], vel, self.racket_vel)

        ball_vel = self.ball_vel.copy()
        ball_vel[:, 1] -= self.GRAVITY * dt
        ball_vel = np.clip(ball_vel, -self.BALL_MAX_SPEED, self.BALL_MAX_SPEED)
        ball_pos = self.ball_pos + ball_vel * dt
        for agent in range(2):
            ball_pos, ball_vel, hit = self._racket_contact(agent, ball_pos, ball_vel)
            self.last_hitter = np.where(hit & live, agent, self.last_hitter)
        ball_vel = np.clip(ball_vel, -self.BALL_MAX_SPEED, self.BALL_MAX_SPEED)

        courts = np.arange(self.num_envs)
        hitter = self.last_hitter
        has_hitter = hitter >= 0
        crossed = ((ball_pos[:, 0] < 0) != (self.ball_pos[:, 0] < 0)) & (
            (ball_pos[:, 1] >= self.NET_TOP) & (ball_pos[:, 1] <= self.OVER_TOP)
        )
        over = live & crossed & has_hitter
        rewards[courts[over], hitter[over]] += 0.1

        floor = ball_pos[:, 1] - self.BALL_RADIUS <= self.FLOOR_Y
        floor_side = (ball_pos[:, 0] > 0).astype(np.int64)  # 0: A's half, 1: B's half
        net_dx = np.maximum(np.abs(ball_pos[:, 0]) - self.NET_HALF_WIDTH, 0.0)
        net_dy = np.maximum(
            np.maximum(self.NET_BOTTOM - ball_pos[:, 1], ball_pos[:, 1] - self.NET_TOP), 0.0
        )
        net = net_dx**2 + net_dy**2 < self.BALL_RADIUS**2
        wall = np.abs(ball_pos[:, 0]) + self.BALL_RADIUS >= self.WALL_X
        floor_hit = live & floor
        rewards[courts[floor_hit], floor_side[floor_hit]] -= 0.01
        fault = live & ~floor & (net | wall) & has_hitter
        rewards[courts[fault], hitter[fault]] -= 0.01
        self.ball_pos = np.where(lv, ball_pos, self.ball_pos)
        self.ball_vel = np.where(lv, ball_vel, self.ball_vel)
        return live & (floor | net | wall)

    def _racket_contact(self, agent: int, ball_pos: np.ndarray, ball_vel: np.ndarray):
        """Ball against one racket's box in every court: push out along the contact normal and
        reflect the approaching relative velocity. Returns (ball_pos, ball_vel, hit)."""
        ax, ay = self.axis_x[agent], self.axis_y[agent]
        half_x, half_y = self.RACKET_HALF
        centre = self.racket_pos[:, agent] + self.RACKET_OFFSET * ay
        d = ball_pos - centre
        lx, ly = d @ ax, d @ ay
        qx, qy = np.clip(lx, -half_x, half_x), np.clip(ly, -half_y, half_y)
        diff = (lx - qx)[:, None] * ax + (ly - qy)[:, None] * ay
        dist = np.linalg.norm(diff, axis=1)
        outside = dist > 1e-9
        normal = np.where(outside[:, None], diff / np.maximum(dist, 1e-9)[:, None], 0.0)
        depth = self.BALL_RADIUS - dist
        # Centre inside the box: leave through the face nearest to it.
        pen_x, pen_y = half_x - np.abs(lx), half_y - np.abs(ly)
        inside_normal = np.where(
            (pen_x < pen_y)[:, None],
            np.sign(lx + 1e-12)[:, None] * ax,
            np.sign(ly + 1e-12)[:, None] * ay,
        )
        normal = np.where(outside[:, None], normal, inside_normal)
        depth = np.where(outside, depth, np.minimum(pen_x, pen_y) + self.BALL_RADIUS)
        hit = depth > 0
        rel = ball_vel - self.racket_vel[:, agent]
        rel_n = np.sum(rel * normal, axis=1)
        bounce = hit & (rel_n < 0)
        ball_vel = ball_vel - np.where(bounce, 2.0 * rel_n, 0.0)[:, None] * normal
        ball_pos = ball_pos + np.where(hit, depth, 0.0)[:, None] * normal
        return ball_pos, ball_vel, hit

    def render(self, court: int = 0, width: int = 400) -> np.ndarray:
        """An RGB image (uint8) of one court: floor, net, the two rackets and the ball."""
        x0, x1, y0, y1 = -12.5, 12.5, -3.5, 9.0
        height = int(width * (y1 - y0) / (x1 - x0))
        xs = x0 + (np.arange(width) + 0.5) * (x1 - x0) / width
        ys = y1 - (np.arange(height) + 0.5) * (y1 - y0) / height
        px, py = np.meshgrid(xs, ys)
        image = np.full((height, width, 3), (235, 240, 250), dtype=np.uint8)
        image[py <= self.FLOOR_Y] = (90, 150, 90)
        net = (np.abs(px) <= 0.08) & (py >= self.NET_BOTTOM) & (py <= self.NET_TOP)
        image[net] = (60, 60, 60)
        for agent, colour in [(0, (200, 60, 60)), (1, (60, 60, 200))]:
            ax, ay = self.axis_x[agent], self.axis_y[agent]
            centre = self.racket_pos[court, agent] + self.RACKET_OFFSET * ay
            dx, dy = px - centre[0], py - centre[1]
            inside = (np.abs(dx * ax[0] + dy * ax[1]) <= self.RACKET_HALF[0]) & (
                np.abs(dx * ay[0] + dy * ay[1]) <= self.RACKET_HALF[1]
            )
            image[inside] = colour
        bx, by = self.ball_pos[court]
        image[(px - bx) ** 2 + (py - by) ** 2 <= self.BALL_RADIUS**2] = (230, 180, 20)
        return image

    def close(self) -> None:
        """Nothing to release (the courts are arrays); PettingZooVecEnv has the same interface."""


class TennisParallelEnv(ParallelEnv):
    """One Tennis court behind PettingZoo's parallel API: agents "player_a" (left) and "player_b",
    each with a 24-number observation and 2 actions in [-1, 1]."""

    metadata = {"name": "tennis_v0", "render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, max_steps: int = 1000, render_mode: str | None = None):
        self.possible_agents = ["player_a", "player_b"]
        self.agents: list[str] = []
        self.render_mode = render_mode
        self.court = Tennis(1, max_steps, autoreset=False)
        self._observation_space = gym.spaces.Box(-np.inf, np.inf, (Tennis.OBS_DIM,), np.float32)
        self._action_space = gym.spaces.Box(-1.0, 1.0, (Tennis.ACT_DIM,), np.float32)

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> gym.spaces.Box:
        return self._action_space

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.agents = list(self.possible_agents)
        obs = self.court.reset(seed)[0]
        return {a: obs[i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict):
        joint = np.stack([actions[a] for a in self.possible_agents])[None]
        obs, rewards, terminated, truncated, _ = self.court.step(joint)
        out = [
            {a: value for a, value in zip(self.agents, values)}
            for values in (obs[0], rewards[0].tolist(), terminated[0].tolist())
        ]
        truncations = {a: bool(truncated[0]) for a in self.agents}
        infos = {a: {} for a in self.agents}
        if terminated[0].all() or truncated[0]:
            self.agents = []
        return out[0], out[1], out[2], truncations, infos

    def render(self) -> np.ndarray:
        return self.court.render(0)


def find_pettingzoo_env(env_id: str):
    """The PettingZoo (or mpe2) module whose parallel_env builds env_id; ValueError with the close
    matches among the installed ones otherwise."""
    families = ["mpe2", "pettingzoo.sisl", "pettingzoo.butterfly"]
    known = ["Tennis"]
    for family in families:
        try:
            package = importlib.import_module(family)
        except ImportError:
            continue
        known += [m.name for m in pkgutil.iter_modules(package.__path__) if "_v" in m.name]
        if env_id in known:
            return importlib.import_module(f"{family}.{env_id}")
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(f"--env-id {env_id} is neither Tennis nor a PettingZoo parallel env{hint}")


class PettingZooVecEnv:
    """Copies of a PettingZoo parallel env behind the array interface of Tennis: observations
    (num_envs, n_agents, obs_dim), zero-padded to the largest agent's, rewards and terminations
    (num_envs, n_agents), truncations (num_envs,). An agent that leaves early observes zeros and
    counts as terminated; a copy whose agents are all gone is reset at once. The score of an
    episode is the sum of the agents' returns (the team's return)."""

    def __init__(self, env_id: str, num_envs: int, seed: int, render: bool = False):
        module = find_pettingzoo_env(env_id)
        kwargs = {"continuous_actions": True} if module.__name__.startswith("mpe2") else {}
        if render:
            kwargs["render_mode"] = "rgb_array"
        self.envs = [module.parallel_env(**kwargs) for _ in range(num_envs)]
        env = self.envs[0]
        self.agent_names = list(env.possible_agents)
        spaces = [env.action_space(a) for a in self.agent_names]
        if not all(isinstance(s, gym.spaces.Box) for s in spaces):
            raise ValueError(
                f"--env-id {env_id} has {type(spaces[0]).__name__} actions; this script needs "
                "continuous (Box) actions (mpe2 envs are made with continuous_actions=True)"
            )
        if len({s.shape for s in spaces}) != 1:
            raise ValueError(f"--env-id {env_id}: its agents' action shapes differ; not supported")
        obs_spaces = [env.observation_space(a) for a in self.agent_names]
        if not all(isinstance(s, gym.spaces.Box) and len(s.shape) == 1 for s in obs_spaces):
            raise ValueError(
                f"--env-id {env_id} has {obs_spaces[0].shape}-shaped observations; this script "
                "learns from flat vectors (its MLPs cannot take images)"
            )
        self.num_envs, self.n_agents = num_envs, len(self.agent_names)
        self.obs_dims = [gym.spaces.flatdim(s) for s in obs_spaces]
        self.obs_dim, self.act_dim = max(self.obs_dims), spaces[0].shape[0]
        self.action_low = np.stack([s.low for s in spaces]).astype(np.float64)
        self.action_high = np.stack([s.high for s in spaces]).astype(np.float64)
        self.action_dtypes = [s.dtype for s in spaces]
        self.seed = seed
        self.terminated = np.zeros((num_envs, self.n_agents), dtype=bool)

    @staticmethod
    def score(returns: np.ndarray) -> np.ndarray:
        return returns.sum(-1)

    def _array(self, obs: dict) -> np.ndarray:
        out = np.zeros((self.n_agents, self.obs_dim), dtype=np.float32)
        for i, agent in enumerate(self.agent_names):
            if agent in obs:
                out[i, : self.obs_dims[i]] = np.asarray(obs[agent], dtype=np.float32).ravel()
        return out

    def _reset(self, i: int, seed: int | None = None) -> np.ndarray:
        self.terminated[i] = False
        return self._array(self.envs[i].reset(seed=seed)[0])

    def reset(self, seed: int | None = None) -> np.ndarray:
        seed = self.seed if seed is None else seed
        return np.stack([self._reset(i, seed + i) for i in range(self.num_envs)])

    def step(self, actions: np.ndarray):
        obs = np.zeros((self.num_envs, self.n_agents, self.obs_dim), dtype=np.float32)
        final_obs = np.zeros_like(obs)
        rewards = np.zeros((self.num_envs, self.n_agents), dtype=np.float32)
        terminated = np.zeros((self.num_envs, self.n_agents), dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for i, env in enumerate(self.envs):
            live = {
                a: actions[i, j].astype(self.action_dtypes[j])
                for j, a in enumerate(self.agent_names)
                if a in env.agents
            }
            o, r, term, trunc, _ = env.step(live)
            for j, agent in enumerate(self.agent_names):
                rewards[i, j] = r.get(agent, 0.0)
                self.terminated[i, j] |= bool(term.get(agent, False))
            terminated[i] = self.terminated[i]
            obs[i] = final_obs[i] = self._array(o)
            if not env.agents:
                terminated[i] |= ~np.array([trunc.get(a, False) for a in self.agent_names])
                truncated[i] = not terminated[i].all()
                obs[i] = self._reset(i)
        return obs, rewards, terminated, truncated, final_obs

    def render(self, court: int = 0) -> np.ndarray:
        return self.envs[court].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_multi_agent_env(args: Args, num_envs: int, seed: int, render: bool = False):
    """Tennis courts or PettingZoo env copies, behind one array interface."""
    if args.env_id == "Tennis":
        return Tennis(num_envs, args.max_episode_steps, seed)
    return PettingZooVecEnv(args.env_id, num_envs, seed, render)


def evaluate(actor: Actor, args: Args, device, video_dir: str | None = None, prefix="eval"):
    """Plays args.eval_episodes episodes of the deterministic agents (no exploration noise), one
    per court or env copy, side by side; returns their scores. Records the first with a video_dir.
    """
    n_episodes = args.eval_episodes
    env = make_multi_agent_env(args, n_episodes, args.seed + 10_000, video_dir is not None)
    obs = env.reset(seed=args.seed + 10_000)
    returns = np.zeros((n_episodes, env.n_agents))
    running = np.ones(n_episodes, dtype=bool)
    frames = [env.render(0)] if video_dir else []
    while running.any():
        with torch.no_grad():
            actions = actor(torch.as_tensor(obs, device=device)).cpu().numpy()
        obs, rewards, terminated, truncated, _ = env.step(actions)
        returns[running] += rewards[running]
        running &= ~(terminated.all(1) | truncated)
        if frames and running[0]:
            frames.append(env.render(0))
    if frames:
        from moviepy import ImageSequenceClip

        os.makedirs(video_dir, exist_ok=True)
        clip = ImageSequenceClip(frames, fps=10)
        clip.write_videofile(os.path.join(video_dir, f"{prefix}.mp4"), logger=None)
    env.close()
    return [float(s) for s in env.score(returns)]


def report_buffer_memory(capacity: int, bytes_per_transition: int) -> None:
    """Says how much memory a large replay buffer takes, before it is allocated."""
    gib = capacity * bytes_per_transition / 2**30
    if gib >= 1.0:
        print(f"replay buffer: {capacity} transitions take {gib:.1f} GiB (--buffer-size sets it)")


def rng_states(rng: np.random.Generator) -> dict:
    """Every RNG state as tensors or plain containers, so torch.load(weights_only=True) reads it."""
    version, mt_state, gauss = random.getstate()
    state = {"python": [version, list(mt_state), gauss], "numpy": rng.bit_generator.state}
    state["torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict, rng: np.random.Generator) -> None:
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


SCRIPT = os.path.basename(__file__)  # written into every checkpoint, so another script refuses it


def save_checkpoint(path: str, state: dict, modules: list[nn.Module]) -> bool:
    """Writes atomically (temporary file, then os.replace). Refuses non-finite weights, so the last
    good checkpoint stays; returns whether it wrote. A failed write (a full disk) removes the
    temporary file and raises OSError in one line."""
    if not all(torch.isfinite(p).all() for m in modules for p in m.parameters()):
        print(f"warning: non-finite weights; not writing {path}, which keeps the last good one")
        return False
    try:
        torch.save({**state, "script": SCRIPT}, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)
    except (OSError, RuntimeError) as e:  # torch reports a short write as a RuntimeError
        if os.path.lexists(f"{path}.tmp"):
            os.remove(f"{path}.tmp")
        reason = getattr(e, "strerror", None) or str(e).partition("strerror: ")[2]  # torch's
        reason = reason or "the write failed; is the disk full?"
        raise OSError(f"could not write checkpoint {path} ({reason}); the last one stays") from None
    return True


def load_checkpoint(path: str) -> dict:
    """Reads a checkpoint with weights_only=True; one clear error for a missing, unreadable, foreign
    or mismatched file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist; check the path given")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        ckpt = f"could not be read ({type(e).__name__}); the file is corrupt or not a checkpoint"
    if isinstance(ckpt, str):
        problem = ckpt
    elif not isinstance(ckpt, dict) or "args" not in ckpt:
        problem = "holds no saved options: it is not a checkpoint of this script"
    elif ckpt.get("script", SCRIPT) != SCRIPT:
        problem = f"was written by {ckpt['script']}; use that script"
    elif unknown := sorted(set(ckpt["args"]) - set(Args.__dataclass_fields__)):
        problem = f"sets options this version of the script does not have ({', '.join(unknown)})"
    else:
        return ckpt
    raise ValueError(f"checkpoint {path} {problem}")


def resumed_args(args, ckpt: dict | None):
    """A resumed run keeps its checkpoint's options but for SESSION_FIELDS; says which options
    given on the command line it ignores for that."""
    if ckpt is None:
        return args
    session = {name: getattr(args, name) for name in SESSION_FIELDS}
    resumed, defaults = type(args)(**{**ckpt["args"], **session}), asdict(type(args)())
    saved = asdict(resumed)
    ignored = [
        f"--{name.replace('_', '-')} {value}"
        for name, value in asdict(args).items()
        if str(value) not in (str(defaults[name]), str(saved[name]))  # tuples saved as lists
    ]
    if ignored:
        print(f"warning: --resume keeps the checkpoint's options; ignored {', '.join(ignored)}")
    return resumed


def check_common_args(args) -> None:
    """Refuses non-finite numbers, checkpoint options that would write nothing, and a run that
    would end before learning starts."""
    for name, value in asdict(args).items():
        if isinstance(value, float) and not np.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be finite, got {value}")
    for name in ["checkpoint_frequency", "save_buffer"]:
        if getattr(args, name, 0) and not args.save_model:
            raise ValueError(f"--{name.replace('_', '-')} writes only with --save-model; add it")
    starts = getattr(args, "learning_starts", 0)
    if starts >= args.total_timesteps and not args.resume and not args.eval_checkpoint:
        raise ValueError(
            f"--learning-starts {starts} is not below --total-timesteps {args.total_timesteps}: "
            "the run would never learn; lower it or raise the budget"
        )


LOSS_BOUND = 1e15  # a loss beyond this has diverged: no sane run gets near it


def log_loss(writer: SummaryWriter, name: str, loss: torch.Tensor, step: int, fix: str) -> None:
    """Logs losses/{name}; stops the run when it is non-finite or beyond LOSS_BOUND."""
    value = loss.item()
    if not abs(value) < LOSS_BOUND:
        raise FloatingPointError(f"losses/{name} is {value:.4g} at step {step}; stopping ({fix})")
    writer.add_scalar(f"losses/{name}", value, step)


def load_weights(module: nn.Module, state: dict, path: str, name: str) -> None:
    """load_state_dict with an error that says why a checkpoint does not fit."""
    try:
        module.load_state_dict(state)
    except RuntimeError:
        hint = "of these arguments (other --hidden-sizes, --env-id or script?)"
        raise ValueError(f"checkpoint {path} does not fit the {name} network {hint}") from None


class StopRequest:
    """Turns Ctrl-C and SIGTERM into a flag the loop checks once per step, so a run stops at a
    clean point and saves its checkpoint."""

    def __init__(self):
        self.requested, self.previous = False, {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self.previous[sig] = signal.signal(sig, self.handle)

    def handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def crossed(step: int, increment: int, every: int) -> bool:
    """Whether the step counter passed a multiple of `every` in its last increment."""
    return every > 0 and step // every != (step - increment) // every


def seed_everything(seed: int, torch_deterministic: bool, use_cuda: bool) -> np.random.Generator:
    """Seeds random, numpy and torch; returns the generator this script draws its own noise from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = torch_deterministic
    if torch_deterministic and use_cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    return np.random.default_rng(seed)


def new_run_name(args: Args) -> str:
    """{env_id}__{exp_name}__{seed}__{unix time}, claiming runs/{run_name}/ at once; a time already
    taken (two runs started in the same second) moves on by a second, so runs never share one."""
    stamp = int(time.time())
    while True:
        run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{stamp}"
        try:
            os.makedirs(os.path.join("runs", run_name))
            return run_name
        except FileExistsError:
            stamp += 1
        except OSError as e:
            fix = "run from a writable directory"
            raise OSError(f"cannot create runs/{run_name} ({e.strerror}); {fix}") from None


def log_hyperparameters(writer: SummaryWriter, args: Args) -> None:
    rows = "\n".join(f"|{key}|{value}|" for key, value in asdict(args).items())
    writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")


def evaluate_checkpoint(args: Args) -> dict:
    """--eval-checkpoint: evaluate the saved actors (recording with --capture-video)."""
    ckpt = load_checkpoint(args.eval_checkpoint)
    saved = Args(**{**ckpt["args"], "eval_episodes": args.eval_episodes, "seed": args.seed})
    use_cuda = args.cuda and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    seed_everything(args.seed, args.torch_deterministic, use_cuda)
    env = make_multi_agent_env(saved, 1, args.seed)
    actor = Actor(env.n_agents, env.obs_dim, env.act_dim, env.action_low, env.action_high, saved)
    env.close()
    load_weights(actor, ckpt["actor"], args.eval_checkpoint, "actor")
    video_dir = os.path.join("videos", ckpt["run_name"]) if args.capture_video else None
    returns = evaluate(actor.to(device), saved, device, video_dir, "eval_checkpoint")
    mean, std, n = np.mean(returns), np.std(returns), len(returns)
    print(f"{args.eval_checkpoint}: evaluation score {mean:.3f} +- {std:.3f} over {n} episodes")
    return {
        "global_step": ckpt["global_step"],
        "episodic_returns": [],
        "eval_returns": returns,
        "sps": 0.0,
        "run_dir": os.path.join("runs", ckpt["run_name"]),
    }


def parse_args() -> Args:
    """tyro.cli(Args), but a bad command line raises one ValueError line instead of tyro's box."""
    box = io.StringIO()
    try:
        with contextlib.redirect_stderr(box):
            return tyro.cli(Args)
    except SystemExit as e:
        if e.code != 2:  # --help (on stdout) and the like
            sys.stderr.write(box.getvalue())
            raise
    rows = [row.strip()[1:-1] for row in box.getvalue().splitlines() if row.startswith("│")]
    end = next((i for i, row in enumerate(rows) if "──" in row), len(rows))
    after = rows[end:] if "Perhaps you meant" in box.getvalue() else []
    meant = [row.split()[0] for row in after if row.startswith("     --")]  # the flags offered
    hint = f"; perhaps you meant {' or '.join(meant)}" if meant else ""
    raise ValueError(" ".join(row.strip() for row in rows[:end]) + hint)


def writer_thread_failed(hook) -> None:
    """threading.excepthook: TensorBoard's writer thread failing (a full disk) prints nothing; the
    main thread raises the error, naming the event file, at its next write (one line)."""
    file = getattr(getattr(hook.thread, "_record_writer", None), "_writer", None)
    if isinstance(hook.exc_value, OSError) and hasattr(file, "filename"):  # TensorBoard's thread
        hook.exc_value.filename = os.fsdecode(file.filename)
    else:
        threading.__excepthook__(hook)


if __name__ == "__main__":
    # From here Ctrl-C raises SystemExit, so finally blocks close files; the start-up handler above
    # ends the process at once, as an exception raised inside an import can surface as another one
    signal.signal(signal.SIGINT, lambda *_: sys.exit(interrupted))
    threading.excepthook = writer_thread_failed
    try:
        summary = train(parse_args())
    except (ValueError, OSError, FloatingPointError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(130 if summary.get("interrupted") else 0)
