"""Tests of benchmarks/: the sweep runner (local processes and a real local Ray head), the report
maker on event files of a real tiny run, the Tennis report, and the SB3 peer comparison."""

import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import line_counts  # noqa: E402
import peers  # noqa: E402
import readme_table  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import tennis_report  # noqa: E402

TINY = [
    "--total-timesteps",
    "300",
    "--learning-starts",
    "200",
    "--batch-size",
    "32",
    "--hidden-sizes",
    "32",
    "32",
    "--buffer-size",
    "1000",
    "--eval-frequency",
    "0",
    "--eval-episodes",
    "1",
]


def test_runner_runs_each_combination_and_reports_a_failure_without_stopping(tmp_path, capsys):
    status = run.main(
        [
            "--scripts",
            "td3_continuous",
            "--env-ids",
            "Pendulum-v1",
            "Pendulum-v99",
            "--seeds",
            "1",
            "2",
            "--workers",
            "2",
            "--runs-dir",
            str(tmp_path),
            "--",
            *TINY,
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert "2 of 4 runs succeeded" in out
    assert out.count("FAILED") == 2 and "--env-id Pendulum-v99" in out
    assert "did you mean Pendulum-v1" in out  # the failed run's log tail is shown
    names = sorted(os.listdir(tmp_path / "runs"))
    assert [n.split("__")[0] + "__" + n.split("__")[2] for n in names] == [
        "Pendulum-v1__1",
        "Pendulum-v1__2",
    ]
    for seed in (1, 2):
        log = (tmp_path / "logs" / f"td3_continuous__Pendulum-v1__{seed}.log").read_text()
        assert log.startswith(sys.executable) and "evaluation return" in log


def test_track_puts_runs_in_one_project_grouped_and_tagged(tmp_path):
    parser_args = [
        "--scripts",
        "ddpg_continuous",
        "--env-ids",
        "Pendulum-v1",
        "--seeds",
        "3",
        "--track",
        "--wandb-project-name",
        "bench",
        "--runs-dir",
        str(tmp_path),
    ]
    import argparse

    a = argparse.Namespace(
        scripts=["ddpg_continuous"],
        env_ids=["Pendulum-v1"],
        seeds=[3],
        track=True,
        wandb_project_name="bench",
        runs_dir=str(tmp_path),
        threads=1,
    )
    (planned,) = run.plan(a, ["--total-timesteps", "10"])
    assert planned.cmd[-3:] == ["--track", "--wandb-project-name", "bench"]
    assert planned.env["WANDB_RUN_GROUP"] == "ddpg_continuous__Pendulum-v1"
    assert planned.env["WANDB_TAGS"].startswith("commit-")
    assert planned.env["OMP_NUM_THREADS"] == "1"
    assert parser_args  # the same flags the command line takes


def test_variants_of_one_script_get_logs_of_their_own(tmp_path):
    import argparse

    a = argparse.Namespace(
        scripts=["dqn_rainbow"],
        env_ids=["CartPole-v1"],
        seeds=[1],
        track=False,
        runs_dir=str(tmp_path),
        threads=1,
    )
    (plain,) = run.plan(a, [])
    (variant,) = run.plan(a, ["--exp-name", "dqn_rainbow_no_per", "--no-per"])
    assert os.path.basename(plain.log) == "dqn_rainbow__CartPole-v1__1.log"
    assert os.path.basename(variant.log) == "dqn_rainbow_no_per__CartPole-v1__1.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runner_on_a_local_ray_head(tmp_path, capsys):
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    start = [
        ray_cli,
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        status = run.main(
            [
                "--scripts",
                "td3_continuous",
                "--env-ids",
                "Pendulum-v1",
                "--seeds",
                "1",
                "2",
                "--ray-address",
                f"127.0.0.1:{port}",
                "--runs-dir",
                str(tmp_path),
                "--",
                *TINY,
            ]
        )
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)
    out = capsys.readouterr().out
    assert status == 0, out
    assert "on Ray at 127.0.0.1" in out and "2 of 2 runs succeeded" in out
    assert len(os.listdir(tmp_path / "runs")) == 2


def test_report_plots_and_tabulates_the_runs_numbers(tmp_path, monkeypatch):
    import td3_continuous as td3

    monkeypatch.chdir(tmp_path)
    summaries = [
        td3.train(
            td3.Args(
                env_id="Pendulum-v1",
                seed=seed,
                total_timesteps=400,
                learning_starts=200,
                batch_size=32,
                hidden_sizes=(32, 32),
                buffer_size=1000,
                eval_frequency=200,
                eval_episodes=2,
            )
        )
        for seed in (1, 2)
    ]
    peer = tmp_path / "peer.jsonl"
    peer.write_text(
        '{"step": 200, "eval_mean": -1000.0}\n{"step": 400, "eval_mean": -900.0}\n'
        '{"done": true, "steps": 400, "sps": 50.0}\n'
    )
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "report.py",
            "--runs-dir",
            "runs",
            "--out",
            "out",
            "--name",
            "t",
            "--at",
            "200",
            "--peer",
            f"Peer={peer}",
            "--peer-env",
            "Pendulum-v1",
            "--solve-at",
            "-5000",
            "--late-from",
            "400",
        ],
    )
    report.main()
    assert (tmp_path / "out" / "t_Pendulum-v1.png").stat().st_size > 10_000
    table = (tmp_path / "out" / "t.md").read_text()
    finals = np.array([np.mean(s["eval_returns"]) for s in summaries])
    first_evals = [s["eval_history"][0][1] for s in summaries]
    (row,) = [line for line in table.splitlines() if "td3_continuous" in line]
    assert f"{finals.mean():.1f} +- {finals.std():.1f}" in row
    assert f"{np.mean(first_evals):.1f}" in row  # the evaluation at 200 steps
    assert "| 200 (2/2) |" in row  # every seed's first evaluation is above -5000
    assert f"| {finals.mean():.1f} |" in row  # the mean from step 400 on: the final one
    assert "| Pendulum-v1 | Peer (peer) | 1 | 400 | -900.0 |" in table
    assert (tmp_path / "out" / "t_sps.png").exists()
    csv_rows = (tmp_path / "out" / "t_curves.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 2 * 2  # header, two evaluations for each seed


def test_report_leaves_out_a_run_short_of_its_own_total_steps(tmp_path, capsys):
    """A lone run cut off early (no other seed to compare with) is not reported as final."""
    from torch.utils.tensorboard import SummaryWriter

    for seed, total in [(1, 400), (2, 1000)]:
        writer = SummaryWriter(str(tmp_path / f"Pendulum-v1__algo{seed}__{seed}__0"))
        writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n|total_timesteps|{total}|")
        for step in (200, 400):
            writer.add_scalar("eval/episodic_return", -100.0, step)
        writer.close()
    groups = report.collect(str(tmp_path))
    assert list(groups) == [("Pendulum-v1", "algo1")]
    assert "algo2 seed 2: it stops at step 400 of its 1000" in capsys.readouterr().err


def test_report_keeps_the_evaluation_at_a_resumes_checkpoint(tmp_path):
    """A run stopped after its checkpoint at 400 (its evaluation at 600 lost with the stop) and
    resumed: the curve keeps 400, logged before the checkpoint, and takes 600 from the resume."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = str(tmp_path / "Pendulum-v1__algo__1__0")
    first = SummaryWriter(run_dir)
    for step, value in [(200, -900.0), (400, -500.0), (600, -1.0)]:
        first.add_scalar("eval/episodic_return", value, step)
    first.close()
    resumed = SummaryWriter(run_dir, purge_step=400)
    for step, value in [(600, -300.0), (800, -200.0)]:
        resumed.add_scalar("eval/episodic_return", value, step)
    resumed.close()
    curve = report.collect(str(tmp_path))[("Pendulum-v1", "algo")][1]["eval"]
    assert curve == [(200, -900.0), (400, -500.0), (600, -300.0), (800, -200.0)]


def test_report_statistics():
    assert report.iqm(np.array([0.0, 1.0, 2.0, 3.0, 100.0])) == pytest.approx(2.0)
    lo, hi = report.bootstrap_ci(np.array([1.0, 2.0, 3.0]), np.random.default_rng(0))
    assert 1.0 <= lo < 2.0 < hi <= 3.0


def test_eval_at_a_step_is_the_nearest_evaluation_within_3_percent():
    ppo_grid = [(180224, 1.0), (204800, 2.0), (1007616, 3.0)]  # every 3 rollouts of 8192
    assert report.value_at(ppo_grid, 200000) == 2.0
    assert report.value_at(ppo_grid, 1000000) == 3.0
    assert report.value_at(ppo_grid, 300000) is None  # nothing within 3%
    assert report.value_at([(100000, 5.0), (110000, 6.0)], 108000) == 6.0  # nearest, not last


def test_peers_run_ours_and_sb3_interleaved_with_the_same_keys(tmp_path, capsys):
    status = peers.main(
        [
            "td3_continuous",
            "--seeds",
            "1",
            "--runs-dir",
            str(tmp_path),
            "--",
            "--env-id",
            "Pendulum-v1",
            *TINY,
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "speed ratio ours / SB3: median" in out
    names = sorted(os.listdir(tmp_path / "runs"))
    assert [n.split("__")[1] for n in names] == ["sb3_td3", "td3_continuous"]
    scalars = report.read_run(str(tmp_path / "runs" / names[0]))
    assert {"charts/SPS", "eval/episodic_return", "charts/episodic_return"} <= set(scalars)


def test_ppo_peer_logs_the_same_keys_with_normalization(tmp_path, capsys):
    flags = [
        "--env-id",
        "Pendulum-v1",
        "--total-timesteps",
        "512",
        "--num-envs",
        "2",
        "--num-steps",
        "128",
        "--num-minibatches",
        "2",
        "--update-epochs",
        "1",
        "--normalize-obs",
        "--normalize-reward",
        "--eval-frequency",
        "256",
        "--eval-episodes",
        "1",
        "--hidden-sizes",
        "16",
        "16",
    ]
    assert peers.main(["ppo", "--seeds", "1", "--runs-dir", str(tmp_path), "--", *flags]) == 0
    (sb3_run,) = [n for n in os.listdir(tmp_path / "runs") if "__sb3_ppo__" in n]
    scalars = report.read_run(str(tmp_path / "runs" / sb3_run))
    assert [s for s, _ in scalars["eval/episodic_return"]] == [256, 512]


def test_dqn_peer_needs_plain_dqn_and_runs_it(tmp_path, capsys):
    _, rainbow = peers.parse_script_args("dqn_rainbow", [])
    with pytest.raises(SystemExit, match="--per, --double, --dueling, --n-step > 1"):
        peers.check_supported(rainbow)
    plain = [
        "--no-double",
        "--no-per",
        "--no-dueling",
        "--n-step",
        "1",
        "--no-distributional",
        "--no-noisy",
        "--total-timesteps",
        "300",
        "--learning-starts",
        "100",
        "--batch-size",
        "16",
        "--hidden-sizes",
        "16",
        "16",
        "--eval-frequency",
        "0",
        "--eval-episodes",
        "1",
    ]
    assert (
        peers.main(["dqn_rainbow", "--seeds", "1", "--runs-dir", str(tmp_path), "--", *plain]) == 0
    )
    assert sorted(n.split("__")[1] for n in os.listdir(tmp_path / "runs")) == [
        "dqn_rainbow",
        "sb3_dqn",
    ]


@pytest.mark.parametrize("script", ["a2c", "ppo"])
def test_peers_weigh_the_value_loss_as_ours_do(script):
    """SB3's A2C and PPO add vf_coef * mse(returns, values) to the loss (their train()); ours add
    vf_coef * 0.5 * mse. The peer must get the coefficient that makes the two terms equal."""
    import gymnasium as gym
    import torch

    flags = ["--env-id", "CartPole-v1", "--vf-coef", "0.7", "--ent-coef", "0.0"]
    module, args = peers.parse_script_args(script, flags)
    model = getattr(peers, f"sb3_{script}")(args)
    agent = module.Agent(4, gym.spaces.Discrete(2), args)
    gen = torch.Generator().manual_seed(0)
    obs, returns = torch.randn(16, 4, generator=gen), 5 * torch.randn(16, generator=gen)
    actions, zeros = torch.randint(0, 2, (16,), generator=gen), torch.zeros(16)
    with torch.no_grad():  # zero advantages and no entropy bonus: the loss is the value term
        values, logprobs = agent.value(obs), agent.dist(obs).log_prob(actions)
        if script == "a2c":
            ours, _ = module.a2c_loss(agent, obs, actions, zeros, returns, args)
        else:
            ours, _ = module.ppo_loss(agent, obs, actions, logprobs, values, zeros, returns, args)
    sb3 = model.vf_coef * torch.nn.functional.mse_loss(returns, values)
    assert ours.item() == pytest.approx(sb3.item(), rel=1e-6)


def test_peers_refuse_options_sb3_lacks():
    _, args = peers.parse_script_args("td3_continuous", ["--per", "--layer-norm"])
    with pytest.raises(SystemExit, match="no equivalent of --per, --layer-norm"):
        peers.check_supported(args)


def test_report_rewrites_only_the_readme_results_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nrest\n")
    report.update_readme(str(readme), "| new |", "python benchmarks/report.py --x")
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:start -->\n| new |")
    assert "Generated by `python benchmarks/report.py --x`." in text
    assert "old" not in text and text.endswith("<!-- results:end -->\nrest\n")


def test_tennis_solved_episode_is_the_end_of_the_first_window_at_half():
    scores = np.array([0.0] * 100 + [1.0] * 60)
    assert tennis_report.solved_episode(scores) == 150  # episodes 51..150 hold fifty 1.0s
    assert tennis_report.solved_episode(scores[:149]) is None
    assert tennis_report.solved_episode(np.ones(99)) is None  # no 100-episode window yet


def test_tennis_report_counts_running_time_without_the_stop_resume_pause(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    # Four episodes 10 s apart, a 20-minute pause (stopped, then resumed), two more 10 s apart.
    for i, t in enumerate([0.0, 10.0, 20.0, 30.0, 1230.0, 1240.0]):
        writer.add_scalar("charts/episodic_return", 0.1 * i, i, walltime=1e9 + t)
    writer.add_scalar("eval/episodic_return", 2.5, 6, walltime=1e9 + 1240.0)
    writer.close()
    run = tennis_report.read_run(str(tmp_path))
    np.testing.assert_allclose(run["scores"], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], atol=1e-6)
    np.testing.assert_allclose(run["seconds_at_episode"], [0, 10, 20, 30, 30, 40])
    assert run["seconds"] == pytest.approx(40.0)
    assert run["evals"] == [(6, 2.5)]


MEASURED = ("speed", "sumtree.md", "random_play.md", "peers", "robustness.md", "cuda_check.md")
"""results made by measurement scripts, not rebuilt by make_reports.sh"""


def test_make_reports_rebuilds_every_committed_table_and_figure_byte_for_byte(tmp_path):
    """On a copy holding only the committed data (the rebuilt outputs deleted), make_reports.sh
    writes back every table, figure and README's results table exactly as committed: reports
    cannot drift from their data, and nothing committed lacks the data to rebuild it."""
    copy = tmp_path / "repo"
    shutil.copytree(
        os.path.join(ROOT, "benchmarks"),
        copy / "benchmarks",
        ignore=shutil.ignore_patterns("runs", "__pycache__"),
    )
    results = copy / "benchmarks" / "results"
    rebuilt = sorted(
        name
        for name in os.listdir(results)
        if name.endswith((".md", ".png")) and not any(m in name for m in MEASURED)
    )
    assert len(rebuilt) > 20
    for name in rebuilt:
        os.remove(results / name)
    blocks = {"README.md": "results", "docs/benchmarks.md": "ootb"}  # tables inside documents
    committed = {path: open(os.path.join(ROOT, path)).read() for path in blocks}
    for path, marker in blocks.items():
        start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        head, rest = committed[path].split(start)
        (copy / path).parent.mkdir(exist_ok=True)
        (copy / path).write_text(head + start + "\n" + end + rest.split(end)[1])
    env = dict(os.environ, PYTHON=sys.executable, MPLBACKEND="Agg")
    done = subprocess.run(
        ["bash", str(copy / "benchmarks" / "make_reports.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for path in blocks:
        assert (copy / path).read_text() == committed[path], f"{path}'s table differs"
    here = os.path.join(ROOT, "benchmarks", "results")
    assert sorted(os.listdir(results)) == sorted(os.listdir(here))  # nothing missing, nothing new
    for name in rebuilt:
        with open(results / name, "rb") as new, open(os.path.join(here, name), "rb") as old:
            assert new.read() == old.read(), f"{name} differs from its rebuild"


def test_readme_table_refuses_a_row_that_mixes_code_versions(tmp_path, monkeypatch):
    """Each README row reports one code version: seeds from two commits stop the table, naming
    both, instead of averaging runs of different code."""
    run = {"eval": [(10, 1.0), (20, 2.0)], "sps": 50.0, "script": "ppo.py", "commit": "aaa"}
    runs = {1: run, 2: dict(run, commit="bbb")}
    report.merge_into_csv(str(tmp_path / "x_curves.csv"), {("CartPole-v1", "ppo"): runs})
    monkeypatch.setattr(readme_table, "RESULTS", str(tmp_path))
    monkeypatch.setattr(readme_table, "ROWS", [("ppo.py", "PPO", "x", "CartPole-v1", "ppo", [])])
    with pytest.raises(SystemExit, match="ppo on CartPole-v1 mixes runs of commits aaa bbb"):
        readme_table.table()
    rerun = {("CartPole-v1", "ppo"): {1: dict(run, commit="bbb")}}  # seed 1 rerun at bbb
    report.merge_into_csv(str(tmp_path / "x_curves.csv"), rerun)
    assert "| 2 x 0k | 2.0 +- 0.0 |" in readme_table.table()


def test_report_merges_new_runs_into_the_curve_csv(tmp_path):
    """New runs enter the committed data through the CSV: other runs stay, a run reported
    again is replaced, and each row names its script and commit."""
    path = str(tmp_path / "x_curves.csv")
    run = {"eval": [(10, 1.0), (20, 2.0)], "sps": 50.0, "script": "ppo.py", "commit": "aaa"}
    report.merge_into_csv(path, {("CartPole-v1", "ppo"): {1: run, 2: dict(run, commit="bbb")}})
    again = dict(run, eval=[(10, 3.0)], commit="ccc")
    report.merge_into_csv(path, {("CartPole-v1", "ppo"): {2: again}})
    lines = open(path).read().splitlines()
    assert lines[0] == ",".join(report.COLUMNS)
    assert lines[1:] == [
        "ppo.py,CartPole-v1,ppo,1,10,1.00,50,aaa",
        "ppo.py,CartPole-v1,ppo,1,20,2.00,50,aaa",
        "ppo.py,CartPole-v1,ppo,2,10,3.00,50,ccc",
    ]
    assert report.script_of("ppo_default_init") == "ppo.py"
    assert report.script_of("td3_continuous_zoo") == "td3_continuous.py"
    assert report.script_of("sb3_a2c") == "benchmarks/peers.py"


def test_ootb_table_compares_final_and_second_half_evaluations(tmp_path, monkeypatch):
    """Each cell: the final evaluation's mean over seeds and, from 45% of the budget on (SB3
    evaluates at exact tenths, PPO's rollouts put ours a little later), each seed's mean
    evaluation averaged over seeds, both scored against SB3 above random play."""
    import ootb_table

    rows = ["script,env_id,exp_name,seed,step,eval_return,sps,commit"]
    for seed, ours, sb3 in [
        (1, [0, 10, 20, 40], [0, 0, 30, 10]),
        (2, [0, 0, 60, 80], [0, 0, 0, 50]),
    ]:
        for i, (a, b) in enumerate(zip(ours, sb3)):
            rows.append(f"ppo.py,Env-v0,ppo,{seed},{1024 * (i + 1)},{a},9,abc")
            rows.append(
                f"benchmarks/peers.py,Env-v0,sb3_ppo_defaults,{seed},{1000 * (i + 1)},{b},9,-"
            )
    (tmp_path / "ootb_curves.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "ootb_random.csv").write_text("env_id,episodes,random_return\nEnv-v0,100,-10.0\n")
    monkeypatch.setattr(ootb_table, "RESULTS", str(tmp_path))
    cells = ootb_table.table().splitlines()[2].split(" | ")
    # final: ours (40 + 80) / 2 = 60, SB3 (10 + 50) / 2 = 30, score (60 + 10) / (30 + 10) = 1.75
    assert cells[3:5] == ["60.0 +- 20.0", "30.0 +- 20.0"] and cells[6] == "1.75"
    # from 1843 on (0.45 x 4096), the last three evaluations: ours (10, 20, 40) and (0, 60, 80)
    # -> 35; SB3 (0, 30, 10) and (0, 0, 50) -> 15; score (35 + 10) / (15 + 10) = 1.80
    assert cells[7:9] == ["35.0, 15.0", "1.80"]


def test_line_counts_split_a_file_by_kind_and_give_its_floor():
    source = (
        '"""Module docstring: required."""\n'
        "\n"
        "import os\n"
        "\n"
        "\n"
        "# a comment line\n"
        "@dataclass\n"
        "class Args:\n"
        "    seed: int = 1\n"
        '    """a field\'s help: required"""\n'
        "\n"
        "\n"
        "def f(x):\n"
        '    """An optional docstring,\n'
        '    over two lines."""\n'
        "    y = x  # a trailing comment leaves a line of code\n"
        "\n"
        "    return y\n"
    )
    counts = line_counts.count(source)
    assert counts == dict(
        lines=18, code=7, comments=1, docstrings=2, required_help=2, blank=6, floor=14
    ), counts
    # the floor: 7 lines of code, 2 of required help, and the formatter's 1 + 2 + 2 blank lines
