"""The command line: exit codes, messages on stderr, configuration errors listed at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labbook import __version__, cli
from labbook.cli import main
from labbook.config import load_config
from labbook.errors import ConfigError

from .helpers import make_project


def test_version_and_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "labbook", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"labbook {__version__}"


def test_the_executable_runs_main_then_spares_the_shutdown_its_garbage_walk(tmp_path, monkeypatch):
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["labbook"] == "labbook.cli:command"
    frozen: list[bool] = []
    monkeypatch.setattr(cli.gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(sys, "argv", ["labbook", "--root", str(make_project(tmp_path / "p")), "status"])
    assert cli.command() == 0 and frozen == [True]


def test_every_configuration_problem_is_listed_once(tmp_path, capsys):
    root = make_project(tmp_path / "p", pyproject='titel = "x"\nmemory_mb = -1\ntimeout = "soon"\n')
    assert main(["--root", str(root), "build"]) == 2
    err = capsys.readouterr().err
    assert "pyproject.toml [tool.labbook]: unknown setting 'titel' (did you mean 'title'?)" in err
    assert "'memory_mb' must be a non-negative integer" in err and "'timeout' must be a positive number" in err


def test_a_memory_limit_too_small_for_a_kernel_is_refused_before_anything_runs(tmp_path, capsys):
    root = make_project(tmp_path / "p", pyproject="memory_mb = 200\n")
    assert main(["--root", str(root), "build"]) == 2
    assert "'memory_mb' is 200 MB, less than the 512 MB a kernel needs to start" in capsys.readouterr().err


def test_flags_override_pyproject(tmp_path):
    root = make_project(tmp_path / "p", pyproject='site = "public"\n')
    config = load_config(root, jobs=3, site=None)
    assert config.jobs == 3 and config.site == (root / "public").resolve()
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_config(root, colour="red")


def test_an_unknown_post_is_a_usage_error(tmp_path, capsys):
    root = make_project(tmp_path / "p")
    assert main(["--root", str(root), "build", "posts/nope.md"]) == 2
    assert "no such post: posts/nope.md" in capsys.readouterr().err


def test_new_writes_a_post_that_reads_cleanly(tmp_path, capsys):
    root = make_project(tmp_path / "p")
    assert main(["--root", str(root), "new", "My first idea", "--title", "A first idea"]) == 0
    post = root / "posts" / "my-first-idea.md"
    assert post.is_file() and "title: A first idea" in post.read_text()
    assert main(["--root", str(root), "status"]) == 0
    assert "new     posts/my-first-idea.md  never executed" in capsys.readouterr().out
    assert main(["--root", str(root), "new", "My first idea"]) == 2


def test_status_of_a_broken_post_exits_1(tmp_path, capsys):
    root = make_project(tmp_path / "p")
    (root / "posts" / "bad.md").write_text("---\ntitle: x\n---\n")
    assert main(["--root", str(root), "status"]) == 1
    assert "invalid posts/bad.md" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["_parser", "ConsoleReporter"])
def test_an_interrupt_before_the_command_runs_exits_130_with_one_line(where, monkeypatch, capsys):
    """A Ctrl-C that lands while the arguments are parsed or the terminal is set up, not only
    one during a build, ends with 130 and labbook's line rather than Python's traceback."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, where, interrupted)
    assert main(["status"]) == 130
    assert "interrupted" in capsys.readouterr().err


SWEPT = """---
title: Swept
date: 2026-01-10
labbook:
  params: {a: 1.0, b: 2}
  sweep: {a: [0.5, 1.0], seed: [0, 1]}
---

```python
import labbook
labbook.observe(x=labbook.param("a") * labbook.param("b"))
```
"""


@pytest.mark.parametrize("name", ["a", "seed"])
def test_a_variant_of_a_swept_parameter_is_refused_before_anything_runs(name, tmp_path, capsys):
    """`-p` on a name the sweep sets at every point would change nothing but every point's key."""
    root = make_project(tmp_path / "project", {"swept.md": SWEPT})
    assert main(["--root", str(root), "build", "-p", f"{name}=3"]) == 2
    err = capsys.readouterr().err
    assert f"-p {name}: posts/swept.md sweeps '{name}' (a (2) × seed (2) = 4 points): each point sets its own value" in err
    assert not (root / ".labbook" / "variants").exists() and not (root / "site").exists()
