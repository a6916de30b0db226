"""The dependency rule, checked on every import statement (lazy ones too):

systems may import core, llm, vision and net; llm, vision and net import only core; core
imports nothing else from tenfold; no system imports another; errors is open to all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tenfold

SRC = Path(tenfold.__file__).parent
LAYERS = {"llm", "vision", "net"}


def _unit(module: str) -> str:
    """'tenfold.systems.marconi.cache' -> 'systems.marconi'; 'tenfold.core.x' -> 'core'."""
    parts = module.split(".")[1:]
    if not parts:
        return "tenfold"
    if parts[0] == "systems" and len(parts) > 1:
        return f"systems.{parts[1]}"
    return parts[0]


def _allowed(src: str, dst: str) -> bool:
    if dst in ("errors", "tenfold") or src == dst:
        return dst != "tenfold" or src in ("cli", "tenfold")
    if src == "core":
        return False
    if src in LAYERS:
        return dst == "core"
    if src.startswith("systems."):
        return dst == "core" or dst in LAYERS
    return src in ("cli", "tenfold")


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tenfold")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("tenfold"):
                found.append((node.lineno, target))
    return found


def test_every_import_follows_the_rule() -> None:
    violations = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        src = _unit(module)
        for line, target in _imports(path, module):
            dst = _unit(target)
            if not _allowed(src, dst):
                violations.append(f"{path.relative_to(SRC.parent)}:{line}: {src} imports {target}")
    assert violations == []


def test_the_rule_itself() -> None:
    assert _allowed("systems.marconi", "llm")
    assert not _allowed("systems.marconi", "systems.madeye")
    assert not _allowed("llm", "vision")
    assert not _allowed("core", "llm")
    assert _allowed("core", "errors")
    assert not _allowed("net", "systems.scallop")
    assert _allowed("cli", "systems.marconi")
