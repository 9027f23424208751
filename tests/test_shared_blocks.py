"""The single-file scripts repeat their shared pieces on purpose; these tests keep the copies from
drifting: every piece listed in SHARED_BY_NAME is the same text in each script of its group, the
DDPG/TD3, TD3/SAC and A2C/PPO pairs differ only by small diffs, every script reads algorithm first
and plumbing last, and no script imports a local module but sumtree."""

import ast
import difflib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in ROOT.glob("*.py") if p.name != "sumtree.py")
TORCH_CHECKPOINTS = [p for p in SCRIPTS if p.name != "tabular.py"]  # tabular.py saves .npz
# Pieces shared by name: each top-level function, class or constant listed for a group of scripts
# is the same text in every script of the group. A reader finds them by their names; no markers.
CONTINUOUS = ("ddpg_continuous.py", "td3_continuous.py", "sac_continuous.py")
ON_POLICY = ("a2c.py", "ppo.py", "reinforce.py")
TORCH = (*CONTINUOUS, *ON_POLICY, "dqn_rainbow.py", "maddpg_tennis.py")
SHARED_BY_NAME = {
    TORCH: (
        "SCRIPT LOSS_BOUND StopRequest check_common_args crossed load_checkpoint "
        "load_weights log_hyperparameters log_loss new_run_name resumed_args rng_states "
        "save_checkpoint seed_everything set_rng_states"
    ).split(),
    (*TORCH, "tabular.py"): ["check_rules", "parse_args", "writer_thread_failed"],
    tuple(f for f in TORCH if f != "maddpg_tennis.py"): ["check_env_id", "evaluate", "mlp"],
    (*CONTINUOUS, *ON_POLICY): ["make_env", "QuietBullet"],
    (*CONTINUOUS, "dqn_rainbow.py", "maddpg_tennis.py"): ["report_buffer_memory"],
    ON_POLICY: ["FIX", "Run", "SESSION_FIELDS", "make_vector_env"],
    ("a2c.py", "ppo.py"): ["Agent", "RunningMeanStd", "compute_gae", "layer_init"],
    CONTINUOUS: (
        "mlp ReplayBuffer soft_update FIX LOG_EVERY validate_args.__doc__ checked_args "
        "buffer_state restore_buffer Run SESSION_FIELDS make_vector_env"
    ).split(),
    ("ddpg_continuous.py", "td3_continuous.py"): ["Actor", "Exploration", "evaluate_checkpoint"],
}


def top_level_sources(path: Path) -> dict[str, str]:
    """NAME -> source text of each top-level function, class and assignment (with decorators)."""
    text = path.read_text()
    lines = text.splitlines()
    sources = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            sources[node.name] = "\n".join(lines[start - 1 : node.end_lineno])
            doc = ast.get_docstring(node)
            sources[f"{node.name}.__doc__"] = doc
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            sources[node.targets[0].id] = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    return sources


@pytest.mark.parametrize("group", list(SHARED_BY_NAME), ids=lambda g: "+".join(g)[:60])
def test_pieces_shared_by_name_are_identical(group):
    sources = {name: top_level_sources(ROOT / name) for name in group}
    for piece in SHARED_BY_NAME[group]:
        first = sources[group[0]].get(piece)
        assert first is not None, f"{group[0]} has no {piece}"
        for other in group[1:]:
            text = sources[other].get(piece)
            if text != first:
                diff = "\n".join(
                    difflib.unified_diff(
                        first.splitlines(), (text or "").splitlines(), group[0], other, lineterm=""
                    )
                )
                pytest.fail(f"{piece} differs:\n{diff}")


def test_ddpg_td3_diff_shows_only_td3s_ideas():
    ddpg = (ROOT / "ddpg_continuous.py").read_text().splitlines()
    td3 = (ROOT / "td3_continuous.py").read_text().splitlines()
    changed = [l for l in difflib.ndiff(ddpg, td3) if l[:2] in ("- ", "+ ")]
    assert len(changed) <= 70, f"{len(changed)} changed lines between ddpg and td3 (bar: 70)"


def test_td3_sac_diff_shows_only_sacs_ideas():
    td3 = (ROOT / "td3_continuous.py").read_text().splitlines()
    sac = (ROOT / "sac_continuous.py").read_text().splitlines()
    changed = [l for l in difflib.ndiff(td3, sac) if l[:2] in ("- ", "+ ")]
    # each is one of SAC's ideas or a TD3 piece it drops (docs/sac_continuous.md lists the groups)
    assert len(changed) <= 200, f"{len(changed)} changed lines between td3 and sac (bar: 200)"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_import_no_local_module_but_sumtree(path):
    local = {p.stem for p in ROOT.glob("*.py")} - {"sumtree"}
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        assert not set(names) & local, f"{path.name} imports a local module: {names}"


@pytest.mark.parametrize("path", TORCH_CHECKPOINTS, ids=lambda p: p.name)
def test_checkpoint_with_an_option_the_script_lacks_is_refused_by_name(path, tmp_path):
    """A checkpoint from another version (an option since removed) gets a clear error naming the
    option, not a TypeError from the Args constructor."""
    import importlib

    import torch

    script = importlib.import_module(path.stem)
    ckpt = tmp_path / "old.pt"
    torch.save({"args": {"seed": 3, "no_such_option": False}}, ckpt)
    with pytest.raises(ValueError, match="no_such_option"):
        script.load_checkpoint(str(ckpt))
    torch.save({"args": {"seed": 3}}, ckpt)
    assert script.load_checkpoint(str(ckpt))["args"] == {"seed": 3}


@pytest.mark.parametrize("path", TORCH_CHECKPOINTS, ids=lambda p: p.name)
def test_a_loadable_file_that_is_no_checkpoint_is_refused_clearly(path, tmp_path):
    """A file torch can load but that holds no saved options (bare weights, a list) gets a clear
    error, not an AttributeError or KeyError later in train()."""
    import importlib

    import torch

    script = importlib.import_module(path.stem)
    for content in [{"actor": {}}, [1, 2]]:
        torch.save(content, tmp_path / "weights.pt")
        with pytest.raises(ValueError, match="holds no saved options"):
            script.load_checkpoint(str(tmp_path / "weights.pt"))


# The reading order (../shared/CONVENTIONS.md): Args, networks and storage, the update steps,
# train(), then the plumbing. Each script names its update steps; every plumbing function it has
# must come after train().
UPDATE_STEPS = {
    "ddpg_continuous.py": ["update_critic", "update_actor"],
    "td3_continuous.py": ["update_critic", "update_actor"],
    "sac_continuous.py": ["update_critic", "update_actor"],
    "dqn_rainbow.py": ["dqn_loss"],
    "ppo.py": ["compute_gae", "ppo_loss"],
    "a2c.py": ["compute_gae", "a2c_loss"],
    "reinforce.py": ["episode_returns", "update"],
    "maddpg_tennis.py": ["update"],
    "tabular.py": ["td_target", "monte_carlo_update"],
}
PLUMBING = [
    "validate_args",
    "check_env_id",
    "make_env",
    "make_vector_env",
    "evaluate",
    "save_checkpoint",
    "load_checkpoint",
    "seed_everything",
    "new_run_name",
    "log_hyperparameters",
    "evaluate_checkpoint",
]
NESTING = (ast.For, ast.While, ast.If, ast.With, ast.Try, ast.Match)


def nesting_depth(node: ast.AST, depth: int = 0) -> int:
    """The deepest nesting of loops, branches, with- and try-blocks under node."""
    deepest = depth
    for child in ast.iter_child_nodes(node):
        deepest = max(deepest, nesting_depth(child, depth + isinstance(child, NESTING)))
    return deepest


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_read_algorithm_first_plumbing_last(path):
    tree = ast.parse(path.read_text())
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    train = defs["train"]
    length = train.end_lineno - train.lineno + 1
    assert length <= 160, f"train() is {length} lines (bar: 160)"
    assert nesting_depth(train) <= 4, f"train() nests {nesting_depth(train)} deep (bar: 4)"
    assert defs["Args"].lineno < min(defs[name].lineno for name in UPDATE_STEPS[path.name])
    for name in UPDATE_STEPS[path.name]:
        assert defs[name].lineno < train.lineno, f"update step {name} comes after train()"
    for name in PLUMBING:
        if name in defs:
            assert defs[name].lineno > train.lineno, f"plumbing {name} comes before train()"
    main = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert main[-1] is tree.body[-1], "the __main__ block is not last"


def test_td3_update_steps_come_before_line_300():
    lines = (ROOT / "td3_continuous.py").read_text().splitlines()
    # issue 21 aims at 700 lines; with every feature kept it is 980 (docs/td3_continuous.md)
    assert len(lines) <= 980, f"td3_continuous.py is {len(lines)} lines (it was 980)"
    start = next(i for i, line in enumerate(lines, 1) if line.startswith("def update_critic"))
    assert start < 300, f"the critic update starts at line {start} (bar: before 300)"
