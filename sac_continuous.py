"""SAC: Soft Actor-Critic, for continuous actions.

Maximum-entropy RL (Haarnoja et al. 2018, https://arxiv.org/abs/1801.01290): a tanh-Gaussian actor
maximizes min Q - alpha log pi, alpha tuned to a target entropy (https://arxiv.org/abs/1812.05905).
Defaults follow the SAC authors' code; `diff td3_continuous.py sac_continuous.py` shows SAC's ideas.

Usage: python sac_continuous.py --env-id HopperBulletEnv-v0
"""

import contextlib
import copy
import ctypes
import difflib
import io
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass

if __name__ == "__main__":  # Ctrl-C while the libraries below load ends in one line
    interrupted = "interrupted (Ctrl-C) outside the training loop"
    signal.signal(signal.SIGINT, lambda *_: os._exit(print(interrupted, file=sys.stderr) or 1))

import gymnasium as gym
import numpy as np
import pybullet_envs_gymnasium  # noqa: F401  (registers the Bullet envs)
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from sumtree import SumTree


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
    """evaluate the policy in this checkpoint (video with --capture-video), then exit"""
    eval_frequency: int = 10_000
    """run a deterministic evaluation every this many transitions (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    env_id: str = "HopperBulletEnv-v0"
    """the gymnasium environment id (any env with a Box action space)"""
    total_timesteps: int = 1_000_000
    """transitions to collect, summed over all environments"""
    num_envs: int = 1
    """parallel environments collecting data"""

    # Algorithm specific arguments
    learning_rate: float = 3e-4
    """Adam learning rate of the actor and the critic"""
    buffer_size: int = 1_000_000
    """replay buffer capacity in transitions"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 0.005
    """target smoothing coefficient: theta' <- tau * theta + (1 - tau) * theta'"""
    batch_size: int = 256
    """transitions per gradient update"""
    learning_starts: int = 5_000
    """transitions of uniformly random actions before learning starts"""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """hidden layer sizes of the actor and of each critic"""
    updates_per_step: float = 1.0
    """gradient updates per transition collected"""
    layer_norm: bool = False
    """layer normalization (without affine parameters) after each hidden layer"""
    grad_clip: float = 0.0
    """clip the global gradient norm of each network to this (0: no clipping)"""
    per: bool = False
    """proportional prioritized experience replay (Schaul et al. 2016)"""
    per_alpha: float = 0.6
    """priority exponent: P(i) ~ (|delta_i| + eps)^alpha"""
    per_beta: float = 0.4
    """initial importance-sampling exponent, annealed linearly to 1 over the run"""
    per_eps: float = 1e-6
    """added to |TD error| so no transition gets zero priority"""
    compile: bool = False
    """torch.compile the update steps (slower than eager here: 0.9x on a CPU, 0.93x on an H200)"""
    autotune: bool = True
    """tune the temperature alpha toward the target entropy (--no-autotune: alpha stays fixed)"""
    alpha: float = 0.2
    """the fixed temperature with --no-autotune (with autotuning, alpha starts at 1)"""
    target_entropy_scale: float = 1.0
    """target entropy = -scale * action dimensions, of the squashed action in [-1, 1]"""


def mlp(sizes: list[int], layer_norm: bool, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers with an activation (after a parameter-free LayerNorm if asked) between them."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            if layer_norm:
                layers.append(nn.LayerNorm(fan_out, elementwise_affine=False))
            layers.append(activation())
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Stochastic policy: a = tanh(u), u ~ N(mean(s), std(s)^2), then scaled to each action
    dimension's bounds. forward() gives the deterministic action tanh(mean) used in evaluation."""

    def __init__(self, obs_dim: int, action_space: gym.spaces.Box, args: Args):
        super().__init__()
        self.net = mlp([obs_dim, *args.hidden_sizes, 2 * action_space.shape[0]], args.layer_norm)
        low = torch.as_tensor(action_space.low, dtype=torch.float32)
        high = torch.as_tensor(action_space.high, dtype=torch.float32)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs).chunk(2, -1)[0]) * self.action_scale + self.action_bias

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized sample (gradients flow through it) and its log-probability."""
        mean, log_std = self.net(obs).chunk(2, -1)
        log_std = log_std.clamp(-20.0, 2.0)  # the SAC authors' bounds
        eps = torch.randn_like(mean)
        u = mean + log_std.exp() * eps
        log_prob = -0.5 * eps.pow(2) - log_std - 0.5 * np.log(2 * np.pi)  # log N(u; mean, std^2)
        # Change of variables a = tanh(u): subtract log(1 - tanh(u)^2), written as
        # 2 (log 2 - u - softplus(-2u)) so it stays finite where tanh(u) rounds to +-1.
        log_prob = log_prob - 2.0 * (np.log(2.0) - u - F.softplus(-2.0 * u))
        action = torch.tanh(u) * self.action_scale + self.action_bias
        return action, log_prob.sum(-1)


class TwinQNetwork(nn.Module):
    """Twin critics Q_1, Q_2 in one network: a batched matmul a layer computes both at once."""

    def __init__(self, obs_dim: int, act_dim: int, args: Args):
        super().__init__()
        sizes = [obs_dim + act_dim, *args.hidden_sizes, 1]
        # Each critic's layer starts as its own nn.Linear would; stacked, (2, fan_in, fan_out).
        pairs = [[nn.Linear(i, o) for _ in range(2)] for i, o in zip(sizes[:-1], sizes[1:])]
        self.weights = nn.ParameterList([torch.stack([l.weight.T for l in p]) for p in pairs])
        self.biases = nn.ParameterList([torch.stack([l.bias[None] for l in p]) for p in pairs])
        self.layer_norm = args.layer_norm

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, n: int = 2) -> torch.Tensor:
        """Returns (n, B): Q_1 .. Q_n (the actor update asks for Q_1 alone, as in the paper)."""
        x = torch.cat([obs, actions], -1).expand(n, -1, -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            # A slice's gradient is a zero-filled copy of the whole stack: slice only when needed.
            x = torch.baddbmm(b, x, w) if n == len(w) else torch.baddbmm(b[:n], x, w[:n])
            if i < len(self.weights) - 1:
                x = F.relu(F.layer_norm(x, x.shape[-1:]) if self.layer_norm else x)
        return x.squeeze(-1)


class Temperature(nn.Module):
    """The entropy temperature alpha. Autotuned, log alpha descends J(alpha) = E[-log alpha *
    (log pi(a|s) + target entropy)]: alpha falls while the entropy -log pi is above the target."""

    def __init__(self, act_dim: int, args: Args):
        super().__init__()
        start = 1.0 if args.autotune else args.alpha
        self.log_alpha = nn.Parameter(torch.tensor(float(start)).log(), args.autotune)
        self.target_entropy = -args.target_entropy_scale * act_dim
        self.loss = torch.zeros(())
        self.optimizer = torch.optim.Adam([self.log_alpha], lr=args.learning_rate, fused=True)

    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def update(self, log_prob: torch.Tensor) -> None:
        if not self.log_alpha.requires_grad:
            return
        self.loss = -(self.log_alpha * (log_prob + self.target_entropy)).mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss.backward()
        self.optimizer.step()
        self.loss = self.loss.detach()


class ReplayBuffer:
    """Transitions in preallocated tensors used as a ring; uniform or prioritized sampling. Only
    `terminated` is stored: a truncated transition keeps its true final observation as next_obs and
    bootstraps from it, so truncation needs no flag of its own."""

    FIELDS = ["obs", "actions", "rewards", "next_obs", "terminated"]

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, args: Args, device):
        self.capacity, self.device, self.pos, self.size = capacity, device, 0, 0
        for name, width in zip(self.FIELDS, [obs_dim, act_dim, None, obs_dim, None]):
            setattr(self, name, torch.zeros((capacity, width) if width else capacity))
        self.tree = SumTree(capacity) if args.per else None
        self.alpha, self.eps = args.per_alpha, args.per_eps

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Adds one transition per env (arrays with a leading num_envs axis)."""
        idx = (self.pos + np.arange(len(obs))) % self.capacity
        for name, value in zip(self.FIELDS, [obs, actions, rewards, next_obs, terminated]):
            getattr(self, name)[idx] = torch.as_tensor(value, dtype=torch.float32)
        if self.tree is not None:
            # New transitions get the largest priority so far: each is replayed at least once soon.
            self.tree.update(idx, self.tree.max_priority if self.size else 1.0)
        self.pos = int(idx[-1] + 1) % self.capacity
        self.size = min(self.size + len(obs), self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float):
        """Returns (obs, actions, rewards, next_obs, terminated, weights) on the device, and the
        sampled indices. Without PER the importance weights are all 1."""
        if self.tree is None:
            idx = rng.integers(0, self.size, batch_size)
            weights = torch.ones(batch_size)
        else:
            idx, priorities = self.tree.sample(batch_size, rng)
            # w_i = (N * P(i))^-beta / max_j w_j; the largest weight belongs to the smallest priority.
            weights = torch.as_tensor((priorities / self.tree.min_priority) ** -beta).float()
        t = torch.as_tensor(idx)
        batch = [getattr(self, name)[t] for name in self.FIELDS]
        return tuple(x.to(self.device, non_blocking=True) for x in (*batch, weights)), idx

    def update_priorities(self, idx: np.ndarray, td_abs: torch.Tensor) -> None:
        """p_i = (|delta_i| + eps)^alpha for the transitions just learned (nothing without PER)."""
        if self.tree is None:
            return
        priorities = (td_abs.cpu().double().numpy() + self.eps) ** self.alpha
        if not np.isfinite(priorities).all():
            raise FloatingPointError(f"the TD errors behind the priorities are not finite ({FIX})")
        self.tree.update(idx, priorities)


def update_critic(data, actor, qf, qf_target, q_optimizer, alpha, args: Args):
    """One critic step; returns the loss, Q(s, a) and |TD error| per transition (for PER)."""
    obs, actions, rewards, next_obs, terminated, weights = data
    with torch.no_grad():
        next_actions, next_log_prob = actor.sample(next_obs)  # a' ~ pi(.|s'): no target actor
        # y = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s'))
        next_q = qf_target(next_obs, next_actions).min(0).values - alpha * next_log_prob
        y = rewards + args.gamma * (1.0 - terminated) * next_q
    q = qf(obs, actions)  # (2, B)
    td_error = q - y
    # Importance weights undo the bias of prioritized sampling (they are all 1 without PER).
    qf_loss = (weights * td_error.pow(2)).mean(-1).sum()
    q_optimizer.zero_grad(set_to_none=True)
    qf_loss.backward()
    if args.grad_clip > 0:
        nn.utils.clip_grad_norm_(qf.parameters(), args.grad_clip)
    q_optimizer.step()
    return qf_loss.detach(), q.detach(), td_error.detach().abs().max(0).values


def update_actor(obs, actor, qf, actor_optimizer, temperature, args: Args):
    """One actor step on min Q - alpha * log pi, then one temperature step."""
    # The critic is only a function of the action here: skip its weights' gradients.
    qf.requires_grad_(False)
    actions, log_prob = actor.sample(obs)
    # J_pi = E[alpha * log pi(a|s) - min_i Q_i(s, a)], a reparameterized through the tanh-Gaussian
    actor_loss = (temperature.alpha() * log_prob - qf(obs, actions).min(0).values).mean()
    actor_optimizer.zero_grad(set_to_none=True)
    actor_loss.backward()
    if args.grad_clip > 0:
        nn.utils.clip_grad_norm_(actor.parameters(), args.grad_clip)
    actor_optimizer.step()
    qf.requires_grad_(True)
    temperature.update(log_prob.detach())
    return actor_loss.detach(), log_prob.detach()


def soft_update(pairs: list[tuple[nn.Module, nn.Module]], tau: float) -> None:
    """Polyak averaging of each (network, target) pair: theta' <- tau theta + (1 - tau) theta'."""
    with torch.no_grad():
        for net, target in pairs:
            torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), tau)


def train(args: Args) -> dict:
    """Runs the whole training; returns a summary (global_step, episodic_returns, eval_returns, sps,
    run_dir, ...)."""
    args, ckpt = checked_args(args)
    if args.eval_checkpoint:
        return evaluate_checkpoint(args)
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")
    rng = seed_everything(args.seed, args.torch_deterministic, device.type == "cuda")
    envs = make_vector_env(args)
    space = envs.single_action_space
    obs_dim, act_dim = envs.single_observation_space.shape[0], space.shape[0]

    actor = Actor(obs_dim, space, args).to(device)
    qf = TwinQNetwork(obs_dim, act_dim, args).to(device)
    qf_target = copy.deepcopy(qf)
    temperature = Temperature(act_dim, args).to(device)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.learning_rate, fused=True)
    q_optimizer = torch.optim.Adam(qf.parameters(), lr=args.learning_rate, fused=True)
    report_buffer_memory(args.buffer_size, 4 * (2 * obs_dim + act_dim + 2))
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, args, device)
    critic_step = torch.compile(update_critic) if args.compile else update_critic
    actor_step = torch.compile(update_actor) if args.compile else update_actor

    networks = {"actor": actor, "qf": qf, "qf_target": qf_target, "temperature": temperature}
    optimizers = {"actor_optimizer": actor_optimizer, "q_optimizer": q_optimizer}
    optimizers["alpha_optimizer"] = temperature.optimizer
    run = Run(args, ckpt, networks, optimizers, rb, rng, device, dict)
    qf_loss = actor_loss = q = log_prob = torch.zeros(())
    obs, _ = envs.reset(seed=args.seed + run.global_step)
    try:
        while run.global_step < args.total_timesteps and not run.stop.requested:
            progress = run.global_step / args.total_timesteps
            if run.global_step < args.learning_starts:
                actions = rng.uniform(space.low, space.high, (args.num_envs, act_dim))
            else:
                with torch.no_grad():  # the policy explores by itself: act on a sample from it
                    obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
                    actions = actor.sample(obs_t)[0].cpu().numpy()
            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            real_next_obs = run.record_episodes(next_obs, infos)
            rb.add(obs, actions, rewards, real_next_obs, terminations)
            obs = next_obs
            run.advance()

            for _ in range(run.updates_due()):
                beta = args.per_beta + (1.0 - args.per_beta) * progress
                data, idx = rb.sample(args.batch_size, rng, beta)
                qf_loss, q, td_abs = critic_step(
                    data, actor, qf, qf_target, q_optimizer, temperature.alpha(), args
                )
                rb.update_priorities(idx, td_abs)
                run.update_count += 1
                actor_loss, log_prob = actor_step(
                    data[0], actor, qf, actor_optimizer, temperature, args
                )
                soft_update([(qf, qf_target)], args.tau)
            if run.learning and run.crossed(LOG_EVERY) and run.update_count > 0:
                alpha = temperature.alpha().item()
                charts = {"losses/alpha": alpha, "losses/alpha_loss": temperature.loss.item()}
                charts["charts/entropy"] = -log_prob.mean().item()
                run.log_losses({"qf_loss": qf_loss, "actor_loss": actor_loss}, q, charts)
            run.after_step(actor)
    finally:
        run.close_loop(envs)
    return run.finish(actor)


# ---------------------------------------------------------------- plumbing
FIX = "try a lower --learning-rate or --grad-clip"  # what a diverging loss's message suggests
LOG_EVERY = 1_000  # transitions between loss logs (each costs a host-device sync)
RULES = [  # (flags, test, what they must be), checked before anything is built
    (["total_timesteps", "num_envs", "eval_episodes", "batch_size"], lambda v: v > 0, "positive"),
    (["buffer_size", "learning_rate", "per_eps"], lambda v: v > 0, "positive"),
    (["checkpoint_frequency", "eval_frequency", "learning_starts"], lambda v: v >= 0, ">= 0"),
    (["updates_per_step", "grad_clip", "per_alpha"], lambda v: v >= 0, ">= 0"),
    (["hidden_sizes"], lambda v: all(h > 0 for h in v), "all positive"),
    (["gamma", "per_beta"], lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    (["tau"], lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
    (["alpha", "target_entropy_scale"], lambda v: v > 0, "positive"),
]


def validate_args(args: Args) -> None:
    """Raises ValueError naming the flag and the fix before anything is built."""
    check_rules(args, RULES)
    if args.batch_size > args.buffer_size:
        sizes = f"--batch-size {args.batch_size} is larger than --buffer-size {args.buffer_size}"
        raise ValueError(f"{sizes}; lower the batch or raise the buffer")


def checked_args(args: Args) -> tuple[Args, dict | None]:
    """Validates the options; with --resume, loads the checkpoint and continues with its options."""
    validate_args(args)
    check_common_args(args)
    if args.eval_checkpoint or not args.resume:
        return args, None
    ckpt = load_checkpoint(args.resume)
    return resumed_args(args, ckpt), ckpt


def check_rules(args, rules: list) -> None:
    """Raises ValueError naming the first flag that breaks a rule (flag names, test, what it must be)."""
    for names, test, what in rules:
        for name in names:
            if not test(getattr(args, name)):
                flag = f"--{name.replace('_', '-')}"
                raise ValueError(f"{flag} must be {what}, got {getattr(args, name)}")


def check_env_id(env_id: str) -> None:
    """Raises ValueError for an unregistered env id, naming the closest registered ones."""
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"--env-id {env_id} is not a registered gymnasium environment{hint}")


def make_env(env_id: str, seed: int, video_dir: str | None = None, video_prefix: str = "eval"):
    """Returns a thunk that builds one seeded env recording episode statistics and, given a
    video_dir, a video of its first episode."""

    def thunk() -> gym.Env:
        render = {} if video_dir is None else {"render_mode": "rgb_array"}
        if video_dir is not None and "DISPLAY" not in os.environ:
            os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo's default GL (glfw) needs a display
        if "mujoco" in str(gym.spec(env_id).entry_point):
            import warnings
            import mujoco  # C warnings as Python's (not at every new env), not to MUJOCO_LOG.TXT

            mujoco.set_mju_user_warning(lambda text: warnings.warn(text, stacklevel=2))
        env = QuietBullet(env_id, **render) if "Bullet" in env_id else gym.make(env_id, **render)
        if video_dir is not None:
            first = dict(episode_trigger=lambda e: e == 0, name_prefix=video_prefix)
            env = gym.wrappers.RecordVideo(env, video_dir, **first)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
        return env

    return thunk


class QuietBullet(gym.Wrapper):
    """PyBullet's C code prints its build time when an env is made and `argv[0]=` when it connects
    (in its first reset), which would break the progress bar: both go to /dev/null."""

    def __init__(self, env_id: str, **kwargs):
        with self.silenced():
            super().__init__(gym.make(env_id, **kwargs))

    def reset(self, **kwargs):
        with self.silenced():
            return self.env.reset(**kwargs)

    @staticmethod
    @contextlib.contextmanager
    def silenced():
        sys.stdout.flush()
        sys.stderr.flush()
        saved, null = [os.dup(1), os.dup(2)], os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in (1, 2):
                os.dup2(null, fd)
            yield
        finally:
            ctypes.CDLL(None).fflush(None)  # C's buffered output, before the streams come back
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
            for fd in [*saved, null]:
                os.close(fd)


def make_vector_env(args: Args) -> gym.vector.SyncVectorEnv:
    """The training envs; raises ValueError when the action space is not a bounded Box."""
    check_env_id(args.env_id)
    thunks = [make_env(args.env_id, args.seed + i) for i in range(args.num_envs)]
    envs = gym.vector.SyncVectorEnv(thunks, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    space, obs_space = envs.single_action_space, envs.single_observation_space
    problem = None
    if not isinstance(space, gym.spaces.Box):
        problem = f"has a {type(space).__name__} action space; this script needs continuous (Box) "
        problem += "actions: use dqn_rainbow.py or ppo.py"
    elif not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        problem = "has unbounded actions; wrap it to finite bounds"
    elif not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        shape = obs_space.shape if isinstance(obs_space, gym.spaces.Box) else None
        problem = f"has {shape or type(obs_space).__name__}-shaped observations; this script "
        problem += "needs flat vector observations"
    if problem:
        envs.close()
        raise ValueError(f"--env-id {args.env_id} {problem}")
    return envs


def evaluate(policy: nn.Module, args: Args, device, video_dir: str | None = None, prefix="eval"):
    """Runs args.eval_episodes episodes of the deterministic policy (no exploration noise) on an
    env of its own; returns their undiscounted returns."""
    env = make_env(args.env_id, args.seed + 10_000, video_dir, prefix)()
    returns: list[float] = []
    obs, _ = env.reset(seed=args.seed + 10_000)
    while len(returns) < args.eval_episodes:
        with torch.no_grad():
            action = policy(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
        obs, _, terminated, truncated, info = env.step(action.cpu().numpy())
        if terminated or truncated:
            returns.append(float(info["episode"]["r"]))
            obs, _ = env.reset()
    env.close()
    return returns


def report_buffer_memory(capacity: int, bytes_per_transition: int) -> None:
    """Says how much memory a large replay buffer takes, before it is allocated."""
    gib = capacity * bytes_per_transition / 2**30
    if gib >= 1.0:
        print(f"replay buffer: {capacity} transitions take {gib:.1f} GiB (--buffer-size sets it)")


def buffer_state(rb: ReplayBuffer) -> dict:
    """The filled part of the buffer, cloned: a saved slice would write the whole storage."""
    state = {name: getattr(rb, name)[: rb.size].clone() for name in rb.FIELDS}
    if rb.tree is not None:
        state["priorities"] = torch.as_tensor(rb.tree.priorities(np.arange(rb.size)))
    return {**state, "pos": rb.pos, "size": rb.size}


def restore_buffer(rb: ReplayBuffer, state: dict) -> None:
    rb.pos, rb.size = state["pos"], state["size"]
    for name in rb.FIELDS:
        getattr(rb, name)[: rb.size] = state[name]
    if rb.tree is not None and rb.size:
        rb.tree.update(np.arange(rb.size), state["priorities"].numpy())


class Run:
    """The bookkeeping around the algorithm's loop: step and update counts, resuming, TensorBoard
    (and W&B), progress, periodic evaluation and checkpoints, Ctrl-C and SIGTERM, the summary."""

    def __init__(self, args, ckpt, networks, optimizers, rb, rng, device, extra_state):
        self.args, self.networks, self.optimizers, self.rb = args, networks, optimizers, rb
        self.rng, self.device, self.extra_state = rng, device, extra_state
        self.global_step, self.update_count, self.pending_updates = 0, 0, 0.0
        self.learn_after, self.wandb_id = args.learning_starts, None
        if ckpt is not None:
            self.restore(ckpt)
        self.run_name = ckpt["run_name"] if ckpt is not None else new_run_name(args)
        self.run_dir = os.path.join("runs", self.run_name)
        self.checkpoint_path = os.path.join(self.run_dir, f"{args.exp_name}.pt")
        if args.track:  # a resumed run continues its W&B run
            import uuid
            import wandb

            self.wandb_id = self.wandb_id or uuid.uuid4().hex[:12]
            os.makedirs(self.run_dir, exist_ok=True)
            where = dict(name=self.run_name, id=self.wandb_id, resume="allow", dir=self.run_dir)
            logged = dict(config=vars(args), sync_tensorboard=True, save_code=True)
            wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, **where, **logged)
        # A resume replaces what was logged after its checkpoint; what was logged at its step came
        # before it, but for a finished run's final evaluation, which finishing again logs anew.
        finished = self.global_step >= args.total_timesteps
        purge = None if ckpt is None else self.global_step + (0 if finished else 1)
        self.writer = SummaryWriter(self.run_dir, purge_step=purge)
        log_hyperparameters(self.writer, args)
        self.video_dir = os.path.join("videos", self.run_name) if args.capture_video else None
        self.stop = StopRequest()
        steps = dict(total=args.total_timesteps, initial=self.global_step, unit="step")
        self.bar = tqdm(**steps, disable=not sys.stdout.isatty())  # else plain lines (CI logs)
        # the last returns before a resume, so the progress line and the summary continue from them
        self.episodic_returns = (ckpt or {}).get("recent_returns", torch.zeros(0)).tolist()
        self.eval_history: list[tuple[int, float]] = []
        self.start_step, self.eval_seconds = self.global_step, 0.0
        self.start_time = time.perf_counter()

    def restore(self, ckpt: dict) -> None:
        """Weights, optimizer states, the buffer (or a refill before learning), RNGs, counters."""
        for name, module in self.networks.items():
            load_weights(module, ckpt[name], self.args.resume, name)
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(ckpt[name])
        if "buffer" in ckpt:
            restore_buffer(self.rb, ckpt["buffer"])
        else:  # learning from a near-empty buffer would overfit it: refill it first
            self.learn_after = ckpt["global_step"] + self.args.learning_starts
            refill = f"collecting {self.args.learning_starts} transitions before learning again"
            print(f"warning: {self.args.resume} holds no replay buffer (--save-buffer); {refill}")
        set_rng_states(ckpt["rng"], self.rng)
        self.global_step, self.update_count = ckpt["global_step"], ckpt["update_count"]
        self.pending_updates, self.wandb_id = ckpt["pending_updates"], ckpt["wandb_id"]

    @property
    def learning(self) -> bool:
        return self.global_step > self.learn_after

    def crossed(self, every: int) -> bool:
        return crossed(self.global_step, self.args.num_envs, every)

    def advance(self) -> None:
        self.global_step += self.args.num_envs
        self.bar.update(self.args.num_envs)

    def updates_due(self) -> int:
        """Gradient updates owed for the transitions collected (none before learning starts)."""
        if not self.learning:
            return 0
        self.pending_updates += self.args.num_envs * self.args.updates_per_step
        due = int(self.pending_updates)
        self.pending_updates -= due
        return due

    def record_episodes(self, next_obs: np.ndarray, infos: dict) -> np.ndarray:
        """Logs finished episodes; returns next_obs with each finished env's true final observation
        in place of the reset one the env already holds (the transition learns from the former)."""
        real_next_obs = next_obs.copy()
        if "final_obs" in infos:
            for i in np.flatnonzero(infos["_final_obs"]):
                real_next_obs[i] = infos["final_obs"][i]
            episode = infos["final_info"]["episode"]
            for i in np.flatnonzero(infos["final_info"]["_episode"]):
                self.episodic_returns.append(float(episode["r"][i]))
                self.writer.add_scalar("charts/episodic_return", episode["r"][i], self.global_step)
                self.writer.add_scalar("charts/episodic_length", episode["l"][i], self.global_step)
        return real_next_obs

    def log_losses(self, losses: dict, q: torch.Tensor, scalars: dict) -> None:
        """Logs the losses (stopping on a diverged one), Q's mean, min and max, and more scalars."""
        for name, loss in losses.items():
            log_loss(self.writer, name, loss, self.global_step, FIX)
        for stat in ["mean", "min", "max"]:
            self.writer.add_scalar(f"losses/q_{stat}", getattr(q, stat)().item(), self.global_step)
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, self.global_step)

    def sps(self) -> float:
        elapsed = time.perf_counter() - self.start_time - self.eval_seconds
        return (self.global_step - self.start_step) / max(elapsed, 1e-9)

    def after_step(self, actor: nn.Module) -> None:
        """Progress, then the periodic evaluation and checkpoint."""
        args = self.args
        log_now = self.crossed(LOG_EVERY)
        print_now = self.bar.disable and self.crossed(max(args.total_timesteps // 20, 1))
        if log_now or print_now:  # not every step: these are only for the logs
            sps = self.sps()
            recent = np.mean(self.episodic_returns[-10:]) if self.episodic_returns else float("nan")
            if log_now:
                self.writer.add_scalar("charts/SPS", sps, self.global_step)
                self.bar.set_postfix(sps=f"{sps:.0f}", ret=f"{recent:.1f}")
            if print_now:
                progress = f"step {self.global_step}/{args.total_timesteps} sps {sps:.0f}"
                print(f"{progress} return(last 10) {recent:.1f}", flush=True)
        if self.crossed(args.eval_frequency) and self.global_step < args.total_timesteps:
            self.evaluate(actor)
        if args.save_model and self.crossed(args.checkpoint_frequency):
            self.save()

    def evaluate(self, actor: nn.Module) -> list[float]:
        """A deterministic evaluation, logged as eval/episodic_return; SPS leaves its time out."""
        start = time.perf_counter()
        prefix = f"eval_step{self.global_step}"
        returns = evaluate(actor, self.args, self.device, self.video_dir, prefix)
        self.eval_history.append((self.global_step, float(np.mean(returns))))
        self.writer.add_scalar("eval/episodic_return", np.mean(returns), self.global_step)
        self.eval_seconds += time.perf_counter() - start
        return returns

    def save(self) -> None:
        modules = {**self.networks, **self.optimizers}
        state = {name: module.state_dict() for name, module in modules.items()}
        state.update(args=asdict(self.args), run_name=self.run_name, wandb_id=self.wandb_id)
        state.update(rng=rng_states(self.rng), global_step=self.global_step)
        state.update(update_count=self.update_count, pending_updates=self.pending_updates)
        state.update(recent_returns=torch.tensor(self.episodic_returns[-100:], dtype=torch.float64))
        state.update(self.extra_state())
        if self.args.save_buffer:
            state["buffer"] = buffer_state(self.rb)
        save_checkpoint(self.checkpoint_path, state, list(self.networks.values()))

    def close_loop(self, envs) -> None:
        self.stop.restore()
        self.bar.close()
        envs.close()
        if sys.exc_info()[0] is not None:  # an error ends the run: write out what it logged
            self.writer.close()

    def finish(self, actor: nn.Module) -> dict:
        """The final evaluation (unless stopped), the last checkpoint, and the summary."""
        args, step = self.args, self.global_step
        eval_returns = [] if self.stop.requested else self.evaluate(actor)
        if eval_returns:
            mean, std, n = np.mean(eval_returns), np.std(eval_returns), len(eval_returns)
            print(f"step {step}: evaluation return {mean:.1f} +- {std:.1f} over {n} episodes")
        if args.save_model:
            self.save()
        if self.stop.requested:
            saved = f"checkpoint in {self.checkpoint_path}" if args.save_model else "no checkpoint"
            print(f"stopped at step {step}; {saved} (--save-model keeps one)", flush=True)
        self.writer.add_scalar("charts/SPS", self.sps(), step)
        self.writer.close()
        if args.track:
            import wandb

            wandb.finish()
        summary = dict(global_step=step, update_count=self.update_count, sps=self.sps())
        summary.update(episodic_returns=self.episodic_returns, eval_returns=eval_returns)
        summary.update(eval_history=self.eval_history, run_dir=self.run_dir)
        checkpoint = self.checkpoint_path if args.save_model else None
        return {**summary, "checkpoint": checkpoint, "interrupted": self.stop.requested}


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


SESSION_FIELDS = (  # taken from the command line by --resume; all others from the checkpoint
    "resume total_timesteps cuda track save_model save_buffer checkpoint_frequency capture_video"
).split()


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
    """--eval-checkpoint: load a policy, evaluate it (recording it with --capture-video), return."""
    ckpt = load_checkpoint(args.eval_checkpoint)
    saved = Args(**{**ckpt["args"], "eval_episodes": args.eval_episodes, "seed": args.seed})
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")
    seed_everything(args.seed, args.torch_deterministic, device.type == "cuda")
    envs = make_vector_env(saved)
    actor = Actor(envs.single_observation_space.shape[0], envs.single_action_space, saved)
    envs.close()
    load_weights(actor, ckpt["actor"], args.eval_checkpoint, "actor")
    video_dir = os.path.join("videos", ckpt["run_name"]) if args.capture_video else None
    returns = evaluate(actor.to(device), saved, device, video_dir, "eval_checkpoint")
    mean, std = np.mean(returns), np.std(returns)
    print(f"{args.eval_checkpoint}: evaluation return {mean:.1f} +- {std:.1f} over {len(returns)}")
    summary = dict(global_step=ckpt["global_step"], episodic_returns=[], eval_returns=returns)
    return {**summary, "sps": 0.0, "run_dir": os.path.join("runs", ckpt["run_name"])}


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
