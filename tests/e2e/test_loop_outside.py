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


@pytest.mark.kernel
def test_a_value_in_the_prose_of_a_post_without_cells_is_evaluated_published_and_checked(tmp_path, capsys):
    root = make_project(tmp_path / "p", posts={"value.md": INLINE})
    assert main(["--root", str(root), "-q", "build"]) == 0
    page = next((root / "site/_posts").glob("*-value.html")).read_text(encoding="utf-8")
    assert '<span class="inline-value" title="1 + 1">2</span>' in page
    shutil.rmtree(root / ".labbook")  # a fresh clone: the published run is the cache
    capsys.readouterr()
    assert main(["--root", str(root), "build"]) == 0
    assert "0 executed" in capsys.readouterr().err
    assert main(["--root", str(root), "check"]) == 0
    assert "reproduced" in capsys.readouterr().out
    assert main(["--root", str(root), "run", "posts/value.md"]) == 0
    assert "1 + 1 → 2" in capsys.readouterr().out
