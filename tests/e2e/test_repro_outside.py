"""labbook check tried from outside, as a stranger's project would meet it (issue 13).

Each test is a case the issue's own fixtures did not cover: a project whose posts have no code,
a post checked out again with Windows line ends.
"""

from __future__ import annotations

import pytest

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


CODE = ("---\ntitle: Windows\ndate: 2026-01-05\n---\n\nProse.\n\n```python\n#| label: fig-a\n"
        "#| claim: one is one\nassert 1 == 1\nprint('crlf ok')\n```\n")


@pytest.mark.kernel
def test_a_post_checked_out_with_crlf_and_a_bom_is_the_same_post(tmp_path, capsys):
    """A Windows checkout (core.autocrlf) must not make every post stale or re-run it."""
    root = make_project(tmp_path / "p", posts={"w.md": CODE})
    assert main(["--root", str(root), "-q", "build"]) == 0
    post = root / "posts/w.md"
    post.write_bytes(b"\xef\xbb\xbf" + post.read_bytes().replace(b"\n", b"\r\n"))
    capsys.readouterr()
    assert main(["--root", str(root), "status"]) == 0
    assert capsys.readouterr().out.startswith("cached")
    assert main(["--root", str(root), "build"]) == 0
    assert "0 executed" in capsys.readouterr().err
    assert main(["--root", str(root), "check"]) == 0
