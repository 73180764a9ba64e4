"""The state core's import graph (issue 14, item 3): no cycles; families read frozen facts only.

Read from the source with ``ast`` (relative and absolute imports inside the package, also those
under ``TYPE_CHECKING``), so a cycle hidden from the interpreter by a late import counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import loxone_trio_exporter

PACKAGE = Path(loxone_trio_exporter.__file__).parent
NAME = "loxone_trio_exporter"
#: The state core and what it is built on; the connection side is not part of it.
CORE = (
    "state",
    "structure",
    "exposition",
    "runtime._owner",
    "runtime._families",
    "runtime._facts",
    "runtime._miniserver",
    "runtime._messages",
    "runtime._web_source",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The package's modules ``path`` imports (``a.b`` for ``from .a import b`` when ``a.b``
    is a module, else ``a``)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith(NAME):
                target = node.module.removeprefix(NAME).lstrip(".")
            else:
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(NAME + "."):
                    found.add(alias.name.removeprefix(NAME + "."))
    return {name for name in found if name in MODULES and name != here}


MODULES = {module_name(path) for path in PACKAGE.rglob("*.py")}


def in_core(name: str) -> bool:
    return any(name == core or name.startswith(core + ".") for core in CORE)


def core_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if in_core(name):
            graph[name] = {target for target in imports_of(path) if in_core(target)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as the list of modules around it), or ``None``."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for target in sorted(graph.get(name, ())):
            cycle = visit(target, [*path, name])
            if cycle:
                return cycle
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name, [])
        if cycle:
            return cycle
    return None


def test_the_state_core_has_no_import_cycle() -> None:
    graph = core_graph()
    assert {"runtime._families", "runtime._owner", "state._store"} <= graph.keys()
    assert find_cycle(graph) is None


def test_families_are_built_from_frozen_facts_alone() -> None:
    imported = core_graph()["runtime._families"]
    assert "runtime._facts" in imported
    assert not imported & {"runtime._owner", "runtime._miniserver", "state._store"}


def test_a_cycle_is_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
