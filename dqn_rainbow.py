"""Rainbow DQN: DQN with double Q-learning, prioritized replay, dueling networks, multi-step
returns, distributional (C51) values and noisy nets, each switchable, for Discrete actions.

Hessel et al. 2017, https://arxiv.org/abs/1710.02298, combining: DQN (Mnih et al. 2015), double Q
(van Hasselt et al. 2016), prioritized replay (Schaul et al. 2016), dueling (Wang et al. 2016),
n-step returns (Sutton 1988), C51 (Bellemare et al. 2017), noisy nets (Fortunato et al. 2018).
All off (--no-double --no-per --no-dueling --n-step 1 --no-distributional --no-noisy) is Nature
DQN with a Huber loss. Vector observations get an MLP, Atari (ALE/...-v5) frames the Nature CNN.
The defaults suit small vector tasks; docs/dqn_rainbow.md gives the paper's settings for Atari.

Usage: python dqn_rainbow.py --env-id CartPole-v1
"""

import collections
import contextlib
import difflib
import io
import os
import random
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass

if __name__ == "__main__":  # Ctrl-C while the libraries below load ends in one line
    interrupted = "interrupted (Ctrl-C) outside the training loop"
    signal.signal(signal.SIGINT, lambda *_: os._exit(print(interrupted, file=sys.stderr) or 1))

import ale_py
import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from sumtree import SumTree

gym.register_envs(ale_py)


@dataclass
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
    eval_frequency: int = 5_000
    """run a deterministic evaluation every this many transitions (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    env_id: str = "CartPole-v1"
    """the gymnasium environment id (Discrete actions; ALE/...-v5 for Atari)"""
    total_timesteps: int = 30_000
    """transitions to collect, summed over all environments"""
    num_envs: int = 1
    """parallel environments collecting data"""

    # Algorithm specific arguments
    double: bool = True
    """double Q-learning: the online network picks the next action, the target network rates it"""
    per: bool = True
    """proportional prioritized replay"""
    dueling: bool = True
    """dueling head: Q = V + A - mean(A)"""
    n_step: int = 3
    """multi-step returns over this many steps (1: one-step TD)"""
    distributional: bool = True
    """C51: a categorical distribution of returns over fixed atoms"""
    noisy: bool = True
    """factorized Gaussian noisy layers in the head explore instead of epsilon-greedy"""
    learning_rate: float = 2e-3
    """Adam learning rate"""
    adam_eps: float = 1.5e-4
    """Adam epsilon"""
    buffer_size: int = 100_000
    """replay buffer capacity in transitions"""
    batch_size: int = 64
    """transitions per gradient update"""
    gamma: float = 0.99
    """discount factor"""
    learning_starts: int = 1_000
    """transitions collected before learning starts"""
    train_frequency: int = 1
    """transitions between gradient updates"""
    target_network_frequency: int = 500
    """transitions between copies of the online network into the target network"""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """MLP torso and head sizes for vector observations (the last one is the head's)"""
    atoms: int = 51
    """C51: number of atoms"""
    v_min: float | None = None
    """C51: the smallest atom (default: -10 for Atari with clipped rewards, -100 otherwise)"""
    v_max: float | None = None
    """C51: the largest atom (default: 10 for Atari, 100 otherwise)"""
    noisy_sigma0: float = 0.5
    """noisy nets: initial noise scale sigma0 (sigma = sigma0 / sqrt(fan_in))"""
    per_alpha: float = 0.5
    """PER: priority exponent"""
    per_beta: float = 0.4
    """PER: initial importance-sampling exponent, annealed linearly to 1"""
    per_eps: float = 1e-6
    """PER: added to every priority"""
    start_e: float = 1.0
    """epsilon-greedy (noisy nets off): initial epsilon"""
    end_e: float = 0.05
    """epsilon-greedy: final epsilon"""
    exploration_fraction: float = 0.2
    """epsilon-greedy: fraction of the run over which epsilon decays linearly"""
    max_grad_norm: float = 10.0
    """clip the global gradient norm to this"""
    clip_rewards: bool | None = None
    """learn from sign(reward) (default: on for Atari pixels, off otherwise); logs stay unclipped"""


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


class NoisyLinear(nn.Module):
    """Factorized Gaussian noisy layer: W = mu_W + sigma_W * f(eps_out) f(eps_in)^T and
    b = mu_b + sigma_b * f(eps_out), f(x) = sign(x) sqrt(|x|). reset_noise() draws new eps; in
    eval mode the layer uses the means alone, so evaluation is deterministic."""

    def __init__(self, fan_in: int, fan_out: int, sigma0: float):
        super().__init__()
        bound = 1.0 / np.sqrt(fan_in)
        self.weight_mu = nn.Parameter(torch.empty(fan_out, fan_in).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((fan_out, fan_in), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(fan_out).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((fan_out,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(fan_in))
        self.register_buffer("eps_out", torch.zeros(fan_out))
        self.reset_noise()

    def reset_noise(self) -> None:
        f = lambda x: x.sign() * x.abs().sqrt()  # noqa: E731
        self.eps_in.copy_(f(torch.randn_like(self.eps_in)))
        self.eps_out.copy_(f(torch.randn_like(self.eps_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)


class QNetwork(nn.Module):
    """A torso (the Nature CNN for stacked 84x84 frames, chosen from the observation shape, else an
    MLP) and a head of (noisy) linear streams: dueling Q = V + A - mean_a A, or A alone. With C51
    forward() gives log-probabilities over atoms, (B, actions, atoms); else Q-values, (B, actions).
    q_values() gives expected Q-values, (B, actions), either way."""

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int, args: Args):
        super().__init__()
        self.pixels = len(obs_shape) == 3
        if self.pixels:
            self.torso = nn.Sequential(
                nn.Conv2d(obs_shape[0], 32, 8, stride=4),
                nn.ReLU(),
                nn.Conv2d(32, 64, 4, stride=2),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=1),
                nn.ReLU(),
                nn.Flatten(),
            )
            with torch.no_grad():
                features = self.torso(torch.zeros(1, *obs_shape)).shape[1]
            hidden = 512
        else:
            sizes = [obs_shape[0], *args.hidden_sizes[:-1]]
            self.torso = (
                nn.Sequential(mlp(sizes, False), nn.ReLU()) if len(sizes) > 1 else nn.Identity()
            )
            features, hidden = sizes[-1], args.hidden_sizes[-1]
        linear = (lambda i, o: NoisyLinear(i, o, args.noisy_sigma0)) if args.noisy else nn.Linear
        self.n_actions, self.atoms = n_actions, args.atoms if args.distributional else 1
        stream = lambda out: nn.Sequential(
            linear(features, hidden), nn.ReLU(), linear(hidden, out)
        )  # noqa: E731
        self.advantage = stream(n_actions * self.atoms)
        self.value = stream(self.atoms) if args.dueling else None
        self.distributional = args.distributional
        self.register_buffer("support", atom_support(args, self.pixels))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() / 255.0 if self.pixels else obs.float()
        h = self.torso(x)
        if self.value is None and not self.distributional:
            return self.advantage(h)  # plain Q-values: no atom axis to add and take away
        a = self.advantage(h).view(-1, self.n_actions, self.atoms)
        q = a if self.value is None else self.value(h).unsqueeze(1) + a - a.mean(1, keepdim=True)
        return F.log_softmax(q, -1) if self.distributional else q.squeeze(-1)

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.expected_q(self(obs))

    def expected_q(self, out: torch.Tensor) -> torch.Tensor:
        """Q-values from forward()'s output: the mean over the atoms with C51."""
        return (out.exp() * self.support).sum(-1) if self.distributional else out

    def reset_noise(self) -> None:
        for m in self.modules():
            if isinstance(m, NoisyLinear):
                m.reset_noise()


def atom_support(args: Args, pixels: bool) -> torch.Tensor:
    """C51's fixed atoms; the default range fits the task family's returns."""
    bound = 10.0 if pixels else 100.0
    v_min = -bound if args.v_min is None else args.v_min
    v_max = bound if args.v_max is None else args.v_max
    if not v_min < v_max:
        raise ValueError(f"--v-min {v_min} must be below --v-max {v_max}; give both or neither")
    return torch.linspace(v_min, v_max, args.atoms)


class GreedyPolicy(nn.Module):
    """The deterministic evaluation policy: argmax_a Q(s, a), noisy layers at their means."""

    def __init__(self, q_network: QNetwork):
        super().__init__()
        self.q_network = q_network

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        training = self.q_network.training
        self.q_network.eval()
        action = self.q_network.q_values(obs).argmax(-1)
        self.q_network.train(training)
        return action


class NStepCollector:
    """Turns each env's 1-step transitions into n-step ones, (s_t, a_t, R, s_{t+m}, discount) with
    R = sum_{k<m} gamma^k r_{t+k}: m = n while an episode runs. When it ends, its last transitions
    are flushed with the steps left (m < n): a terminated episode's have discount 0, a truncated
    one's bootstrap from its true final observation with discount gamma^m. Nothing crosses from one
    episode into the next."""

    def __init__(self, num_envs: int, n: int, gamma: float):
        self.n, self.gamma = n, gamma
        self.queues = [collections.deque() for _ in range(num_envs)]

    def add(self, env: int, obs, action, reward, next_obs, terminated, truncated) -> list[tuple]:
        queue = self.queues[env]
        queue.append((obs, action, reward))
        if terminated or truncated:
            return [self.emit(queue, next_obs, terminated) for _ in range(len(queue))]
        return [self.emit(queue, next_obs, False)] if len(queue) == self.n else []

    def emit(self, queue: collections.deque, next_obs, terminated: bool) -> tuple:
        ret = sum(self.gamma**k * r for k, (_, _, r) in enumerate(queue))
        discount = 0.0 if terminated else self.gamma ** len(queue)
        obs, action, _ = queue.popleft()
        return obs, action, ret, next_obs, discount


class ReplayBuffer:
    """n-step transitions in preallocated NumPy arrays used as a ring (pixels stay uint8; NumPy
    writes a row and gathers a small batch with less overhead than torch indexing); uniform or
    proportional prioritized sampling on sumtree.py."""

    def __init__(self, capacity: int, obs_space: gym.spaces.Box, args: Args, device):
        self.capacity, self.device, self.pos, self.size = capacity, device, 0, 0
        dtype = np.uint8 if obs_space.dtype == np.uint8 else np.float32
        self.obs = np.zeros((capacity, *obs_space.shape), dtype=dtype)
        self.next_obs = np.zeros((capacity, *obs_space.shape), dtype=dtype)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.tree = SumTree(capacity) if args.per else None
        self.alpha, self.eps = args.per_alpha, args.per_eps

    def add(self, obs, action, ret, next_obs, discount) -> None:
        i = self.pos
        self.obs[i], self.next_obs[i] = obs, next_obs
        self.actions[i], self.returns[i], self.discounts[i] = action, ret, discount
        if self.tree is not None:
            # a new transition gets the largest priority so far, so it is replayed soon
            self.tree.update(i, self.tree.max_priority if self.size else 1.0)
        self.pos, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float):
        """(obs, actions, returns, next_obs, discounts, weights) on the device, and the indices.
        Importance weights w_i = (p_i / p_min)^-beta lie in (0, 1] (None without PER: all 1)."""
        if self.tree is None:
            idx, weights = rng.integers(0, self.size, batch_size), None
        else:
            idx, priorities = self.tree.sample(batch_size, rng)
            weights = torch.as_tensor((priorities / self.tree.min_priority) ** -beta).float()
            weights = weights.to(self.device, non_blocking=True)
        batch = [self.obs, self.actions, self.returns, self.next_obs, self.discounts]
        batch = [torch.from_numpy(x[idx]).to(self.device, non_blocking=True) for x in batch]
        return (*batch, weights), idx

    def update_priorities(self, idx: np.ndarray, losses: torch.Tensor) -> None:
        priorities = (losses.detach().cpu().double().numpy() + self.eps) ** self.alpha
        if not np.isfinite(priorities).all():
            raise FloatingPointError(f"the TD errors behind the priorities are not finite ({FIX})")
        self.tree.update(idx, priorities)

    def state_dict(self) -> dict:
        n = self.size
        state = {"pos": self.pos, "size": n}
        for name in ["obs", "next_obs", "actions", "returns", "discounts"]:
            state[name] = torch.from_numpy(getattr(self, name)[:n].copy())
        if self.tree is not None:
            state["priorities"] = torch.as_tensor(self.tree.priorities(np.arange(n)))
        return state

    def load_state_dict(self, state: dict) -> None:
        n = self.size = state["size"]
        self.pos = state["pos"]
        for name in ["obs", "next_obs", "actions", "returns", "discounts"]:
            getattr(self, name)[:n] = state[name].numpy()
        if self.tree is not None and n:
            self.tree.update(np.arange(n), state["priorities"].numpy())


def epsilon(args: Args, global_step: int) -> float:
    """Epsilon-greedy's schedule: linear from start_e to end_e, then flat (0 with noisy nets)."""
    if args.noisy:
        return 0.0
    fraction = min(1.0, global_step / max(1.0, args.exploration_fraction * args.total_timesteps))
    return args.start_e + fraction * (args.end_e - args.start_e)


def project_distribution(next_probs, returns, discounts, support) -> torch.Tensor:
    """C51's target: the distribution of R + discount * Z, with Z ~ next_probs on the atoms,
    projected back onto the atoms, each shifted atom's mass split between its two neighbours in
    proportion to closeness (mass beyond the ends lands on the end atoms).

    next_probs (B, atoms); returns, discounts (B,) (discount 0 where the episode terminated).
    Returns (B, atoms), rows summing to 1."""
    v_min, v_max, n = support[0], support[-1], len(support)
    tz = (returns[:, None] + discounts[:, None] * support[None]).clamp(v_min, v_max)
    b = (tz - v_min) / ((v_max - v_min) / (n - 1))  # fractional atom index, in [0, n - 1]
    lower, upper = b.floor().long(), b.ceil().long()
    target = torch.zeros_like(next_probs)
    # an index landing exactly on an atom (lower == upper) gives it all its mass
    target.scatter_add_(1, lower, next_probs * (upper - b + (lower == upper)))
    target.scatter_add_(1, upper, next_probs * (b - lower))
    return target


def take(x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """x[b, actions[b]] for each row b of a (B, actions) or (B, actions, atoms) tensor (gather:
    cheaper than indexing with an arange, forward and backward)."""
    index = actions.unsqueeze(1)
    if x.dim() == 3:  # the same action for every atom
        index = index.unsqueeze(2).expand(-1, 1, x.shape[2])
    return x.gather(1, index).squeeze(1)


def dqn_loss(data, q_network: QNetwork, q_target: QNetwork, args: Args):
    """The per-sample loss (C51: cross-entropy to the projected target; else Huber on the TD
    error), weighted by the importance weights; returns (loss, per-sample loss, Q(s, a))."""
    obs, actions, returns, next_obs, discounts, weights = data
    with torch.no_grad():
        next_target = q_target(next_obs)
        # double Q: the online network chooses a', the target network values it
        chooser = q_network.q_values(next_obs) if args.double else q_target.expected_q(next_target)
        next_actions = chooser.argmax(1)
        if args.distributional:
            next_probs = take(next_target, next_actions).exp()
            target = project_distribution(next_probs, returns, discounts, q_network.support)
        else:
            # y = R + gamma^m * Q'(s_{t+m}, a'), gamma^m = 0 after termination
            target = returns + discounts * take(next_target, next_actions)
    out = take(q_network(obs), actions)
    if args.distributional:  # cross-entropy -sum_i m_i log p_i(s, a) to the projected target m
        per_sample = -(target * out).sum(-1)
        q_taken = (out.exp() * q_network.support).sum(-1)
    else:
        per_sample = F.smooth_l1_loss(out, target, reduction="none")
        q_taken = out
    weighted = per_sample if weights is None else weights * per_sample
    return weighted.mean(), per_sample.detach(), q_taken.detach()


def clip_grad_norm(params: list[nn.Parameter], max_norm: float) -> None:
    """Scales the gradients to a global norm of max_norm when they exceed it."""
    norm = nn.utils.get_total_norm([p.grad for p in params])
    if norm > max_norm:  # on a GPU this waits for the norm, as acting waits for the Q-values
        nn.utils.clip_grads_with_norm_(params, max_norm, norm)


def update(q_network, q_target, optimizer, rb: ReplayBuffer, rng, global_step: int, args):
    """One gradient step on a sampled batch; returns the loss and Q(s, a) for logging."""
    # PER's importance-sampling exponent anneals linearly from per_beta to 1 over the run
    beta = args.per_beta + (1.0 - args.per_beta) * global_step / args.total_timesteps
    data, idx = rb.sample(args.batch_size, rng, beta)
    if args.noisy:
        q_target.reset_noise()  # the target's noise is drawn afresh too
    loss, per_sample, q_taken = dqn_loss(data, q_network, q_target, args)
    params = optimizer.param_groups[0]["params"]
    for p in params:  # optimizer.zero_grad() would also open a profiler range
        p.grad = None
    loss.backward()
    clip_grad_norm(params, args.max_grad_norm)
    optimizer.step()
    if args.per:
        rb.update_priorities(idx, per_sample)
    return loss, q_taken


def train(args: Args) -> dict:
    """Runs the whole training; returns a summary (global_step, episodic_returns, eval_returns, sps, run_dir)."""
    validate_args(args)
    check_common_args(args)
    if args.eval_checkpoint:
        return evaluate_checkpoint(args)
    ckpt = load_checkpoint(args.resume) if args.resume else None
    args = resumed_args(args, ckpt)
    use_cuda = args.cuda and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    rng = seed_everything(args.seed, args.torch_deterministic, use_cuda)
    envs = make_vector_env(args)
    obs_space, n_actions = envs.single_observation_space, int(envs.single_action_space.n)
    clip_rewards = len(obs_space.shape) == 3 if args.clip_rewards is None else args.clip_rewards
    q_network = QNetwork(obs_space.shape, n_actions, args).to(device)
    q_target = QNetwork(obs_space.shape, n_actions, args).to(device)
    q_target.load_state_dict(q_network.state_dict())
    params = list(q_network.parameters())
    # fused: one kernel updates every parameter
    optimizer = torch.optim.Adam(params, lr=args.learning_rate, eps=args.adam_eps, fused=True)
    obs_bytes = int(np.prod(obs_space.shape)) * (1 if obs_space.dtype == np.uint8 else 4)
    report_buffer_memory(args.buffer_size, 2 * obs_bytes + 16)
    rb = ReplayBuffer(args.buffer_size, obs_space, args, device)
    nstep = NStepCollector(args.num_envs, args.n_step, args.gamma)
    parts = {"q_network": q_network, "target_network": q_target, "optimizer": optimizer}
    run = Run(args, parts, rb, GreedyPolicy(q_network), device, rng, ckpt)
    loss = q = torch.zeros(1)
    obs, _ = envs.reset(seed=args.seed + run.global_step)
    try:
        while run.global_step < args.total_timesteps and not run.stop.requested:
            if args.noisy:
                q_network.reset_noise()  # a fresh draw of the noise for every step
            with torch.no_grad():
                greedy = q_network.q_values(torch.as_tensor(obs, device=device)).argmax(1)
            actions = greedy.cpu().numpy()
            explore = rng.random(args.num_envs) < epsilon(args, run.global_step)
            if explore.any():  # (drawing no integers leaves the generator as it is)
                actions[explore] = rng.integers(0, n_actions, explore.sum())
            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            learn_rewards = np.sign(rewards) if clip_rewards else rewards
            # A finished env already holds its reset observation: learn from the true final one.
            for i in range(args.num_envs):
                final = infos["final_obs"][i] if truncations[i] or terminations[i] else next_obs[i]
                for transition in nstep.add(
                    i, obs[i], actions[i], learn_rewards[i], final, terminations[i], truncations[i]
                ):
                    rb.add(*transition)
            run.log_episodes(infos)
            obs = next_obs
            run.global_step += args.num_envs
            global_step = run.global_step
            if global_step > run.learn_after and rb.size >= args.batch_size:
                # one update per train_frequency transitions, in the steps just taken
                tf = args.train_frequency
                for _ in range(global_step // tf - (global_step - args.num_envs) // tf):
                    loss, q = update(q_network, q_target, optimizer, rb, rng, global_step, args)
                    run.update_count += 1
                # theta_target <- theta every target_network_frequency transitions
                if crossed(global_step, args.num_envs, args.target_network_frequency):
                    q_target.load_state_dict(q_network.state_dict())
                if crossed(global_step, args.num_envs, LOG_EVERY) and run.update_count > 0:
                    run.log_losses(loss, q)
            run.end_step()
    finally:
        run.close(envs)
    return run.finish()


SESSION_FIELDS = ["resume", "total_timesteps", "cuda", "track", "save_model", "save_buffer"]
SESSION_FIELDS += ["checkpoint_frequency", "capture_video"]
"""fields a resumed run takes from the command line; all others come from its checkpoint"""
FIX = "try a lower --learning-rate or --max-grad-norm"  # what a diverging loss's message suggests
LOG_EVERY = 1_000  # transitions between loss logs (each costs a host-device sync)


class Run:
    """The run's bookkeeping, so that train() reads as the algorithm: the restored checkpoint, run
    directory, TensorBoard and W&B, progress bar, evaluations, checkpoints and Ctrl-C or SIGTERM."""

    def __init__(self, args: Args, parts: dict, rb: ReplayBuffer, policy, device, rng, ckpt):
        self.args, self.parts, self.rb, self.policy, self.device = args, parts, rb, policy, device
        self.rng, self.global_step, self.update_count, self.wandb_id = rng, 0, 0, None
        self.learn_after = args.learning_starts
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
            self.global_step, self.update_count = ckpt["global_step"], ckpt["update_count"]
            self.wandb_id = ckpt["wandb_id"]
        self.run_name = ckpt["run_name"] if ckpt is not None else new_run_name(args)
        self.run_dir = os.path.join("runs", self.run_name)
        self.checkpoint_path = os.path.join(self.run_dir, f"{args.exp_name}.pt")
        if args.track:
            import wandb

            self.wandb_id, self.wandb = self.wandb_id or uuid.uuid4().hex[:12], wandb
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
        # the last returns before a resume, so the progress line and the summary continue from them
        self.episodic_returns = (ckpt or {}).get("recent_returns", torch.zeros(0)).tolist()
        self.eval_history: list[tuple[int, float]] = []
        self.start_step, self.eval_seconds = self.global_step, 0.0
        self.start_time = time.perf_counter()

    def log_episodes(self, infos: dict) -> None:
        if "final_info" in infos:  # every env that finished an episode in the last step
            episode = infos["final_info"]["episode"]
            for i in np.flatnonzero(infos["final_info"]["_episode"]):
                self.episodic_returns.append(float(episode["r"][i]))
                self.writer.add_scalar("charts/episodic_return", episode["r"][i], self.global_step)
                self.writer.add_scalar("charts/episodic_length", episode["l"][i], self.global_step)

    def log_losses(self, loss: torch.Tensor, q_taken: torch.Tensor) -> None:
        step = self.global_step
        log_loss(self.writer, "td_loss", loss, step, FIX)
        for stat in ["mean", "min", "max"]:
            self.writer.add_scalar(f"losses/q_{stat}", getattr(q_taken, stat)().item(), step)
        self.writer.add_scalar("charts/epsilon", epsilon(self.args, step), step)

    def end_step(self) -> None:
        """After a step: speed and progress, then an evaluation and a checkpoint when due."""
        steps, step, total = self.args.num_envs, self.global_step, self.args.total_timesteps
        self.bar.update(steps)
        log_now = crossed(step, steps, LOG_EVERY)
        print_now = self.bar.disable and crossed(step, steps, max(total // 20, 1))
        if log_now or print_now:
            elapsed = time.perf_counter() - self.start_time - self.eval_seconds
            sps = (step - self.start_step) / elapsed
            recent = np.mean(self.episodic_returns[-10:]) if self.episodic_returns else np.nan
            if log_now:
                self.writer.add_scalar("charts/SPS", sps, step)
                self.bar.set_postfix(sps=f"{sps:.0f}", ret=f"{recent:.1f}")
            if print_now:
                print(f"step {step}/{total} sps {sps:.0f} return(last 10) {recent:.1f}", flush=True)
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
        recent = torch.tensor(self.episodic_returns[-100:], dtype=torch.float64)
        state.update(update_count=self.update_count, recent_returns=recent)
        if self.args.save_buffer:
            state["buffer"] = self.rb.state_dict()
        modules = [part for part in self.parts.values() if isinstance(part, nn.Module)]
        return save_checkpoint(self.checkpoint_path, state, modules)

    def close(self, envs) -> None:
        self.stop.restore()
        self.bar.close()
        envs.close()
        if sys.exc_info()[0] is not None:  # an error ends the run: write out what it logged
            self.writer.close()

    def finish(self) -> dict:
        """The final evaluation (none after a stop), the last checkpoint; returns the summary."""
        eval_returns: list[float] = []
        if not self.stop.requested:
            eval_returns = self.evaluation()
            mean, std, n = np.mean(eval_returns), np.std(eval_returns), len(eval_returns)
            line = f"evaluation return {mean:.1f} +- {std:.1f} over {n} episodes"
            print(f"step {self.global_step}: {line}", flush=True)
        saved = self.args.save_model and self.save()
        if self.stop.requested:
            where = f"checkpoint in {self.checkpoint_path}" if saved else "no checkpoint written"
            hint = "" if self.args.save_model else " (--save-model writes one)"
            print(f"stopped at step {self.global_step}: {where}{hint}", flush=True)
        elapsed = time.perf_counter() - self.start_time - self.eval_seconds
        sps = (self.global_step - self.start_step) / max(elapsed, 1e-9)
        self.writer.add_scalar("charts/SPS", sps, self.global_step)
        self.writer.close()
        if self.args.track:
            self.wandb.finish()
        return {
            "global_step": self.global_step,
            "update_count": self.update_count,
            "episodic_returns": self.episodic_returns,
            "eval_returns": eval_returns,
            "eval_history": self.eval_history,
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


POSITIVE = ["total_timesteps", "num_envs", "eval_episodes", "batch_size", "buffer_size", "atoms"]
POSITIVE += ["learning_rate", "adam_eps", "n_step", "train_frequency", "target_network_frequency"]
RULES = [
    (POSITIVE, lambda v: v > 0, "positive"),
    (["checkpoint_frequency", "eval_frequency", "learning_starts"], lambda v: v >= 0, ">= 0"),
    (["hidden_sizes"], lambda v: all(h > 0 for h in v), "all positive"),
    (["gamma", "start_e", "end_e", "exploration_fraction"], lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
]


def validate_args(args: Args) -> None:
    """Raises ValueError naming the flag and the fix before anything is built."""
    check_rules(args, RULES)
    if args.batch_size > args.buffer_size:
        sizes = f"--batch-size {args.batch_size} is larger than --buffer-size {args.buffer_size}"
        raise ValueError(f"{sizes}; lower the batch or raise the buffer")
    if args.distributional and args.atoms < 2:
        raise ValueError(f"--atoms must be at least 2, got {args.atoms}")
    if None not in (args.v_min, args.v_max) and not args.v_min < args.v_max:
        raise ValueError(f"--v-min {args.v_min} must be below --v-max {args.v_max}")


def check_env_id(env_id: str) -> None:
    """Raises ValueError for an unregistered env id, naming the closest registered ones."""
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"--env-id {env_id} is not a registered gymnasium environment{hint}")


def make_env(env_id: str, seed: int, video_dir: str | None = None, video_prefix: str = "eval"):
    """A thunk building one seeded env with episode statistics (outermost, so returns stay
    unclipped) and, given a video_dir, a video of its first episode. ALE ids get the standard
    Atari pipeline: no-op reset, frame skip 4, 84x84 grayscale, 4 stacked frames."""

    def thunk() -> gym.Env:
        render = {"render_mode": "rgb_array"} if video_dir is not None else {}
        if env_id.startswith("ALE/"):
            env = gym.make(env_id, frameskip=1, **render)
            env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
            env = gym.wrappers.FrameStackObservation(env, 4)
        else:
            env = gym.make(env_id, **render)
        if video_dir is not None:
            first = dict(episode_trigger=lambda e: e == 0, name_prefix=video_prefix)
            env = gym.wrappers.RecordVideo(env, video_dir, **first)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
        return env

    return thunk


def make_vector_env(args: Args) -> gym.vector.SyncVectorEnv:
    """The training envs; raises ValueError when the action space is not Discrete."""
    check_env_id(args.env_id)
    thunks = [make_env(args.env_id, args.seed + i) for i in range(args.num_envs)]
    envs = gym.vector.SyncVectorEnv(thunks, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Discrete):
        envs.close()
        raise ValueError(
            f"--env-id {args.env_id} has a {type(space).__name__} action space; this script "
            "needs Discrete actions: use td3_continuous.py, ddpg_continuous.py or ppo.py"
        )
    obs_space = envs.single_observation_space
    shape = obs_space.shape if isinstance(obs_space, gym.spaces.Box) else None
    if shape is None or not (len(shape) == 1 or (len(shape) == 3 and shape[1:] == (84, 84))):
        envs.close()  # the CNN is the Nature DQN's: anything else ends in a Conv2d error
        raise ValueError(
            f"--env-id {args.env_id} has {shape or type(obs_space).__name__}-shaped "
            "observations; this script needs vectors, or for its CNN stacked 84x84 frames shaped "
            "(frames, 84, 84) as ALE/ ids give them"
        )
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
    """--eval-checkpoint: evaluate the saved greedy policy (video with --capture-video)."""
    ckpt = load_checkpoint(args.eval_checkpoint)
    saved = Args(**{**ckpt["args"], "eval_episodes": args.eval_episodes, "seed": args.seed})
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")
    seed_everything(args.seed, args.torch_deterministic, device.type == "cuda")
    envs = make_vector_env(saved)
    obs_space, n_actions = envs.single_observation_space, int(envs.single_action_space.n)
    q_network = QNetwork(obs_space.shape, n_actions, saved)
    envs.close()
    load_weights(q_network, ckpt["q_network"], args.eval_checkpoint, "q_network")
    video_dir = os.path.join("videos", ckpt["run_name"]) if args.capture_video else None
    policy = GreedyPolicy(q_network.to(device))
    returns = evaluate(policy, saved, device, video_dir, "eval_checkpoint")
    mean, std, n = np.mean(returns), np.std(returns), len(returns)
    print(f"{args.eval_checkpoint}: evaluation return {mean:.1f} +- {std:.1f} over {n} episodes")
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
