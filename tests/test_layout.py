"""The package's shape, as docs/ARCHITECTURE.md draws it: layers that point one way, a map
that names every module, idea-sized modules, one home for the state machine.

Each layer rule is its own test, named after the rule it checks; `LAYERS` is the table the
map's "Layers" section shows.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "batchscribe"
MODULES = sorted(PACKAGE.rglob("*.py"))
ARCHITECTURE = REPO / "docs/ARCHITECTURE.md"

#: Smell limits, not a cage: room for an idea-sized module (arq's worker.py is one idea in
#: 900 lines), while a 60-line function is still read at once.
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60
#: The flat codebases we learn from keep 12-23 modules at the top (arq, tenacity, httpx).
MAX_TOP_LEVEL_MODULES = 16

#: The layer of each top-level module; a module in a folder is in its folder's layer.
TOP_LEVEL = {
    "__init__": "shared",
    "__main__": "front",
    "cli": "front",
    "flags": "front",
    "logs": "front",
    "status": "front",
    "dry_run": "front",
    "report": "report",
    "config": "settings",
    "config_file": "settings",
    "errors": "shared",
    "transcript": "shared",
    "fingerprint": "shared",
    "recording": "shared",
    "lines": "shared",
    "progress": "report",
}
#: What each layer may import (besides itself). Dependencies point down: the command line
#: drives the run; the run drives state, engines and output; all share the types.
MAY_IMPORT = {
    "front": {"serve", "report", "run", "state", "engines", "output", "settings", "shared"},
    # `batchscribe serve` is its own command: it sets up logging as the command line does
    "serve": {"run", "state", "engines", "output", "settings", "shared", "logs"},
    "run": {"report", "state", "engines", "output", "settings", "shared"},
    "state": {"output", "settings", "shared"},
    "engines": {"output", "settings", "shared"},
    "output": {"shared"},
    "report": {"shared"},
    "settings": {"output", "shared"},
    "shared": set(),
}


def _name(path: Path, root: Path = PACKAGE.parent) -> str:
    return str(path.relative_to(root))


def _dotted(path: Path, root: Path = PACKAGE.parent) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def layer_of(module: str) -> str:
    """`batchscribe.run.walk` -> "run"; `batchscribe.config` -> "settings"."""
    parts = module.split(".")[1:]
    if not parts:
        return "shared"  # the package itself: only __version__
    if len(parts) > 1 or parts[0] in {"run", "state", "engines", "output", "serve", "settings"}:
        return parts[0]
    return TOP_LEVEL[parts[0]]


def _imports(path: Path) -> set[str]:
    """The batchscribe modules `path` imports, wherever in the file (lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "batchscribe"}


def _against_the_layers(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """What `path` (a module of the package laid out under `root`) imports against the table."""
    mine = layer_of(_dotted(path, root))
    wrong = []
    for module in sorted(_imports(path)):
        theirs = layer_of(module)
        allowed = MAY_IMPORT[mine]
        if theirs != mine and theirs not in allowed and module[12:] not in allowed:
            wrong.append(f"{_name(path, root)} ({mine}) imports {module} ({theirs})")
    return wrong


def _in(folder: str) -> list[Path]:
    """The modules of a layer's folder, its families' sub-folders included."""
    return [path for path in MODULES if path.relative_to(PACKAGE).parts[0] == folder]


def test_every_top_level_module_has_a_layer() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top == set(TOP_LEVEL)


def test_at_most_16_modules_at_the_top_level() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= MAX_TOP_LEVEL_MODULES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_imports_point_down_the_layers(path: Path) -> None:
    """The whole table: each module imports only its own layer and those below it."""
    assert not _against_the_layers(path)


def test_output_imports_neither_run_nor_state() -> None:
    for path in _in("output"):
        assert not {layer_of(m) for m in _imports(path)} & {"run", "state"}, _name(path)


def test_engines_import_neither_run_state_nor_the_command_line() -> None:
    for path in _in("engines"):
        layers = {layer_of(m) for m in _imports(path)}
        assert not layers & {"run", "state", "front", "report"}, _name(path)


def test_state_imports_no_engine() -> None:
    for path in _in("state"):
        assert not {layer_of(m) for m in _imports(path)} & {"engines", "run"}, _name(path)


#: The engines' shared interface: all that the run, the state and the outputs may know of an
#: engine (the settings know none: the layer table). A family's folder is the factory's to import.
ENGINE_INTERFACE = {
    "batchscribe.engines.base",
    "batchscribe.engines.factory",
    "batchscribe.engines.stats",
    "batchscribe.engines.confidence",
}


def _engine_families_imported(path: Path) -> set[str]:
    return {
        module
        for module in _imports(path)
        if layer_of(module) == "engines" and module not in ENGINE_INTERFACE
    }


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if layer_of(_dotted(p)) in {"run", "state", "output"}],
    ids=_name,
)
def test_run_state_and_output_know_engines_only_by_their_interface(path: Path) -> None:
    assert not _engine_families_imported(path)


def test_the_layer_rules_catch_an_import_against_them(tmp_path: Path) -> None:
    """The checker itself: an engine importing the journal is caught (a rule that cannot
    fail proves nothing). The rogue module lies in a copy of the layout, not in the package."""
    rogue = tmp_path / "batchscribe" / "engines" / "rogue_for_test.py"
    rogue.parent.mkdir(parents=True)
    rogue.write_text("from batchscribe.state.journal import Journal\n", encoding="utf-8")
    assert _against_the_layers(rogue, tmp_path) == [
        "batchscribe/engines/rogue_for_test.py (engines) imports batchscribe.state.journal (state)"
    ]


def _layer_table() -> list[tuple[str, set[str], set[str]]]:
    """The map's "Layers" table, row by row: (layer, its modules or folder, what it may
    import), in the words `LAYERS`/`MAY_IMPORT` use."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in {"layer", "---"}:
            continue
        name = cells[0].split(" (")[0].removesuffix(" types")
        where = set(re.findall(r"`([\w/]+)`", cells[1]))
        named = re.sub(r"\([^)]*\)", "", cells[2])  # "(pure)", "(its command ...)"
        may = {word.replace("/", ".") for word in re.findall(r"[\w/]+", named)}
        rows.append((name, where, may))
    return rows


def test_the_maps_layer_table_is_the_one_the_tests_check() -> None:
    """docs/ARCHITECTURE.md's table says what `TOP_LEVEL` and `MAY_IMPORT` say: every module
    in its layer's row, and each layer's imports as listed ("everything below" for the front,
    "nothing of ours" for the shared types)."""
    rows = _layer_table()
    assert [name for name, _, _ in rows] == list(MAY_IMPORT)
    for index, (name, where, may) in enumerate(rows):
        folders = {entry.rstrip("/") for entry in where if entry.endswith("/")}
        modules = where - {f"{folder}/" for folder in folders}
        assert modules == {module for module, layer in TOP_LEVEL.items() if layer == name}, name
        assert all(layer_of(f"batchscribe.{folder}.x") == name for folder in folders), name
        if may == {"everything", "below"}:
            may = {below for below, _, _ in rows[index + 1 :]}
        elif may == {"nothing", "of", "ours"}:
            may = set()
        assert may == MAY_IMPORT[name], name


def _definitions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node


def _length(node: ast.stmt) -> int:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return (node.end_lineno or node.lineno) - first + 1


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_modules_classes_and_functions_stay_idea_sized(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    too_long = [
        f"{node.name}: {_length(node)} lines"
        for node in _definitions(ast.parse(source))
        if _length(node)
        > (MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES)
    ]
    assert not too_long


def test_states_are_compared_only_inside_the_journal() -> None:
    """`State.X` (a comparison, or a write) appears nowhere but journal.py."""
    for path in MODULES:
        if path.name == "journal.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert node.value.id != "State", f"{_name(path)}:{node.lineno}"


def _mapped_modules() -> set[str]:
    """The module paths the map's module tables name (`run/walk.py`, `cli.py`)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([\w/]+\.py)` \|", text, flags=re.MULTILINE))


def test_the_map_names_every_module_and_none_that_is_gone() -> None:
    modules = {str(path.relative_to(PACKAGE)) for path in MODULES}
    assert _mapped_modules() == modules


def test_nothing_cites_a_document_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = re.compile(r"\.\./shared|(?<![\w/])STYLE\.md|(?<![\w/.])ARCHITECTURE\.md")
    citing = []
    for name in tracked:
        path = REPO / name
        if path.suffix not in {".py", ".md", ".toml", ".txt", ".cfg", ".sh"} and name != ".ci/run":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if outside.search(line):
                citing.append(f"{name}:{number}: {line.strip()}")
    assert not citing
