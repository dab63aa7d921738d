"""Imports point one way: model/errors/config import no stage; stages import no other stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "labbook"
FOUNDATION = {"model", "errors", "config", "files", "theme", "frontmatter", "journal"}
STAGES = {"source", "execute", "kernels", "executor", "cache", "render", "site", "check", "compare"}
ALLOWED = {
    "model": set(), "errors": set(), "files": set(), "config": {"errors", "model"}, "theme": {"errors"},
    "frontmatter": set(), "journal": {"errors", "files"},
    "compare": {"model"},
    "lock": {"config", "errors"}, "state": FOUNDATION, "jobs": FOUNDATION | {"cache", "executor"},
    "status": FOUNDATION | {"cache", "lock", "site", "source", "state"},
    "build": FOUNDATION | {"source", "execute", "executor", "cache", "render", "site", "lock", "state", "jobs"},
    "cli": FOUNDATION | {"build", "check", "source", "config", "preview", "status"},
    "preview": FOUNDATION,
    "pageparts": FOUNDATION, "indexes": FOUNDATION | {"pageparts"}, "search": FOUNDATION,
    "render": FOUNDATION | {"pageparts"}, "site": FOUNDATION | {"indexes", "search"},
    "check": FOUNDATION | {"build", "cache", "compare", "executor", "source", "execute", "site", "jobs", "lock"},
    "_kernel": {"_kernel"},
    "executor": FOUNDATION | {"execute", "kernels"},
    "execute": FOUNDATION | {"kernels"},
    "kernels": FOUNDATION | {"_kernel"},
}


def labbook_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module.split(".")[0])
            elif node.level == 1:
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("labbook"):
                parts = node.module.split(".")
                names.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("labbook."))
    return names - {"__version__"}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.stem)
def test_imports_point_one_way(path):
    module = path.stem
    if module in ("__init__", "__main__"):
        return
    allowed = ALLOWED.get(module, FOUNDATION)
    assert labbook_imports(path) <= allowed, f"{module} imports {labbook_imports(path) - allowed}"
