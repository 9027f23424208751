"""Learning curves and a results table from the TensorBoard event files of finished runs.

Reads every run directory `runs/{env_id}__{exp_name}__{seed}__{time}` under --runs-dir (no network,
no W&B), groups runs by env and exp_name, and writes into --out:
- `{name}_{env_id}.png`: deterministic-evaluation return against steps, the mean over seeds with the spread
  (min to max) shaded, one line per exp_name, plus any peer curves given with --peer;
- `{name}.md`: a table of final evaluation returns (mean +- std, 95% bootstrap CI over seeds, the
  interquartile mean with 5 or more seeds), evaluation returns at chosen steps, and SPS;
- `{name}_curves.csv`: every evaluation point of every run, so the numbers can be re-plotted;
- `{name}_sps.png`: training speed (median SPS over seeds) of each variant on each env;
- with --readme, the table and the command that made it replace the README's results block
  (between `<!-- results:start -->` and `<!-- results:end -->`).

Usage: python benchmarks/report.py --runs-dir benchmarks/runs/runs --out benchmarks/results \
           --name continuous --peer "SB3 TD3 (RL Zoo)=../shared/peers/sb3_td3_HopperBulletEnv-v0_seed1.jsonl"
"""

import argparse
import csv
import json
import os
import re
import shlex
import sys
from collections import defaultdict

import numpy as np


def load_events(run_dir: str):
    """All scalars and text of one run (all its event files, resumes included), read once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir, size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def scalars_of(events) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] for the scalars of loaded events."""
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def read_run(run_dir: str) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] for the scalars of one run."""
    return scalars_of(load_events(run_dir))


def bootstrap_ci(
    values: np.ndarray, rng: np.random.Generator, n: int = 10_000
) -> tuple[float, float]:
    """95% percentile-bootstrap confidence interval of the mean over seeds."""
    means = rng.choice(values, (n, len(values)), replace=True).mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% (Agarwal et al. 2021)."""
    v = np.sort(values)
    k = len(v) // 4
    return float(v[k : len(v) - k].mean())


def planned_steps(events) -> int | None:
    """The run's --total-timesteps, from the hyperparameter table the scripts log (the last one
    written, so a resume that extends the run counts); None if the run has none."""
    if "hyperparameters/text_summary" not in events.Tags().get("tensors", []):
        return None
    text = events.Tensors("hyperparameters/text_summary")[-1].tensor_proto.string_val[0].decode()
    found = re.search(r"^\|total_timesteps\|(\d+)\|$", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def collect(
    runs_dir: str, include: str = "", until: int | None = None
) -> dict[tuple[str, str], dict[int, dict]]:
    """(env_id, exp_name) -> seed -> {"eval": [(step, return)], "sps": float}. A run that stopped
    before 90% of its own --total-timesteps or of the furthest run of its group (still running,
    or cut off) is left out, and said so, rather than averaged with finished ones as if its last
    evaluation were final."""
    groups: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for name in sorted(os.listdir(runs_dir)):
        parts = name.split("__")
        if len(parts) != 4:
            continue
        env_id, exp_name, seed = parts[0], parts[1], int(parts[2])
        if not re.fullmatch(include or ".*", exp_name):
            continue
        run_dir = os.path.join(runs_dir, name)
        events = load_events(run_dir)
        scalars = scalars_of(events)
        evals = sorted(dict(scalars.get("eval/episodic_return", [])).items())
        evals = [(s, v) for s, v in evals if until is None or s <= until]
        if not evals:
            continue
        planned = planned_steps(events)
        if until is not None and planned is not None:
            planned = min(planned, until)
        if planned is not None and evals[-1][0] < 0.9 * planned:
            print(
                f"left out {env_id} {exp_name} seed {seed}: it stops at step {evals[-1][0]} "
                f"of its {planned}",
                file=sys.stderr,
            )
            continue
        sps = [v for _, v in scalars.get("charts/SPS", [])]
        groups[(env_id, exp_name)][seed] = {
            "eval": evals,
            "sps": float(np.median(sps)) if sps else 0.0,
        }
    for key, seeds in groups.items():
        furthest = max(run["eval"][-1][0] for run in seeds.values())
        for seed in [s for s, run in seeds.items() if run["eval"][-1][0] < 0.9 * furthest]:
            print(
                f"left out {key[0]} {key[1]} seed {seed}: it stops at step "
                f"{seeds[seed]['eval'][-1][0]}, the furthest at {furthest}",
                file=sys.stderr,
            )
            del seeds[seed]
    return groups


def collect_csv(
    paths: list[str], include: str = "", until: int | None = None
) -> dict[tuple[str, str], dict[int, dict]]:
    """The same groups as collect(), from committed curve CSVs (env_id, exp_name, seed, step,
    eval_return[, sps]) instead of run directories, so a table is rebuilt from what git holds."""
    groups: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for path in paths:
        with open(path) as f:
            for row in csv.DictReader(f):
                if not re.fullmatch(include or ".*", row["exp_name"]):
                    continue
                if until is not None and int(row["step"]) > until:
                    continue
                run = groups[(row["env_id"], row["exp_name"])].setdefault(
                    int(row["seed"]), {"eval": [], "sps": float(row.get("sps") or 0.0)}
                )
                run["eval"].append((int(row["step"]), float(row["eval_return"])))
    for seeds in groups.values():
        for run in seeds.values():
            run["eval"].sort()
    return groups


def value_at(curve: list[tuple[int, float]], step: int) -> float | None:
    """The evaluation nearest to `step` if it lies within 3% of it (evaluations fall on each run's
    own grid: every 25k steps for a peer, every 3 rollouts of 8192 for PPO), else None."""
    if not curve:
        return None
    s, v = min(curve, key=lambda point: abs(point[0] - step))
    return v if abs(s - step) <= 0.03 * step else None


def read_peer(spec: str) -> tuple[str, list[tuple[int, float]]]:
    label, path = spec.split("=", 1)
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return label, [(r["step"], r["eval_mean"]) for r in rows if "eval_mean" in r]  # not the summary


def plot(env_id: str, groups: dict, peers: list, baselines: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (env, exp_name), seeds in sorted(groups.items()):
        if env != env_id:
            continue
        # Seeds evaluate at different steps (on-policy batches end where they end): interpolate
        # every run onto the union of their steps, within the range all of them cover.
        curves = [np.array(r["eval"]).T for r in seeds.values()]
        lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
        steps = np.unique(np.concatenate([c[0] for c in curves]))
        steps = steps[(steps >= lo) & (steps <= hi)]
        values = np.array([np.interp(steps, c[0], c[1]) for c in curves])
        mean = values.mean(0)
        (line,) = ax.plot(steps, mean, label=f"{exp_name} ({len(seeds)} seeds)")
        ax.fill_between(steps, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
    for label, curve in peers:
        ax.plot(*zip(*curve), "--", color="gray", label=label)
    for label, value in baselines:
        ax.axhline(value, color="black", ls=":", lw=1, label=label)
    ax.set(title=env_id, xlabel="environment steps", ylabel="deterministic evaluation return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sps(groups: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{exp}\n{env}" for env, exp in sorted(groups)]
    sps = [np.median([r["sps"] for r in groups[key].values()]) for key in sorted(groups)]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(labels)), 4))
    ax.bar(range(len(sps)), sps)
    ax.set_xticks(range(len(sps)), labels, fontsize=7)
    ax.set(ylabel="steps per second (median over seeds)", title="training speed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def update_readme(path: str, table: str, command: str) -> None:
    """Replaces the README's results block with the table and the command that made it."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = open(path).read()
    if start not in text or end not in text:
        sys.exit(f"{path} has no {start} ... {end} block")
    block = f"{start}\n{table}\n\nGenerated by `{command}`.\n{end}"
    head, rest = text.split(start, 1)
    with open(path, "w") as f:
        f.write(head + block + rest.split(end, 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument(
        "--from-csv", nargs="*", default=[], help="read committed curve CSVs, not --runs-dir"
    )
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="report", help="file name of the table and the CSV")
    parser.add_argument("--at", type=int, nargs="*", default=[], help="also tabulate these steps")
    parser.add_argument("--peer", action="append", default=[], help="LABEL=path.jsonl (env: first)")
    parser.add_argument("--peer-env", default="HopperBulletEnv-v0", help="the env peers belong to")
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        help="ENV=LABEL=VALUE: a reference level (e.g. random play) drawn on ENV's plot",
    )
    parser.add_argument("--readme", help="also write the table into this README's results block")
    parser.add_argument(
        "--include", default="", help="only variants (exp_name) matching this regex"
    )
    parser.add_argument("--solve-at", type=float, help="add: steps to the first evaluation >= this")
    parser.add_argument("--late-from", type=int, help="add: mean evaluation from this step on")
    parser.add_argument(
        "--until", type=int, help="use evaluations up to this step (runs stopped there count)"
    )
    a = parser.parse_args()

    if a.from_csv:
        groups = collect_csv(a.from_csv, a.include, a.until)
    else:
        groups = collect(a.runs_dir, a.include, a.until)
    if not groups:
        sys.exit(f"no runs with evaluations under {a.from_csv or a.runs_dir}")
    os.makedirs(a.out, exist_ok=True)
    peers = [read_peer(p) for p in a.peer]
    at_cols = "".join(f" eval at {s // 1000}k |" for s in a.at)
    extra = []
    if a.solve_at is not None:
        extra.append(f"steps to {a.solve_at:g} (mean, seeds that got there)")
    if a.late_from is not None:
        extra.append(f"mean eval from {a.late_from // 1000}k")
    at_cols += "".join(f" {name} |" for name in extra)
    lines = [
        f"| env | variant | seeds | steps | final eval (mean +- std) | 95% CI | IQM |{at_cols} SPS |",
        "|-|-|-|-|-|-|-|" + "-|" * (len(a.at) + len(extra)) + "-|",
    ]
    # read from CSVs, the inputs are the committed data: no second copy of them is written
    curves = os.devnull if a.from_csv else os.path.join(a.out, f"{a.name}_curves.csv")
    with open(curves, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["env_id", "exp_name", "seed", "step", "eval_return", "sps"])
        for (env_id, exp_name), seeds in sorted(groups.items()):
            for seed, run in sorted(seeds.items()):
                writer.writerows(
                    [env_id, exp_name, seed, s, f"{v:.2f}", f"{run['sps']:.0f}"]
                    for s, v in run["eval"]
                )
            finals = np.array([run["eval"][-1][1] for run in seeds.values()])
            last_steps = {run["eval"][-1][0] for run in seeds.values()}
            # a fresh seeded generator per row: a row's interval does not depend on the others
            lo, hi = bootstrap_ci(finals, np.random.default_rng(0))
            middle = f"{iqm(finals):.1f}" if len(finals) >= 5 else "-"
            cols = ""
            for step in a.at:
                vals = [value_at(run["eval"], step) for run in seeds.values()]
                vals = [v for v in vals if v is not None]
                cols += f" {np.mean(vals):.1f} |" if vals else " - |"
            if a.solve_at is not None:
                solved = [
                    next((s for s, v in run["eval"] if v >= a.solve_at), None)
                    for run in seeds.values()
                ]
                solved = [s for s in solved if s is not None]
                cols += (
                    f" {np.mean(solved):.0f} ({len(solved)}/{len(seeds)}) |" if solved else " - |"
                )
            if a.late_from is not None:
                late = [
                    np.mean([v for s, v in run["eval"] if s >= a.late_from])
                    for run in seeds.values()
                    if run["eval"][-1][0] >= a.late_from
                ]
                cols += f" {np.mean(late):.1f} |" if late else " - |"
            sps = np.median([run["sps"] for run in seeds.values()])
            lines.append(
                f"| {env_id} | {exp_name} | {len(finals)} | "
                f"{'/'.join(str(s) for s in sorted(last_steps))} | "
                f"{finals.mean():.1f} +- {finals.std():.1f} | [{lo:.1f}, {hi:.1f}] | "
                f"{middle} |{cols} {f'{sps:.0f}' if sps else '-'} |"
            )
    for label, curve in peers:
        cols = "".join(
            f" {value_at(curve, s):.1f} |" if value_at(curve, s) is not None else " - |"
            for s in a.at
        ) + " - |" * len(extra)
        lines.append(
            f"| {a.peer_env} | {label} (peer) | 1 | {curve[-1][0]} | {curve[-1][1]:.1f} | "
            f"- | - |{cols} - |"
        )
    table = "\n".join(lines)
    with open(os.path.join(a.out, f"{a.name}.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    for env_id in sorted({env for env, _ in groups}):
        env_peers = peers if env_id == a.peer_env else []
        env_baselines = [
            (label, float(value))
            for env, label, value in (b.split("=", 2) for b in a.baseline)
            if env == env_id
        ]
        plot(
            env_id,
            groups,
            env_peers,
            env_baselines,
            os.path.join(a.out, f"{a.name}_{env_id}.png"),
        )
    plot_sps(groups, os.path.join(a.out, f"{a.name}_sps.png"))
    if a.readme:
        update_readme(a.readme, table, "python benchmarks/report.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
