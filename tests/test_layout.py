"""The package's shape, as ARCHITECTURE.md and STYLE.md promise it: small modules, layers that
point one way, one home for the state machine."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "batchscribe"
MODULES = sorted(PACKAGE.rglob("*.py"))

#: Limits from the issue that redesigned the heart: a reader sees a whole unit at once.
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200
MAX_FUNCTION_LINES = 60


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _definitions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node


def _length(node: ast.stmt) -> int:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return (node.end_lineno or node.lineno) - first + 1


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_classes_and_functions_stay_small(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    too_long = [
        f"{node.name}: {_length(node)} lines"
        for node in _definitions(ast.parse(source))
        if _length(node)
        > (MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES)
    ]
    assert not too_long


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_engines_import_neither_the_journal_nor_the_walk() -> None:
    for path in sorted((PACKAGE / "engines").glob("*.py")):
        assert not _imports(path) & {"batchscribe.state.journal", "batchscribe.run.walk"}, _name(
            path
        )


def test_states_are_compared_only_inside_the_journal() -> None:
    """`State.X` (a comparison, or a write) appears nowhere but journal.py."""
    for path in MODULES:
        if path.name == "journal.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert node.value.id != "State", f"{_name(path)}:{node.lineno}"
