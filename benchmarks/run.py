"""Sweep runner: every script x env id x seed, each run in its own process, locally or on Ray.

Runs `python {script}.py --env-id ENV --seed SEED [extra flags]` for every combination, several at
once (`--workers`), each with OMP_NUM_THREADS set so runs do not fight over cores, and writes runs
under `--runs-dir`/runs/ and one log per run under `--runs-dir`/logs/. Flags after `--` go to every
script unchanged. With `--ray-address` the same commands run as Ray tasks (one CPU each, or
`--gpus-per-run`), so a sweep moves from a laptop to a cluster without change; the nodes must see
the repository and the runs directory at the same paths (a shared filesystem). With `--track` every
run logs to one W&B project, grouped by script and env, tagged with the git commit.

A failed run is reported with its command and log and does not stop the others; the exit status is
1 if any run failed.

Usage: python benchmarks/run.py --scripts td3_continuous ddpg_continuous --env-ids Pendulum-v1 \
           --seeds 1 2 3 --workers 2 -- --total-timesteps 20000 --learning-starts 1000
"""

import argparse
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Run:
    """One training run: the command, its environment and where its output goes."""

    script: str
    env_id: str
    seed: int
    cmd: list[str]
    env: dict[str, str]
    cwd: str
    log: str

    @property
    def name(self) -> str:
        return f"{self.script}__{self.env_id.replace('/', '-')}__{self.seed}"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            text=True,
            capture_output=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def plan(a: argparse.Namespace, extra: list[str]) -> list[Run]:
    """The runs of the sweep, in the order script, env, seed."""
    runs_dir = os.path.abspath(a.runs_dir)
    base_env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    runs = []
    # variants of one script (--exp-name) get logs of their own
    label = extra[extra.index("--exp-name") + 1] if "--exp-name" in extra else None
    for script in a.scripts:
        path = os.path.join(ROOT, f"{script.removesuffix('.py')}.py")
        if not os.path.isfile(path):
            raise SystemExit(f"error: --scripts {script}: no such script {path}")
        for env_id in a.env_ids:
            for seed in a.seeds:
                cmd = [sys.executable, path, "--env-id", env_id, "--seed", str(seed), *extra]
                env = dict(base_env)
                if a.track:
                    cmd += ["--track", "--wandb-project-name", a.wandb_project_name]
                    env["WANDB_RUN_GROUP"] = f"{script.removesuffix('.py')}__{env_id}"
                    env["WANDB_TAGS"] = f"commit-{git_commit()},{script.removesuffix('.py')}"
                run = Run(script.removesuffix(".py"), env_id, seed, cmd, env, runs_dir, "")
                name = run.name if label is None else run.name.replace(run.script, label, 1)
                run.log = os.path.join(runs_dir, "logs", f"{name}.log")
                runs.append(run)
    return runs


def execute(cmd: list[str], env: dict[str, str], cwd: str, log: str) -> tuple[int, float, str]:
    """Runs one command with its output in `log`; returns (exit status, seconds, last lines)."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        f.write(shlex.join(cmd) + "\n")
        f.flush()
        status = subprocess.run(
            cmd, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT
        ).returncode
    with open(log) as f:
        tail = "".join(f.readlines()[-5:])
    return status, time.perf_counter() - start, tail


def run_local(runs: list[Run], workers: int):
    """Yields (run, status, seconds, tail) as runs finish, `workers` at a time."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute, r.cmd, r.env, r.cwd, r.log): r for r in runs}
        for future in as_completed(futures):
            yield (futures[future], *future.result())


def run_ray(runs: list[Run], address: str, gpus: float):
    """Yields (run, status, seconds, tail) as Ray tasks finish; Ray schedules by CPUs and GPUs."""
    import ray

    # Workers import this module to find `execute`: the shared filesystem has it at this path.
    here = os.path.dirname(os.path.abspath(__file__))
    ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": here}})
    task = ray.remote(num_cpus=1, num_gpus=gpus)(execute)
    pending = {task.remote(r.cmd, r.env, r.cwd, r.log): r for r in runs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            yield (pending.pop(done[0]), *ray.get(done[0]))
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripts", nargs="+", required=True, help="e.g. td3_continuous")
    parser.add_argument("--env-ids", nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="local runs at once")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    parser.add_argument("--runs-dir", default=os.path.join(ROOT, "benchmarks", "runs"))
    parser.add_argument("--ray-address", help="run as tasks on this Ray cluster (e.g. auto)")
    parser.add_argument("--gpus-per-run", type=float, default=0.0, help="Ray GPUs per run")
    parser.add_argument("--track", action="store_true", help="log every run to W&B")
    parser.add_argument("--wandb-project-name", default="single-file-rl")
    a = parser.parse_args(own)
    if a.workers < 1 or a.threads < 1:
        parser.error("--workers and --threads must be positive")

    runs = plan(a, extra)
    where = f"Ray at {a.ray_address}" if a.ray_address else f"{a.workers} local workers"
    print(f"{len(runs)} runs on {where}; logs in {os.path.join(a.runs_dir, 'logs')}", flush=True)
    results = (
        run_ray(runs, a.ray_address, a.gpus_per_run)
        if a.ray_address
        else run_local(runs, a.workers)
    )
    failed = []
    for run, status, seconds, tail in results:
        if status == 0:
            print(f"ok      {run.name} ({seconds:.0f} s)", flush=True)
        else:
            failed.append(run)
            print(
                f"FAILED  {run.name} (exit {status}, {seconds:.0f} s): {shlex.join(run.cmd)}\n"
                f"        log {run.log}; it ends:\n{tail}",
                flush=True,
            )
    print(f"{len(runs) - len(failed)} of {len(runs)} runs succeeded", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
