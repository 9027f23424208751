"""REINFORCE: Monte Carlo policy gradient, for discrete (categorical) or continuous (Gaussian) actions.

Each update collects `episodes_per_update` complete episodes with the current policy and takes one
gradient step on -sum_t log pi(a_t | s_t) * G_t, averaged over the episodes (Williams 1992,
https://doi.org/10.1007/BF00992696). The credit each action gets is a flag, so its effect can be
measured: rewards-to-go, the discount gamma, normalization of the returns across the batch, and a
learned state-value baseline (G_t - V(s_t)). Batches hold whole episodes (see collect_episodes).

Usage: python reinforce.py --env-id CartPole-v1
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
    total_timesteps: int = 200_000
    """environment steps, summed over all environments"""
    num_envs: int = 8
    """parallel environments collecting episodes"""

    # Algorithm specific arguments
    episodes_per_update: int = 8
    """complete episodes per gradient step (a multiple of num_envs)"""
    learning_rate: float = 1e-2
    """Adam learning rate of the policy"""
    gamma: float = 0.99
    """discount factor (1: no discounting)"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layer sizes of the policy and of the baseline"""
    rewards_to_go: bool = True
    """credit each action with the rewards after it only (else with the whole episode's return)"""
    normalize_returns: bool = True
    """normalize the returns (or advantages) to mean 0 and std 1 across the batch"""
    baseline: bool = True
    """subtract a learned state-value baseline V(s) from the returns"""
    value_learning_rate: float = 1e-2
    """Adam learning rate of the baseline"""
    value_epochs: int = 5
    """regression steps of the baseline toward the returns, per batch"""
    log_std_init: float = 0.0
    """initial log standard deviation of a Gaussian policy (continuous actions)"""


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


class Policy(nn.Module):
    """pi(a | s): categorical over logits for Discrete actions; for Box actions a diagonal Gaussian
    whose log standard deviation is a learned parameter independent of the state. Called directly,
    it gives the deterministic action used in evaluation: the most likely action, or the mean
    clipped to the action bounds."""

    def __init__(self, obs_dim: int, action_space: gym.Space, args: Args):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        n_out = int(action_space.n) if self.discrete else action_space.shape[0]
        self.net = mlp([obs_dim, *args.hidden_sizes, n_out], layer_norm=False)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((n_out,), args.log_std_init))
            self.register_buffer("action_low", torch.as_tensor(action_space.low).float())
            self.register_buffer("action_high", torch.as_tensor(action_space.high).float())

    def dist(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        out = self.net(obs)
        try:  # the distributions refuse non-finite parameters, in a message of many lines
            if self.discrete:
                return torch.distributions.Categorical(logits=out)
            return torch.distributions.Independent(
                torch.distributions.Normal(out, self.log_std.exp()), 1
            )
        except ValueError:
            raise FloatingPointError(f"the policy's outputs are not finite ({FIX})") from None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(obs)
        return out.argmax(-1) if self.discrete else out.clamp(self.action_low, self.action_high)


def episode_returns(rewards: np.ndarray, gamma: float, rewards_to_go: bool, bootstrap: float = 0.0):
    """The return credited to each step of one episode.

    Rewards to go: G_t = r_t + gamma * G_{t+1}, with G_T = bootstrap (V of the final observation of
    a truncated episode, else 0). Otherwise every step gets the whole episode's return G_0.
    """
    returns = np.empty(len(rewards))
    running = bootstrap
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns if rewards_to_go else np.full(len(rewards), returns[0])


def collect_episodes(envs, policy: Policy, value: nn.Module, args: Args, device, seed: int):
    """Runs the policy until every env has finished its share of episodes; an env done with its
    share keeps stepping, its steps thrown away but counted, so no episode is cut short and the
    batch is not biased toward short ones. Returns the episodes (obs, actions, rewards, bootstrap,
    return) and the number of environment steps taken."""
    share = args.episodes_per_update // args.num_envs
    finished = np.zeros(args.num_envs, dtype=int)
    current = [{"obs": [], "actions": [], "rewards": []} for _ in range(args.num_envs)]
    episodes, steps = [], 0
    obs, _ = envs.reset(seed=seed)
    while (finished < share).any():
        with torch.no_grad():
            actions = policy.dist(torch.as_tensor(obs, dtype=torch.float32, device=device)).sample()
        actions = actions.cpu().numpy()
        space = envs.single_action_space
        step_actions = actions if policy.discrete else actions.clip(space.low, space.high)
        next_obs, rewards, terminations, truncations, infos = envs.step(step_actions)
        steps += args.num_envs
        for i in np.flatnonzero(finished < share):
            current[i]["obs"].append(obs[i])
            current[i]["actions"].append(actions[i])
            current[i]["rewards"].append(rewards[i])
            if terminations[i] or truncations[i]:
                bootstrap = 0.0
                if truncations[i] and not terminations[i] and args.baseline:
                    final = torch.as_tensor(
                        infos["final_obs"][i], dtype=torch.float32, device=device
                    )
                    with torch.no_grad():
                        bootstrap = value(final).item()
                ep = {k: np.array(v) for k, v in current[i].items()}
                ep.update(bootstrap=bootstrap, episodic_return=float(ep["rewards"].sum()))
                episodes.append(ep)
                finished[i] += 1
                current[i] = {"obs": [], "actions": [], "rewards": []}
        obs = next_obs
    return episodes, steps


def update(
    episodes, policy: Policy, value, policy_optimizer, value_optimizer, args: Args, device
) -> dict[str, torch.Tensor]:
    """One policy-gradient step on the batch, then the baseline's regression; returns the losses."""
    to_tensor = lambda x: torch.as_tensor(np.concatenate(x), dtype=torch.float32, device=device)
    obs = to_tensor([ep["obs"] for ep in episodes])
    actions = to_tensor([ep["actions"] for ep in episodes])
    credit = lambda e: episode_returns(e["rewards"], args.gamma, args.rewards_to_go, e["bootstrap"])
    returns = to_tensor([credit(e) for e in episodes])
    if policy.discrete:
        actions = actions.long()
    advantages = returns
    if args.baseline:
        with torch.no_grad():
            advantages = returns - value(obs).squeeze(-1)
    if args.normalize_returns and len(advantages) > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    dist = policy.dist(obs)
    # grad J = E_tau[sum_t grad log pi(a_t | s_t) * A_t]: the sum over steps, the mean over episodes
    policy_loss = -(dist.log_prob(actions) * advantages).sum() / len(episodes)
    policy_optimizer.zero_grad(set_to_none=True)
    policy_loss.backward()
    policy_optimizer.step()
    losses = {"policy_loss": policy_loss.detach(), "entropy": dist.entropy().mean().detach()}
    for _ in range(args.value_epochs if args.baseline else 0):
        value_loss = (value(obs).squeeze(-1) - returns).pow(2).mean()
        value_optimizer.zero_grad(set_to_none=True)
        value_loss.backward()
        value_optimizer.step()
        losses["value_loss"] = value_loss.detach()
    return losses


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
    obs_dim = envs.single_observation_space.shape[0]
    policy = Policy(obs_dim, envs.single_action_space, args).to(device)
    value = mlp([obs_dim, *args.hidden_sizes, 1], layer_norm=False).to(device)
    # foreach: one call per operation for all parameters
    policy_optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate, foreach=True)
    value_optimizer = torch.optim.Adam(
        value.parameters(), lr=args.value_learning_rate, foreach=True
    )
    parts = {"policy": policy, "value": value}
    parts.update(policy_optimizer=policy_optimizer, value_optimizer=value_optimizer)
    run = Run(args, parts, policy, device, rng, ckpt, window=args.episodes_per_update)
    try:
        while run.global_step < args.total_timesteps and not run.stop.requested:
            seed = args.seed + run.global_step
            episodes, steps = collect_episodes(envs, policy, value, args, device, seed)
            losses = update(
                episodes, policy, value, policy_optimizer, value_optimizer, args, device
            )
            run.global_step += steps
            run.update_count += 1
            for ep in episodes:
                run.log_episode(ep["episodic_return"], len(ep["rewards"]))
            run.end_update(steps, losses, {}, more=run.global_step < args.total_timesteps)
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
    (["total_timesteps", "num_envs", "eval_episodes", "episodes_per_update"], *POSITIVE),
    (["learning_rate", "value_learning_rate"], *POSITIVE),
    (["checkpoint_frequency", "eval_frequency", "value_epochs"], *NONNEGATIVE),
    (["hidden_sizes"], lambda sizes: all(h > 0 for h in sizes), "all positive"),
    (["gamma"], lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
]


def validate_args(args: Args) -> None:
    """Raises ValueError naming the flag and the fix before anything is built."""
    check_rules(args, RULES)
    if args.episodes_per_update % args.num_envs:
        raise ValueError(
            f"--episodes-per-update {args.episodes_per_update} must be a multiple of --num-envs "
            f"{args.num_envs}, so every env contributes the same number of episodes"
        )
    if args.baseline and args.value_epochs < 1:
        raise ValueError(
            f"--value-epochs must be positive with the baseline on, got {args.value_epochs} "
            "(--no-baseline turns the baseline off)"
        )
    # An update takes whole episodes, so a budget below one update's length runs one whole update
    # anyway; episode lengths are unknown in advance, but each is at least one step.
    if args.total_timesteps < args.episodes_per_update and not args.resume:
        raise ValueError(
            f"--total-timesteps {args.total_timesteps} is less than one update of "
            f"{args.episodes_per_update} episodes (--episodes-per-update), each at least one step; "
            "raise it or lower --episodes-per-update"
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
    """--eval-checkpoint: load a policy, evaluate it (recording it with --capture-video), return."""
    ckpt = load_checkpoint(args.eval_checkpoint)
    saved = Args(**{**ckpt["args"], "eval_episodes": args.eval_episodes, "seed": args.seed})
    device = torch.device("cuda" if args.cuda and torch.cuda.is_available() else "cpu")
    seed_everything(args.seed, args.torch_deterministic, device.type == "cuda")
    envs = make_vector_env(saved)
    policy = Policy(envs.single_observation_space.shape[0], envs.single_action_space, saved)
    envs.close()
    load_weights(policy, ckpt["policy"], args.eval_checkpoint, "policy")
    video_dir = os.path.join("videos", ckpt["run_name"]) if args.capture_video else None
    returns = evaluate(policy.to(device), saved, device, video_dir, "eval_checkpoint")
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
