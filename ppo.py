"""PPO: Proximal Policy Optimization with a clipped surrogate, for discrete or continuous actions.

Collects `num_steps` steps from each of `num_envs` envs, computes advantages with generalized
advantage estimation, then takes `update_epochs` passes of minibatch gradient steps on
-min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) + vf_coef * value loss - ent_coef * entropy
(Schulman et al. 2017, https://arxiv.org/abs/1707.06347; GAE: https://arxiv.org/abs/1506.02438).
`--gsde`: generalized state-dependent exploration (Raffin et al. 2022, arxiv.org/abs/2005.05719).

Usage: python ppo.py --env-id CartPole-v1
"""

import contextlib
import ctypes
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
from typing import Literal

if __name__ == "__main__":  # Ctrl-C while the libraries below load ends in one line
    interrupted = "interrupted (Ctrl-C) outside the training loop"
    signal.signal(signal.SIGINT, lambda *_: os._exit(print(interrupted, file=sys.stderr) or 1))

import gymnasium as gym
import numpy as np
import pybullet_envs_gymnasium  # noqa: F401  (registers the Bullet envs)
import torch
import torch.nn as nn
import tyro
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
    resume: str | None = None
    """continue the run saved in this checkpoint (its hyperparameters and run name are kept)"""
    eval_checkpoint: str | None = None
    """evaluate the policy in this checkpoint (video with --capture-video), then exit"""
    eval_frequency: int = 10_000
    """run a deterministic evaluation every this many transitions (0: only at the end)"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    env_id: str = "CartPole-v1"
    """the gymnasium environment id (Discrete or Box actions)"""
    total_timesteps: int = 100_000
    """environment steps, summed over all environments"""
    num_envs: int = 1
    """parallel environments collecting the rollout"""

    # Algorithm specific arguments (the defaults are SB3's, the PPO paper's MuJoCo settings)
    num_steps: int = 2048
    """steps per env in each rollout, num_envs * num_steps in all"""
    learning_rate: float = 3e-4
    """Adam learning rate"""
    anneal_lr: bool = False
    """decay the learning rate linearly to 0 over the run"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda: 0 one-step TD advantages, 1 Monte Carlo ones"""
    num_minibatches: int = 32
    """minibatches per epoch over the rollout"""
    update_epochs: int = 10
    """passes over the rollout per update"""
    norm_adv: bool = True
    """normalize advantages within each minibatch"""
    clip_coef: float = 0.2
    """the surrogate clipping range epsilon"""
    clip_vloss: bool = False
    """clip the value update to the same range around the rollout's values"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient, on half the squared error (SB3's 0.5 on the whole is 1.0 here)"""
    max_grad_norm: float = 0.5
    """clip the global gradient norm to this"""
    target_kl: float | None = None
    """stop the update's epochs early once the approximate KL passes this (None: never)"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer sizes of the separate policy and value networks"""
    activation: Literal["tanh", "relu"] = "tanh"
    """hidden activation"""
    ortho_init: bool = True
    """orthogonal init (hidden gain sqrt 2, policy head 0.01, value head 1); off: PyTorch's"""
    log_std_init: float = 0.0
    """initial log std of the Gaussian policy (continuous actions; with --gsde, of each weight)"""
    gsde: bool = False
    """generalized state-dependent exploration instead of a state-independent std (continuous)"""
    sde_sample_freq: int = 4
    """with --gsde, draw new noise weights every this many steps (0: once per rollout)"""
    normalize_obs: bool = False
    """normalize observations with running statistics (clipped to +-obs_clip)"""
    normalize_reward: bool = False
    """scale rewards by the running std of the discounted return (clipped to +-reward_clip)"""
    obs_clip: float = 10.0
    """clip normalized observations to this"""
    reward_clip: float = 10.0
    """clip scaled rewards to this"""


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


class RunningMeanStd(nn.Module):
    """Mean and variance of everything seen so far, updated one batch at a time (the parallel
    formula of Chan et al.), kept in buffers so checkpoints save them with the network."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def update(self, x: torch.Tensor) -> None:
        x = x.to(self.mean)
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)


def layer_init(layer: nn.Linear, std: float) -> nn.Linear:
    """Orthogonal weights of gain `std` and zero biases, the usual PPO initialization."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


class Agent(nn.Module):
    """Separate policy and value MLPs over normalized observations. `dist` and `value` take
    observations already normalized (as stored in the rollout); called directly on a raw
    observation, the agent gives the deterministic evaluation action (most likely action, or the
    Gaussian's mean clipped to the bounds)."""

    def __init__(self, obs_dim: int, action_space: gym.Space, args: Args):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        n_out = int(action_space.n) if self.discrete else action_space.shape[0]
        activation = {"tanh": nn.Tanh, "relu": nn.ReLU}[args.activation]
        self.actor = mlp([obs_dim, *args.hidden_sizes, n_out], False, activation)
        self.critic = mlp([obs_dim, *args.hidden_sizes, 1], False, activation)
        if args.ortho_init:
            for net, head_std in [(self.actor, 0.01), (self.critic, 1.0)]:
                linears = [m for m in net if isinstance(m, nn.Linear)]
                for layer in linears:
                    layer_init(layer, head_std if layer is linears[-1] else np.sqrt(2))
        if args.gsde and self.discrete:
            raise ValueError("--gsde is for Box action spaces; this env's actions are Discrete")
        self.gsde = args.gsde
        if not self.discrete:
            # gSDE: one std per (feature, action) pair, the std of that noise weight
            std_shape = (args.hidden_sizes[-1], n_out) if self.gsde else (n_out,)
            self.log_std = nn.Parameter(torch.full(std_shape, args.log_std_init))
            self.register_buffer("action_low", torch.as_tensor(action_space.low).float())
            self.register_buffer("action_high", torch.as_tensor(action_space.high).float())
        self.obs_rms = RunningMeanStd((obs_dim,))
        self.normalize_obs, self.obs_clip = args.normalize_obs, args.obs_clip

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.normalize_obs:
            return obs.float()
        z = (obs - self.obs_rms.mean) / torch.sqrt(self.obs_rms.var + 1e-8)
        return z.clamp(-self.obs_clip, self.obs_clip).float()

    def value(self, obs_n: torch.Tensor) -> torch.Tensor:
        return self.critic(obs_n).squeeze(-1)

    def dist(self, obs_n: torch.Tensor) -> torch.distributions.Distribution:
        return self.dist_and_features(obs_n)[0]

    def dist_and_features(self, obs_n: torch.Tensor):
        """The action distribution and, with gSDE, the last hidden features (the noise basis)."""
        features = None
        if self.gsde:
            features = self.actor[:-1](obs_n)
            out = self.actor[-1](features)
        else:
            out = self.actor(obs_n)
        # No argument checks: they cost more than the small networks' forward pass.
        if self.discrete:
            return torch.distributions.Categorical(logits=out, validate_args=False), features
        if self.gsde:
            # noise = features @ W with W_ij ~ N(0, std_ij^2): Gaussian with this variance.
            # Features are detached so exploration does not shape the representation.
            variance = features.detach().pow(2) @ self.log_std.exp().pow(2)
            std = (variance + 1e-6).sqrt()
        else:
            std = self.log_std.exp()
        normal = torch.distributions.Normal(out, std, validate_args=False)
        return torch.distributions.Independent(normal, 1, validate_args=False), features

    def noise_weights(self, num_envs: int) -> torch.Tensor:
        """gSDE: a fresh weight matrix per env, (num_envs, features, actions)."""
        std = self.log_std.detach().exp()
        return torch.randn((num_envs, *std.shape), device=std.device) * std

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.actor(self.normalize(obs))
        return out.argmax(-1) if self.discrete else out.clamp(self.action_low, self.action_high)


def compute_gae(rewards, values, dones, next_value, gamma: float, lam: float):
    """Generalized advantage estimation over a rollout of shape (T, N).

    dones[t] marks that the episode ended at step t (terminated or truncated; a truncated step's
    reward already holds gamma * V(final observation)), so nothing flows across episodes:
    delta_t = r_t + gamma * (1 - done_t) * V(s_{t+1}) - V(s_t)
    A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1};  returns R_t = A_t + V(s_t).
    """
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        next_values = next_value if t == len(rewards) - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * not_done * next_values - values[t]
        last = delta + gamma * lam * not_done * last
        advantages[t] = last
    return advantages, advantages + values


class Rollout:
    """Collects num_steps steps in each env and stores them, (num_steps, num_envs, ...), with the
    observations as normalized when acted on."""

    def __init__(self, args: Args, envs, agent: Agent, return_rms: RunningMeanStd, device):
        self.args, self.envs, self.agent, self.return_rms = args, envs, agent, return_rms
        shape, space = (args.num_steps, args.num_envs), envs.single_action_space
        self.obs = torch.zeros((*shape, envs.single_observation_space.shape[0]), device=device)
        self.actions = torch.zeros(*shape, *(() if agent.discrete else space.shape), device=device)
        self.logprobs, self.rewards, self.dones, self.values = torch.zeros(4, *shape, device=device)
        self.low, self.high = (getattr(space, bound, None) for bound in ("low", "high"))
        self.discounted_return, self.device = np.zeros(args.num_envs), device

    def collect(self, obs: np.ndarray, run: "Run") -> np.ndarray:
        """Acts num_steps times in every env with the current policy, storing each step; returns
        the observations to continue from. gSDE holds its noise weights sde_sample_freq steps."""
        args, agent, device = self.args, self.agent, self.device
        for step in range(args.num_steps):
            obs_t = torch.as_tensor(obs, device=device)
            if args.normalize_obs:
                agent.obs_rms.update(obs_t)
            if agent.gsde and step % (args.sde_sample_freq or args.num_steps) == 0:
                weights = agent.noise_weights(args.num_envs)
            with torch.no_grad():
                obs_n = agent.normalize(obs_t)
                dist, features = agent.dist_and_features(obs_n)
                if agent.gsde:
                    action = dist.mean + (features.unsqueeze(1) @ weights).squeeze(1)
                else:
                    action = dist.sample()
                self.logprobs[step], self.values[step] = dist.log_prob(action), agent.value(obs_n)
            self.obs[step], self.actions[step] = obs_n, action
            action = action.cpu().numpy()
            next_obs, reward, terminations, truncations, infos = self.envs.step(
                action if agent.discrete else action.clip(self.low, self.high)
            )
            done = terminations | truncations
            if args.normalize_reward:
                self.discounted_return = self.discounted_return * args.gamma + reward
                self.return_rms.update(torch.as_tensor(self.discounted_return))
                reward = reward / np.sqrt(self.return_rms.var.item() + 1e-8)
                reward = reward.clip(-args.reward_clip, args.reward_clip)
                self.discounted_return[done] = 0.0
            reward = torch.as_tensor(reward, dtype=torch.float32, device=device)
            # Time limit: the episode did not end, so its last reward carries gamma * V(s_T).
            for i in np.flatnonzero(truncations & ~terminations):
                final = torch.as_tensor(infos["final_obs"][i], device=device)
                with torch.no_grad():
                    reward[i] += args.gamma * agent.value(agent.normalize(final[None]))[0]
            self.rewards[step] = reward
            self.dones[step] = torch.as_tensor(done, dtype=torch.float32, device=device)
            if "final_info" in infos:
                episode = infos["final_info"]["episode"]
                for i in np.flatnonzero(infos["final_info"]["_episode"]):
                    run.log_episode(episode["r"][i], episode["l"][i])
            obs = next_obs
            run.global_step += args.num_envs
        return obs


def ppo_loss(
    agent: Agent, obs_n, actions, old_logprobs, old_values, advantages, returns, args: Args
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate, the (optionally clipped) value loss and the entropy bonus on one
    minibatch; returns the total loss and its parts for logging."""
    dist = agent.dist(obs_n)
    logratio = dist.log_prob(actions) - old_logprobs
    ratio = logratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).mean()  # an unbiased, positive KL estimate
        clip_fraction = ((ratio - 1.0).abs() > args.clip_coef).float().mean()
    if args.norm_adv and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    # L = -E[min(r A, clip(r, 1 - eps, 1 + eps) A)]: no gradient once r leaves the range in A's favour
    clipped = ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)
    policy_loss = torch.max(-advantages * ratio, -advantages * clipped).mean()
    new_values = agent.value(obs_n)
    value_loss = (new_values - returns).pow(2)
    if args.clip_vloss:
        v_clipped = old_values + (new_values - old_values).clamp(-args.clip_coef, args.clip_coef)
        value_loss = torch.max(value_loss, (v_clipped - returns).pow(2))
    value_loss = 0.5 * value_loss.mean()
    entropy = dist.entropy().mean()
    # without an entropy bonus its term stays out of the graph, which saves its backward pass
    bonus = args.ent_coef * entropy if args.ent_coef else 0.0
    loss = policy_loss - bonus + args.vf_coef * value_loss
    parts = dict(policy_loss=policy_loss, value_loss=value_loss, entropy=entropy)
    parts.update(approx_kl=approx_kl, clipfrac=clip_fraction)
    return loss, {k: v.detach() for k, v in parts.items()}


def update(agent: Agent, optimizer, rollout: Rollout, advantages, returns, rng, args: Args):
    """update_epochs passes of num_minibatches shuffled minibatches, one step each, stopping early
    once the approximate KL passes target_kl; returns the last loss parts and the epochs run."""
    size = args.num_envs * args.num_steps
    minibatch_size = size // args.num_minibatches
    stored = [rollout.obs, rollout.actions, rollout.logprobs, rollout.values, advantages, returns]
    batch = [x.flatten(0, 1) for x in stored]  # ppo_loss's arguments, one row per transition
    params = list(agent.parameters())
    for epoch in range(args.update_epochs):
        order = torch.as_tensor(rng.permutation(size), device=advantages.device)
        for start in range(0, size, minibatch_size):
            mb = order[start : start + minibatch_size]
            loss, parts = ppo_loss(agent, *(x[mb] for x in batch), args)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
        if args.target_kl is not None and parts["approx_kl"] > args.target_kl:
            break
    return parts, epoch + 1


def train(args: Args) -> dict:
    """Runs the whole training; returns a summary (global_step, episodic_returns, eval_returns, sps, run_dir)."""
    validate_args(args)
    check_common_args(args)
    if args.eval_checkpoint:
        return evaluate_checkpoint(args)
    ckpt = load_checkpoint(args.resume) if args.resume else None
    args = resumed_args(args, ckpt)
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")
    rng = seed_everything(args.seed, args.torch_deterministic, device.type == "cuda")
    envs = make_vector_env(args)
    agent = Agent(envs.single_observation_space.shape[0], envs.single_action_space, args).to(device)
    return_rms = RunningMeanStd(()).to(device)
    # fused: one kernel updates every parameter
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5, fused=True)
    parts = {"agent": agent, "return_rms": return_rms, "optimizer": optimizer}
    run = Run(args, parts, agent, device, rng, ckpt, window=10)
    rollout = Rollout(args, envs, agent, return_rms, device)
    rollout_size = args.num_envs * args.num_steps
    num_updates = -(-args.total_timesteps // rollout_size)
    obs, _ = envs.reset(seed=args.seed + run.global_step)
    try:
        while run.update_count < num_updates and not run.stop.requested:
            if args.anneal_lr:
                fraction_left = 1 - run.update_count / num_updates
                optimizer.param_groups[0]["lr"] = args.learning_rate * fraction_left
            obs = rollout.collect(obs, run)
            with torch.no_grad():
                next_value = agent.value(agent.normalize(torch.as_tensor(obs, device=device)))
            gae = (rollout.rewards, rollout.values, rollout.dones, next_value)
            advantages, returns = compute_gae(*gae, args.gamma, args.gae_lambda)
            losses, epochs = update(agent, optimizer, rollout, advantages, returns, rng, args)
            run.update_count += 1
            lr = optimizer.param_groups[0]["lr"]
            charts = {"losses/epochs": epochs, "charts/learning_rate": lr}
            run.end_update(rollout_size, losses, charts, more=run.update_count < num_updates)
    finally:
        run.close(envs)
    return run.finish()


def check_rules(args, rules: list) -> None:
    """Raises ValueError naming the first flag that breaks a rule (flag names, test, what it must be)."""
    for names, test, what in rules:
        for name in names:
            if not test(getattr(args, name)):
                flag = f"--{name.replace('_', '-')}"
                raise ValueError(f"{flag} must be {what}, got {getattr(args, name)}")


POSITIVE, NONNEGATIVE = (lambda v: v > 0, "positive"), (lambda v: v >= 0, ">= 0")
RULES = [
    (["total_timesteps", "num_envs", "eval_episodes", "num_steps", "num_minibatches"], *POSITIVE),
    (["update_epochs", "learning_rate", "max_grad_norm"], *POSITIVE),
    (["checkpoint_frequency", "eval_frequency", "clip_coef", "ent_coef", "vf_coef"], *NONNEGATIVE),
    (["sde_sample_freq"], *NONNEGATIVE),
    (["hidden_sizes"], lambda sizes: all(h > 0 for h in sizes), "all positive"),
    (["gamma", "gae_lambda"], lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
]


def validate_args(args: Args) -> None:
    """Raises ValueError naming the flag and the fix before anything is built."""
    check_rules(args, RULES)
    rollout_size = args.num_envs * args.num_steps
    if args.total_timesteps < rollout_size and not args.resume:
        raise ValueError(
            f"--total-timesteps {args.total_timesteps} is less than one rollout of "
            f"{rollout_size} (--num-envs x --num-steps); raise it or shrink those"
        )
    if rollout_size % args.num_minibatches:
        raise ValueError(
            f"--num-minibatches {args.num_minibatches} must divide the rollout of --num-envs x "
            f"--num-steps = {rollout_size} transitions"
        )


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


FIX = "try a lower --learning-rate"  # what a diverging loss's message suggests
SESSION_FIELDS = (  # taken from the command line by --resume; all others from the checkpoint
    "resume total_timesteps cuda track save_model checkpoint_frequency capture_video".split()
)


def make_vector_env(args: Args) -> gym.vector.SyncVectorEnv:
    """The training envs; raises ValueError for action spaces other than Discrete or bounded Box."""
    check_env_id(args.env_id)
    thunks = [make_env(args.env_id, args.seed + i) for i in range(args.num_envs)]
    envs = gym.vector.SyncVectorEnv(thunks, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    space = envs.single_action_space
    bounded = isinstance(space, gym.spaces.Box) and np.isfinite([space.low, space.high]).all()
    if not (isinstance(space, gym.spaces.Discrete) or bounded):
        envs.close()
        raise ValueError(
            f"--env-id {args.env_id} has a {space} action space; this script needs "
            "Discrete or bounded Box actions"
        )
    obs_space = envs.single_observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        envs.close()
        shape = obs_space.shape if isinstance(obs_space, gym.spaces.Box) else None
        raise ValueError(
            f"--env-id {args.env_id} has {shape or type(obs_space).__name__}-shaped "
            "observations; this script needs flat vector observations"
        )
    return envs


class Run:
    """What train() keeps besides the algorithm: the run directory, TensorBoard and W&B, the
    progress bar, evaluations of `policy`, checkpoints of `parts` (networks and optimizers), the
    stop on Ctrl-C or SIGTERM. Progress shows the mean of the last `window` returns."""

    def __init__(self, args, parts: dict, policy: nn.Module, device, rng, ckpt, window: int):
        self.args, self.parts, self.policy, self.device, self.rng = args, parts, policy, device, rng
        self.window, self.global_step, self.update_count, self.wandb_id = window, 0, 0, None
        if ckpt is not None:
            for name, part in parts.items():
                if isinstance(part, nn.Module):
                    load_weights(part, ckpt[name], args.resume, name)
                else:
                    part.load_state_dict(ckpt[name])
            set_rng_states(ckpt["rng"], rng)
            self.global_step, self.update_count = ckpt["global_step"], ckpt["update_count"]
            self.wandb_id = ckpt["wandb_id"]
        self.run_name = ckpt["run_name"] if ckpt is not None else new_run_name(args)
        self.run_dir = os.path.join("runs", self.run_name)
        self.checkpoint_path = os.path.join(self.run_dir, f"{args.exp_name}.pt")
        if args.track:
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
        self.bar = tqdm(**steps, disable=not sys.stdout.isatty())
        # the last returns before a resume, so the progress line and the summary continue from them
        self.episodic_returns = (ckpt or {}).get("recent_returns", torch.zeros(0)).tolist()
        self.eval_history: list[tuple[int, float]] = []
        self.start_step, self.eval_time, self.started = self.global_step, 0.0, time.perf_counter()

    def log_episode(self, episodic_return, length) -> None:
        self.episodic_returns.append(float(episodic_return))
        self.writer.add_scalar("charts/episodic_return", episodic_return, self.global_step)
        self.writer.add_scalar("charts/episodic_length", length, self.global_step)

    def end_update(self, steps: int, losses: dict, charts: dict, more: bool) -> None:
        """After an update that followed `steps` new transitions: logs it, shows the progress, and
        evaluates (unless the run ends now: `more` False) and checkpoints when due."""
        args, step = self.args, self.global_step
        self.bar.update(steps)
        for name, value in losses.items():
            log_loss(self.writer, name, value, step, FIX)
        for tag, value in charts.items():
            self.writer.add_scalar(tag, value, step)
        sps = (step - self.start_step) / (time.perf_counter() - self.started - self.eval_time)
        self.writer.add_scalar("charts/SPS", sps, step)
        recent = np.mean(self.episodic_returns[-self.window :]) if self.episodic_returns else np.nan
        self.bar.set_postfix(sps=f"{sps:.0f}", ret=f"{recent:.1f}")
        if self.bar.disable and crossed(step, steps, max(args.total_timesteps // 20, 1)):
            line = f"sps {sps:.0f} return(last {self.window}) {recent:.1f}"
            print(f"step {step}/{args.total_timesteps} {line}", flush=True)
        if crossed(step, steps, args.eval_frequency) and more:
            eval_start = time.perf_counter()
            self.evaluation()
            self.eval_time += time.perf_counter() - eval_start
        if args.save_model and crossed(step, steps, args.checkpoint_frequency):
            self.save()

    def evaluation(self) -> list[float]:
        """Runs evaluate() on the policy now and logs it as eval/episodic_return."""
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
        modules = [part for part in self.parts.values() if isinstance(part, nn.Module)]
        return save_checkpoint(self.checkpoint_path, state, modules)

    def close(self, envs) -> None:
        """However the loop ended: the signal handlers restored, the bar and the envs closed."""
        self.stop.restore()
        self.bar.close()
        envs.close()
        if sys.exc_info()[0] is not None:  # an error ends the run: write out what it logged
            self.writer.close()

    def finish(self) -> dict:
        """The final evaluation (none after a stop), the last checkpoint; returns the summary."""
        eval_returns, step = [], self.global_step
        if not self.stop.requested:
            eval_returns = self.evaluation()
            n, mean, std = len(eval_returns), np.mean(eval_returns), np.std(eval_returns)
            line = f"evaluation return {mean:.1f} +- {std:.1f} over {n} episodes"
            print(f"step {step}: {line}", flush=True)
        saved = self.args.save_model and self.save()
        if self.stop.requested:
            where = f"checkpoint in {self.checkpoint_path}" if saved else "no checkpoint written"
            hint = "" if self.args.save_model else " (--save-model writes one)"
            print(f"stopped at step {step}: {where}{hint}", flush=True)
        elapsed = time.perf_counter() - self.started - self.eval_time
        sps = (step - self.start_step) / max(elapsed, 1e-9)
        self.writer.add_scalar("charts/SPS", sps, step)
        self.writer.close()
        if self.args.track:
            import wandb

            wandb.finish()
        summary = dict(global_step=step, update_count=self.update_count, run_dir=self.run_dir)
        summary.update(episodic_returns=self.episodic_returns, eval_returns=eval_returns)
        summary.update(eval_history=self.eval_history, sps=sps, interrupted=self.stop.requested)
        return {**summary, "checkpoint": self.checkpoint_path if self.args.save_model else None}


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
    """--eval-checkpoint: load an agent with its normalization statistics, evaluate it, return."""
    ckpt = load_checkpoint(args.eval_checkpoint)
    saved = Args(**{**ckpt["args"], "eval_episodes": args.eval_episodes, "seed": args.seed})
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")
    seed_everything(args.seed, args.torch_deterministic, device.type == "cuda")
    envs = make_vector_env(saved)
    agent = Agent(envs.single_observation_space.shape[0], envs.single_action_space, saved)
    envs.close()
    load_weights(agent, ckpt["agent"], args.eval_checkpoint, "agent")
    video_dir = os.path.join("videos", ckpt["run_name"]) if args.capture_video else None
    returns = evaluate(agent.to(device), saved, device, video_dir, "eval_checkpoint")
    n, mean, std = len(returns), np.mean(returns), np.std(returns)
    print(f"{args.eval_checkpoint}: evaluation return {mean:.1f} +- {std:.1f} over {n} episodes")
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
