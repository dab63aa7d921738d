"""Fixtures shared by the suite; the helpers themselves live in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")
