"""The house rules of docs/architecture.md, checked on the source: no import runs back up, and every module has a room.

Every ``import`` of every module of ``lsi``, ``datamodules`` and ``hardware`` is read from the syntax tree, the
function-local ones included. A module may import from its own room and from rooms of lower rank only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lsi", "datamodules", "hardware")

#: room (a module or package path) -> rank; a module belongs to the longest room path that prefixes it.
RANKS = {
    "lsi": 0, "lsi.labels": 0, "lsi.images": 0, "lsi.physics": 0,
    "hardware": 1, "lsi.generator": 1,
    "lsi.inversion": 2, "datamodules": 2, "lsi.runtime": 2,
    "lsi.identity": 3,
    "lsi.world": 4,
    "lsi.eval": 5, "lsi.report": 5,
    "lsi.models": 6,
    "lsi.deploy": 7,
    "lsi.cli": 8,
    "lsi.experiments": 9,
}
#: modules that belong to a room they do not sit in: ``python -m lsi`` is the ``lsi`` command.
MEMBERS = {"lsi.__main__": "lsi.cli"}
#: what a function-local import of a project module needs: a comment on its line saying why it is local.
LOCAL_IMPORT_REASON = "#"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = all_modules()


def room_of(module: str) -> str | None:
    if module in MEMBERS:
        return MEMBERS[module]
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANKS:
            return ".".join(parts[:n])
    return None


def imported(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, function-local?)`` for every import of a project module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    local_lines = {sub.lineno for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                found.append((target, node.lineno, node.lineno in local_lines))
    return found


def test_every_module_has_a_room():
    homeless = [m for m in MODULES if room_of(m) is None]
    assert not homeless, f"modules without a room (add them to RANKS and docs/architecture.md): {homeless}"


def test_no_import_runs_back_up():
    violations = []
    for module, path in MODULES.items():
        src = room_of(module)
        for target, line, _ in imported(module, path):
            dst = room_of(target)
            if dst is None:
                violations.append(f"{path.relative_to(ROOT)}:{line}: {target} is not a module of the project")
            elif dst != src and RANKS[dst] >= RANKS[src]:
                violations.append(f"{path.relative_to(ROOT)}:{line}: {src} (rank {RANKS[src]}) imports {target} "
                                  f"({dst}, rank {RANKS[dst]})")
    assert not violations, "imports that run back up (docs/architecture.md):\n" + "\n".join(violations)


def test_local_imports_of_project_modules_say_why():
    unexplained = []
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        for _target, line, local in imported(module, path):
            if local and LOCAL_IMPORT_REASON not in lines[line - 1]:
                unexplained.append(f"{path.relative_to(ROOT)}:{line}: {lines[line - 1].strip()}")
    assert not unexplained, ("function-local imports of project modules hide edges; move them to the top or say "
                             "why on the same line (optional/heavy dependency, cycle):\n" + "\n".join(unexplained))


def test_lsi_top_level_stays_small():
    top = sorted(p.name for p in (ROOT / "lsi").glob("*.py"))
    assert len(top) <= 6, f"lsi/ holds {top}: put modules into a room (sub-package) named after their role"


@pytest.mark.parametrize("source, target, allowed", [
    ("lsi.models.heads", "lsi.eval.metrics", True),
    ("lsi.eval.reconstruction", "lsi.models.imaging", False),
    ("hardware.capture", "datamodules.synthetic", False),
    ("datamodules.measured", "hardware.store", True),
    ("lsi.experiments.table1", "lsi.cli.main", True),
    ("lsi.physics.operator", "lsi.physics.noise", True),
])
def test_the_rule_itself(source, target, allowed):
    src, dst = room_of(source), room_of(target)
    assert (src == dst or RANKS[dst] < RANKS[src]) is allowed


def test_the_runtime_imports_neither_torch_nor_lightning():
    """`lsi infer` / `lsi plan` start fast: the runtime room and the `lsi` entry point import no torch, no Lightning
    and no data modules (ONNX Runtime itself only when a model is opened)."""
    import subprocess
    import sys

    code = ("import sys, lsi.cli.main, lsi.runtime.infer, lsi.runtime.plan; "
            "print(sorted(m for m in ('torch', 'lightning', 'datamodules', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
