"""The single-file scripts repeat their shared pieces on purpose; these tests keep the copies from
drifting: every `# --- shared: NAME ---` block is identical in each file that has it, the DDPG/TD3
and TD3/SAC pairs differ only by small diffs, and no script imports a local module but sumtree."""

import ast
import difflib
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in ROOT.glob("*.py") if p.name != "sumtree.py")
TORCH_CHECKPOINTS = [p for p in SCRIPTS if p.name != "tabular.py"]  # tabular.py saves .npz
START = re.compile(r"^\s*# --- shared: (\S+) ---$")
END = re.compile(r"^\s*# --- end shared: (\S+) ---$")


def shared_blocks(path: Path) -> dict[str, str]:
    """NAME -> the block's text between its markers; raises on unbalanced or nested markers."""
    blocks, name, lines = {}, None, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if START.match(line):
            assert name is None, f"{path.name}:{number}: block opened inside block {name}"
            name, lines = START.match(line).group(1), []
        elif END.match(line):
            assert END.match(line).group(1) == name, f"{path.name}:{number}: unmatched end marker"
            assert name not in blocks, f"{path.name}: block {name} appears twice"
            blocks[name], name = "\n".join(lines), None
        elif name is not None:
            lines.append(line)
    assert name is None, f"{path.name}: block {name} is never closed"
    return blocks


def test_there_are_scripts_with_shared_blocks():
    assert {p.name for p in SCRIPTS} >= {"ddpg_continuous.py", "td3_continuous.py"}
    assert len(shared_blocks(ROOT / "td3_continuous.py")) >= 5


def test_shared_blocks_are_identical_across_files():
    copies = defaultdict(dict)
    for path in SCRIPTS:
        for name, text in shared_blocks(path).items():
            copies[name][path.name] = text
    for name, by_file in copies.items():
        first_file, first = next(iter(by_file.items()))
        for other_file, text in by_file.items():
            if text != first:
                diff = "\n".join(
                    difflib.unified_diff(
                        first.splitlines(), text.splitlines(), first_file, other_file, lineterm=""
                    )
                )
                pytest.fail(f"shared block {name} differs:\n{diff}")


def test_ddpg_td3_diff_shows_only_td3s_ideas():
    ddpg = (ROOT / "ddpg_continuous.py").read_text().splitlines()
    td3 = (ROOT / "td3_continuous.py").read_text().splitlines()
    changed = [l for l in difflib.ndiff(ddpg, td3) if l[:2] in ("- ", "+ ")]
    assert len(changed) <= 70, f"{len(changed)} changed lines between ddpg and td3 (bar: 70)"


def test_td3_sac_diff_shows_only_sacs_ideas():
    td3 = (ROOT / "td3_continuous.py").read_text().splitlines()
    sac = (ROOT / "sac_continuous.py").read_text().splitlines()
    changed = [l for l in difflib.ndiff(td3, sac) if l[:2] in ("- ", "+ ")]
    # 101 of them drop TD3's exploration options (docs/sac_continuous.md lists the groups)
    assert len(changed) <= 235, f"{len(changed)} changed lines between td3 and sac (bar: 235)"


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
