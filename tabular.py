"""Tabular control: Monte Carlo (first- or every-visit), SARSA, Expected SARSA and Q-learning.

The methods the deep ones grew from, in NumPy alone, on gymnasium's toy-text tasks (FrozenLake,
CliffWalking, Taxi): an epsilon-greedy policy over a table Q(s, a), improved from sampled episodes
(Monte Carlo) or from one-step bootstrapped targets (the TD methods); Sutton and Barto,
"Reinforcement Learning: An Introduction", 2nd ed., chapters 5 and 6. `value_iteration` solves the
task from its transition table, so the learned values can be checked against the optimal ones.

Usage: python tabular.py --env-id CliffWalking-v1 --method sarsa
"""

import contextlib
import difflib
import io
import json
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
import tyro
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.types_pb2 import DT_STRING
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tqdm import tqdm


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment (part of the run name)"""
    seed: int = 1
    """seed of random, numpy and the environments"""
    track: bool = False
    """log to Weights & Biases"""
    wandb_project_name: str = "single-file-rl"
    """the W&B project"""
    wandb_entity: str | None = None
    """the W&B entity (team)"""
    capture_video: bool = False
    """record videos of evaluation episodes to videos/{run_name}/"""
    save_model: bool = False
    """write the Q-table to runs/{run_name}/{exp_name}.npz at the end"""
    eval_checkpoint: str | None = None
    """evaluate the greedy policy of this saved Q-table (video with --capture-video), then exit"""
    eval_frequency: int = 10_000
    """run a greedy evaluation every this many steps (0: only at the end)"""
    eval_episodes: int = 100
    """episodes per evaluation"""
    env_id: str = "FrozenLake-v1"
    """the gymnasium environment id (Discrete observations and actions: the toy-text tasks)"""
    total_timesteps: int = 100_000
    """environment steps to learn from"""

    # Algorithm specific arguments
    method: Literal["q-learning", "sarsa", "expected-sarsa", "mc-first-visit", "mc-every-visit"] = (
        "q-learning"
    )
    """the update: Q-learning, SARSA, Expected SARSA, or first- or every-visit Monte Carlo"""
    gamma: float = 0.99
    """discount factor"""
    learning_rate: float = 0.1
    """step size alpha of every update, at the start of the run"""
    learning_rate_end: float = 0.1
    """alpha falls linearly to this over the run (equal to --learning-rate: constant)"""
    epsilon_start: float = 1.0
    """exploration probability at the start"""
    epsilon_end: float = 0.05
    """exploration probability after --exploration-fraction of the run"""
    exploration_fraction: float = 0.5
    """fraction of the run over which epsilon falls linearly"""
    slippery: bool = True
    """FrozenLake only: the ice is slippery (the intended move happens a third of the time)"""


def schedule(start: float, end: float, fraction: float, step: int, total: int) -> float:
    """Linear from start to end over fraction * total steps, then end."""
    progress = min(step / max(fraction * total, 1e-12), 1.0)
    return start + (end - start) * progress


def epsilon_greedy(q: np.ndarray, state: int, epsilon: float, rng: np.random.Generator) -> int:
    """A random action with probability epsilon, else a greedy one (ties broken at random)."""
    if rng.random() < epsilon:
        return int(rng.integers(q.shape[1]))
    best = np.flatnonzero(q[state] == q[state].max())
    return int(best[0] if len(best) == 1 else rng.choice(best))


def policy_probs(q: np.ndarray, state: int, epsilon: float) -> np.ndarray:
    """pi(.|s) of the epsilon-greedy policy (greedy mass shared by tied actions)."""
    n = q.shape[1]
    greedy = q[state] == q[state].max()
    return epsilon / n + (1.0 - epsilon) * greedy / greedy.sum()


def td_target(q, reward, next_state, next_action, terminated, epsilon, args: Args) -> float:
    """The one-step target; a terminated transition does not bootstrap, a truncated one does.
    SARSA:          r + gamma Q(s', a'),          a' the action the policy takes next
    Expected SARSA: r + gamma sum_a pi(a|s') Q(s', a)
    Q-learning:     r + gamma max_a Q(s', a)"""
    if terminated:
        return reward
    if args.method == "sarsa":
        bootstrap = q[next_state, next_action]
    elif args.method == "expected-sarsa":
        bootstrap = policy_probs(q, next_state, epsilon) @ q[next_state]
    else:
        bootstrap = q[next_state].max()
    return reward + args.gamma * bootstrap


def monte_carlo_update(q, episode, bootstrap: float, alpha: float, args: Args) -> None:
    """Constant-alpha Monte Carlo: Q(s, a) += alpha (G_t - Q(s, a)) for the episode's visits,
    G_t = r_{t+1} + gamma G_{t+1}, from the back; a truncated episode starts from the value of its
    last state (bootstrap), a terminated one from 0. First-visit updates each pair once."""
    g = bootstrap
    first = {(s, a): t for t, (s, a, _) in reversed(list(enumerate(episode)))}
    for t in range(len(episode) - 1, -1, -1):
        state, action, reward = episode[t]
        g = reward + args.gamma * g
        if args.method == "mc-every-visit" or first[(state, action)] == t:
            q[state, action] += alpha * (g - q[state, action])


def value_iteration(transitions: dict, n_states: int, n_actions: int, gamma: float, tol=1e-10):
    """Solves the task from its transition table P[s][a] = [(prob, s', r, terminated), ...];
    returns (V*, Q*) with Q*(s, a) = sum p (r + gamma (1 - terminated) V*(s'))."""
    v = np.zeros(n_states)
    while True:
        q = np.zeros((n_states, n_actions))
        for s in range(n_states):
            for a in range(n_actions):
                q[s, a] = sum(
                    p * (r + gamma * (not done) * v[s2]) for p, s2, r, done in transitions[s][a]
                )
        new_v = q.max(1)
        if np.abs(new_v - v).max() < tol:
            return new_v, q
        v = new_v


def train(args: Args) -> dict:
    """Runs the whole training; returns a summary (global_step, episodic_returns, eval_returns,
    eval_history, sps, run_dir, q, interrupted)."""
    check_rules(args, RULES)
    if args.eval_checkpoint:
        return evaluate_checkpoint(args)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    env = make_env(args)
    q = np.zeros((env.observation_space.n, env.action_space.n))
    run_name = new_run_name(args)
    run_dir = os.path.join("runs", run_name)
    writer = TabularWriter(run_dir)
    writer.add_text("hyperparameters", hyperparameter_table(args))
    if args.track:
        import wandb

        wandb.init(
            project=args.wandb_project_name,
            entity=args.wandb_entity,
            config=vars(args),
            name=run_name,
            id=uuid.uuid4().hex[:12],
            sync_tensorboard=True,
            save_code=True,
            dir=run_dir,
        )
    video_dir = os.path.join("videos", run_name) if args.capture_video else None
    bar = tqdm(total=args.total_timesteps, unit="step", disable=not sys.stdout.isatty())
    episodic_returns: list[float] = []
    eval_history: list[tuple[int, float]] = []
    episode: list[tuple[int, int, float]] = []
    start_time, eval_seconds, global_step, stop = time.perf_counter(), 0.0, 0, []
    state, _ = env.reset(seed=args.seed)
    total, epsilon = args.total_timesteps, args.epsilon_start
    action = epsilon_greedy(q, state, epsilon, rng)
    restore_signals = stop_on_signals(stop)
    try:
        while global_step < total and not stop:
            next_state, reward, terminated, truncated, info = env.step(action)
            global_step += 1
            bar.update(1)
            epsilon = schedule(
                args.epsilon_start, args.epsilon_end, args.exploration_fraction, global_step, total
            )
            alpha = schedule(args.learning_rate, args.learning_rate_end, 1.0, global_step, total)
            next_action = epsilon_greedy(q, next_state, epsilon, rng)
            if args.method.startswith("mc"):
                episode.append((state, action, float(reward)))
                if terminated or truncated:
                    v_next = policy_probs(q, next_state, epsilon) @ q[next_state]
                    monte_carlo_update(q, episode, 0.0 if terminated else v_next, alpha, args)
                    episode = []
            else:
                target = td_target(q, reward, next_state, next_action, terminated, epsilon, args)
                q[state, action] += alpha * (target - q[state, action])
            state, action = next_state, next_action
            if terminated or truncated:
                episodic_returns.append(float(info["episode"]["r"]))
                writer.add_scalar("charts/episodic_return", info["episode"]["r"], global_step)
                writer.add_scalar("charts/episodic_length", info["episode"]["l"], global_step)
                state, _ = env.reset()
                action = epsilon_greedy(q, state, epsilon, rng)
            if global_step % 1000 == 0:
                sps = global_step / (time.perf_counter() - start_time - eval_seconds)
                log_progress(
                    writer, bar, args, q, episodic_returns, global_step, epsilon, alpha, sps
                )
            due = args.eval_frequency and global_step % args.eval_frequency == 0
            if due and global_step < total:
                eval_start = time.perf_counter()
                returns = evaluate(q, args, video_dir, f"eval_step{global_step}")
                eval_history.append((global_step, float(np.mean(returns))))
                writer.add_scalar("eval/episodic_return", np.mean(returns), global_step)
                eval_seconds += time.perf_counter() - eval_start
    finally:
        restore_signals()
        bar.close()
    env.close()
    sps = global_step / max(time.perf_counter() - start_time - eval_seconds, 1e-9)
    eval_returns: list[float] = []
    if not stop:
        eval_returns = evaluate(q, args, video_dir, f"eval_step{global_step}")
        eval_history.append((global_step, float(np.mean(eval_returns))))
        writer.add_scalar("eval/episodic_return", np.mean(eval_returns), global_step)
        mean, std, n = np.mean(eval_returns), np.std(eval_returns), len(eval_returns)
        line = f"evaluation return {mean:.3f} +- {std:.3f} over {n} episodes"
        print(f"step {global_step}: {line}", flush=True)
    writer.add_scalar("charts/SPS", sps, global_step)
    checkpoint = os.path.join(run_dir, f"{args.exp_name}.npz")
    if args.save_model:
        save_checkpoint(checkpoint, q, args, run_name, global_step)
    if stop:
        where = f"checkpoint in {checkpoint}" if args.save_model else "no checkpoint written"
        hint = "" if args.save_model else " (--save-model writes one)"
        print(f"stopped at step {global_step}: {where}{hint}", flush=True)
    writer.close()
    if args.track:
        wandb.finish()
    return {
        "global_step": global_step,
        "episodic_returns": episodic_returns,
        "eval_returns": eval_returns,
        "eval_history": eval_history,
        "sps": sps,
        "run_dir": run_dir,
        "checkpoint": checkpoint if args.save_model else None,
        "q": q,
        "interrupted": bool(stop),
    }


def stop_on_signals(stop: list):
    """Ctrl-C and SIGTERM append to `stop` (the loop ends cleanly); returns a handler restorer."""
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.append(signum))
        except ValueError:  # not the main thread: signals stay as they are
            pass
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


TIME_LIMIT = 1000
"""episode cap for tasks that have none (the cut episode is truncated, so it bootstraps)"""


def make_env(args: Args, video_dir: str | None = None, prefix: str = "eval") -> gym.Env:
    """One env recording episode statistics (and, given a video_dir, a video of its first
    episode); ValueError unless its observations and actions are Discrete."""
    check_env_id(args.env_id)
    kwargs = {"is_slippery": args.slippery} if args.env_id.startswith("FrozenLake") else {}
    if video_dir is not None:
        env = gym.make(args.env_id, render_mode="rgb_array", **kwargs)
        env = gym.wrappers.RecordVideo(
            env, video_dir, episode_trigger=lambda e: e == 0, name_prefix=prefix
        )
    else:
        env = gym.make(args.env_id, **kwargs)
    for name, space in [("observation", env.observation_space), ("action", env.action_space)]:
        if not isinstance(space, gym.spaces.Discrete):
            env.close()
            raise ValueError(
                f"--env-id {args.env_id} has a {type(space).__name__} {name} space; a table needs "
                "Discrete observations and actions: use dqn_rainbow.py or ppo.py"
            )
    if env.spec.max_episode_steps is None:  # CliffWalking: a greedy policy can circle forever
        env = gym.wrappers.TimeLimit(env, TIME_LIMIT)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env.action_space.seed(args.seed)
    return env


def evaluate(q: np.ndarray, args: Args, video_dir: str | None = None, prefix="eval") -> list:
    """Runs args.eval_episodes episodes of the greedy policy (first best action on ties) on an
    env of its own; returns their undiscounted returns."""
    env = make_env(args, video_dir, prefix)
    returns: list[float] = []
    state, _ = env.reset(seed=args.seed + 10_000)
    while len(returns) < args.eval_episodes:
        state, _, terminated, truncated, info = env.step(int(q[state].argmax()))
        if terminated or truncated:
            returns.append(float(info["episode"]["r"]))
            state, _ = env.reset()
    env.close()
    return returns


RULES = [  # (flags, test, what they must be), checked before anything is built
    (["total_timesteps", "eval_episodes"], lambda v: v > 0, "positive"),
    (["eval_frequency"], lambda v: v >= 0, ">= 0"),
    (["learning_rate"], lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
    (["gamma", "exploration_fraction"], lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    (["learning_rate_end", "epsilon_start", "epsilon_end"], lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
]


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


def save_checkpoint(path: str, q: np.ndarray, args: Args, run_name: str, step: int) -> None:
    """The Q-table with the options and step that made it, written atomically; a failed write
    removes its temporary file and raises OSError in one line."""
    meta = json.dumps(
        {
            "script": os.path.basename(__file__),
            "args": asdict(args),
            "run_name": run_name,
            "global_step": step,
        }
    )
    try:
        with open(f"{path}.tmp", "wb") as f:
            np.savez(f, q=q, meta=np.array(meta))
        os.replace(f"{path}.tmp", path)
    except OSError as e:
        if os.path.lexists(f"{path}.tmp"):
            os.remove(f"{path}.tmp")
        raise OSError(f"could not write checkpoint {path} ({e.strerror})") from None


def load_checkpoint(path: str) -> tuple[np.ndarray, dict]:
    """Reads a saved Q-table; clear errors for a missing, unreadable or foreign file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist; check the path given")
    try:
        with np.load(path) as data:
            q, meta = data["q"], json.loads(str(data["meta"]))
    except Exception as e:
        raise ValueError(
            f"checkpoint {path} could not be read ({type(e).__name__}); it is not a Q-table of this script"
        ) from None
    if meta.get("script") != os.path.basename(__file__):
        raise ValueError(f"checkpoint {path} was written by {meta.get('script')}; use that script")
    unknown = sorted(set(meta["args"]) - set(Args.__dataclass_fields__))
    if unknown:
        raise ValueError(f"checkpoint {path} sets options this script lacks ({', '.join(unknown)})")
    return q, meta


def evaluate_checkpoint(args: Args) -> dict:
    """--eval-checkpoint: load a Q-table, evaluate its greedy policy, return."""
    q, meta = load_checkpoint(args.eval_checkpoint)
    saved = Args(**{**meta["args"], "eval_episodes": args.eval_episodes, "seed": args.seed})
    env = make_env(saved)
    shape = (int(env.observation_space.n), int(env.action_space.n))
    env.close()
    if q.shape != shape:
        raise ValueError(
            f"checkpoint {args.eval_checkpoint} holds a {q.shape} table; {saved.env_id} needs {shape}"
        )
    video_dir = os.path.join("videos", meta["run_name"]) if args.capture_video else None
    returns = evaluate(q, saved, video_dir, "eval_checkpoint")
    mean, n = np.mean(returns), len(returns)
    print(f"{args.eval_checkpoint}: evaluation return {mean:.3f} over {n} episodes")
    return {
        "global_step": meta["global_step"],
        "episodic_returns": [],
        "eval_returns": returns,
        "sps": 0.0,
        "run_dir": os.path.join("runs", meta["run_name"]),
    }


def new_run_name(args: Args) -> str:
    """{env_id}__{exp_name}__{seed}__{unix time}, claiming runs/{run_name}/ at once."""
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


class TabularWriter:
    """TensorBoard scalars and text without torch: the event protos TensorBoard reads, written
    through its own event-file writer."""

    def __init__(self, run_dir: str):
        self.writer = EventFileWriter(run_dir)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])
        self.writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def add_text(self, tag: str, text: str) -> None:
        shape = TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)])
        tensor = TensorProto(dtype=DT_STRING, string_val=[text.encode()], tensor_shape=shape)
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
        value = Summary.Value(tag=f"{tag}/text_summary", metadata=meta, tensor=tensor)
        self.writer.add_event(Event(wall_time=time.time(), step=0, summary=Summary(value=[value])))

    def close(self) -> None:
        self.writer.close()


def hyperparameter_table(args: Args) -> str:
    rows = "\n".join(f"|{key}|{value}|" for key, value in asdict(args).items())
    return f"|param|value|\n|-|-|\n{rows}"


def log_progress(writer, bar, args, q, episodic_returns, step, epsilon, alpha, sps) -> None:
    """Every 1000 steps: Q statistics, schedules and speed to TensorBoard, and the progress line."""
    for name, value in [("q_mean", q.mean()), ("q_min", q.min()), ("q_max", q.max())]:
        writer.add_scalar(f"losses/{name}", value, step)
    writer.add_scalar("charts/epsilon", epsilon, step)
    writer.add_scalar("charts/learning_rate", alpha, step)
    writer.add_scalar("charts/SPS", sps, step)
    recent = np.mean(episodic_returns[-100:]) if episodic_returns else float("nan")
    bar.set_postfix(sps=f"{sps:.0f}", ret=f"{recent:.2f}")
    if bar.disable and step % max(args.total_timesteps // 20, 1000) == 0:
        line = f"sps {sps:.0f} return(last 100) {recent:.2f}"
        print(f"step {step}/{args.total_timesteps} {line}", flush=True)


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
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(130 if summary.get("interrupted") else 0)
