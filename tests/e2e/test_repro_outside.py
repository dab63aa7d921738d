"""labbook check tried from outside, as a stranger's project would meet it (issue 13).

Each test is a case the issue's own fixtures did not cover: a project whose posts have no code,
a claim whose failure the kernel cannot even send.
"""

from __future__ import annotations

from labbook.cli import main

from ..helpers import make_project

PROSE = """
---
title: Notes {n}
date: 2026-01-0{n}
---

Only prose, with $x^{n}$.
"""


def test_check_of_posts_without_code_passes_and_runs_nothing(tmp_path, capsys):
    root = make_project(tmp_path / "p", posts={f"note{n}.md": PROSE.format(n=n) for n in (1, 2)})
    assert main(["--root", str(root), "-q", "build"]) == 0
    capsys.readouterr()
    assert main(["--root", str(root), "check", "--junit", str(tmp_path / "check.xml")]) == 0
    out, err = capsys.readouterr()
    assert "new" not in out and "nothing to check" in err
    assert main(["--root", str(root), "check", "posts/note1.md"]) == 0
