"""One real build of the fixture project, shared by the end-to-end tests that only read it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from labbook.cli import main

from ..helpers import copy_fixture_project, require_tool


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> Path:
    """The fixture project, built once with real kernels (read-only for the tests)."""
    root = copy_fixture_project(tmp_path_factory.mktemp("built") / "project")
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


@pytest.fixture
def fresh_project(built_project, tmp_path) -> Path:
    """A writable copy of the built project, cache included: builds from it execute nothing."""
    return Path(shutil.copytree(built_project, tmp_path / "project", symlinks=True))


def jekyll_build(site: Path, destination: Path) -> None:
    """Real `jekyll build`; fails with Jekyll's own output."""
    jekyll = require_tool("jekyll")
    result = subprocess.run([jekyll, "build", "--source", str(site), "--destination", str(destination)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def jekyll_site(built_project, tmp_path_factory) -> Path:
    """The fixture project's site, built by real Jekyll."""
    destination = tmp_path_factory.mktemp("jekyll") / "_site"
    jekyll_build(built_project / "site", destination)
    return destination
