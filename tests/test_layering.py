"""Imports point one way: model/errors/config import no stage; stages import no other stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "labbook"
FOUNDATION = {"model", "errors", "config", "files", "theme", "frontmatter", "journal", "texmath", "liquid", "jekyll",
              "_inline", "terminal", "commonmark", "published"}
STAGES = {"source", "execute", "kernels", "dispatch", "cache", "render", "site", "check", "compare"}
ALLOWED = {
    "published": set(), "model": {"published"}, "errors": set(), "files": set(), "config": {"errors"}, "theme": {"errors", "texmath", "files"}, "texmath": {"errors", "files"},
    "frontmatter": set(), "journal": {"errors", "files"}, "liquid": {"commonmark"}, "jekyll": set(),
    "commonmark": set(),
    "export": FOUNDATION | {"source", "cache", "render", "gather"}, "importer": FOUNDATION | {"source"},
    "compare": {"model"},
    "lock": {"config", "errors"}, "state": FOUNDATION, "jobs": FOUNDATION | {"cache", "dispatch"},
    "status": FOUNDATION | {"cache", "lock", "site", "source", "state", "gather"},
    "build": FOUNDATION | {"source", "execute", "dispatch", "cache", "render", "site", "lock", "state", "jobs", "gather",
                           "sweep"},
    "console": FOUNDATION | {"check", "observations"},  # a check's details are worded in check/reports
    "cli": FOUNDATION | {"build", "check", "source", "config", "preview", "status", "export", "importer", "loop", "serve",
                         "console", "kernelspec"},
    "loop": FOUNDATION | {"build", "cache", "dispatch", "source", "lock", "jobs", "sweep"},
    "serve": FOUNDATION | {"build", "preview", "source"},
    "kernelspec": FOUNDATION | {"kernels", "source"},
    "api": {"frontmatter"},  # outside labbook, the post's defaults are read as a build reads them
    "_inline": set(), "terminal": set(),
    "outputs": set(),  # rich-output policy shared by capture (execute) and page (render)
    "kramdown": set(),  # a markdown-it plugin: Markdown in, tokens out
    "render": FOUNDATION | {"outputs", "pageparts", "sweep", "observations", "kramdown"},  # a point's report is its table row
    "preview": FOUNDATION,
    "pageparts": FOUNDATION, "indexes": FOUNDATION | {"pageparts"}, "search": FOUNDATION,
    "site": FOUNDATION | {"indexes", "search"},
    "check": FOUNDATION | {"build", "cache", "compare", "dispatch", "source", "execute", "site", "jobs", "lock", "gather",
                           "sweep", "observations"},
    "kernel_side": {"kernel_side", "api", "observations", "kernel_reset"},  # the fork server preloads the posts' kernel-side API
    "kernel_reset": set(),  # runs in the post's kernel, between two points: nothing of labbook
    "dispatch": FOUNDATION | {"execute", "kernels"},
    "execute": FOUNDATION | {"kernels", "kernel_side", "compare", "outputs"},
    "kernels": FOUNDATION | {"kernel_side", "compare"},
    "observations": set(),  # runs in the post's kernel: nothing of labbook
    "sweep": FOUNDATION | {"observations"},  # the file formats' one home
    "source": FOUNDATION | {"sweep"},
    "gather": FOUNDATION | {"cache", "dispatch", "jobs", "sweep", "observations", "_inline"},
}


def labbook_imports(path: Path) -> set[str]:
    """The top-level labbook modules a file imports; in a package (labbook/check/), a sibling
    counts as the package itself."""
    tree = ast.parse(path.read_text())
    names = set()
    in_package = path.parent != PACKAGE
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            level = node.level - in_package  # how far above labbook/ itself
            if node.level and level <= 0:
                names.add(path.parent.name)
            elif level == 1 and node.module:
                names.add(node.module.split(".")[0])
            elif level == 1:
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("labbook"):
                parts = node.module.split(".")
                names.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("labbook."))
    return names - {"__version__"}


def module_of(path: Path) -> str:
    return path.stem if path.parent == PACKAGE else path.parent.name


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path):
    module = module_of(path)
    if path.name == "__init__.py" and path.parent != PACKAGE:
        module = path.parent.name
    if module in ("__init__", "__main__"):
        return
    allowed = ALLOWED.get(module, FOUNDATION) | {module}
    assert labbook_imports(path) <= allowed, f"{module} imports {labbook_imports(path) - allowed}"
