"""The layer rule of ARCHITECTURE.md, checked on the source: no module imports a higher layer.

Order, low to high: base < crypto < encoding < merkle < wasm < pvm < protocol < l1 < node <
client < tools < cli. Imports within one layer are fine; imports inside functions and under
``TYPE_CHECKING`` count like any other (a dependency is a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAYERS = [
    "base",
    "crypto",
    "encoding",
    "merkle",
    "wasm",
    "pvm",
    "protocol",
    "l1",
    "node",
    "client",
    "tools",
    "cli",
]
RANK = {name: rank for rank, name in enumerate(LAYERS)}
SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "soru"


def module_name(path: Path, root: Path = SRC) -> str:
    """``src/soru/wasm/exec/machine.py`` -> ``soru.wasm.exec.machine``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> int | None:
    """The rank of the layer a ``soru.*`` module belongs to; None outside soru.

    The package root ``soru`` sits at the bottom (it must import nothing), ``soru.__main__``
    at the top beside ``cli``."""
    parts = name.split(".")
    if parts[0] != "soru":
        return None
    if len(parts) == 1:
        return RANK["base"]
    if parts[1] == "__main__":
        return RANK["cli"]
    if parts[1] not in RANK:
        raise AssertionError(f"{name} is in no known layer; add it to LAYERS")
    return RANK[parts[1]]


def imported_modules(path: Path, root: Path = SRC) -> list[tuple[int, str]]:
    """Every ``(line, module)`` a file imports, relative imports resolved; for
    ``from soru import x`` the module ``soru.x`` counts."""
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            found.extend(
                (node.lineno, f"{base}.{alias.name}")
                for alias in node.names
                if base == "soru" and (alias.name in RANK or alias.name == "__main__")
            )
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_sources_found() -> None:
    assert len(SOURCES) > 5


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_of_a_higher_layer(path: Path) -> None:
    own = layer_of(module_name(path))
    assert own is not None
    bad = []
    for line, target in imported_modules(path):
        rank = layer_of(target)
        if target != "soru" and rank is not None and rank > own:
            bad.append(f"line {line}: imports {target} (layer {LAYERS[rank]})")
    assert not bad, f"{path.relative_to(SRC)} (layer {LAYERS[own]}) " + "; ".join(bad)


def test_checker_catches_violation(tmp_path: Path) -> None:
    """The checker itself: a relative import reaching a higher layer is found."""
    layer_dir = tmp_path / "soru" / "wasm"
    layer_dir.mkdir(parents=True)
    sample = layer_dir / "x.py"
    sample.write_text("from ..node import y\nfrom soru import cli\nimport soru.base.errors\n")
    targets = [t for _, t in imported_modules(sample, tmp_path)]
    assert "soru.node" in targets and "soru.cli" in targets and "soru.base.errors" in targets
    assert layer_of("soru.node") > layer_of("soru.wasm.x")
