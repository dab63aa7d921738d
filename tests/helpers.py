"""Test helpers: small projects under tmp_path, and the rule for external tools.

A test that needs jekyll or chromium skips with a reason on a developer machine that
lacks them, and FAILS in CI (CI=true): CI installs them, so a missing one is a broken CI.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
IN_CI = bool(os.environ.get("CI"))


def require_tool(name: str) -> str:
    """The path of an external program; fail loudly in CI, skip elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (Debian package: see .ci/run)"
    if IN_CI:
        pytest.fail(message + " — CI must install it", pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")


def write_post(root: Path, name: str, text: str) -> Path:
    path = root / "posts" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def make_project(root: Path, posts: dict[str, str] | None = None, pyproject: str = "") -> Path:
    """A labbook project: pyproject.toml with [tool.labbook], and posts/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[tool.labbook]\ntitle = "Test notebook"\nauthor = "Tester"\njobs = 2\n' + pyproject, encoding="utf-8"
    )
    (root / "posts").mkdir(exist_ok=True)
    for name, text in (posts or {}).items():
        write_post(root, name, text)
    return root


def copy_fixture_project(root: Path) -> Path:
    shutil.copytree(FIXTURES / "project", root)
    return root




SIMPLE_POST = """
---
title: A simple post
date: 2026-01-10
tags: [demo]
status: open
---

Prose with $x^2$.

```python
print("hello")
```
"""
