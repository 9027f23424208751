"""Robustness campaign: every script run as a new (or careless) user would, with bad input and faults.

Each case runs a script of a checkout (--root, default the repository holding this file) in a fresh
temporary directory, as `python SCRIPT.py FLAGS`, with OMP_NUM_THREADS=1 and tiny budgets.

- A bad input is *clean* when the process exits non-zero, prints no traceback, and its stderr is
  one line starting with "error:" (or the documented "interrupted (Ctrl-C) outside the training
  loop").
- A fault is *survived* when the stop prints no traceback (stderr empty, one "error:" line or the
  interrupted line), no saved checkpoint is damaged (the last one still loads with
  torch.load(weights_only=True), or np.load for tabular.py), no temporary file is left where the
  script says it removes it, and, where the script can resume, `--resume` from that checkpoint
  continues to a later step.

Full disks and read-only directories use a private mount namespace (`unshare -m`: a tiny tmpfs, a
read-only bind mount) when this user may create one; otherwise a file-size limit (RLIMIT_FSIZE) and
a directory without write permission (as user nobody when running as root).

Usage: python benchmarks/robustness.py [--root DIR] [--jobs 2] [--only SUBSTRING] [--out FILE]
"""

import argparse
import concurrent.futures
import dataclasses
import datetime
import glob
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERRUPTED = "interrupted (Ctrl-C) outside the training loop"
SCRIPTS = [
    "dqn_rainbow",
    "ddpg_continuous",
    "td3_continuous",
    "sac_continuous",
    "maddpg_tennis",
    "reinforce",
    "a2c",
    "ppo",
    "tabular",
]
OFF_POLICY = ["dqn_rainbow", "ddpg_continuous", "td3_continuous", "sac_continuous", "maddpg_tennis"]
CONTINUOUS = ["ddpg_continuous", "td3_continuous", "sac_continuous"]
ON_POLICY = ["reinforce", "a2c", "ppo"]
RESUMABLE = OFF_POLICY + ON_POLICY  # tabular.py has no --resume
CASE_TIMEOUT = 240

_small = ["--eval-episodes", "1", "--eval-frequency", "0"]
_replay = ["--learning-starts", "100", "--batch-size", "32", "--buffer-size", "5000"]
TINY = {
    "dqn_rainbow": ["--env-id", "CartPole-v1", "--total-timesteps", "300", *_replay],
    "ddpg_continuous": ["--env-id", "Pendulum-v1", "--total-timesteps", "300", *_replay],
    "td3_continuous": ["--env-id", "Pendulum-v1", "--total-timesteps", "300", *_replay],
    "sac_continuous": ["--env-id", "Pendulum-v1", "--total-timesteps", "300", *_replay],
    "maddpg_tennis": ["--total-timesteps", "300", *_replay, "--max-episode-steps", "50"],
    "reinforce": ["--env-id", "CartPole-v1", "--total-timesteps", "500", "--num-envs", "2"]
    + ["--episodes-per-update", "2"],
    "a2c": ["--env-id", "CartPole-v1", "--total-timesteps", "200", "--num-envs", "2"]
    + ["--num-steps", "5"],
    "ppo": ["--env-id", "CartPole-v1", "--total-timesteps", "256", "--num-envs", "2"]
    + ["--num-steps", "64", "--num-minibatches", "2", "--update-epochs", "1"],
    "tabular": ["--env-id", "FrozenLake-v1", "--total-timesteps", "2000"],
}
"""a run of a few seconds per script (plus --hidden-sizes 16 16 and _small where they apply)"""
for _s in TINY:
    TINY[_s] += _small + ([] if _s == "tabular" else ["--hidden-sizes", "16", "16"])

LONG_STEPS = {s: 20_000 for s in OFF_POLICY} | {"reinforce": 400_000, "a2c": 400_000}
LONG_STEPS |= {"ppo": 400_000, "tabular": 20_000_000}
CKPT_EVERY = {s: 500 for s in OFF_POLICY} | {"reinforce": 1000, "a2c": 1000, "ppo": 1024}
RESUME_MORE = {s: 300 for s in OFF_POLICY} | {"reinforce": 1000, "a2c": 200, "ppo": 256}
"""transitions a resume adds past the checkpoint's step (at least one episode / rollout)"""


def flags_with(script: str, overrides: list[str], base: list[str] | None = None) -> list[str]:
    """The tiny flags of `script` with `overrides` (flag, values... groups) replacing the flags
    they name; a flag followed by the value "DROP" is removed."""
    base = TINY[script] if base is None else base

    def groups(argv):
        out, cur = [], None
        for a in argv:
            if a.startswith("--"):
                cur = a.split("=", 1)  # --gamma=-0.1: a negative value kept from reading as a flag
                out.append(cur)
            else:
                cur.append(a)
        return out

    new = groups(overrides)
    names = {g[0] for g in new}
    kept = [g for g in groups(base) if g[0] not in names]
    kept += [g for g in new if g[1:] != ["DROP"]]
    out = []
    for g in kept:  # a single negative value goes as --flag=-1, so it is not read as a flag
        out += [f"{g[0]}={g[1]}"] if len(g) == 2 and g[1].startswith("-") else g
    return out


# ---------------------------------------------------------------- classification


def stderr_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def classify_bad_input(rc: int | None, stderr: str) -> tuple[bool, str]:
    """Whether a run given bad input ended cleanly: non-zero exit, no traceback, and stderr of one
    line starting with "error:" (or the documented interrupted line). Returns (clean, why)."""
    if rc is None:
        return False, "did not end (timed out)"
    if rc == 0:
        return False, "exited 0: the bad input was accepted (ran on silently)"
    if rc < 0:
        return False, f"killed by signal {-rc}"
    if "Traceback (most recent call last)" in stderr:
        return False, "printed a traceback"
    lines = stderr_lines(stderr)
    if not lines:
        return False, f"exited {rc} with nothing on stderr"
    if len(lines) > 1:
        return False, f"stderr has {len(lines)} lines, not one"
    if not (lines[0].startswith("error:") or lines[0].strip() == INTERRUPTED):
        return False, "stderr's line does not start with 'error:'"
    return True, f"exit {rc}: {lines[0][:160]}"


def classify_stop(rc: int | None, stderr: str, allowed_rc=None) -> tuple[bool, str]:
    """Whether a run stopped by a fault ended cleanly: it ended, no traceback, and stderr empty or
    one line ("error: ..." or the interrupted line). `allowed_rc`, when given, lists the exit codes
    accepted (a negative code: killed by that signal)."""
    if rc is None:
        return False, "did not end after the fault (timed out)"
    if "Traceback (most recent call last)" in stderr:
        return False, "printed a traceback"
    lines = stderr_lines(stderr)
    if len(lines) > 1:
        return False, f"stderr has {len(lines)} lines, not at most one"
    if lines and not (lines[0].startswith("error:") or lines[0].strip() == INTERRUPTED):
        return False, "stderr's line is neither 'error: ...' nor the interrupted line"
    if allowed_rc is not None and rc not in allowed_rc:
        return False, f"exit code {rc}, expected one of {sorted(allowed_rc)}"
    return True, f"exit {rc}" + (f": {lines[0][:160]}" if lines else "")


# ---------------------------------------------------------------- running a script


@dataclass
class Ctx:
    root: str
    python: str
    setup: str  # directory holding the checkpoints and helper files made once
    namespace: bool  # whether `unshare -m` works here
    inner: bool = False  # running inside the private mount namespace


@dataclass
class Run:
    argv: list[str]
    cwd: str
    rc: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def command(self) -> str:
        return " ".join(_quote(a) for a in self.argv)


def _quote(a: str) -> str:
    return a if a and all(c.isalnum() or c in "-_./=:+" for c in a) else repr(a)


def base_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WANDB"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    env.update(WANDB_MODE="offline", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def script_argv(ctx: Ctx, script: str, flags: list[str]) -> list[str]:
    return [ctx.python, os.path.join(ctx.root, f"{script}.py"), *flags]


def run_script(ctx, script, flags, cwd, env=None, timeout=CASE_TIMEOUT, user=None) -> Run:
    argv = script_argv(ctx, script, flags)
    start = time.perf_counter()
    kw = dict(user=user, group=user, extra_groups=[]) if user is not None else {}
    try:
        p = subprocess.run(
            argv, cwd=cwd, env=base_env(env), capture_output=True, text=True, timeout=timeout, **kw
        )
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, _text(e.stdout), _text(e.stderr)
    return Run(argv, cwd, rc, out, err, time.perf_counter() - start)


def _text(b) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


class Background:
    """A script started in the background with stdout and stderr in files, to be signalled."""

    def __init__(self, ctx, script, flags, cwd, env=None, user=None, fsize=None):
        self.argv = script_argv(ctx, script, flags)
        self.cwd = cwd
        logs = tempfile.mkdtemp(prefix="logs_", dir=ctx.setup)
        self.out_path, self.err_path = os.path.join(logs, "out"), os.path.join(logs, "err")
        kw = dict(user=user, group=user, extra_groups=[]) if user is not None else {}
        if fsize is not None:  # RLIMIT_FSIZE: writes past fsize bytes fail with EFBIG
            import resource

            kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=cwd, env=base_env(env), stdout=out, stderr=err, **kw
            )
        self.start = time.perf_counter()

    def stdout(self) -> str:
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, poll=0.05) -> bool:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if predicate():
                return True
            if self.proc.poll() is not None:
                return predicate()
            time.sleep(poll)
        return False

    def progress_lines(self) -> int:
        return sum(line.startswith("step ") for line in self.stdout().splitlines())

    def finish(self, timeout=CASE_TIMEOUT) -> Run:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        with open(self.err_path, errors="replace") as f:
            err = f.read()
        return Run(self.argv, self.cwd, rc, self.stdout(), err, time.perf_counter() - self.start)


# ---------------------------------------------------------------- checkpoints


def checkpoint_paths(cwd: str, script: str) -> list[str]:
    ext = "npz" if script == "tabular" else "pt"
    return sorted(glob.glob(os.path.join(cwd, "runs", "*", f"{script}.{ext}")))


def temp_files(cwd: str) -> list[str]:
    return sorted(glob.glob(os.path.join(cwd, "runs", "*", "*.tmp")))


def read_checkpoint(path: str) -> tuple[bool, str, int | None]:
    """(loads, why, global_step) for a checkpoint, read as the scripts read it."""
    try:
        if path.endswith(".npz"):
            import numpy as np

            with np.load(path) as data:
                meta = json.loads(str(data["meta"]))
                data["q"].sum()
            return True, "loads", int(meta["global_step"])
        import torch

        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "args" not in ckpt or "global_step" not in ckpt:
            return False, "loads but lacks args or global_step", None
        return True, "loads", int(ckpt["global_step"])
    except Exception as e:  # noqa: BLE001  (any failure to read is damage)
        return False, f"does not load: {type(e).__name__}: {str(e)[:120]}", None


def resume(ctx, script, ckpt, cwd, step, env=None) -> tuple[bool, str, Run]:
    """Resumes `ckpt` for RESUME_MORE transitions more; it must end 0 with no traceback and write a
    checkpoint at a later step."""
    target = step + RESUME_MORE[script]
    flags = ["--resume", ckpt, "--save-model", "--total-timesteps", str(target)]
    run = run_script(ctx, script, flags, cwd, env=env)
    ok, why = classify_stop(run.rc, run.stderr, allowed_rc={0})
    if not ok:
        return False, f"resume: {why}", run
    loads, why, new_step = read_checkpoint(ckpt)
    if not loads:
        return False, f"resume's checkpoint {why}", run
    if new_step is None or new_step < target:
        return False, f"resume ended at step {new_step}, not {target}", run
    return True, f"resumed {step} -> {new_step}", run


# ---------------------------------------------------------------- cases


@dataclass
class Case:
    id: str
    script: str
    kind: str  # "bad input" or "fault"
    category: str
    fn: Callable[["Case", Ctx, str], "Outcome"] = field(repr=False)
    namespace: bool = False  # run inside a private mount namespace when one can be made
    data: dict = field(default_factory=dict)


@dataclass
class Outcome:
    passed: bool
    why: str
    commands: list[str]
    output: str = ""  # stderr (and stdout tail) of the run that decided, for the report
    seconds: float = 0.0


def _output(run: Run, stdout_lines: int = 3) -> str:
    tail = "\n".join(run.stdout.splitlines()[-stdout_lines:])
    err = run.stderr.strip()
    err = err if len(err) < 4000 else err[:1500] + "\n[...]\n" + err[-2500:]
    return f"exit code: {run.rc}\nstderr:\n{err}\nstdout (last lines):\n{tail}"


def bad_input_case(case: Case, ctx: Ctx, tmp: str) -> Outcome:
    d = case.data
    flags = [f.replace("{SETUP}", ctx.setup) for f in d["flags"]]
    env = {"PYTHONPATH": os.path.join(ctx.setup, "envs")} if d.get("custom_envs") else None
    cwd, user = tmp, None
    if d.get("cwd") == "runs-file":
        with open(os.path.join(tmp, "runs"), "w") as f:
            f.write("a file where the runs directory would go\n")
    elif d.get("cwd") == "read-only":
        cwd, user, note = read_only_dir(ctx, tmp)
        if cwd is None:
            return Outcome(False, f"could not make a read-only directory: {note}", [])
    run = run_script(ctx, case.script, flags, cwd, env=env, user=user)
    clean, why = classify_bad_input(run.rc, run.stderr)
    prefix = "cd <read-only dir> && " if d.get("cwd") == "read-only" else ""
    if d.get("cwd") == "runs-file":
        prefix = "cd <dir where runs is a file> && "
    env_note = f"PYTHONPATH={env['PYTHONPATH']} " if env else ""
    cmd = prefix + env_note + run.command
    return Outcome(clean, why, [cmd], _output(run), run.seconds)


def read_only_dir(ctx: Ctx, tmp: str):
    """A read-only working directory: a read-only bind mount inside the namespace; else a
    directory without write permission (entered as user nobody when this user is root)."""
    target = os.path.join(tmp, "ro")
    os.makedirs(target)
    if ctx.inner:
        p = subprocess.run(["mount", "--bind", "-o", "ro", target, target], capture_output=True)
        if p.returncode == 0:
            return target, None, "bind mount"
    os.chmod(target, 0o555)
    if os.geteuid() == 0:
        os.chmod(tmp, 0o755)
        return target, 65534, "as nobody"
    return target, None, "chmod 555"


# ---------------------------------------------------------------- faults


def long_flags(script: str, extra: list[str] | None = None, hidden=("16", "16")) -> list[str]:
    flags = flags_with(script, ["--total-timesteps", str(LONG_STEPS[script])])
    if script != "tabular":
        flags = flags_with(script, ["--hidden-sizes", *hidden], flags)
    return flags_with(script, extra or [], flags)


def ckpt_flags(script: str) -> list[str]:
    if script == "tabular":
        return ["--save-model"]
    flags = ["--save-model", "--checkpoint-frequency", str(CKPT_EVERY[script])]
    return flags + (["--save-buffer"] if script in OFF_POLICY else [])


def check_saved(script: str, cwd: str, need: bool = True) -> tuple[bool, str, str | None, int]:
    paths = checkpoint_paths(cwd, script)
    if not paths:
        return (not need), "no checkpoint was written", None, 0
    loads, why, step = read_checkpoint(paths[-1])
    return loads, f"checkpoint at step {step} {why}", paths[-1], step or 0


def signal_mid_run(case: Case, ctx: Ctx, tmp: str) -> Outcome:
    """SIGTERM or SIGINT once the run is learning and has checkpointed; then --resume."""
    script, sig = case.script, case.data["signal"]
    flags = long_flags(script, ckpt_flags(script))
    bg = Background(ctx, script, flags, tmp)
    cmds = [bg_command(bg, f"kill -{sig.name[3:]} after 2 progress lines")]
    started = bg.wait_for(lambda: bg.progress_lines() >= 2, timeout=120)
    if not started:
        run = bg.finish(timeout=5)
        return Outcome(False, "never reached 2 progress lines", cmds, _output(run), run.seconds)
    bg.proc.send_signal(sig)
    run = bg.finish(timeout=120)
    allowed = {130} if script != "tabular" else {1, 130}
    ok, why = classify_stop(run.rc, run.stderr, allowed_rc=allowed)
    if not ok:
        return Outcome(False, f"stop: {why}", cmds, _output(run), run.seconds)
    if script == "tabular":  # no checkpoint in the loop and no --resume
        return Outcome(True, f"stop: {why}", cmds, _output(run), run.seconds)
    loads, cwhy, path, step = check_saved(script, tmp)
    if not loads or path is None:
        return Outcome(False, f"after the stop: {cwhy}", cmds, _output(run), run.seconds)
    ok, rwhy, rrun = resume(ctx, script, path, tmp, step)
    cmds.append(rrun.command)
    return Outcome(ok, f"stop: {why}; {rwhy}", cmds, _output(rrun if not ok else run))


def bg_command(bg: Background, note: str) -> str:
    return " ".join(_quote(a) for a in bg.argv) + f"   # {note}"


def sigkill_during_write(case: Case, ctx: Ctx, tmp: str) -> Outcome:
    """SIGKILL while a checkpoint is being written (a `.tmp` file exists) after at least one
    checkpoint was completed; the last checkpoint must still load and resume."""
    script = case.script
    hidden = ("512", "512") if script != "maddpg_tennis" else ("256", "256")
    flags = long_flags(script, ckpt_flags(script), hidden=hidden)
    bg = Background(ctx, script, flags, tmp)
    cmds = [bg_command(bg, "kill -KILL while runs/*/*.tmp exists (after a first checkpoint)")]
    if not bg.wait_for(lambda: checkpoint_paths(tmp, script), timeout=150):
        run = bg.finish(timeout=5)
        return Outcome(False, "no first checkpoint appeared", cmds, _output(run), run.seconds)
    caught = bg.wait_for(lambda: temp_files(tmp), timeout=60, poll=0.0005)
    bg.proc.kill()
    run = bg.finish(timeout=30)
    when = "during a write" if caught else "between writes (no .tmp seen within 60 s)"
    ok, why = classify_stop(run.rc, run.stderr, allowed_rc={-9})
    if not ok:
        return Outcome(False, f"killed {when}: {why}", cmds, _output(run), run.seconds)
    loads, cwhy, path, step = check_saved(script, tmp)
    if not loads or path is None:
        return Outcome(False, f"killed {when}; {cwhy}", cmds, _output(run), run.seconds)
    ok, rwhy, rrun = resume(ctx, script, path, tmp, step)
    cmds.append(rrun.command)
    left = " (.tmp left by the kill)" if temp_files(tmp) and caught else ""
    return Outcome(ok, f"killed {when}{left}; {cwhy}; {rwhy}", cmds, _output(rrun))


def fill_disk(directory: str) -> str:
    """Writes a filler file until the file system is full; returns its path."""
    path = os.path.join(directory, "filler.bin")
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return path


def full_disk(case: Case, ctx: Ctx, tmp: str) -> Outcome:
    """The disk fills after the first checkpoint (a tmpfs of 16 MiB, filled by another writer):
    the next write fails with one line, its temporary file is removed, the last checkpoint loads,
    and once space is freed the run resumes. tabular.py writes only at the end: its disk is full
    from the start. Without a namespace: RLIMIT_FSIZE of 32 KiB from the start."""
    script = case.script
    disk = os.path.join(tmp, "disk")
    os.makedirs(disk)
    fsize = None
    if ctx.inner:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk])
        if p.returncode:
            return Outcome(False, "could not mount a tmpfs", [])
        how = "tmpfs of 16 MiB filled after the first checkpoint"
    else:
        fsize = 32 * 1024
        how = "RLIMIT_FSIZE 32 KiB from the start"
    flags = long_flags(script, ckpt_flags(script))
    if script == "tabular":
        flags = flags_with(script, ["--total-timesteps", "20000"], flags)
    if ctx.inner and script == "tabular":
        fill_disk(disk)
    bg = Background(ctx, script, flags, disk, fsize=fsize)
    cmds = [bg_command(bg, how)]
    filler = None
    if ctx.inner and script != "tabular":
        if not bg.wait_for(lambda: checkpoint_paths(disk, script), timeout=150):
            run = bg.finish(timeout=5)
            return Outcome(False, "no first checkpoint appeared", cmds, _output(run), run.seconds)
        filler = fill_disk(disk)
    run = bg.finish(timeout=180)
    ok, why = classify_stop(run.rc, run.stderr, allowed_rc={2})
    said = ["could not write", "cannot create", "No space", "too large"]
    if ok and not any(w in run.stderr for w in said):
        ok, why = False, f"{why} (the error does not say the write failed)"
    if not ok:
        return Outcome(False, f"{how}: {why}", cmds, _output(run), run.seconds)
    if temp_files(disk):
        return Outcome(False, f"{how}: temporary file left: {temp_files(disk)}", cmds, _output(run))
    need = ctx.inner and script != "tabular"
    loads, cwhy, path, step = check_saved(script, disk, need=need)
    if not loads:
        return Outcome(False, f"{how}: {why}; {cwhy}", cmds, _output(run), run.seconds)
    if not need or path is None:
        return Outcome(True, f"{how}: {why}; {cwhy}", cmds, _output(run), run.seconds)
    os.remove(filler)
    ok, rwhy, rrun = resume(ctx, script, path, disk, step)
    cmds.append("rm filler && " + rrun.command)
    return Outcome(ok, f"{how}: {why}; {cwhy}; {rwhy}", cmds, _output(rrun if not ok else run))


def read_only_mid_run(case: Case, ctx: Ctx, tmp: str) -> Outcome:
    """The run directory stops taking new files after the first checkpoint (`chattr +i`, which
    holds even for root; a read-only remount would wait for the open event file): the next write
    fails with one line and the last checkpoint loads; writable again, the run resumes."""
    script = case.script
    if not shutil.which("chattr"):
        return Outcome(False, "needs chattr (e2fsprogs) to make a directory read-only for root", [])
    bg = Background(ctx, script, long_flags(script, ckpt_flags(script)), tmp)
    cmds = [bg_command(bg, "chattr +i runs/<run> after the first checkpoint")]
    if not bg.wait_for(lambda: checkpoint_paths(tmp, script), timeout=150):
        run = bg.finish(timeout=5)
        return Outcome(False, "no first checkpoint appeared", cmds, _output(run), run.seconds)
    run_dir = os.path.dirname(checkpoint_paths(tmp, script)[-1])
    p = subprocess.run(["chattr", "+i", run_dir], capture_output=True, text=True)
    if p.returncode:
        bg.proc.kill()
        bg.finish(timeout=10)
        return Outcome(False, f"chattr +i failed: {p.stderr.strip()}", cmds)
    try:
        run = bg.finish(timeout=180)
        ok, why = classify_stop(run.rc, run.stderr, allowed_rc={2})
        if not ok:
            return Outcome(False, f"read-only mid-run: {why}", cmds, _output(run), run.seconds)
        loads, cwhy, path, step = check_saved(script, tmp)
        if not loads or path is None:
            return Outcome(False, f"read-only mid-run: {why}; {cwhy}", cmds, _output(run))
    finally:
        subprocess.run(["chattr", "-i", run_dir], capture_output=True)
    ok, rwhy, rrun = resume(ctx, script, path, tmp, step)
    cmds.append("chattr -i runs/<run> && " + rrun.command)
    return Outcome(ok, f"{why}; {cwhy}; {rwhy}", cmds, _output(rrun if not ok else run))


def signal_at_start(case: Case, ctx: Ctx, tmp: str) -> Outcome:
    """A signal within the first second (imports, env creation): one line or none, no traceback."""
    script, sig, delay = case.script, case.data["signal"], case.data["delay"]
    bg = Background(ctx, script, long_flags(script), tmp)
    time.sleep(delay)
    bg.proc.send_signal(sig)
    run = bg.finish(timeout=120)
    cmds = [bg_command(bg, f"kill -{sig.name[3:]} after {delay} s")]
    allowed = {1, 130} if sig == signal.SIGINT else {-15, 130, 143}
    ok, why = classify_stop(run.rc, run.stderr, allowed_rc=allowed)
    if ok and run.rc == 1 and stderr_lines(run.stderr) != [INTERRUPTED]:
        ok, why = False, f"exit 1 without the interrupted line: {why}"
    partial = checkpoint_paths(tmp, script)
    if ok and partial:
        loads, cwhy, _, _ = read_checkpoint(partial[-1])
        ok, why = loads, f"{why}; {cwhy}"
    return Outcome(ok, why, cmds, _output(run), run.seconds)


# ---------------------------------------------------------------- the case list


OTHER = {
    "dqn_rainbow": "ppo",
    "ddpg_continuous": "td3_continuous",
    "td3_continuous": "ddpg_continuous",
    "sac_continuous": "td3_continuous",
    "maddpg_tennis": "td3_continuous",
    "reinforce": "a2c",
    "a2c": "ppo",
    "ppo": "a2c",
    "tabular": "dqn_rainbow",
}
"""whose checkpoint each script is given in the "another script's checkpoint" cases"""


def bad_inputs() -> list[tuple[str, str, list[str], dict]]:
    """(script, category, flags appended to the tiny ones, options) for every bad input."""
    cases = []

    def add(scripts, category, flags, **opts):
        for s in [scripts] if isinstance(scripts, str) else scripts:
            f = flags(s) if callable(flags) else flags
            cases.append((s, category, f, opts))

    rate = {s: "--learning-rate" for s in SCRIPTS} | {"maddpg_tennis": "--actor-learning-rate"}
    add(SCRIPTS, "unknown env id", ["--env-id", "CartPol-v1"])
    add("maddpg_tennis", "unknown env id", ["--env-id", "simple_spred_v3"])
    wrong_action = {
        "dqn_rainbow": "Pendulum-v1",
        "ddpg_continuous": "CartPole-v1",
        "td3_continuous": "CartPole-v1",
        "sac_continuous": "CartPole-v1",
        "maddpg_tennis": "CartPole-v1",
        "reinforce": "RobustnessCheck/MultiDiscreteActions-v0",
        "a2c": "RobustnessCheck/MultiDiscreteActions-v0",
        "ppo": "RobustnessCheck/UnboundedBoxActions-v0",
        "tabular": "Pendulum-v1",
    }
    for s, env_id in wrong_action.items():
        add(s, "wrong action space", ["--env-id", env_id], custom_envs="Robustness" in env_id)
    add(
        "dqn_rainbow",
        "wrong action space",
        ["--env-id", "RobustnessCheck/MultiDiscreteActions-v0"],
        custom_envs=True,
    )
    tuple_env = {s: "Blackjack-v1" for s in ["dqn_rainbow", "reinforce", "a2c", "ppo"]}
    tuple_env |= {s: "RobustnessCheck/TupleObs-Box-v0" for s in CONTINUOUS}
    for s, env_id in tuple_env.items():
        add(s, "Tuple observations", ["--env-id", env_id], custom_envs="Robustness" in env_id)
    for s in ["dqn_rainbow", "reinforce", "a2c", "ppo", "tabular"]:
        add(
            s,
            "Dict observations",
            ["--env-id", "RobustnessCheck/DictObs-Discrete-v0"],
            custom_envs=True,
        )
    for s in CONTINUOUS:
        add(
            s, "Dict observations", ["--env-id", "RobustnessCheck/DictObs-Box-v0"], custom_envs=True
        )
    image = {s: "CarRacing-v3" for s in CONTINUOUS + ON_POLICY}
    image |= {"maddpg_tennis": "pistonball_v6"}
    for s, env_id in image.items():
        add(s, "image observations", ["--env-id", env_id])
    # dqn_rainbow learns from Atari frames (stacked 84x84); RGB images of another size it cannot
    add(
        "dqn_rainbow",
        "image observations",
        ["--env-id", "RobustnessCheck/ImageObs-Discrete-v0"],
        custom_envs=True,
    )
    add("tabular", "Box observations", ["--env-id", "CartPole-v1"])
    add(OFF_POLICY, "batch larger than buffer", ["--batch-size", "64", "--buffer-size", "32"])
    add(
        OFF_POLICY,
        "learning starts beyond the budget",
        ["--learning-starts", "5000", "--total-timesteps", "1000"],
    )
    add("ppo", "budget below a rollout", ["--total-timesteps", "100"])
    add("a2c", "budget below a rollout", ["--total-timesteps", "5"])
    add("reinforce", "budget below an update", ["--total-timesteps", "1"])
    for g in ["1.5", "-0.1"]:
        add(SCRIPTS, "gamma outside [0, 1]", ["--gamma", g])
    add(["ppo", "a2c"], "GAE lambda outside [0, 1]", ["--gae-lambda", "1.5"])
    for v in ["0", "inf", "nan"]:
        add(SCRIPTS, f"learning rate {v}", lambda s, v=v: [rate[s], v])
    add(SCRIPTS, "learning rate -1e-3", lambda s: [rate[s], "-1e-3"])
    add("maddpg_tennis", "learning rate nan", ["--critic-learning-rate", "nan"])
    add("reinforce", "learning rate nan", ["--value-learning-rate", "nan"])
    add(SCRIPTS, "total timesteps 0", ["--total-timesteps", "0"])
    add([s for s in SCRIPTS if s != "tabular"], "hidden size 0", ["--hidden-sizes", "16", "0"])
    add([s for s in SCRIPTS if s != "tabular"], "num envs 0", ["--num-envs", "0"])
    add(SCRIPTS, "eval episodes 0", ["--eval-episodes", "0"])
    add(SCRIPTS, "eval frequency -1", ["--eval-frequency", "-1"])
    add(OFF_POLICY, "buffer size 0", ["--buffer-size", "0"])
    add(OFF_POLICY, "batch size 0", ["--batch-size", "0"])
    add(
        ["ddpg_continuous", "td3_continuous", "sac_continuous", "maddpg_tennis"],
        "tau nan",
        ["--tau", "nan"],
    )
    add(
        ["ddpg_continuous", "td3_continuous", "sac_continuous", "maddpg_tennis"],
        "tau 1.5",
        ["--tau", "1.5"],
    )
    add(
        ["ddpg_continuous", "td3_continuous", "sac_continuous", "maddpg_tennis"],
        "updates per step inf",
        ["--updates-per-step", "inf"],
    )
    add(
        ["ddpg_continuous", "td3_continuous", "maddpg_tennis"],
        "exploration noise nan",
        ["--exploration-noise", "nan"],
    )
    add("td3_continuous", "policy noise nan", ["--policy-noise", "nan"])
    add("td3_continuous", "policy frequency 0", ["--policy-frequency", "0"])
    add("sac_continuous", "alpha inf without autotune", ["--no-autotune", "--alpha", "inf"])
    add("sac_continuous", "target entropy scale nan", ["--target-entropy-scale", "nan"])
    add("maddpg_tennis", "max episode steps 0", ["--max-episode-steps", "0"])
    add("dqn_rainbow", "one-sided C51 support", ["--v-min", "200"])
    add("dqn_rainbow", "one-sided C51 support", ["--v-max", "-200"])
    add("dqn_rainbow", "empty C51 support", ["--v-min", "10", "--v-max", "10"])
    add("dqn_rainbow", "C51 atoms 1", ["--atoms", "1"])
    add("dqn_rainbow", "n-step 0", ["--n-step", "0"])
    add("dqn_rainbow", "PER alpha nan", ["--per-alpha", "nan"])
    add("dqn_rainbow", "epsilon 1.5", ["--start-e", "1.5"])
    add("dqn_rainbow", "target network frequency 0", ["--target-network-frequency", "0"])
    add("dqn_rainbow", "Adam eps 0", ["--adam-eps", "0"])
    add("ppo", "minibatches that do not divide the rollout", ["--num-minibatches", "3"])
    add("ppo", "update epochs 0", ["--update-epochs", "0"])
    add("ppo", "clip coefficient nan", ["--clip-coef", "nan"])
    add("ppo", "max grad norm inf", ["--max-grad-norm", "inf"])
    add("a2c", "num steps 0", ["--num-steps", "0"])
    add("a2c", "RMSprop eps 0", ["--rms-eps", "0"])
    add("a2c", "entropy coefficient nan", ["--ent-coef", "nan"])
    add("reinforce", "episodes per update 0", ["--episodes-per-update", "0"])
    add("reinforce", "value epochs 0", ["--value-epochs", "0"])
    add("tabular", "epsilon nan", ["--epsilon-start", "nan"])
    add("tabular", "exploration fraction -0.5", ["--exploration-fraction", "-0.5"])
    # checkpoints
    for s in SCRIPTS:
        flag = "--eval-checkpoint" if s == "tabular" else "--resume"
        add(s, "missing checkpoint", [flag, "{SETUP}/no_such_dir/missing.pt"])
        add(s, "corrupt checkpoint (random bytes)", [flag, "{SETUP}/random.pt"])
        add(s, "corrupt checkpoint (truncated)", [flag, f"{{SETUP}}/truncated_{s}.ckpt"])
        add(s, "corrupt checkpoint (empty file)", [flag, "{SETUP}/empty.pt"])
        add(s, "another script's checkpoint", [flag, f"{{SETUP}}/{OTHER[s]}.ckpt"])
        add(
            s,
            "another script's checkpoint (evaluated)",
            ["--eval-checkpoint", f"{{SETUP}}/{OTHER[s]}.ckpt"],
        )
        if s != "tabular":
            add(s, "a tensor file, not a checkpoint", [flag, "{SETUP}/tensor.pt"])
    add(
        "td3_continuous",
        "another script's checkpoint (DDPG, same actor shape)",
        ["--eval-checkpoint", "{SETUP}/ddpg_continuous.ckpt"],
    )
    add(RESUMABLE, "--checkpoint-frequency without --save-model", ["--checkpoint-frequency", "100"])
    add(OFF_POLICY, "--save-buffer without --save-model", ["--save-buffer"])
    add(RESUMABLE, "checkpoint frequency -1", ["--save-model", "--checkpoint-frequency", "-1"])
    add(
        SCRIPTS,
        "unwritable runs dir (read-only working directory)",
        ["--save-model"],
        cwd="read-only",
    )
    add(SCRIPTS, "unwritable runs dir (runs is a file)", [], cwd="runs-file")
    # what the argument parser (tyro) refuses before the script runs
    add(
        ["dqn_rainbow", "ppo", "tabular"],
        "parser: nan for an integer size",
        ["--total-timesteps", "nan"],
    )
    add(["td3_continuous", "reinforce"], "parser: unknown flag", ["--learning-rat", "1e-3"])
    return cases


def all_cases() -> list[Case]:
    cases = []
    counts: dict[str, int] = {}
    for script, category, flags, opts in bad_inputs():
        key = f"{script}:{category}"
        counts[key] = counts.get(key, 0) + 1
        cid = f"bad/{script}/{category}" + (f" #{counts[key]}" if counts[key] > 1 else "")
        extra = [f.replace("{SETUP}", "{SETUP}") for f in flags]
        data = dict(opts, flags=flags_with(script, extra))
        cases.append(
            Case(
                cid,
                script,
                "bad input",
                category,
                bad_input_case,
                opts.get("cwd") == "read-only",
                data,
            )
        )
    for sig in [signal.SIGTERM, signal.SIGINT]:
        for s in SCRIPTS:
            cat = f"{sig.name} mid-run" + (", then --resume" if s in RESUMABLE else "")
            cases.append(
                Case(f"fault/{s}/{cat}", s, "fault", cat, signal_mid_run, data={"signal": sig})
            )
    for s in RESUMABLE:
        cat = "SIGKILL during a checkpoint write, then it loads and resumes"
        cases.append(Case(f"fault/{s}/{cat}", s, "fault", cat, sigkill_during_write))
    for s in SCRIPTS:
        cat = "full disk while checkpointing" + (", then --resume" if s in RESUMABLE else "")
        cases.append(Case(f"fault/{s}/{cat}", s, "fault", cat, full_disk, namespace=True))
    for s in RESUMABLE:
        cat = "runs dir turns read-only mid-run, then --resume"
        cases.append(Case(f"fault/{s}/{cat}", s, "fault", cat, read_only_mid_run))
    for s in SCRIPTS:
        for sig, delay in [(signal.SIGINT, 0.3), (signal.SIGINT, 0.9), (signal.SIGTERM, 0.6)]:
            cat = f"{sig.name} during start-up ({delay} s)"
            data = {"signal": sig, "delay": delay}
            cases.append(Case(f"fault/{s}/{cat}", s, "fault", cat, signal_at_start, data=data))
    return cases


# ---------------------------------------------------------------- setup


CUSTOM_ENVS = '''"""Environments a user might register (sitecustomize): spaces the scripts cannot learn from."""
import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Dict, Discrete, MultiDiscrete, Tuple


class SpaceEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space
        self.t = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), 0.0, False, self.t >= 20, {}


vec = Box(-1.0, 1.0, (3,), np.float32)
box_act = Box(-1.0, 1.0, (1,), np.float32)
SPACES = {
    "DictObs-Discrete": (Dict({"a": vec, "b": Discrete(3)}), Discrete(2)),
    "DictObs-Box": (Dict({"a": vec, "b": Discrete(3)}), box_act),
    "TupleObs-Box": (Tuple((vec, Discrete(3))), box_act),
    "MultiDiscreteActions": (vec, MultiDiscrete([2, 3])),
    "UnboundedBoxActions": (vec, Box(-np.inf, np.inf, (1,), np.float32)),
    "ImageObs-Discrete": (Box(0, 255, (64, 64, 3), np.uint8), Discrete(2)),
}
for name, (obs, act) in SPACES.items():
    gym.register(f"RobustnessCheck/{name}-v0", entry_point=lambda obs=obs, act=act: SpaceEnv(obs, act))
'''


def make_setup(ctx: Ctx, log=print) -> None:
    """Checkpoints of every script (tiny runs), and the broken files the checkpoint cases use."""
    envs = os.path.join(ctx.setup, "envs")
    os.makedirs(envs, exist_ok=True)
    with open(os.path.join(envs, "sitecustomize.py"), "w") as f:
        f.write(CUSTOM_ENVS)
    rnd = random.Random(0)
    with open(os.path.join(ctx.setup, "random.pt"), "wb") as f:
        f.write(bytes(rnd.randrange(256) for _ in range(4096)))
    open(os.path.join(ctx.setup, "empty.pt"), "wb").close()
    subprocess.run(
        [
            ctx.python,
            "-c",
            f"import torch; torch.save(torch.zeros(3), {os.path.join(ctx.setup, 'tensor.pt')!r})",
        ],
        check=True,
        env=base_env(),
    )

    def one(script):
        work = os.path.join(ctx.setup, f"ckpt_{script}")
        os.makedirs(work, exist_ok=True)
        run = run_script(ctx, script, TINY[script] + ["--save-model"], work)
        paths = checkpoint_paths(work, script)
        if run.rc != 0 or not paths:
            raise RuntimeError(f"setup run failed: {run.command}\n{run.stderr[-3000:]}")
        shutil.copy(paths[-1], os.path.join(ctx.setup, f"{script}.ckpt"))
        with open(paths[-1], "rb") as f:
            data = f.read()
        with open(os.path.join(ctx.setup, f"truncated_{script}.ckpt"), "wb") as f:
            f.write(data[: len(data) // 2])
        return script

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for script in pool.map(one, SCRIPTS):
            log(f"setup: checkpoint of {script}")


# ---------------------------------------------------------------- driver


def namespace_available() -> bool:
    if not shutil.which("unshare"):
        return False
    p = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "d=$(mktemp -d) && " "mount -t tmpfs -o size=1m tmpfs $d && umount $d && rmdir $d",
        ],
        capture_output=True,
    )
    return p.returncode == 0


def run_case(case: Case, ctx: Ctx) -> Outcome:
    start = time.perf_counter()
    if case.namespace and ctx.namespace and not ctx.inner:
        argv = ["unshare", "-m", "--propagation", "private", ctx.python, os.path.abspath(__file__)]
        argv += ["--root", ctx.root, "--inner", case.id, "--setup-dir", ctx.setup]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=CASE_TIMEOUT * 3)
        try:
            out = Outcome(**json.loads(p.stdout.strip().splitlines()[-1]))
        except Exception:  # noqa: BLE001
            out = Outcome(False, "the namespaced case runner failed", [], p.stderr[-3000:])
    else:
        tmp = tempfile.mkdtemp(prefix="case_", dir=ctx.setup)
        try:
            out = case.fn(case, ctx, tmp)
        except Exception as e:  # noqa: BLE001  (a harness failure is reported, not hidden)
            out = Outcome(False, f"harness error: {type(e).__name__}: {e}", [])
        finally:
            if ctx.inner:
                for mnt in sorted(_mounts_under(tmp), reverse=True):
                    subprocess.run(["umount", "-l", mnt], capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
    out.seconds = time.perf_counter() - start
    return out


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(path)]


def git_commit(root: str) -> str:
    """The root checkout's commit, and whether the scripts tried differ from it."""
    git = ["git", "-C", root]
    p = subprocess.run(git + ["log", "-1", "--format=%H %s"], capture_output=True, text=True)
    scripts = [f"{s}.py" for s in SCRIPTS] + ["sumtree.py"]
    dirty = subprocess.run(
        git + ["status", "--porcelain", "--", *scripts], capture_output=True, text=True
    )
    state = (
        "with uncommitted changes to the scripts"
        if dirty.stdout.strip()
        else "scripts as committed"
    )
    return f"{(p.stdout.strip()[:100] or 'unknown')} ({state})"


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{nproc} CPUs (nproc), {model}, {platform.system()} {platform.release()}"


def totals(results: list[tuple[Case, Outcome]]) -> dict:
    t = {}
    for kind in ["bad input", "fault"]:
        rs = [o for c, o in results if c.kind == kind]
        t[kind] = (len(rs), sum(o.passed for o in rs))
    parser = [o for c, o in results if c.category.startswith("parser:")]
    t["parser"] = (len(parser), sum(o.passed for o in parser))
    return t


def report(results, args, ctx, started, seconds) -> str:
    t = totals(results)
    (nb, cb), (nf, sf), (np_, cp) = t["bad input"], t["fault"], t["parser"]
    lines = [
        "# Robustness campaign",
        "",
        f"Command: `{' '.join(_quote(a) for a in [sys.executable, *sys.argv])}`  ",
        f"Root checkout: `{ctx.root}` at commit {git_commit(ctx.root)}  ",
        f"Machine: {machine()}  ",
        f"Date: {started} ({seconds / 60:.1f} min, {args.jobs} cases at a time, OMP_NUM_THREADS=1)  ",
        f"Mount namespace for full disks and read-only directories: {'yes (tmpfs, bind mounts)' if ctx.namespace else 'no (RLIMIT_FSIZE, chmod)'}",
        "",
        "A bad input is clean when the process exits non-zero, prints no traceback, and its stderr is",
        "one line starting with `error:` (or the interrupted line). A fault is survived when the stop",
        "prints no traceback (stderr empty or one such line), the last saved checkpoint loads, no",
        "temporary file is left where the script removes it, and `--resume` continues to a later step.",
        "",
        "## Totals",
        "",
        f"- bad inputs tried: {nb}, clean: {cb}"
        + (
            f" (of which {np_} refused by the argument parser, tyro, before the script runs: {cp} clean)"
            if np_
            else ""
        ),
        f"- faults tried: {nf}, survived: {sf}",
        "",
    ]
    failing = [(c, o) for c, o in results if not o.passed]
    if failing:
        lines += ["## Failing cases", ""]
        for c, o in failing:
            lines += [f"### {c.id}", "", f"{o.why}", "", "```"]
            lines += [f"$ {cmd}" for cmd in o.commands]
            lines += [o.output.strip(), "```", ""]
    lines += [
        "## Every case",
        "",
        "| # | kind | script | case | outcome | detail | s |",
        "|-|-|-|-|-|-|-|",
    ]
    for i, (c, o) in enumerate(results, 1):
        verdict = ("clean" if c.kind == "bad input" else "survived") if o.passed else "FAIL"
        why = o.why.replace("|", "\\|").replace("\n", " ")[:220]
        lines.append(
            f"| {i} | {c.kind} | {c.script} | {c.category.replace('|', '/')} | {verdict} | {why} | {o.seconds:.0f} |"
        )
    lines += ["", "## Commands", ""]
    for i, (c, o) in enumerate(results, 1):
        for cmd in o.commands:
            lines.append(f"{i}. `{cmd.replace(ctx.setup, '$SETUP')}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=HERE, help="checkout whose scripts are tried")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at a time (at most 2 advised)")
    ap.add_argument("--only", default="", help="run only cases whose id contains this")
    ap.add_argument("--out", default=None, help="write a markdown report here")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs the scripts")
    ap.add_argument("--inner", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--setup-dir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    root = os.path.abspath(args.root)
    cases = [c for c in all_cases() if args.only in c.id]
    if args.list:
        for c in cases:
            print(f"{c.kind:9s} {c.id}")
        return 0
    if args.inner:  # one case inside a private mount namespace; prints its outcome as JSON
        ctx = Ctx(root, args.python, args.setup_dir, namespace=True, inner=True)
        case = next(c for c in all_cases() if c.id == args.inner)
        print(json.dumps(dataclasses.asdict(run_case(case, ctx))))
        return 0
    setup = args.setup_dir or tempfile.mkdtemp(prefix="robustness_")
    os.chmod(setup, 0o755)
    ctx = Ctx(root, args.python, setup, namespace=namespace_available())
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t0 = time.perf_counter()
    print(
        f"{len(cases)} cases against {root}; namespace: {ctx.namespace}; setup in {setup}",
        flush=True,
    )
    make_setup(ctx)
    results: list[tuple[Case, Outcome] | None] = [None] * len(cases)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {pool.submit(run_case, c, ctx): i for i, c in enumerate(cases)}
        for n, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            i = futures[fut]
            results[i] = (cases[i], fut.result())
            c, o = results[i]
            mark = "ok  " if o.passed else "FAIL"
            print(
                f"[{n:3d}/{len(cases)}] {mark} {c.id}  ({o.seconds:.0f} s) {o.why[:150]}",
                flush=True,
            )
    done = [r for r in results if r is not None]
    seconds = time.perf_counter() - t0
    print()
    print(f"{'kind':9s}  {'result':8s}  case")
    for c, o in done:
        print(f"{c.kind:9s}  {('pass' if o.passed else 'FAIL'):8s}  {c.id}")
    t = totals(done)
    print(
        f"\nbad inputs tried {t['bad input'][0]}, clean {t['bad input'][1]}"
        f" (parser-level: {t['parser'][0]} tried, {t['parser'][1]} clean)"
    )
    print(f"faults tried {t['fault'][0]}, survived {t['fault'][1]}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report(done, args, ctx, started, seconds))
        print(f"wrote {args.out}")
    if not args.setup_dir:
        shutil.rmtree(setup, ignore_errors=True)
    return 0 if all(o.passed for _, o in done) else 1


if __name__ == "__main__":
    sys.exit(main())
