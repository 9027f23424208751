"""Tests of benchmarks/robustness.py's own logic: what counts as a clean refusal or a survived
fault, how flags are overridden, and that the campaign covers every kind of bad input and fault.
No script is run here (the campaign itself does that)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import robustness  # noqa: E402

TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad\n'


@pytest.mark.parametrize(
    "rc, stderr, clean",
    [
        (2, "error: --gamma must be in [0, 1], got 1.5\n", True),
        (1, robustness.INTERRUPTED + "\n", True),
        (2, TRACEBACK, False),  # a traceback is never clean
        (2, TRACEBACK + "error: bad\n", False),
        (0, "", False),  # accepted: ran on silently
        (0, "error: printed but exited 0\n", False),
        (2, "", False),  # non-zero with nothing said
        (2, "warning: x\nerror: y\n", False),  # two lines
        (2, "ValueError: bad\n", False),  # one line, but not "error:"
        (-9, "", False),  # killed
        (None, "", False),  # timed out
        (2, "\nerror: one line after a blank\n\n", True),
    ],
)
def test_bad_input_classification(rc, stderr, clean):
    assert robustness.classify_bad_input(rc, stderr)[0] is clean


def test_stop_classification():
    assert robustness.classify_stop(130, "")[0]
    assert robustness.classify_stop(2, "error: could not write checkpoint x\n", {2})[0]
    assert not robustness.classify_stop(130, TRACEBACK)[0]
    assert not robustness.classify_stop(130, "KeyboardInterrupt\n")[0]
    assert not robustness.classify_stop(0, "", {130})[0]
    assert not robustness.classify_stop(None, "")[0]
    assert not robustness.classify_stop(130, "error: a\nerror: b\n")[0]


def test_flags_override_drop_and_negative_values():
    flags = robustness.flags_with("ppo", ["--total-timesteps", "100"])
    assert flags.count("--total-timesteps") == 1
    assert flags[flags.index("--total-timesteps") + 1] == "100"
    assert "--hidden-sizes" not in robustness.flags_with("ppo", ["--hidden-sizes", "DROP"])
    assert "--gamma=-0.1" in robustness.flags_with("ppo", ["--gamma", "-0.1"])
    flags = robustness.flags_with("ppo", ["--eval-frequency=-1"])
    assert "--eval-frequency=-1" in flags and "--eval-frequency" not in flags


def test_the_campaign_covers_every_category_with_enough_cases():
    cases = robustness.all_cases()
    bad = [c for c in cases if c.kind == "bad input"]
    faults = [c for c in cases if c.kind == "fault"]
    assert len(bad) >= 101 and len(faults) >= 22
    assert len({c.id for c in cases}) == len(cases)
    assert {c.script for c in cases} == set(robustness.SCRIPTS)
    categories = " ".join(c.category for c in cases)
    for needed in [
        "unknown env id",
        "wrong action space",
        "Tuple observations",
        "Dict observations",
        "image observations",
        "batch larger than buffer",
        "learning starts beyond the budget",
        "gamma outside",
        "learning rate inf",
        "learning rate nan",
        "learning rate 0",
        "one-sided C51 support",
        "missing checkpoint",
        "corrupt checkpoint",
        "another script's checkpoint",
        "--checkpoint-frequency without --save-model",
        "--save-buffer without --save-model",
        "read-only working directory",
        "below a rollout",
        "SIGTERM mid-run",
        "SIGINT mid-run",
        "SIGKILL during a checkpoint write",
        "full disk",
        "turns read-only mid-run",
        "SIGINT during start-up",
    ]:
        assert needed in categories, needed


def test_a_checkpoint_that_does_not_load_counts_as_damaged(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    assert not robustness.read_checkpoint(str(bad))[0]
    bad_npz = tmp_path / "x.npz"
    bad_npz.write_bytes(b"PK\x03\x04 truncated")
    assert not robustness.read_checkpoint(str(bad_npz))[0]
