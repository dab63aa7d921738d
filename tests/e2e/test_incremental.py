"""Incremental and parallel builds: -j determinism, one build at a time, corrupt entries recovered."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labbook.cli import main

from ..helpers import assert_same_site, copy_fixture_project, make_project, write_post

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SLOW_POST = """---
title: Slow
date: 2026-01-01
---

```python
import time
time.sleep({seconds})
print("done")
```
"""


def labbook(root: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labbook", "--root", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_the_site_is_the_same_whatever_the_number_of_jobs(tmp_path):
    one = copy_fixture_project(tmp_path / "one")
    three = copy_fixture_project(tmp_path / "three")
    assert main(["--root", str(one), "-q", "build", "-j", "1"]) == 0
    assert main(["--root", str(three), "-q", "build", "-j", "3"]) == 0
    assert_same_site(one / "site", three / "site")


def test_force_publishes_the_new_run_not_the_stored_one(tmp_path, monkeypatch, capsys):
    text = "---\ntitle: Mark\ndate: 2026-01-01\n---\n\n```python\nimport os\nprint('mark', os.environ['MARK'])\n```\n"
    root = make_project(tmp_path / "p", {"mark.md": text})
    monkeypatch.setenv("MARK", "one")
    assert main(["--root", str(root), "-q", "build"]) == 0
    monkeypatch.setenv("MARK", "two")  # the environment changed: what --force is for
    assert main(["--root", str(root), "-q", "build", "--force"]) == 0
    page = next((root / "site" / "_posts").glob("*-mark.html")).read_text()
    assert "mark two" in page and "mark one" not in page
    assert "mark two" in (root / "site/assets/posts/mark/run.json").read_text()


def test_force_reexecutes_and_named_posts_build_alone(fresh_project, capsys):
    assert main(["--root", str(fresh_project), "build", "--force", "posts/liquid.md"]) == 0
    err = capsys.readouterr().err
    assert "1 executed" in err and "posts/liquid.md executed" in err


def test_a_second_build_waits_or_stops_with_a_clear_message(tmp_path):
    root = make_project(tmp_path / "p", {"slow.md": SLOW_POST.format(seconds=4)})
    first = labbook(root, "build")
    deadline = time.monotonic() + 60
    while "pid" not in _lock_text(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    refused = subprocess.run([sys.executable, "-m", "labbook", "--root", str(root), "build", "--no-wait"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 3
    assert f"another labbook build (pid {first.pid}) is using this project" in refused.stderr
    waiting = labbook(root, "build")
    assert first.wait(timeout=120) == 0
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "waiting for another labbook build" in err and "0 executed" in err
    assert (root / "site" / "_posts" / "2026-01-01-slow.html").exists()


def _lock_text(root: Path) -> str:
    try:
        return (root / ".labbook" / "lock").read_text()
    except OSError:
        return ""


def test_a_corrupt_published_artifact_is_executed_again(fresh_project, capsys):
    figure = fresh_project / "site/assets/posts/basics/figures/fig-fit.png"
    good = figure.read_bytes()
    figure.write_bytes(good[:100])
    shutil.rmtree(fresh_project / ".labbook")
    assert main(["--root", str(fresh_project), "build"]) == 0
    err = capsys.readouterr().err
    assert "fig-fit.png has the wrong size; executing again" in err and "1 executed" in err
    assert figure.read_bytes() == good


def test_an_inputs_glob_that_matches_nothing_warns(tmp_path, capsys):
    root = make_project(tmp_path / "p")
    write_post(root, "x.md", "---\ntitle: X\ndate: 2026-01-01\nlabbook:\n  inputs: [nothing/*.csv]\n---\n\n"
                             "```python\nprint(1)\n```\n")
    assert main(["--root", str(root), "build"]) == 0
    assert "posts/x.md:5: labbook.inputs glob 'nothing/*.csv' matches no file" in capsys.readouterr().err
