"""No module reaches into another package's private modules: layers meet through the names a
package's ``__init__`` exports (issue 15, item 4)."""

from __future__ import annotations

import ast
from pathlib import Path

import loxone_trio_exporter

PACKAGE_ROOT = Path(loxone_trio_exporter.__file__).parent
PACKAGE = "loxone_trio_exporter"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, absolute (``from X import _y`` also names ``X._y``)."""
    name = module_name(path)
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from ..runtime import _owner`` names a private module too.
            found.extend(
                (node.lineno, f"{target}.{alias.name}")
                for alias in node.names
                if alias.name.startswith("_")
            )
    return found


def owning_package(module: str) -> str:
    """The package a module belongs to: ``a.b._c`` -> ``a.b``; ``a.b`` (a package) -> ``a.b``."""
    parts = module.split(".")
    if (PACKAGE_ROOT.parent.joinpath(*parts) / "__init__.py").exists():
        return module
    return ".".join(parts[:-1])


def private_part(module: str) -> str | None:
    """The first private (underscore) component of a dotted name, if any."""
    for part in module.split(".")[1:]:
        if part.startswith("_") and not part.startswith("__"):
            return part
    return None


def crossings() -> list[str]:
    found = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        importer = module_name(path)
        home = owning_package(importer)
        for line, target in imported_modules(path):
            if not target.startswith(PACKAGE + ".") or private_part(target) is None:
                continue
            parts = target.split(".")
            index = next(i for i, part in enumerate(parts) if part == private_part(target))
            private_home = ".".join(parts[:index])  # the package that keeps it private
            if not (home == private_home or home.startswith(private_home + ".")):
                found.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{line}: {target}")
    return found


def test_no_module_imports_another_packages_private_module() -> None:
    assert crossings() == []


def test_the_walk_sees_a_crossing(tmp_path: Path) -> None:
    # The check itself must be able to fail: a private name reached from outside is one.
    assert private_part("loxone_trio_exporter.protocol._session") == "_session"
    assert private_part("loxone_trio_exporter.protocol.ClientSession") is None
    assert owning_package("loxone_trio_exporter.runtime._owner") == "loxone_trio_exporter.runtime"
    assert owning_package("loxone_trio_exporter.runtime") == "loxone_trio_exporter.runtime"
    sample = PACKAGE_ROOT / "runtime" / "_session.py"
    targets = {target for _line, target in imported_modules(sample)}
    assert "loxone_trio_exporter.runtime._transport" in targets  # ``from ._transport import``
    assert "loxone_trio_exporter.protocol" in targets  # ``from ..protocol import``
