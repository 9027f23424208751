"""Learning curves and a results table from committed curve CSVs, or from finished runs.

Every report is built from a curve CSV, one row per evaluation: script, env_id, exp_name (the
variant), seed, step, eval_return, sps (the run's median logged SPS; empty where it was not kept)
and commit (the git commit of the code that made the run). Two ways in:
- `--runs-dir DIR`: reads the TensorBoard event files of every run directory
  `{env_id}__{exp_name}__{seed}__{time}` under DIR (no network, no W&B) and merges its runs into
  `{out}/{name}_curves.csv` (a run already there is replaced, other rows stay), then reports from
  that CSV. This is how new runs enter the committed data; commit the CSV with the report.
  `--commit` names the code that made the runs (default: `git rev-parse --short HEAD` now).
- `--from-csv FILE...`: reports from committed CSVs alone (what `make_reports.sh` does).

Outputs in --out:
- `{name}_{env_id}.png`: deterministic-evaluation return against steps, the mean over seeds with
  the spread (min to max) shaded, one line per exp_name, plus any peer curves given with --peer;
- `{name}.md`: a table of final evaluation returns (mean +- std, 95% bootstrap CI over seeds, the
  interquartile mean with 5 or more seeds), evaluation returns at chosen steps, SPS and commits;
- `{name}_sps.png`: training speed (median SPS over seeds) of the variants whose SPS was kept.
The outputs are deterministic (fixed bootstrap seeds, PNGs without a Software/date stamp), so
rebuilding them from the same CSVs leaves git clean.

Usage: python benchmarks/report.py --runs-dir benchmarks/runs/runs --out benchmarks/results \
           --name continuous --peer "SB3 TD3 (RL Zoo)=benchmarks/results/peers/sb3_td3_HopperBulletEnv-v0_seed1.jsonl"
       python benchmarks/report.py --from-csv benchmarks/results/continuous_curves.csv --name continuous
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ["script", "env_id", "exp_name", "seed", "step", "eval_return", "sps", "commit"]
PNG = {"Software": None}
"""PNG metadata: no matplotlib version stamp, so a rebuilt figure is byte-identical"""


def script_of(exp_name: str) -> str:
    """The script behind a variant: `sb3_*` runs come from benchmarks/peers.py, the others from
    the root script whose name the exp_name starts with (run.py names variants `{script}_{label}`).
    """
    if exp_name.startswith("sb3_"):
        return "benchmarks/peers.py"
    stems = [f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")]
    found = [s for s in stems if exp_name == s or exp_name.startswith(s + "_")]
    return f"{max(found, key=len)}.py" if found else ""


def head_commit() -> str:
    """The short hash of the checkout's HEAD, or "" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def load_events(run_dir: str):
    """All scalars and text of one run (all its event files, resumes included), read once. Runs
    resumed by older scripts (b092593's HopperBullet runs among them) marked every step from the
    checkpoint's on as replaced, so TensorBoard's purge would drop the evaluation logged at that
    step just before the checkpoint: read without the purge (scalars_of keeps the later of two
    values at one step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sizes = {"scalars": 0, "tensors": 0}
    events = EventAccumulator(run_dir, size_guidance=sizes, purge_orphaned_data=False)
    events.Reload()
    return events


def scalars_of(events) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] for the scalars of loaded events, by step; a step written again by a
    resumed run (after a stop past its checkpoint) has the resumed run's value."""
    return {
        tag: sorted({e.step: e.value for e in events.Scalars(tag)}.items())
        for tag in events.Tags()["scalars"]
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
    runs_dir: str, include: str = "", until: int | None = None, commit: str = ""
) -> dict[tuple[str, str], dict[int, dict]]:
    """(env_id, exp_name) -> seed -> {"eval": [(step, return)], "sps": float, "script": str,
    "commit": str} from run directories, `commit` naming the code that made them. A run that stopped
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
            "script": script_of(exp_name),
            "commit": commit,
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
    """The same groups as collect(), from committed curve CSVs (see COLUMNS) instead of run
    directories, so a table is rebuilt from what git holds."""
    groups: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for path in paths:
        with open(path) as f:
            for row in csv.DictReader(f):
                if not re.fullmatch(include or ".*", row["exp_name"]):
                    continue
                if until is not None and int(row["step"]) > until:
                    continue
                run = groups[(row["env_id"], row["exp_name"])].setdefault(
                    int(row["seed"]),
                    {
                        "eval": [],
                        "sps": float(row.get("sps") or 0.0),
                        "script": row.get("script", ""),
                        "commit": row.get("commit", ""),
                    },
                )
                run["eval"].append((int(row["step"]), float(row["eval_return"])))
    for seeds in groups.values():
        for run in seeds.values():
            run["eval"].sort()
    return groups


def write_csv(path: str, groups: dict) -> None:
    """Every evaluation of every run in `groups`, one row each (COLUMNS), in a stable order."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for (env_id, exp_name), seeds in sorted(groups.items()):
            for seed, run in sorted(seeds.items()):
                sps = f"{run['sps']:.0f}" if run["sps"] else ""
                writer.writerows(
                    [run["script"], env_id, exp_name, seed, s, f"{v:.2f}", sps, run["commit"]]
                    for s, v in run["eval"]
                )


def merge_into_csv(path: str, new: dict) -> None:
    """Adds the runs in `new` to the curve CSV at `path` (created if missing); a run (env, variant,
    seed) already there is replaced by its new rows."""
    groups = collect_csv([path]) if os.path.exists(path) else defaultdict(dict)
    for key, seeds in new.items():
        groups[key].update(seeds)
    write_csv(path, groups)


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
    fig.savefig(path, dpi=120, metadata=PNG)
    plt.close(fig)


def plot_sps(groups: dict, path: str) -> None:
    """A bar per variant and env whose runs kept their SPS; nothing when none did."""
    groups = {k: v for k, v in groups.items() if all(r["sps"] for r in v.values())}
    if not groups:
        return
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
    fig.savefig(path, dpi=120, metadata=PNG)
    plt.close(fig)


def finals(seeds: dict) -> np.ndarray:
    """Each seed's last evaluation."""
    return np.array([run["eval"][-1][1] for run in seeds.values()])


def mean_std(values: np.ndarray) -> str:
    return f"{values.mean():.1f} +- {values.std():.1f}"


def commits_of(seeds: dict) -> str:
    """The commits that made the runs, sorted and space-separated."""
    return " ".join(sorted({run["commit"] for run in seeds.values()}))


def update_readme(path: str, table: str, command: str, marker: str = "results") -> None:
    """Replaces the file's `<!-- {marker}:start -->` block with the table and its command."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
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
    parser.add_argument(
        "--commit", help="with --runs-dir: the commit that made the runs (default: HEAD now)"
    )
    parser.add_argument(
        "--csv-only", action="store_true", help="with --runs-dir: only merge the runs into the CSV"
    )
    parser.add_argument("--at", type=int, nargs="*", default=[], help="also tabulate these steps")
    parser.add_argument("--peer", action="append", default=[], help="LABEL=path.jsonl (env: first)")
    parser.add_argument("--peer-env", default="HopperBulletEnv-v0", help="the env peers belong to")
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        help="ENV=LABEL=VALUE: a reference level (e.g. random play) drawn on ENV's plot",
    )
    parser.add_argument(
        "--include", default="", help="only variants (exp_name) matching this regex"
    )
    parser.add_argument("--env", default="", help="only envs (env_id) matching this regex")
    parser.add_argument("--solve-at", type=float, help="add: steps to the first evaluation >= this")
    parser.add_argument("--late-from", type=int, help="add: mean evaluation from this step on")
    parser.add_argument(
        "--until", type=int, help="use evaluations up to this step (runs stopped there count)"
    )
    a = parser.parse_args()

    os.makedirs(a.out, exist_ok=True)
    if a.from_csv:
        sources = a.from_csv
    else:  # new runs enter the committed data through their curve CSV, and are reported from it
        runs = collect(a.runs_dir, a.include, a.until, a.commit or head_commit())
        if not runs:
            sys.exit(f"no runs with evaluations under {a.runs_dir}")
        sources = [os.path.join(a.out, f"{a.name}_curves.csv")]
        merge_into_csv(sources[0], runs)
        if a.csv_only:
            return
    groups = collect_csv(sources, a.include, a.until)
    groups = {key: seeds for key, seeds in groups.items() if re.fullmatch(a.env or ".*", key[0])}
    if not groups:
        sys.exit(f"no runs with evaluations in {sources}")
    peers = [read_peer(p) for p in a.peer]
    table = make_table(groups, peers, a)
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


def make_table(groups: dict, peers: list, a: argparse.Namespace) -> str:
    """The markdown table: a row per (env, variant), then a row per peer."""
    at_cols = "".join(f" eval at {s // 1000}k |" for s in a.at)
    extra = []
    if a.solve_at is not None:
        extra.append(f"steps to {a.solve_at:g} (mean, seeds that got there)")
    if a.late_from is not None:
        extra.append(f"mean eval from {a.late_from // 1000}k")
    at_cols += "".join(f" {name} |" for name in extra)
    lines = [
        f"| env | variant | seeds | steps | final eval (mean +- std) | 95% CI | IQM |{at_cols} SPS "
        "| commit |",
        "|-|-|-|-|-|-|-|" + "-|" * (len(a.at) + len(extra)) + "-|-|",
    ]
    for (env_id, exp_name), seeds in sorted(groups.items()):
        last = finals(seeds)
        last_steps = {run["eval"][-1][0] for run in seeds.values()}
        # a fresh seeded generator per row: a row's interval does not depend on the others
        lo, hi = bootstrap_ci(last, np.random.default_rng(0))
        middle = f"{iqm(last):.1f}" if len(last) >= 5 else "-"
        cols = ""
        for step in a.at:
            vals = [value_at(run["eval"], step) for run in seeds.values()]
            vals = [v for v in vals if v is not None]
            cols += f" {np.mean(vals):.1f} |" if vals else " - |"
        if a.solve_at is not None:
            solved = [
                next((s for s, v in run["eval"] if v >= a.solve_at), None) for run in seeds.values()
            ]
            solved = [s for s in solved if s is not None]
            cols += f" {np.mean(solved):.0f} ({len(solved)}/{len(seeds)}) |" if solved else " - |"
        if a.late_from is not None:
            late = [
                np.mean([v for s, v in run["eval"] if s >= a.late_from])
                for run in seeds.values()
                if run["eval"][-1][0] >= a.late_from
            ]
            cols += f" {np.mean(late):.1f} |" if late else " - |"
        # SPS only where every seed kept it (runs logged with several sharing the cores: not a
        # speed comparison, the speed tables are)
        sps = [run["sps"] for run in seeds.values()]
        sps = f"{np.median(sps):.0f}" if all(sps) else "-"
        lines.append(
            f"| {env_id} | {exp_name} | {len(last)} | "
            f"{'/'.join(str(s) for s in sorted(last_steps))} | "
            f"{mean_std(last)} | [{lo:.1f}, {hi:.1f}] | "
            f"{middle} |{cols} {sps} | {commits_of(seeds) or '-'} |"
        )
    for label, curve in peers:
        cols = "".join(
            f" {value_at(curve, s):.1f} |" if value_at(curve, s) is not None else " - |"
            for s in a.at
        ) + " - |" * len(extra)
        lines.append(
            f"| {a.peer_env} | {label} (peer) | 1 | {curve[-1][0]} | {curve[-1][1]:.1f} | "
            f"- | - |{cols} - | - |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
