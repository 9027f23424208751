"""Bad input and faults end in one clear line, and checkpoints and resumes do not misbehave
silently: the cases of the project's reliability review, each across every script it concerns."""

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import a2c
import ddpg_continuous
import dqn_rainbow
import maddpg_tennis
import ppo
import reinforce
import sac_continuous
import td3_continuous

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTINUOUS = [ddpg_continuous, td3_continuous, sac_continuous]
OFF_POLICY = CONTINUOUS + [dqn_rainbow, maddpg_tennis]
ALL = OFF_POLICY + [ppo, reinforce]


def tiny(script, **overrides):
    """Arguments for a run of a few seconds, per script."""
    base = dict(eval_frequency=0, eval_episodes=1, hidden_sizes=(16, 16))
    if script in CONTINUOUS:
        base.update(env_id="Pendulum-v1", total_timesteps=600, learning_starts=200)
        base.update(batch_size=32, buffer_size=10_000)
    elif script is dqn_rainbow:
        base.update(env_id="CartPole-v1", total_timesteps=600, learning_starts=200)
        base.update(batch_size=32, buffer_size=5000)
    elif script is maddpg_tennis:
        base.update(total_timesteps=400, learning_starts=100, batch_size=32, buffer_size=5000)
        base.update(max_episode_steps=50)
    elif script is ppo:
        base.update(env_id="CartPole-v1", total_timesteps=512, num_envs=2, num_steps=64)
        base.update(num_minibatches=2, update_epochs=1)
    elif script is a2c:
        base.update(env_id="CartPole-v1", total_timesteps=200, num_envs=2, num_steps=5)
    else:
        base.update(env_id="CartPole-v1", total_timesteps=1000, num_envs=2, episodes_per_update=2)
    return script.Args(**{**base, **overrides})


name = lambda m: m.__name__  # noqa: E731


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("script", [ppo, reinforce, dqn_rainbow], ids=name)
def test_tuple_observations_are_refused(script, in_tmp):
    with pytest.raises(ValueError, match="Blackjack-v1 has Tuple-shaped observations"):
        script.train(tiny(script, env_id="Blackjack-v1"))


@pytest.mark.parametrize("flag", [dict(v_min=200.0), dict(v_max=-200.0)])
def test_one_sided_c51_support_that_runs_backwards_is_refused(flag, in_tmp):
    with pytest.raises(ValueError, match="must be below --v-max.*give both or neither"):
        dqn_rainbow.train(tiny(dqn_rainbow, **flag))


def test_image_observations_are_refused_by_maddpg_before_any_buffer(in_tmp):
    with pytest.raises(ValueError, match="pistonball_v6 has .*-shaped observations.*images"):
        maddpg_tennis.train(tiny(maddpg_tennis, env_id="pistonball_v6"))


def test_a_large_replay_buffer_says_how_much_memory_it_takes(capsys):
    td3_continuous.report_buffer_memory(10_000_000, 4 * (2 * 15 + 3 + 2))
    assert "replay buffer: 10000000 transitions take 1.3 GiB" in capsys.readouterr().out
    td3_continuous.report_buffer_memory(1000, 140)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("script", OFF_POLICY, ids=name)
def test_learning_that_would_never_start_is_refused(script, in_tmp):
    with pytest.raises(ValueError, match="--learning-starts 5000 is not below --total-timesteps"):
        script.train(tiny(script, learning_starts=5000, total_timesteps=1000))


def test_ppo_budget_below_one_rollout_is_refused(in_tmp):
    with pytest.raises(ValueError, match="--total-timesteps 100 is less than one rollout of 128"):
        ppo.train(tiny(ppo, total_timesteps=100))


@pytest.mark.parametrize("script", ALL, ids=name)
def test_non_finite_rates_are_refused(script, in_tmp):
    rate = "actor_learning_rate" if script is maddpg_tennis else "learning_rate"
    with pytest.raises(ValueError, match=f"--{rate.replace('_', '-')} must be finite, got inf"):
        script.train(tiny(script, **{rate: float("inf")}))


@pytest.mark.parametrize("script", ALL, ids=name)
def test_checkpoint_flags_without_save_model_are_refused(script, in_tmp):
    with pytest.raises(ValueError, match="--checkpoint-frequency writes only with --save-model"):
        script.train(tiny(script, checkpoint_frequency=100))
    if hasattr(script.Args, "save_buffer"):
        with pytest.raises(ValueError, match="--save-buffer writes only with --save-model"):
            script.train(tiny(script, save_buffer=True))


@pytest.mark.parametrize("script", ALL, ids=name)
def test_unwritable_runs_directory_gives_one_line_from_the_command_line(script, in_tmp):
    """A read-only directory as root cannot be made here (root writes anywhere); a file named
    runs takes the same path: creating runs/{run_name} fails with an OSError."""
    (in_tmp / "runs").write_text("not a directory")
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, f"{script.__name__}.py"), "--total-timesteps", "9"]
        + (["--learning-starts", "0"] if script in OFF_POLICY else [])
        + (
            ["--num-steps", "9", "--num-envs", "1", "--num-minibatches", "1"]
            if script is ppo
            else []
        ),
        cwd=in_tmp,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: cannot create runs/")


@pytest.mark.parametrize("script", ALL, ids=name)
def test_unwritable_runs_directory_raises_one_clear_oserror(script, in_tmp):
    (in_tmp / "runs").write_text("a file where the runs directory should be")
    with pytest.raises(OSError, match="cannot create runs/.*run from a writable directory"):
        script.new_run_name(tiny(script))


@pytest.mark.parametrize("script", ALL, ids=name)
def test_full_disk_removes_the_temporary_file_and_keeps_the_last_checkpoint(script, in_tmp):
    module = torch.nn.Linear(2, 2)
    path = str(in_tmp / "ckpt.pt")
    assert script.save_checkpoint(path, {"w": 1}, [module])
    os.symlink("/dev/full", f"{path}.tmp")  # every write to it fails with ENOSPC
    with pytest.raises(OSError, match="could not write checkpoint .*ckpt.pt .*the last one stays"):
        script.save_checkpoint(path, {"w": torch.zeros(100_000)}, [module])
    assert not os.path.lexists(f"{path}.tmp")
    assert torch.load(path, weights_only=True)["w"] == 1


def test_diverging_reinforce_policy_gives_the_one_line_non_finite_error():
    policy = reinforce.Policy(4, gym.spaces.Discrete(2), tiny(reinforce))
    with torch.no_grad():
        policy.net[-1].bias.fill_(float("nan"))
    with pytest.raises(
        FloatingPointError, match="policy's outputs are not finite .*--learning-rate"
    ):
        policy.dist(torch.zeros(1, 4))


def test_non_finite_priorities_name_the_flag():
    rb = td3_continuous.ReplayBuffer(8, 3, 2, tiny(td3_continuous, per=True), "cpu")
    with pytest.raises(FloatingPointError, match="priorities are not finite .*--learning-rate"):
        rb.update_priorities(np.arange(2), torch.tensor([1.0, float("nan")]))
    obs_space = gym.spaces.Box(-1.0, 1.0, (3,))
    rb = dqn_rainbow.ReplayBuffer(8, obs_space, tiny(dqn_rainbow, per=True), "cpu")
    with pytest.raises(FloatingPointError, match="priorities are not finite .*--learning-rate"):
        rb.update_priorities(np.arange(2), torch.tensor([1.0, float("inf")]))


@pytest.mark.parametrize("script", CONTINUOUS, ids=name)
def test_a_finite_loss_beyond_any_sane_run_stops_it(script, in_tmp, monkeypatch):
    real = script.update_critic

    def diverging(*a):
        loss, q, td = real(*a)
        return loss * 0 + 1e20, q, td

    monkeypatch.setattr(script, "update_critic", diverging)
    with pytest.raises(
        FloatingPointError, match="losses/qf_loss is 1e\\+20 at step 1000.*--learning"
    ):
        script.train(tiny(script, total_timesteps=1500))


def to_first_loss(script) -> dict:
    """tiny()'s overrides for a run that logs a loss (off-policy losses log every 1000 steps),
    with a2c's first update after some finished episodes."""
    budget = dict(total_timesteps=1000) if script in OFF_POLICY else {}
    if script is maddpg_tennis:
        budget["updates_per_step"] = 0.25
    if script is a2c:
        budget.update(num_steps=64, total_timesteps=256)
    return budget


@pytest.mark.parametrize("script", [dqn_rainbow, ppo, a2c, reinforce, maddpg_tennis], ids=name)
def test_every_logged_loss_is_held_to_the_loss_bound(script, in_tmp, monkeypatch):
    """With the bound lowered to 0 every finite loss lies beyond it: the first loss logged stops
    the run with the one-line error (so each script's losses go through log_loss's check)."""
    monkeypatch.setattr(script, "LOSS_BOUND", 0.0)
    with pytest.raises(FloatingPointError, match=r"^losses/\w+ is \S+ at step \d+; stopping \("):
        script.train(tiny(script, **to_first_loss(script)))


@pytest.mark.parametrize("script", ALL + [a2c], ids=name)
def test_a_run_stopped_by_an_error_closes_its_tensorboard_writer(script, in_tmp, monkeypatch):
    """TensorBoard writes from a daemon thread, which the process's exit kills with the last events
    still queued (the ones before a divergence, which a user looks at): an error that stops the run
    closes the writer, and everything logged is on disk when train() raises."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    logged, closed, add_scalar, close = [], [], SummaryWriter.add_scalar, SummaryWriter.close

    def spy(writer, tag, value, step=None, *args, **kwargs):
        logged.append((tag, step))
        return add_scalar(writer, tag, value, step, *args, **kwargs)

    monkeypatch.setattr(SummaryWriter, "add_scalar", spy)
    monkeypatch.setattr(SummaryWriter, "close", lambda writer: closed.append(close(writer)))
    monkeypatch.setattr(script, "LOSS_BOUND", 0.0)
    with pytest.raises(FloatingPointError, match="stopping"):
        script.train(tiny(script, **to_first_loss(script)))
    assert len(closed) == 1
    (run_dir,) = os.listdir("runs")
    events = EventAccumulator(os.path.join("runs", run_dir))
    events.Reload()
    on_disk = [(tag, e.step) for tag in events.Tags()["scalars"] for e in events.Scalars(tag)]
    assert logged and sorted(on_disk) == sorted(logged)


# ---------------------------------------------------------------- checkpoints and resume


@pytest.mark.parametrize("script", CONTINUOUS + [dqn_rainbow, maddpg_tennis], ids=name)
def test_resume_without_buffer_warns_and_refills_before_learning(script, in_tmp, capsys):
    one_update = dict(updates_per_step=1.0) if script is maddpg_tennis else {}
    first = script.train(tiny(script, save_model=True, **one_update))
    capsys.readouterr()
    more = script.train(tiny(script, resume=first["checkpoint"], total_timesteps=1000))
    assert "holds no replay buffer" in capsys.readouterr().out
    # 400 new transitions (600 for maddpg): learning_starts of them refill the buffer, the others
    # learn (one update each)
    learning = 1000 - first["global_step"] - tiny(script).learning_starts
    assert more["update_count"] - first["update_count"] == learning


@pytest.mark.parametrize("script", ALL, ids=name)
def test_resume_names_the_flags_the_checkpoint_overrides(script, in_tmp, capsys):
    first = script.train(tiny(script, save_model=True))
    capsys.readouterr()
    total = first["global_step"]
    script.train(tiny(script, resume=first["checkpoint"], total_timesteps=total, seed=7))
    out = capsys.readouterr().out
    assert "keeps the checkpoint's options; ignored --seed 7" in out
    assert "--total-timesteps" not in out


def test_another_scripts_checkpoint_is_refused(in_tmp):
    first = ddpg_continuous.train(tiny(ddpg_continuous, total_timesteps=300, save_model=True))
    with pytest.raises(ValueError, match="written by ddpg_continuous.py; use that script"):
        td3_continuous.train(tiny(td3_continuous, eval_checkpoint=first["checkpoint"]))


@pytest.mark.parametrize("script", [td3_continuous, sac_continuous], ids=name)
def test_a_resumed_finished_run_logs_its_final_evaluation_once(script, in_tmp):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = script.train(tiny(script, save_model=True, save_buffer=True))
    script.train(tiny(script, resume=first["checkpoint"], total_timesteps=600))
    events = EventAccumulator(first["run_dir"])
    events.Reload()
    steps = [e.step for e in events.Scalars("eval/episodic_return")]
    assert steps == [600]


@pytest.mark.parametrize("script", ALL + [__import__("a2c")], ids=name)
def test_tensorboard_keeps_the_evaluation_at_a_resumes_checkpoint(script, in_tmp):
    """A run continued past its end shows both final evaluations in TensorBoard's own view: the
    resume replaces only what came after the checkpoint, and the evaluation at its step came
    before it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    keep = dict(save_model=True)
    if "save_buffer" in script.Args.__dataclass_fields__:
        keep["save_buffer"] = True
    first = script.train(tiny(script, **keep))
    total = 2 * tiny(script).total_timesteps
    second = script.train(tiny(script, resume=first["checkpoint"], total_timesteps=total))
    events = EventAccumulator(first["run_dir"])
    events.Reload()
    steps = [e.step for e in events.Scalars("eval/episodic_return")]
    assert steps == [first["global_step"], second["global_step"]]


@pytest.mark.parametrize("script", CONTINUOUS + [maddpg_tennis], ids=name)
def test_checkpoint_size_follows_the_buffers_fill_not_its_capacity(script, in_tmp):
    summary = script.train(
        tiny(script, save_model=True, save_buffer=True, buffer_size=1_000_000, hidden_sizes=(8, 8))
    )
    assert os.path.getsize(summary["checkpoint"]) < 2_000_000


# ---------------------------------------------------------------- glue a mutation check found untested


def test_dqn_loss_under_per_is_weighted_by_the_importance_weights():
    args = tiny(dqn_rainbow, distributional=False, noisy=False, per=True)
    torch.manual_seed(0)
    q_network = dqn_rainbow.QNetwork((3,), 2, args)
    n = 16
    weights = torch.linspace(0.05, 1.0, n)
    data = (torch.randn(n, 3), torch.randint(0, 2, (n,)), torch.randn(n) * 5, torch.randn(n, 3))
    data = (*data, torch.full((n,), 0.9), weights)
    loss, per_sample, _ = dqn_rainbow.dqn_loss(data, q_network, q_network, args)
    assert loss.item() == pytest.approx((weights * per_sample).mean().item(), rel=1e-6)
    assert loss.item() != pytest.approx(per_sample.mean().item(), rel=1e-3)


def test_dqn_greedy_evaluation_turns_the_noise_off_and_restores_training_mode():
    args = tiny(dqn_rainbow, distributional=False, noisy=True, noisy_sigma0=5.0)
    torch.manual_seed(0)
    q_network = dqn_rainbow.QNetwork((3,), 4, args)
    obs = torch.randn(256, 3)
    with torch.no_grad():
        q_network.eval()
        expected = q_network.q_values(obs).argmax(-1)
        q_network.train()
        noisy = q_network.q_values(obs).argmax(-1)
        assert not torch.equal(noisy, expected)  # the noise is large enough to change choices
        assert torch.equal(dqn_rainbow.GreedyPolicy(q_network)(obs), expected)
    assert q_network.training


def test_dqn_resume_restores_the_rng_states(in_tmp):
    first = dqn_rainbow.train(tiny(dqn_rainbow, save_model=True, save_buffer=True))
    saved = torch.load(first["checkpoint"], weights_only=True)["rng"]
    again = dqn_rainbow.train(
        tiny(dqn_rainbow, resume=first["checkpoint"], total_timesteps=600, save_model=True)
    )
    reloaded = torch.load(again["checkpoint"], weights_only=True)["rng"]
    assert reloaded["numpy"] == saved["numpy"]
    assert torch.equal(reloaded["torch"], saved["torch"])
    fresh = np.random.default_rng(1).bit_generator.state
    assert saved["numpy"] != fresh  # so the test would see a generator seeded afresh


RNG_RESTORED = [ppo, a2c, reinforce, maddpg_tennis] + CONTINUOUS


@pytest.mark.parametrize("script", RNG_RESTORED, ids=name)
def test_resume_restores_the_saved_rng_states_into_the_runs_generators(script, in_tmp, monkeypatch):
    """Right after loading, python's, numpy's (the script's own generator) and torch's RNG states
    are the saved ones. A resume re-seeds its envs, so whole runs cannot be compared here."""
    buffer = dict(save_buffer=True) if hasattr(script.Args, "save_buffer") else {}
    if script is maddpg_tennis:
        buffer["updates_per_step"] = 0.25
    first = script.train(tiny(script, save_model=True, **buffer))
    saved = torch.load(first["checkpoint"], weights_only=True)["rng"]
    seeded, restored = [], []
    real_seed, real_set = script.seed_everything, script.set_rng_states
    monkeypatch.setattr(
        script, "seed_everything", lambda *a: seeded.append(real_seed(*a)) or seeded[-1]
    )

    def set_and_record(state, rng):
        real_set(state, rng)
        restored.append((rng, script.rng_states(rng)))

    monkeypatch.setattr(script, "set_rng_states", set_and_record)
    script.train(tiny(script, resume=first["checkpoint"], total_timesteps=first["global_step"] * 2))
    ((rng, state),) = restored
    assert rng is seeded[-1]  # the generator the run draws from, not a stray one
    assert state["numpy"] == saved["numpy"] and state["python"] == saved["python"]
    assert torch.equal(state["torch"], saved["torch"])
    torch.manual_seed(tiny(script).seed)
    assert not torch.equal(saved["torch"], torch.get_rng_state())  # so re-seeding would show


def test_reinforce_resumed_run_equals_an_uninterrupted_one(in_tmp):
    """reinforce re-seeds its envs at every update from the step count, so a run saved and resumed
    takes exactly the actions (torch's RNG) of one run straight through."""
    whole = reinforce.train(tiny(reinforce, total_timesteps=600))
    first = reinforce.train(tiny(reinforce, total_timesteps=300, save_model=True))
    more = reinforce.train(tiny(reinforce, resume=first["checkpoint"], total_timesteps=600))
    assert more["global_step"] == whole["global_step"]
    assert more["episodic_returns"] == whole["episodic_returns"]
    assert more["eval_returns"] == whole["eval_returns"]


def test_ppo_reward_normalizer_restarts_its_discounted_return_at_episode_ends(in_tmp):
    """4-step episodes of reward 1: the running discounted return takes the values 1, 1 + g,
    1 + g + g^2 and 1 + g + g^2 + g^3 and starts again, so its running mean is their mean."""
    args = tiny(ppo, env_id="DiscreteTerminated-v0", normalize_reward=True, save_model=True)
    summary = ppo.train(args)
    saved = torch.load(summary["checkpoint"], weights_only=True)
    g = saved["args"]["gamma"]  # the discrete-action default, filled in by train()
    expected = np.mean([sum(g**k for k in range(t + 1)) for t in range(4)])
    mean = saved["return_rms"]["mean"].item()
    assert mean == pytest.approx(expected, abs=0.05)


RESUMABLE = [td3_continuous, sac_continuous, dqn_rainbow, ppo, reinforce]


@pytest.mark.parametrize("script", RESUMABLE, ids=name)
def test_a_resumed_run_continues_from_the_returns_before_it(script, in_tmp, capsys):
    buffer = dict(save_buffer=True) if hasattr(script.Args, "save_buffer") else {}
    first = script.train(tiny(script, save_model=True, **buffer))
    before = first["episodic_returns"][-100:]
    assert before
    capsys.readouterr()
    more = script.train(
        tiny(script, resume=first["checkpoint"], total_timesteps=first["global_step"] * 2)
    )
    assert more["episodic_returns"][: len(before)] == before
    assert "return(last 10) nan" not in capsys.readouterr().out


@pytest.mark.parametrize("script", ALL + [__import__("a2c"), __import__("tabular")], ids=name)
def test_ctrl_c_while_the_libraries_load_ends_in_one_line(script, in_tmp):
    """SIGINT half a second after the start lands while torch and gymnasium are imported."""
    import signal
    import time

    cmd = [sys.executable, os.path.join(ROOT, f"{script.__name__}.py")]
    proc = subprocess.Popen(cmd, cwd=in_tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err, err.decode()[-2000:]
    if (
        proc.returncode == 130
    ):  # tabular.py loads fast: the signal can land in its loop, which stops
        assert out.decode().strip().splitlines()[-1].startswith("stopped at step")
    else:
        assert proc.returncode == 1
        last = err.decode().strip().splitlines()[-1]
        assert last == "interrupted (Ctrl-C) outside the training loop"


# ---------------------------------------------------------------- the holes of the robustness campaign

SCRIPTS = ALL + [__import__("a2c"), __import__("tabular")]


class ImageEnv(gym.Env):
    """64x64 RGB frames, two actions: images that are no stack of 84x84 frames."""

    observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


gym.register("ImageObs64-v0", entry_point=ImageEnv, max_episode_steps=20)


def test_dqn_refuses_images_its_cnn_cannot_take(in_tmp):
    with pytest.raises(ValueError, match=r"\(64, 64, 3\)-shaped observations.*\(frames, 84, 84\)"):
        dqn_rainbow.train(tiny(dqn_rainbow, env_id="ImageObs64-v0"))


def test_reinforce_budget_below_one_update_is_refused(in_tmp):
    with pytest.raises(
        ValueError, match="--total-timesteps 1 is less than one update of 2 episodes"
    ):
        reinforce.train(tiny(reinforce, total_timesteps=1))


@pytest.mark.parametrize(
    "flag, message",
    [
        (dict(start_e=1.5), r"--start-e must be in \[0, 1\], got 1.5"),
        (dict(end_e=-0.1), r"--end-e must be in \[0, 1\], got -0.1"),
        (dict(adam_eps=0.0), "--adam-eps must be positive, got 0.0"),
    ],
)
def test_dqn_epsilons_outside_their_range_are_refused(flag, message, in_tmp):
    with pytest.raises(ValueError, match=message):
        dqn_rainbow.train(tiny(dqn_rainbow, noisy=False, **flag))


def test_reinforce_baseline_without_value_epochs_is_refused(in_tmp):
    with pytest.raises(ValueError, match="--value-epochs must be positive with the baseline on"):
        reinforce.train(tiny(reinforce, value_epochs=0))
    reinforce.train(tiny(reinforce, value_epochs=0, baseline=False, total_timesteps=50))


PARSE_ERRORS = [
    (["--total-timesteps", "nan"], "Error parsing --total-timesteps: invalid literal for int() "),
    (["--learning-rat", "1e-3"], "Unrecognized options: --learning-rat, 1e-3; perhaps you meant "),
    (["--total-timesteps"], "Missing value for argument '--total-timesteps'. Expected 1 values."),
]


@pytest.mark.parametrize("script", SCRIPTS, ids=name)
@pytest.mark.parametrize("argv, message", PARSE_ERRORS, ids=["nan", "unknown", "missing"])
def test_command_line_parse_errors_raise_one_line(script, argv, message, monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"{script.__name__}.py", *argv])
    with pytest.raises(ValueError) as error:
        script.parse_args()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    if "perhaps" in message:
        rate = "--actor-learning-rate" if script is maddpg_tennis else "--learning-rate"
        assert rate in str(error.value).split("perhaps you meant ")[1].split(" or ")


@pytest.mark.parametrize("script", SCRIPTS, ids=name)
def test_an_unknown_flag_ends_in_one_line_and_help_still_prints(script, in_tmp):
    cmd = [sys.executable, os.path.join(ROOT, f"{script.__name__}.py")]
    out = subprocess.run(cmd + ["--learning-rat", "1e-3"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith(
        "error: Unrecognized options: --learning-rat"
    )
    assert len(out.stderr.splitlines()) == 1, out.stderr
    if script is ppo:  # --help is tyro's own, on stdout
        out = subprocess.run(cmd + ["--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "--total-timesteps" in out.stdout and not out.stderr


@pytest.mark.parametrize("script", [ppo, __import__("tabular")], ids=name)
def test_a_full_disk_under_tensorboard_ends_in_one_line_naming_the_file(script, in_tmp):
    """A file-size limit makes TensorBoard's writer thread fail as a full disk does (EFBIG instead
    of ENOSPC): no thread traceback, one line naming the event file and the cause."""
    import resource

    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # noqa: E731
    cmd = [sys.executable, os.path.join(ROOT, f"{script.__name__}.py"), "--eval-frequency", "0"]
    cmd += [
        "--total-timesteps",
        "10000000",
        "--env-id",
        "FrozenLake-v1" if script.__name__ == "tabular" else "CartPole-v1",
    ]
    out = subprocess.run(cmd, cwd=in_tmp, preexec_fn=limit, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.startswith("error: [Errno 27] File too large: 'runs/"), out.stderr
    assert "events.out.tfevents" in out.stderr and len(out.stderr.splitlines()) == 1


REFUSED = [("/nonexistent-dir/x.pt", "No such file or directory")]
REFUSED += [("/sys/kernel/x.pt", "Permission denied")] if os.path.isdir("/sys/kernel") else []


@pytest.mark.parametrize("target, cause", REFUSED, ids=lambda v: v[1:4])
@pytest.mark.parametrize("script", ALL, ids=name)
def test_a_checkpoint_write_refused_by_the_system_names_the_real_cause(
    script, target, cause, in_tmp
):
    """torch wraps a failed open in a RuntimeError; the message gives its strerror (a read-only
    /sys: Permission denied), not a guess at a full disk."""
    path = str(in_tmp / "ckpt.pt")
    os.symlink(target, f"{path}.tmp")
    with pytest.raises(OSError, match=rf"ckpt.pt \({cause}\); the last one stays"):
        script.save_checkpoint(path, {"w": 1}, [torch.nn.Linear(2, 2)])
    assert not os.path.lexists(f"{path}.tmp")
