"""How each script's lines divide into code, comments, docstrings and blank lines, and its floor.

The floor is the length a script would have with every statement kept and nothing else: no comment,
no function or class docstring, no blank line the formatter does not require. Only the module
docstring and the one-line help under each `Args` field stay, as ../shared/CONVENTIONS.md asks for
them. A line-count target below the floor cannot be met without removing code.

Usage: python benchmarks/line_counts.py [SCRIPT ...]   (default: every script)
"""

import argparse
import ast
import io
import os
import tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def docstring_lines(tree: ast.Module) -> tuple[set[int], set[int]]:
    """Line numbers of function and class docstrings, and of the module's and Args' field help."""
    optional, required = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0]
            if ast.get_docstring(node) is not None:
                lines = set(range(first.lineno, first.end_lineno + 1))
                (required if isinstance(node, ast.Module) else optional).update(lines)
        if isinstance(node, ast.ClassDef) and node.name == "Args":
            for stmt in node.body[1:]:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    required.update(range(stmt.lineno, stmt.end_lineno + 1))
    return optional, required


def required_blank_lines(body: list[ast.stmt], top_level: bool) -> int:
    """Blank lines the formatter puts between statements: two around a top-level function or
    class, one around a nested one, one after the module docstring and after a block of imports,
    none elsewhere; recursively for every block."""
    total = 0
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    imports = (ast.Import, ast.ImportFrom)
    for i, (before, after) in enumerate(zip(body, body[1:])):
        if isinstance(before, defs) or isinstance(after, defs):
            total += 2 if top_level else 1
        elif isinstance(before, imports) and not isinstance(after, imports):
            total += 1
        elif top_level and i == 0 and isinstance(before, ast.Expr):  # the module docstring
            total += 1
    for stmt in body:
        for field in ("body", "orelse", "finalbody"):
            total += required_blank_lines(getattr(stmt, field, []) or [], False)
        for handler in getattr(stmt, "handlers", []):
            total += required_blank_lines(handler.body, False)
    return total


def count(source: str) -> dict[str, int]:
    """Lines of each kind, and the floor."""
    lines = source.splitlines()
    tree = ast.parse(source)
    optional, required = docstring_lines(tree)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    comment_only = {t.start[0] for t in tokens if t.type == tokenize.COMMENT}
    comment_only = {n for n in comment_only if lines[n - 1].lstrip().startswith("#")}
    blank = {n for n, line in enumerate(lines, 1) if not line.strip()}
    docs = optional | required
    code = set(range(1, len(lines) + 1)) - blank - comment_only - docs
    floor = len(code) + len(required) + required_blank_lines(tree.body, True)
    return dict(
        lines=len(lines),
        code=len(code),
        comments=len(comment_only - docs),
        docstrings=len(optional),
        required_help=len(required),
        blank=len(blank - docs),
        floor=floor,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="*", help="scripts to count (default: every script)")
    scripts = parser.parse_args().scripts or sorted(
        name for name in os.listdir(ROOT) if name.endswith(".py") and name != "sumtree.py"
    )
    columns = ["lines", "code", "comments", "docstrings", "required_help", "blank", "floor"]
    print("| script | " + " | ".join(columns) + " |")
    print("|-" * (len(columns) + 1) + "|")
    for name in scripts:
        with open(os.path.join(ROOT, name)) as f:
            counts = count(f.read())
        print(f"| {os.path.basename(name)} | " + " | ".join(str(counts[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
