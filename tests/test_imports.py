"""The module graph of videostyle and flow: every module imports, and no import cycle anywhere.

Imports inside functions (lazy ones) and under ``TYPE_CHECKING`` count too: hiding a cycle in a
function still ties the two modules together.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("videostyle", "flow")


def module_files() -> dict[str, Path]:
    """Every module of our packages by its dotted name (a package by its ``__init__``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that ``name`` imports anywhere in its source. ``from P import m`` counts as an
    import of the module ``P.m`` when ``m`` is one, else of ``P``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" when fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_lazy_cycle_and_passes_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "farm.py"
    module.write_text("from . import pipeline\n\ndef f():\n    from videostyle.jobdir import JobDir\n")
    known = {"videostyle", "videostyle.pipeline", "videostyle.jobdir", "videostyle.farm"}
    assert imported_modules("videostyle.farm", module, known) == {"videostyle.pipeline", "videostyle.jobdir"}


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(set(module_files()) - {"videostyle.__main__"}))  # it runs the CLI
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def readme_rows() -> dict[str, int]:
    """Each module the README's module map names, by its row (0 at the top). A cell names a
    module by its path, or by its file name after a path in the same cell: `videostyle/a.py`, `b.py`."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| module | concept |"):]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")]
    found = {}
    for rank, row in enumerate(rows):
        folder = ""
        for name in (n for n in row.split("|")[1].split("`") if n.strip(" ,")):
            if "/" in name:
                folder = name.rstrip("/").rpartition("/")[0] if name.endswith(".py") else name.rstrip("/")
                path = name.rstrip("/")
            else:
                path = f"{folder}/{name}"
            found[path.removesuffix(".py").replace("/", ".")] = rank
    return found


def test_the_readme_module_map_names_every_module_and_imports_point_down() -> None:
    rows = readme_rows()

    def row_of(module: str) -> int:  # a module in a folder the map names as a whole; -1: not named
        while module not in rows and "." in module:
            module = module.rpartition(".")[0]
        return rows.get(module, -1)

    graph = import_graph()
    entry_points = {"videostyle", "videostyle.__main__"}  # the version, and `python -m videostyle`
    assert [m for m in graph if row_of(m) < 0 and m not in entry_points] == []
    upward = [f"{m} -> {d}" for m, deps in graph.items() for d in deps - entry_points
              if m not in entry_points and row_of(d) < row_of(m)]
    assert upward == [], "imports of modules listed above the importer in the README: " + ", ".join(upward)


# One frame's optimisation knows nothing of jobs, stages or engines: inside videostyle the frame
# package may import only itself and these (the version, settings, errors, image files, looks).
FRAME = "videostyle.frame"
FRAME_MAY_IMPORT = {"videostyle", "videostyle.config", "videostyle.errors", "videostyle.images", "videostyle.looks"}


def frame_imports_outside(graph: dict[str, set[str]]) -> list[str]:
    """``module -> import`` for each import of a frame module that is not allowed it."""
    def allowed(target: str) -> bool:
        return (target == FRAME or target.startswith(FRAME + ".") or target in FRAME_MAY_IMPORT
                or target == "flow" or target.startswith("flow."))

    return sorted(f"{m} -> {d}" for m, deps in graph.items() if m == FRAME or m.startswith(FRAME + ".")
                  for d in deps if not allowed(d))


def test_the_frame_rule_catches_an_import_of_a_stage() -> None:
    graph = {"videostyle.frame.stylize": {"videostyle.frame.losses", "videostyle.config", "flow.warp"},
             "videostyle.frame.memory": {"videostyle.video_io"}, "videostyle.passes": {"videostyle.jobdir"}}
    assert frame_imports_outside(graph) == ["videostyle.frame.memory -> videostyle.video_io"]


def test_the_frame_package_imports_nothing_of_jobs_stages_or_engines() -> None:
    outside = frame_imports_outside(import_graph())
    assert outside == [], "videostyle.frame imports outside what it may: " + ", ".join(outside)
