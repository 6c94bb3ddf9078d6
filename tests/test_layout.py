"""The layout rules of docs/architecture.md, checked: imports follow the data flow, modules are named after ideas.

Every import of ours is read from the source (lazy imports inside functions too), so a shortcut taken
"just here" fails this test instead of quietly knotting the packages together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import insideLLMs

SRC = Path(insideLLMs.__file__).parent

BASE = {"errors", "canonical", "jsonl", "secrets", "stats", "backoff"}
#: package -> what it may import (besides itself); must match the table in docs/architecture.md
ALLOWED: dict[str, set[str]] = {
    **{name: set() for name in BASE},
    "config": {"errors", "secrets"},
    "registry": {"errors"},
    "datasets": {"errors", "canonical", "jsonl"},
    "models": {"errors", "registry"},
    "scorers": {"errors", "registry", "config", "datasets", "models"},
    "probes": {"errors", "registry", "config", "datasets", "models", "scorers"},
    "rundir": {"errors", "canonical", "jsonl", "models", "stats"},
    "events": {"rundir"},
    "report": {"errors", "canonical", "rundir", "stats"},
    "diff": {"errors", "canonical", "jsonl", "rundir", "report", "stats"},
    "run": BASE | {"config", "registry", "datasets", "models", "scorers", "probes", "rundir", "events", "report"},
    "tracking": {"errors", "canonical", "jsonl", "secrets", "config", "events", "rundir", "stats", "backoff"},
}


def _unit(module: str) -> str:
    """The package (or top-level module) a dotted ``insideLLMs...`` name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "insideLLMs"


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "insideLLMs":
            if node.module == "insideLLMs":
                found += [(f"insideLLMs.{a.name}", node.lineno) for a in node.names if a.name != "__version__"]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "insideLLMs"]
    return found


def test_imports_follow_the_data_flow() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        unit = rel.parts[0].removesuffix(".py")
        if unit in ("cli", "__init__", "__main__"):
            continue
        assert unit in ALLOWED, f"{rel}: a new package or top-level module; add it to ALLOWED and docs/architecture.md"
        for module, line in _imports(path):
            target = _unit(module)
            if target != unit and target not in ALLOWED[unit]:
                wrong.append(f"src/insideLLMs/{rel}:{line}: {unit} imports {module}")
    assert wrong == []


def test_the_allowed_imports_have_no_cycle() -> None:
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in ALLOWED.get(start, ()))

    assert [unit for unit in ALLOWED if reaches(unit, unit)] == []


def test_modules_are_named_after_ideas() -> None:
    vague = {"utils", "util", "helpers", "helper", "misc", "common", "values", "stuff"}
    named_vaguely = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.stem.lstrip("_") in vague]
    assert named_vaguely == []
