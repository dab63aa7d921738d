"""The author's loop tried from outside (issue 16): `labbook run` on a post with no code, and a
post whose only code is a value in its prose."""

from __future__ import annotations

import shutil

import pytest

from labbook.cli import main

from ..helpers import make_project

PROSE = "---\ntitle: Notes\ndate: 2026-01-05\n---\n\nOnly prose.\n"
INLINE = "---\ntitle: A value\ndate: 2026-01-05\n---\n\nTwo is `{python} 1 + 1`.\n"


def test_run_of_a_post_without_code_starts_no_kernel_and_says_so(tmp_path, capsys):
    root = make_project(tmp_path / "p", posts={"notes.md": PROSE})
    assert main(["--root", str(root), "run", "posts/notes.md"]) == 0
    out, err = capsys.readouterr()
    assert "nothing to run" in out and "executing" not in err and "executed" not in out
    assert not (root / ".labbook/runs").exists() or not any((root / ".labbook/runs").iterdir())
