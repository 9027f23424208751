"""Every continuous-action script runs on gymnasium's MuJoCo tasks, and records their evaluation
videos headless (the scripts pick MuJoCo's EGL backend when there is no display)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import a2c
import ddpg_continuous
import ppo
import sac_continuous
import td3_continuous

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFF_POLICY = [ddpg_continuous, td3_continuous, sac_continuous]


@pytest.mark.parametrize("script", OFF_POLICY + [ppo, a2c], ids=lambda m: m.__name__)
def test_a_short_run_on_hopper_v5(script, in_tmp):
    common = dict(env_id="Hopper-v5", eval_frequency=0, eval_episodes=1, hidden_sizes=(16, 16))
    if script in OFF_POLICY:
        args = script.Args(total_timesteps=400, learning_starts=200, batch_size=32, **common)
    else:
        args = script.Args(total_timesteps=512, num_envs=2, num_steps=64, **common)
        if script is ppo:
            args.num_minibatches, args.update_epochs = 2, 1
    summary = script.train(args)
    assert summary["global_step"] >= 400 and summary["update_count"] > 0
    assert len(summary["eval_returns"]) == 1 and np.isfinite(summary["eval_returns"]).all()
    assert summary["episodic_returns"]  # Hopper's random episodes end within a few dozen steps


def test_headless_video_of_a_mujoco_evaluation(in_tmp):
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    cmd = [sys.executable, os.path.join(ROOT, "td3_continuous.py"), "--env-id", "Hopper-v5"]
    cmd += ["--total-timesteps", "300", "--learning-starts", "200", "--batch-size", "32"]
    cmd += ["--eval-frequency", "0", "--eval-episodes", "1", "--capture-video"]
    out = subprocess.run(cmd, cwd=in_tmp, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    videos = list(in_tmp.glob("videos/*/*.mp4"))
    assert videos and videos[0].stat().st_size > 1000


@pytest.mark.parametrize("script", OFF_POLICY + [ppo, a2c], ids=lambda m: m.__name__)
def test_mujoco_warnings_are_python_warnings(script, capfd, in_tmp):
    """MuJoCo 4 warns from C about HalfCheetah's model each time one is made (every evaluation),
    printing the warning and appending it to MUJOCO_LOG.TXT: make_env turns it into a Python
    warning, which Python's filter does not repeat at every new env, so the progress bar stays
    whole and the working directory clean."""
    capfd.readouterr()
    with pytest.warns(UserWarning, match="settotalmass"):
        env = script.make_env("HalfCheetah-v5", seed=1)()
    env.close()
    out, err = capfd.readouterr()
    assert "settotalmass" not in out + err
    assert not (in_tmp / "MUJOCO_LOG.TXT").exists()
