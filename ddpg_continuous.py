"""DDPG: Deep Deterministic Policy Gradient, for continuous actions.

A critic Q(s, a) learns from replayed transitions toward targets given by slowly tracking target
networks; a deterministic actor mu(s) climbs the critic's gradient in a (Lillicrap et al. 2015,
https://arxiv.org/abs/1509.02971). Defaults follow the TD3 authors' code, and
`diff ddpg_continuous.py td3_continuous.py` shows only TD3's ideas: twin critics whose minimum forms
the target, target policy smoothing, and actor and target updates delayed to every few critic steps.

Usage: python ddpg_continuous.py --env-id HopperBulletEnv-v0
"""

import copy
import difflib
import os
import random
import signal
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Literal

if __name__ == "__main__":  # Ctrl-C while the libraries below load ends in one line
    signal.signal(
        signal.SIGINT, lambda *_: sys.exit("interrupted (Ctrl-C) outside the training loop")
    )

import gymnasium as gym
import numpy as np
import pybullet_envs_gymnasium  # noqa: F401  (registers the Bullet envs)
import torch
import torch.nn as nn
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
    learning_starts: int = 25_000
    """transitions of uniformly random actions before learning starts"""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """hidden layer sizes of the actor and of each critic"""
    updates_per_step: float = 1.0
    """gradient updates per transition collected"""
    layer_norm: bool = False
    """layer normalization (without affine parameters) after each hidden layer"""
    grad_clip: float = 0.0
    """clip the global gradient norm of each network to this (0: no clipping)"""
    noise_type: Literal["gaussian", "ou", "param"] = "gaussian"
    """exploration: Gaussian or Ornstein-Uhlenbeck action noise, or adaptive parameter noise"""
    exploration_noise: float = 0.1
    """action-noise std (OU: sigma), or the target action distance of parameter noise, in units
    of half the action range"""
    noise_decay_to: float = 1.0
    """exploration noise falls linearly to this fraction of its scale over the run (1: no decay)"""
    ou_theta: float = 0.15
    """Ornstein-Uhlenbeck mean reversion rate"""
    ou_dt: float = 1e-2
    """Ornstein-Uhlenbeck time step"""
    param_noise_interval: int = 50
    """transitions between adapting the parameter-noise scale and re-perturbing the actor"""
    param_noise_adapt: float = 1.01
    """factor by which the parameter-noise std grows or shrinks toward the target distance"""
    per: bool = False
    """proportional prioritized experience replay (Schaul et al. 2016)"""
    per_alpha: float = 0.6
    """priority exponent: P(i) ~ (|delta_i| + eps)^alpha"""
    per_beta: float = 0.4
    """initial importance-sampling exponent, annealed linearly to 1 over the run"""
    per_eps: float = 1e-6
    """added to |TD error| so no transition gets zero priority"""
    compile: bool = False
    """torch.compile the update steps"""


def validate_args(args: Args) -> None:
    """Raises ValueError naming the flag and the fix before anything is built."""
    positive = ["total_timesteps", "num_envs", "eval_episodes", "batch_size", "buffer_size"]
    for name in positive + ["learning_rate"]:
        if not getattr(args, name) > 0:
            raise ValueError(
                f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}"
            )
    for name in ["checkpoint_frequency", "eval_frequency", "learning_starts", "updates_per_step"]:
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if not all(h > 0 for h in args.hidden_sizes):
        raise ValueError(f"--hidden-sizes must all be positive, got {args.hidden_sizes}")
    if not 0.0 <= args.gamma <= 1.0:
        raise ValueError(f"--gamma must be in [0, 1], got {args.gamma}")
    if not 0.0 < args.tau <= 1.0:
        raise ValueError(f"--tau must be in (0, 1], got {args.tau}")
    if args.batch_size > args.buffer_size:
        raise ValueError(
            f"--batch-size {args.batch_size} is larger than --buffer-size {args.buffer_size}; "
            "lower the batch or raise the buffer"
        )
    if args.exploration_noise < 0 or not 0.0 <= args.noise_decay_to <= 1.0:
        raise ValueError("--exploration-noise must be >= 0 and --noise-decay-to in [0, 1]")
    if args.param_noise_interval <= 0 or args.param_noise_adapt <= 1.0:
        raise ValueError("--param-noise-interval must be positive and --param-noise-adapt > 1")
    if not (0.0 <= args.per_alpha and 0.0 <= args.per_beta <= 1.0 and args.per_eps > 0):
        raise ValueError("--per-alpha must be >= 0, --per-beta in [0, 1] and --per-eps positive")
    if args.grad_clip < 0:
        raise ValueError(f"--grad-clip must be >= 0 (0 disables it), got {args.grad_clip}")


# --- shared: check_env_id ---
def check_env_id(env_id: str) -> None:
    """Raises ValueError for an unregistered env id, naming the closest registered ones."""
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"--env-id {env_id} is not a registered gymnasium environment{hint}")


# --- end shared: check_env_id ---


# --- shared: make_env ---
def make_env(env_id: str, seed: int, video_dir: str | None = None, video_prefix: str = "eval"):
    """Returns a thunk that builds one seeded env recording episode statistics and, given a
    video_dir, a video of its first episode."""

    def thunk() -> gym.Env:
        if video_dir is not None:
            if "DISPLAY" not in os.environ:  # MuJoCo's default GL (glfw) needs a display
                os.environ.setdefault("MUJOCO_GL", "egl")
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(
                env, video_dir, episode_trigger=lambda e: e == 0, name_prefix=video_prefix
            )
        else:
            env = gym.make(env_id)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
        return env

    return thunk


# --- end shared: make_env ---


# --- shared: mlp ---
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


# --- end shared: mlp ---


class Actor(nn.Module):
    """Deterministic policy mu(s): tanh squashed, then scaled to each action dimension's bounds."""

    def __init__(self, obs_dim: int, action_space: gym.spaces.Box, args: Args):
        super().__init__()
        self.net = mlp([obs_dim, *args.hidden_sizes, action_space.shape[0]], args.layer_norm)
        low, high = (
            torch.as_tensor(b, dtype=torch.float32) for b in (action_space.low, action_space.high)
        )
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs)) * self.action_scale + self.action_bias


class QNetwork(nn.Module):
    """Critic Q(s, a): an MLP over the observation and action concatenated."""

    def __init__(self, obs_dim: int, act_dim: int, args: Args):
        super().__init__()
        self.net = mlp([obs_dim + act_dim, *args.hidden_sizes, 1], args.layer_norm)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, actions], -1)).squeeze(-1)  # (B,)


# --- shared: replay_buffer ---
class ReplayBuffer:
    """Transitions in preallocated tensors used as a ring; uniform or prioritized sampling.

    Only `terminated` is stored: a truncated transition keeps its true final observation as
    next_obs and bootstraps from it, so truncation needs no flag of its own.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, args: Args, device):
        self.capacity, self.device, self.pos, self.size = capacity, device, 0, 0
        self.obs = torch.zeros((capacity, obs_dim))
        self.next_obs = torch.zeros((capacity, obs_dim))
        self.actions = torch.zeros((capacity, act_dim))
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity)
        self.tree = SumTree(capacity) if args.per else None
        self.alpha, self.eps = args.per_alpha, args.per_eps

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Adds one transition per env (arrays with a leading num_envs axis)."""
        idx = (self.pos + np.arange(len(obs))) % self.capacity
        for store, value in zip(
            [self.obs, self.actions, self.rewards, self.next_obs, self.terminated],
            [obs, actions, rewards, next_obs, terminated],
        ):
            store[idx] = torch.as_tensor(value, dtype=torch.float32)
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
        batch = (
            self.obs[t],
            self.actions[t],
            self.rewards[t],
            self.next_obs[t],
            self.terminated[t],
        )
        return tuple(x.to(self.device, non_blocking=True) for x in (*batch, weights)), idx

    def update_priorities(self, idx: np.ndarray, td_abs: torch.Tensor) -> None:
        """p_i = (|delta_i| + eps)^alpha for the transitions just learned from."""
        priorities = (td_abs.cpu().double().numpy() + self.eps) ** self.alpha
        if not np.isfinite(priorities).all():
            raise FloatingPointError(f"the TD errors behind the priorities are not finite ({FIX})")
        self.tree.update(idx, priorities)

    def state_dict(self) -> dict:
        n = self.size  # clones: a saved slice would write the whole preallocated storage
        state = {"pos": self.pos, "size": n}
        for name in ["obs", "next_obs", "actions", "rewards", "terminated"]:
            state[name] = getattr(self, name)[:n].clone()
        if self.tree is not None:
            state["priorities"] = torch.as_tensor(self.tree.priorities(np.arange(n)))
        return state

    def load_state_dict(self, state: dict) -> None:
        n = self.size = state["size"]
        self.pos = state["pos"]
        for name in ["obs", "next_obs", "actions", "rewards", "terminated"]:
            getattr(self, name)[:n] = state[name]
        if self.tree is not None and n:
            self.tree.update(np.arange(n), state["priorities"].numpy())


# --- end shared: replay_buffer ---


# --- shared: exploration_noise ---
class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise per env and action dimension:
    x <- x + theta * (0 - x) * dt + sigma * sqrt(dt) * N(0, 1); reset to 0 when an episode ends."""

    def __init__(self, shape: tuple[int, int], theta: float, dt: float):
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


class ParameterNoise:
    """Adaptive parameter-space noise (Plappert et al. 2018, https://arxiv.org/abs/1706.01905):
    act with a copy of the actor whose weights carry Gaussian noise, and grow or shrink the noise
    std so the perturbed actions stay at a target distance from the unperturbed ones."""

    def __init__(self, actor: Actor, std: float, adapt: float):
        self.actor = copy.deepcopy(actor)
        self.std, self.adapt = std, adapt
        self.distance = 0.0

    def perturb(self, actor: Actor) -> None:
        """Copies the actor's weights and adds N(0, std^2) to each."""
        with torch.no_grad():
            for p, p_perturbed in zip(actor.parameters(), self.actor.parameters()):
                p_perturbed.copy_(p + self.std * torch.randn_like(p))

    def adapt_std(self, actor: Actor, obs: torch.Tensor, target: float) -> None:
        """d = sqrt(mean(((mu(s) - mu~(s)) / scale)^2)); std /= adapt if d > target else *= adapt."""
        with torch.no_grad():
            diff = (actor(obs) - self.actor(obs)) / actor.action_scale
            self.distance = diff.pow(2).mean().sqrt().item()
        self.std = self.std / self.adapt if self.distance > target else self.std * self.adapt


# --- end shared: exploration_noise ---


def update_critic(data, actor_target, qf, qf_target, q_optimizer, args: Args):
    """One critic step; returns the loss, Q(s, a) and |TD error| per transition (for PER)."""
    obs, actions, rewards, next_obs, terminated, weights = data
    with torch.no_grad():
        # y = r + gamma * (1 - terminated) * Q'(s', mu'(s'))
        next_q = qf_target(next_obs, actor_target(next_obs))
        y = rewards + args.gamma * (1.0 - terminated) * next_q
    q = qf(obs, actions)  # (B,)
    td_error = q - y
    # Importance weights undo the bias of prioritized sampling (they are all 1 without PER).
    qf_loss = (weights * td_error.pow(2)).mean()
    q_optimizer.zero_grad(set_to_none=True)
    qf_loss.backward()
    if args.grad_clip > 0:
        nn.utils.clip_grad_norm_(qf.parameters(), args.grad_clip)
    q_optimizer.step()
    return qf_loss.detach(), q.detach(), td_error.detach().abs()


def update_actor(obs, actor, actor_target, qf, qf_target, actor_optimizer, args: Args):
    """One actor step up the critic's gradient, then Polyak updates of both target networks."""
    # The critic is only a function of the action here: skip its weights' gradients.
    qf.requires_grad_(False)
    actor_loss = -qf(obs, actor(obs)).mean()
    actor_optimizer.zero_grad(set_to_none=True)
    actor_loss.backward()
    if args.grad_clip > 0:
        nn.utils.clip_grad_norm_(actor.parameters(), args.grad_clip)
    actor_optimizer.step()
    qf.requires_grad_(True)
    # theta' <- tau * theta + (1 - tau) * theta'
    with torch.no_grad():
        for net, target in [(actor, actor_target), (qf, qf_target)]:
            torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), args.tau)
    return actor_loss.detach()


# --- shared: evaluate ---
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


# --- end shared: evaluate ---


# --- shared: buffer_memory ---
def report_buffer_memory(capacity: int, bytes_per_transition: int) -> None:
    """Says how much memory a large replay buffer takes, before it is allocated."""
    gib = capacity * bytes_per_transition / 2**30
    if gib >= 1.0:
        print(f"replay buffer: {capacity} transitions take {gib:.1f} GiB (--buffer-size sets it)")


# --- end shared: buffer_memory ---


# --- shared: checkpoint ---
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


SCRIPT = os.path.basename(__file__)
"""written into every checkpoint, so another script refuses it"""


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
        reason = getattr(e, "strerror", None) or "the write failed; is the disk full?"
        raise OSError(f"could not write checkpoint {path} ({reason}); the last one stays") from None
    return True


def load_checkpoint(path: str) -> dict:
    """Reads a checkpoint with weights_only=True; clear errors for a missing or unreadable file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist; check the path given")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"checkpoint {path} could not be read ({type(e).__name__}); the file "
            "is corrupt or not a checkpoint of this script"
        ) from None
    if not isinstance(ckpt, dict) or "args" not in ckpt:
        raise ValueError(f"{path} holds no saved options: it is not a checkpoint of this script")
    if ckpt.get("script", SCRIPT) != SCRIPT:
        raise ValueError(f"checkpoint {path} was written by {ckpt['script']}; use that script")
    unknown = sorted(set(ckpt["args"]) - set(Args.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"checkpoint {path} sets options this version of the script does not have "
            f"({', '.join(unknown)}); it was written by another version or another script"
        )
    return ckpt


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


LOSS_BOUND = 1e15
"""a loss beyond this has diverged: no sane run gets near it"""


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
        raise ValueError(
            f"checkpoint {path} does not fit the {name} network of these arguments "
            "(other --hidden-sizes, --env-id or script?)"
        ) from None


class StopRequest:
    """Turns Ctrl-C and SIGTERM into a flag the loop checks once per step, so a run stops at a
    clean point and saves its checkpoint."""

    def __init__(self):
        self.requested = False
        self.previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def crossed(step: int, increment: int, every: int) -> bool:
    """Whether the step counter passed a multiple of `every` in its last increment."""
    return every > 0 and step // every != (step - increment) // every


# --- end shared: checkpoint ---


FIX = "try a lower --learning-rate or --grad-clip"
"""what a diverging loss's message suggests"""
LOG_EVERY = 1_000
"""transitions between loss logs (each costs a host-device sync)"""
SESSION_FIELDS = [
    "resume",
    "total_timesteps",
    "cuda",
    "track",
    "save_model",
    "save_buffer",
    "checkpoint_frequency",
    "capture_video",
]
"""fields a resumed run takes from the command line; all others come from its checkpoint"""


# --- shared: seeding ---
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


# --- end shared: seeding ---


# --- shared: run_name ---
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
            raise OSError(
                f"cannot create runs/{run_name} ({e.strerror}); run from a writable directory"
            ) from None


# --- end shared: run_name ---


def make_vector_env(args: Args) -> gym.vector.SyncVectorEnv:
    """The training envs; raises ValueError when the action space is not a bounded Box."""
    check_env_id(args.env_id)
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, args.seed + i) for i in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Box):
        envs.close()
        raise ValueError(
            f"--env-id {args.env_id} has a {type(space).__name__} action space; this "
            "script needs continuous (Box) actions: use dqn_rainbow.py or ppo.py"
        )
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        envs.close()
        raise ValueError(f"--env-id {args.env_id} has unbounded actions; wrap it to finite bounds")
    obs_space = envs.single_observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        envs.close()
        shape = obs_space.shape if isinstance(obs_space, gym.spaces.Box) else None
        raise ValueError(
            f"--env-id {args.env_id} has {shape or type(obs_space).__name__}-shaped "
            "observations; this script needs flat vector observations"
        )
    return envs


# --- shared: log_hyperparameters ---
def log_hyperparameters(writer: SummaryWriter, args: Args) -> None:
    rows = "\n".join(f"|{key}|{value}|" for key, value in asdict(args).items())
    writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")


# --- end shared: log_hyperparameters ---


def train(args: Args) -> dict:
    """Runs the whole training; returns a summary (global_step, episodic_returns, eval_returns, sps, run_dir)."""
    validate_args(args)
    check_common_args(args)
    if args.eval_checkpoint:
        return evaluate_checkpoint(args)
    ckpt = load_checkpoint(args.resume) if args.resume else None
    if ckpt is not None:
        args = resumed_args(args, ckpt)
    use_cuda = args.cuda and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    rng = seed_everything(args.seed, args.torch_deterministic, use_cuda)
    envs = make_vector_env(args)
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    low, high = envs.single_action_space.low, envs.single_action_space.high
    action_scale = (high - low) / 2

    actor = Actor(obs_dim, envs.single_action_space, args).to(device)
    qf = QNetwork(obs_dim, act_dim, args).to(device)
    actor_target, qf_target = copy.deepcopy(actor), copy.deepcopy(qf)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.learning_rate, fused=True)
    q_optimizer = torch.optim.Adam(qf.parameters(), lr=args.learning_rate, fused=True)
    report_buffer_memory(args.buffer_size, 4 * (2 * obs_dim + act_dim + 2))
    rb = ReplayBuffer(args.buffer_size, obs_dim, act_dim, args, device)
    learn_after = args.learning_starts
    ou = OrnsteinUhlenbeckNoise((args.num_envs, act_dim), args.ou_theta, args.ou_dt)
    param_noise = ParameterNoise(actor, args.exploration_noise, args.param_noise_adapt)
    critic_step = torch.compile(update_critic) if args.compile else update_critic
    actor_step = torch.compile(update_actor) if args.compile else update_actor

    # --- shared: resume_and_logging ---
    networks = {"actor": actor, "actor_target": actor_target, "qf": qf, "qf_target": qf_target}
    optimizers = {"actor_optimizer": actor_optimizer, "q_optimizer": q_optimizer}
    global_step, update_count, pending_updates = 0, 0, 0.0
    wandb_id = None
    if ckpt is not None:
        for name, module in networks.items():
            load_weights(module, ckpt[name], args.resume, name)
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(ckpt[name])
        if "buffer" in ckpt:
            rb.load_state_dict(ckpt["buffer"])
        else:  # learning from a near-empty buffer would overfit it: refill it first
            learn_after = ckpt["global_step"] + args.learning_starts
            print(
                f"warning: {args.resume} holds no replay buffer (written without --save-buffer); "
                f"collecting {args.learning_starts} transitions before learning again"
            )
        set_rng_states(ckpt["rng"], rng)
        ou.x = ckpt["ou_x"].numpy().copy()
        param_noise.std = ckpt["param_noise_std"]
        global_step, update_count = ckpt["global_step"], ckpt["update_count"]
        pending_updates, wandb_id = ckpt["pending_updates"], ckpt["wandb_id"]
    param_noise.perturb(actor)
    run_name = ckpt["run_name"] if ckpt is not None else new_run_name(args)
    run_dir = os.path.join("runs", run_name)
    checkpoint_path = os.path.join(run_dir, f"{args.exp_name}.pt")
    if args.track:
        import wandb

        wandb_id = wandb_id or uuid.uuid4().hex[:12]
        os.makedirs(run_dir, exist_ok=True)
        wandb.init(
            project=args.wandb_project_name,
            entity=args.wandb_entity,
            config=vars(args),
            name=run_name,
            id=wandb_id,
            resume="allow",
            sync_tensorboard=True,
            save_code=True,
            dir=run_dir,
        )
    writer = SummaryWriter(run_dir, purge_step=global_step if ckpt is not None else None)
    log_hyperparameters(writer, args)

    def write_checkpoint() -> None:
        state = {name: module.state_dict() for name, module in {**networks, **optimizers}.items()}
        state.update(args=asdict(args), run_name=run_name, wandb_id=wandb_id, rng=rng_states(rng))
        state.update(global_step=global_step, update_count=update_count)
        state.update(recent_returns=torch.tensor(episodic_returns[-100:], dtype=torch.float64))
        state.update(pending_updates=pending_updates, ou_x=torch.as_tensor(ou.x))
        state.update(param_noise_std=param_noise.std)
        if args.save_buffer:
            state["buffer"] = rb.state_dict()
        save_checkpoint(checkpoint_path, state, list(networks.values()))

    # --- end shared: resume_and_logging ---

    video_dir = os.path.join("videos", run_name) if args.capture_video else None
    stop = StopRequest()
    bar = tqdm(total=args.total_timesteps, initial=global_step, disable=not sys.stdout.isatty())
    # the last returns before a resume, so the progress line and the summary continue from them
    episodic_returns: list[float] = (ckpt or {}).get("recent_returns", torch.zeros(0)).tolist()
    eval_history: list[tuple[int, float]] = []
    qf_loss = actor_loss = q = torch.zeros(())
    start_step, start_time, eval_seconds = global_step, time.perf_counter(), 0.0
    obs, _ = envs.reset(seed=args.seed + global_step)
    try:
        while global_step < args.total_timesteps and not stop.requested:
            progress = global_step / args.total_timesteps
            noise_std = exploration_std(args, global_step)
            if global_step < args.learning_starts:
                actions = rng.uniform(low, high, (args.num_envs, act_dim))
            else:
                policy = param_noise.actor if args.noise_type == "param" else actor
                with torch.no_grad():
                    obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
                    actions = policy(obs_t).cpu().numpy()
                if args.noise_type == "gaussian":
                    actions = actions + rng.normal(0.0, noise_std, actions.shape) * action_scale
                elif args.noise_type == "ou":
                    actions = actions + ou.sample(noise_std, rng) * action_scale
                actions = actions.clip(low, high)
            next_obs, rewards, terminations, truncations, infos = envs.step(actions)

            # A finished env already holds its reset observation: learn from the true final one.
            real_next_obs = next_obs.copy()
            if "final_obs" in infos:
                for i in np.flatnonzero(infos["_final_obs"]):
                    real_next_obs[i] = infos["final_obs"][i]
                episode = infos["final_info"]["episode"]
                for i in np.flatnonzero(infos["final_info"]["_episode"]):
                    episodic_returns.append(float(episode["r"][i]))
                    writer.add_scalar("charts/episodic_return", episode["r"][i], global_step)
                    writer.add_scalar("charts/episodic_length", episode["l"][i], global_step)
                ou.reset(terminations | truncations)
            rb.add(obs, actions, rewards, real_next_obs, terminations)
            obs = next_obs
            global_step += args.num_envs
            bar.update(args.num_envs)

            if global_step > learn_after:
                if args.noise_type == "param" and crossed(
                    global_step, args.num_envs, args.param_noise_interval
                ):
                    batch, _ = rb.sample(args.batch_size, rng, 1.0)
                    param_noise.adapt_std(actor, batch[0], noise_std)
                    param_noise.perturb(actor)
                pending_updates += args.num_envs * args.updates_per_step
                while pending_updates >= 1.0:
                    pending_updates -= 1.0
                    beta = args.per_beta + (1.0 - args.per_beta) * progress
                    data, idx = rb.sample(args.batch_size, rng, beta)
                    qf_loss, q, td_abs = critic_step(
                        data, actor_target, qf, qf_target, q_optimizer, args
                    )
                    if args.per:
                        rb.update_priorities(idx, td_abs)
                    update_count += 1
                    actor_loss = actor_step(
                        data[0], actor, actor_target, qf, qf_target, actor_optimizer, args
                    )
                if crossed(global_step, args.num_envs, LOG_EVERY) and update_count > 0:
                    for name, loss in [("qf_loss", qf_loss), ("actor_loss", actor_loss)]:
                        log_loss(writer, name, loss, global_step, FIX)
                    writer.add_scalar("losses/q_mean", q.mean().item(), global_step)
                    writer.add_scalar("losses/q_min", q.min().item(), global_step)
                    writer.add_scalar("losses/q_max", q.max().item(), global_step)
                    if args.noise_type == "param":
                        writer.add_scalar("charts/param_noise_std", param_noise.std, global_step)
                        writer.add_scalar(
                            "charts/param_noise_distance", param_noise.distance, global_step
                        )

            log_now = crossed(global_step, args.num_envs, LOG_EVERY)
            print_now = bar.disable and crossed(
                global_step, args.num_envs, max(args.total_timesteps // 20, 1)
            )
            if log_now or print_now:  # not every step: these are only for the logs
                sps = (global_step - start_step) / (time.perf_counter() - start_time - eval_seconds)
                recent = np.mean(episodic_returns[-10:]) if episodic_returns else float("nan")
                if log_now:
                    writer.add_scalar("charts/SPS", sps, global_step)
                    bar.set_postfix(sps=f"{sps:.0f}", ret=f"{recent:.1f}")
                if print_now:
                    print(
                        f"step {global_step}/{args.total_timesteps} sps {sps:.0f} "
                        f"return(last 10) {recent:.1f}",
                        flush=True,
                    )
            if crossed(global_step, args.num_envs, args.eval_frequency) and (
                global_step < args.total_timesteps
            ):
                eval_start = time.perf_counter()
                returns = evaluate(actor, args, device, video_dir, f"eval_step{global_step}")
                eval_history.append((global_step, float(np.mean(returns))))
                writer.add_scalar("eval/episodic_return", np.mean(returns), global_step)
                eval_seconds += time.perf_counter() - eval_start
            if args.save_model and crossed(global_step, args.num_envs, args.checkpoint_frequency):
                write_checkpoint()
    finally:
        stop.restore()
        bar.close()
        envs.close()

    eval_returns: list[float] = []
    if not stop.requested:
        eval_returns = evaluate(actor, args, device, video_dir, f"eval_step{global_step}")
        eval_history.append((global_step, float(np.mean(eval_returns))))
        writer.add_scalar("eval/episodic_return", np.mean(eval_returns), global_step)
        print(
            f"step {global_step}: evaluation return {np.mean(eval_returns):.1f} "
            f"+- {np.std(eval_returns):.1f} over {len(eval_returns)} episodes",
            flush=True,
        )
    if args.save_model:
        write_checkpoint()
    elapsed = time.perf_counter() - start_time - eval_seconds
    writer.add_scalar("charts/SPS", (global_step - start_step) / max(elapsed, 1e-9), global_step)
    writer.close()
    if args.track:
        wandb.finish()
    return {
        "global_step": global_step,
        "update_count": update_count,
        "episodic_returns": episodic_returns,
        "eval_returns": eval_returns,
        "eval_history": eval_history,
        "sps": (global_step - start_step) / max(elapsed, 1e-9),
        "run_dir": run_dir,
        "checkpoint": checkpoint_path if args.save_model else None,
        "interrupted": stop.requested,
    }


def evaluate_checkpoint(args: Args) -> dict:
    """--eval-checkpoint: load a policy, evaluate it (recording it with --capture-video), return."""
    ckpt = load_checkpoint(args.eval_checkpoint)
    saved = Args(**{**ckpt["args"], "eval_episodes": args.eval_episodes, "seed": args.seed})
    use_cuda = args.cuda and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    seed_everything(args.seed, args.torch_deterministic, use_cuda)
    envs = make_vector_env(saved)
    actor = Actor(envs.single_observation_space.shape[0], envs.single_action_space, saved)
    envs.close()
    load_weights(actor, ckpt["actor"], args.eval_checkpoint, "actor")
    video_dir = os.path.join("videos", ckpt["run_name"]) if args.capture_video else None
    returns = evaluate(actor.to(device), saved, device, video_dir, "eval_checkpoint")
    print(
        f"{args.eval_checkpoint}: evaluation return {np.mean(returns):.1f} "
        f"+- {np.std(returns):.1f} over {len(returns)} episodes"
    )
    return {
        "global_step": ckpt["global_step"],
        "episodic_returns": [],
        "eval_returns": returns,
        "sps": 0.0,
        "run_dir": os.path.join("runs", ckpt["run_name"]),
    }


if __name__ == "__main__":
    try:
        summary = train(tyro.cli(Args))
    except (ValueError, OSError, FloatingPointError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(130 if summary.get("interrupted") else 0)
