"""Tennis results of maddpg_tennis.py from the TensorBoard event files of its runs: the episode at
which the 100-episode mean score first reaches 0.5 (the task's "solved"), the final deterministic
evaluation, and the wall-clock time, per seed and per variant (exp_name), with a plot of the
100-episode mean score against episodes.

Usage: python benchmarks/tennis_report.py --runs-dir benchmarks/runs/runs --out benchmarks/results \
           [--random-play 0.0079]
"""

import argparse
import os
import platform
import re
import sys
import time
from collections import defaultdict

import numpy as np

SOLVED = 0.5
PAUSE = 300.0  # seconds without any logged event: the run was stopped and later resumed


def read_run(run_dir: str) -> dict:
    """Scores in episode order, the evaluation history and the wall-clock span of one run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]

    def scalars(tag: str) -> list:
        return events.Scalars(tag) if tag in tags else []

    episodes = scalars("charts/episodic_return")
    evals = [(e.step, e.value) for e in scalars("eval/episodic_return")]
    # Running time, not calendar time: pauses between a stop and its resume are left out.
    times = np.sort([e.wall_time for tag in tags for e in events.Scalars(tag)])
    if not len(times):  # a run that has logged nothing yet
        return {"scores": np.array([]), "seconds_at_episode": [], "evals": [], "seconds": 0.0}
    gaps = np.diff(times, prepend=times[:1])
    active = np.cumsum(np.where(gaps > PAUSE, 0.0, gaps))
    return {
        "scores": np.array([e.value for e in episodes]),
        "seconds_at_episode": np.interp([e.wall_time for e in episodes], times, active),
        "evals": evals,
        "seconds": float(active[-1]),
    }


def solved_episode(scores: np.ndarray) -> int | None:
    """1-based index of the episode whose 100-episode window first has a mean >= 0.5."""
    if len(scores) < 100:
        return None
    means = np.convolve(scores, np.ones(100) / 100, "valid")
    hits = np.flatnonzero(means >= SOLVED)
    return int(hits[0]) + 100 if len(hits) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="tennis")
    parser.add_argument("--random-play", type=float, help="random play's mean score, for the plot")
    args = parser.parse_args()
    pattern = re.compile(r"^Tennis__(.+)__(\d+)__\d+$")
    runs: dict[str, dict[int, dict]] = defaultdict(dict)
    for name in sorted(os.listdir(args.runs_dir)):
        match = pattern.match(name)
        if match:
            runs[match.group(1)][int(match.group(2))] = read_run(os.path.join(args.runs_dir, name))
    if not runs:
        sys.exit(f"no Tennis runs under {args.runs_dir}")

    lines = [
        f"# Tennis (maddpg_tennis.py)",
        "",
        f"`python {' '.join(sys.argv)}`, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})",
        "",
        "Solved: the 100-episode mean score first reaches 0.5 at this episode (the last of the "
        "window). Final evaluation: deterministic agents, mean score over the last evaluation's "
        "episodes. Times: wall clock on one thread, to the solved episode and for the whole run "
        "(a stopped and resumed run counts its running time only).",
        "",
        "| variant | seed | episodes | solved at episode | best 100-episode mean | final evaluation | time to solved (min) | run time (min) |",
        "|-|-|-|-|-|-|-|-|",
    ]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_eval) = plt.subplots(1, 2, figsize=(13, 4.5))
    for i, (variant, seeds) in enumerate(sorted(runs.items())):
        colour = f"C{i}"
        solved, finals = [], []
        for seed, run in sorted(seeds.items()):
            scores = run["scores"]
            at = solved_episode(scores)
            solved.append(at)
            best = (
                np.convolve(scores, np.ones(100) / 100, "valid").max()
                if len(scores) >= 100
                else float("nan")
            )
            final = "-"
            if run["evals"]:
                finals.append(run["evals"][-1][1])
                steps, values = zip(*run["evals"])
                ax_eval.plot(steps, values, colour, marker=".", alpha=0.6)
                final = f"{finals[-1]:.3f}"
            to_solved = f"{run['seconds_at_episode'][at - 1] / 60:.1f}" if at else "-"
            lines.append(
                f"| {variant} | {seed} | {len(scores)} | {at or 'not solved'} | {best:.3f} | "
                f"{final} | {to_solved} | {run['seconds'] / 60:.1f} |"
            )
            if len(scores) >= 100:
                means = np.convolve(scores, np.ones(100) / 100, "valid")
                label = variant if seed == min(seeds) else None
                ax.plot(np.arange(100, len(scores) + 1), means, colour, alpha=0.7, label=label)
        reached = [s for s in solved if s is not None]
        median = (
            f"{np.median([s if s is not None else np.inf for s in solved]):.0f}"
            if len(reached) * 2 > len(solved)
            else "not reached"
        )
        finals_summary = (
            f"mean {np.mean(finals):.3f}, median {np.median(finals):.3f}, min {min(finals):.3f}"
            if finals
            else ""
        )
        lines.append(
            f"| **{variant}** | {len(solved)} seeds | | median {median} ({len(reached)}/{len(solved)} solved) | | {finals_summary} | | |"
        )
    ax.axhline(SOLVED, color="k", ls="--", lw=1, label="solved (0.5)")
    if args.random_play is not None:
        ax.axhline(args.random_play, color="gray", ls=":", lw=1, label="random play")
    ax.set_xlabel("episode")
    ax.set_ylabel("100-episode mean score")
    ax.set_title("Tennis: MADDPG, training scores (one line per seed)")
    ax.legend()
    ax_eval.axhline(1.0, color="k", ls="--", lw=1)
    ax_eval.set_xlabel("transitions")
    ax_eval.set_ylabel("deterministic evaluation, mean score")
    ax_eval.set_title("evaluations during training (one line per seed)")
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    fig.savefig(os.path.join(args.out, f"{args.name}.png"), dpi=120)
    with open(os.path.join(args.out, f"{args.name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
