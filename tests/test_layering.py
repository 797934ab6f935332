"""Imports point down only (DESIGN.md, "Layers (imports point down only)").

Every module under src/neumo is parsed with ``ast``; each ``neumo.*`` import (absolute, relative, at
module level or inside a function) must go to the same package, a lower layer, or an allowed peer.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "neumo"

# The layer table, from DESIGN.md "Layers (imports point down only)":
#   cli/  server/                      thin faces            (layer 4)
#   studies/                           claims -> verdicts    (layer 3)
#   spectral/  detect/  memory/        the three instruments (layer 2; never import each other)
#   train/  nn/  data/  runs/  report/ shared machinery      (layer 1)
#   config.py  errors.py  seeding.py   foundations           (layer 0)
# Top-level helper modules not named in DESIGN.md sit at foundation level: ranks.py ("the pure rank
# functions are shared machinery that memory probes may use too"), stats.py, bounded.py, catalog.py and
# the package's __init__ (its version string).
LAYER = {
    "cli": 4, "server": 4,
    "studies": 3,
    "spectral": 2, "detect": 2, "memory": 2,
    "train": 1, "nn": 1, "data": 1, "runs": 1, "report": 1,
    "config": 0, "errors": 0, "seeding": 0, "ranks": 0, "stats": 0, "bounded": 0, "__init__": 0,
    "catalog": 4,  # catalog.py lists studies and memory tasks for the faces: it sits with cli/ and server/
}
# Same-layer imports are allowed only between these pairs (importer, imported). Instruments never import
# each other. Within shared machinery, train/ builds on nn/ and data/, and runs/ is used by all of layer 1.
PEERS = {("train", "nn"), ("train", "data"), ("train", "runs"), ("report", "runs"), ("nn", "runs"),
         ("data", "runs"), ("cli", "server"), ("server", "cli"), ("cli", "catalog"), ("server", "catalog")}

# Breaks that exist today in files owned by other work in progress; each is (importer module, imported
# top-level unit). Remove an entry when its import is fixed: the test fails on stale entries too.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def _unit(module: str) -> str:
    """The layer unit of a dotted module name under neumo (``neumo.spectral.ranks`` -> ``spectral``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``neumo.*`` module this file imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name == "neumo" or a.name.startswith("neumo."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "neumo" or mod.startswith("neumo."):
                if mod == "neumo":  # from neumo import x: x may be a subpackage
                    found.update(f"neumo.{a.name}" if _unit(f"neumo.{a.name}") in LAYER else "neumo"
                                 for a in node.names)
                else:
                    found.add(mod)
    return found


def _allowed(src: str, dst: str) -> bool:
    if src == dst:
        return True
    if (src, dst) in PEERS:
        return True
    if LAYER[src] == LAYER[dst] == 0:  # foundations build on each other (config on errors and bounded)
        return True
    return LAYER[dst] < LAYER[src]


def violations() -> set[tuple[str, str]]:
    bad = set()
    for path in sorted(PKG.rglob("*.py")):
        name = _module_name(path)
        src = _unit(name)
        for imp in _imports(path):
            dst = _unit(imp)
            if not _allowed(src, dst):
                bad.add((name, dst))
    return bad


def test_every_unit_has_a_layer():
    units = {_unit(_module_name(p)) for p in PKG.rglob("*.py")}
    assert units <= set(LAYER), f"modules with no layer in the table: {sorted(units - set(LAYER))}"


def test_imports_point_down_only():
    bad = violations() - KNOWN_EXCEPTIONS
    assert not bad, "imports against DESIGN.md's layers (importer -> imported unit):\n" + "\n".join(
        f"  {a} -> {b}" for a, b in sorted(bad))


def test_known_exceptions_are_still_needed():
    stale = KNOWN_EXCEPTIONS - violations()
    assert not stale, f"fixed, remove from KNOWN_EXCEPTIONS: {sorted(stale)}"


def test_the_checker_sees_relative_and_function_level_imports(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from neumo.studies.registry import all_studies\n")
    tree_imports = {n.module for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.ImportFrom)}
    assert "neumo.studies.registry" in tree_imports
    assert _imports(PKG / "report" / "html.py") >= {"neumo.report.verdicts"}
