"""Speed of SumTree's batched sample and update against a classic per-item sum tree.

The per-item tree below has the same layout, keeps the same aggregates (sum, min and max trees) and
makes the same choice at every node, but walks one value down (sample) or one leaf up to the root
(update) at a time in a Python loop. It runs with two storages: NumPy arrays indexed one scalar at
a time, as most Python sum trees do (Dopamine's sum_tree.py, for one), and Python lists, the fastest
storage for such a loop. Before timing, the script checks that all of them draw the same leaves and
reach the same aggregates. Calls are timed interleaved (ours, lists, NumPy, repeated); the table
gives the median time per call and the median and range of the per-repeat ratios reference / ours.

Usage, from the repo root (where `import sumtree` finds the module):
    OMP_NUM_THREADS=1 python -m benchmarks.sumtree_speed --out benchmarks/results/sumtree.md
"""

import argparse
import datetime
import itertools
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from sumtree import SumTree


class PerItemSumTree:
    """Classic sum tree, one item at a time; `storage` is "list" or "numpy"."""

    def __init__(self, priorities: np.ndarray, storage: str):
        depth = (len(priorities) - 1).bit_length()
        self.first_leaf = 1 << depth
        sums, mins, maxs = (np.full(2 * self.first_leaf, fill) for fill in (0.0, np.inf, 0.0))
        leaves = slice(self.first_leaf, self.first_leaf + len(priorities))
        sums[leaves], maxs[leaves] = priorities, priorities
        mins[leaves] = np.where(priorities > 0, priorities, np.inf)
        # Build the internal nodes a level at a time with NumPy: set-up in seconds, not minutes.
        for level in reversed(range(depth)):
            nodes = slice(1 << level, 2 << level)
            left, right = slice(2 << level, 4 << level, 2), slice((2 << level) + 1, 4 << level, 2)
            sums[nodes] = sums[left] + sums[right]
            mins[nodes] = np.minimum(mins[left], mins[right])
            maxs[nodes] = np.maximum(maxs[left], maxs[right])
        convert = np.ndarray.tolist if storage == "list" else np.ndarray.copy
        self.sum, self.min, self.max = convert(sums), convert(mins), convert(maxs)

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        s, mn, mx = self.sum, self.min, self.max
        for i, p in zip(indices.tolist(), priorities.tolist(), strict=True):
            node = i + self.first_leaf
            s[node], mn[node], mx[node] = p, (p if p > 0 else math.inf), p
            while node > 1:
                node >>= 1
                left, right = 2 * node, 2 * node + 1
                s[node] = s[left] + s[right]
                # Conditionals, not min() and max(): a call would slow this loop by half.
                a, b = mn[left], mn[right]
                mn[node] = a if a < b else b  # noqa: FURB136
                a, b = mx[left], mx[right]
                mx[node] = a if a > b else b  # noqa: FURB136

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s, first_leaf = self.sum, self.first_leaf
        segment = s[1] / batch_size
        below_total = math.nextafter(s[1], 0.0)
        indices, priorities = [], []
        for k, u in enumerate(rng.random(batch_size).tolist()):
            v = (k + u) * segment
            v = v if v < below_total else below_total  # noqa: FURB136
            node = 1
            while node < first_leaf:
                left = 2 * node
                if v >= s[left] and s[left + 1] > 0:
                    v -= s[left]
                    node = left + 1
                else:
                    node = left
            indices.append(node - first_leaf)
            priorities.append(s[node])
        return np.array(indices), np.array(priorities)


def time_per_call(call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def make_call(tree, operation: str, batch_size: int, batches: list, seed: int):
    if operation == "sample":
        rng = np.random.default_rng(seed)
        return lambda: tree.sample(batch_size, rng)
    batch_cycle = itertools.cycle(batches)
    return lambda: tree.update(*next(batch_cycle))


def bench(capacity: int, batch_size: int, repeats: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    priorities = rng.random(capacity)
    ours = SumTree(capacity)
    ours.update(np.arange(capacity), priorities)
    trees = {"ours": ours, **{s: PerItemSumTree(priorities, s) for s in ("list", "numpy")}}
    batches = [(rng.integers(0, capacity, batch_size), rng.random(batch_size)) for _ in range(64)]

    # Same work: the same draws must give the same leaves, the same writes the same aggregates.
    draws = {name: t.sample(batch_size, np.random.default_rng(seed)) for name, t in trees.items()}
    for batch in batches[:4]:
        for tree in trees.values():
            tree.update(*batch)
    for name in ("list", "numpy"):
        assert all(
            np.array_equal(a, b) for a, b in zip(draws["ours"], draws[name], strict=True)
        ), name
        root = (trees[name].sum[1], trees[name].max[1], trees[name].min[1])
        assert root == (ours.total, ours.max_priority, ours.min_priority), name

    rows = []
    for operation in ("sample", "update"):
        calls, times = {}, {name: [] for name in trees}
        for name, tree in trees.items():
            call = make_call(tree, operation, batch_size, batches, seed)
            calls[name] = (call, max(1, round(0.02 / time_per_call(call, 3))))  # ~20 ms a timing
        for _ in range(repeats):  # interleaved, so a slow spell of the machine hits every tree
            for name, (call, n) in calls.items():
                times[name].append(time_per_call(call, n))
        row = {"capacity": capacity, "operation": f"{operation}({batch_size})"}
        for name in trees:
            row[name] = statistics.median(times[name]) * 1e6
            if name != "ours":
                ratios = [ref / our for ref, our in zip(times[name], times["ours"], strict=True)]
                row[f"{name}_ratio"] = (statistics.median(ratios), min(ratios), max(ratios))
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    def ratio(r):
        return f"{r[0]:.1f}x ({r[1]:.1f}-{r[2]:.1f})"

    lines = [
        (
            "| capacity | operation | SumTree (us/call) | per-item, lists (us/call) "
            "| lists / SumTree | per-item, NumPy (us/call) | NumPy / SumTree |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['capacity']:,} | {row['operation']} | {row['ours']:.0f} | {row['list']:.0f} "
            f"| {ratio(row['list_ratio'])} | {row['numpy']:.0f} | {ratio(row['numpy_ratio'])} |"
        )
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--capacities", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the table and the set-up here")
    args = parser.parse_args()

    load_before = os.getloadavg()
    rows = []
    for capacity in args.capacities:
        rows += bench(capacity, args.batch_size, args.repeats, args.seed)
    table = markdown_table(rows)
    print(table)
    if args.out:
        threads = os.environ.get("OMP_NUM_THREADS")
        command = f"OMP_NUM_THREADS={threads} " if threads else ""
        command += f"python -m benchmarks.sumtree_speed {shlex.join(sys.argv[1:])}"
        load_after = os.getloadavg()
        now = datetime.datetime.now(datetime.UTC)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            "# SumTree speed: batched NumPy against a per-item sum tree\n\n"
            f"{table}\n\n"
            f"Median time per call over {args.repeats} interleaved repeats; a ratio is the median "
            "and (min-max) of the per-repeat ratios reference / SumTree. Every tree keeps sum, "
            "min and max trees; the per-item one walks one value or one leaf at a time, storing "
            "its nodes in Python lists or in NumPy arrays. All draw the same leaves from the same "
            "random numbers (checked before timing). `update` writes random indices and "
            "priorities, as after a learning step.\n\n"
            f"- command: `{command}`\n"
            f"- date: {now:%Y-%m-%d %H:%M} UTC\n"
            f"- machine: nproc {os.cpu_count()}, {cpu_model()}\n"
            f"- software: Python {platform.python_version()}, NumPy {np.__version__}\n"
            f"- load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}\n"
        )


if __name__ == "__main__":
    main()
