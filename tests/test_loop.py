"""The author's loop without kernels: parameters, values in the prose, `labbook new`, the terminal
sanitizer, and the help texts."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labbook import _inline
from labbook.api import param, params, seed
from labbook.cli import main, parse_param
from labbook.config import load_config
from labbook.errors import ConfigError, FrontMatterError
from labbook.model import Run
from labbook.render import render
from labbook.source import parse, read, with_params
from labbook.terminal import terminal_text
from labbook.theme import Theme

from .helpers import make_project

ROOT = Path(__file__).parent.parent

PARAMS_POST = """---
title: Parameters
date: 2026-01-01
labbook:
  params: {lr: 0.1, width: 64, act: relu, sizes: [1, 2], tied: false}
---

The rate was `{python} lr` and the slope
was `{python} f"{slope:.2f}"`, twice: `{python} lr`.

```text
`{python} not_a_value` in a text fence is code, not a value
```

```python
import labbook
lr = labbook.param("lr")
slope = 2 * lr
```
"""


# --- parameters ------------------------------------------------------------------------------------


def test_params_are_declared_with_defaults_and_enter_the_key():
    post, _ = parse(PARAMS_POST, "posts/p.md")
    assert post.settings.params == {"act": "relu", "lr": 0.1, "sizes": [1, 2], "tied": False, "width": 64}
    assert post.basis["settings"]["params"] == post.settings.params
    other = with_params(post, {"lr": 1})
    assert other.settings.params["lr"] == 1.0 and isinstance(other.settings.params["lr"], float)
    assert other.key != post.key and other.cells == post.cells
    assert with_params(post, {"lr": 0.1}) is post  # the defaults: the same run


def test_a_post_without_params_keeps_the_key_it_always_had():
    post, _ = parse("---\ntitle: t\ndate: 2026-01-01\n---\n\n```python\nx = 1\n```\n", "posts/p.md")
    assert set(post.basis["settings"]) == {"timeout", "figure_format", "seed", "threads", "memory_mb"}


@pytest.mark.parametrize(("block", "message", "line"), [
    ("params: {2lr: 1}", "parameter name '2lr' must be a Python identifier", 5),
    ("params: {class: 1}", "parameter name 'class' must be a Python identifier", 5),
    ("params:\n    lr: {a: 1}", "labbook.params.lr: {'a': 1} is not a number, text", 6),
    ("params:\n    lr: .nan", "labbook.params.lr: nan is not a finite number", 6),
    ("params: [1, 2]", "'labbook.params' has the wrong type", 5),
])
def test_bad_params_name_the_file_and_line(block, message, line):
    text = f"---\ntitle: t\ndate: 2026-01-01\nlabbook:\n  {block}\n---\n"
    with pytest.raises(FrontMatterError) as caught:
        parse(text, "posts/p.md")
    assert message in str(caught.value) and caught.value.line == line, str(caught.value)


def test_unknown_or_mistyped_params_are_refused_with_what_the_post_declares():
    post, _ = parse(PARAMS_POST, "posts/p.md")
    with pytest.raises(ConfigError, match=r"has no parameter 'lrr' \(did you mean 'lr'\?\) \(it declares: act, lr"):
        with_params(post, {"lrr": 1})
    for name, value, expected in [("width", "wide", "expected a number"), ("tied", 1, "expected true or false"),
                                  ("act", 3, "expected text"), ("sizes", 3, "expected a list")]:
        with pytest.raises(ConfigError, match=expected):
            with_params(post, {name: value})


def test_p_seed_sets_the_runs_seed_unless_the_post_declares_a_parameter_named_seed():
    post, _ = parse(PARAMS_POST, "posts/p.md")
    seeded = with_params(post, {"seed": 3, "lr": 0.5})
    assert seeded.settings.seed == 3 and seeded.settings.params["lr"] == 0.5 and seeded.key != post.key
    assert with_params(post, {"seed": 0}) is post  # the seed it has: the same run
    with pytest.raises(ConfigError, match=r"the seed is an integer \(-p seed=3\), not 1.5"):
        with_params(post, {"seed": 1.5})
    own, _ = parse(PARAMS_POST.replace("tied: false}", "tied: false, seed: 7}"), "posts/p.md")
    assert with_params(own, {"seed": 3}).settings.params["seed"] == 3 and with_params(own, {"seed": 3}).settings.seed == 0


@pytest.mark.parametrize(("item", "expected"), [
    ("lr=1e-3", ("lr", 0.001)), ("width=64", ("width", 64)), ("tied=true", ("tied", True)),
    ("sizes=[1, 2]", ("sizes", [1, 2])), ("act=relu", ("act", "relu")), ("act=", ("act", "")),
    ("act='quoted text'", ("act", "quoted text")), ("day=2026-01-01", ("day", "2026-01-01")),
    ("x={a: 1}", ("x", "{a: 1}")), ("lr = 0.5", ("lr", 0.5)),
])
def test_dash_p_values_are_read_as_yaml(item, expected):
    assert parse_param(item) == expected


@pytest.mark.parametrize("item", ["lr", "=1", "2x=1", "for=1"])
def test_dash_p_without_a_name_is_a_usage_error(item):
    with pytest.raises(ConfigError, match="write -p NAME=VALUE"):
        parse_param(item)


def test_build_p_seed_needs_an_integer_before_anything_runs(tmp_path, capsys):
    root = make_project(tmp_path / "p", {"p.md": PARAMS_POST})
    assert main(["--root", str(root), "build", "-p", "seed=x"]) == 2
    assert "posts/p.md: the seed is an integer (-p seed=3), not 'x'" in capsys.readouterr().err
    assert not (root / "site").exists() and not (root / ".labbook/variants").exists()


def test_build_p_on_an_undeclared_name_is_a_usage_error(tmp_path, capsys):
    root = make_project(tmp_path / "p", {"p.md": PARAMS_POST})
    assert main(["--root", str(root), "build", "-p", "lrr=1"]) == 2
    assert "no post here declares the parameter 'lrr' (did you mean 'lr'?)" in capsys.readouterr().err
    assert not (root / "site").exists()


def test_labbook_param_reads_the_run_then_the_post(tmp_path, monkeypatch):
    post = make_project(tmp_path / "p", {"p.md": PARAMS_POST}) / "posts/p.md"
    monkeypatch.delenv("LABBOOK_PARAMS", raising=False)
    monkeypatch.setenv("LABBOOK_POST", str(post))
    assert param("lr") == 0.1 and params()["sizes"] == [1, 2]  # outside labbook: the post's defaults
    monkeypatch.setenv("LABBOOK_PARAMS", json.dumps({"lr": 0.5}))
    assert param("lr") == 0.5 and param("missing", 3) == 3
    with pytest.raises(KeyError, match=r"declares no parameter 'missing' \(it declares: lr\)"):
        param("missing")
    import labbook

    assert labbook.param is param  # the API a post uses, without importing labbook's pipeline


def test_the_seed_of_the_run_reads_as_labbook_seed_and_as_param_seed(monkeypatch):
    import labbook

    monkeypatch.delenv("LABBOOK_SEED", raising=False)
    monkeypatch.setenv("LABBOOK_PARAMS", json.dumps({"wd": 0.5}))
    assert seed() == 0 and param("seed", 7) == 7  # outside labbook: no seed set
    monkeypatch.setenv("LABBOOK_SEED", "2")  # a sweep's point, or check --seeds
    assert seed() == 2 and param("seed") == 2 and labbook.seed is seed
    monkeypatch.setenv("LABBOOK_PARAMS", json.dumps({"seed": 5}))
    assert param("seed") == 5  # a parameter the post declares is its own
    with pytest.raises(AttributeError, match="may call labbook.param, params, seed, observe and sweep_table"):
        labbook.sed  # noqa: B018


# --- values in the prose ---------------------------------------------------------------------------


def test_inline_expressions_are_read_once_each_with_their_line():
    post, _ = parse(PARAMS_POST, "posts/p.md")
    lines = PARAMS_POST.splitlines()
    assert [(i.expression, lines[i.line - 1]) for i in post.inline] == [
        ("lr", "The rate was `{python} lr` and the slope"),
        ('f"{slope:.2f}"', 'was `{python} f"{slope:.2f}"`, twice: `{python} lr`.'),
    ]
    assert all(e.expression != "not_a_value" for e in post.inline)
    edited = PARAMS_POST.replace("The rate", "The learning rate")
    assert parse(edited, "posts/p.md")[0].key == post.key  # values in prose are never part of the key


def test_inline_values_are_escaped_and_errors_marked_with_file_and_line(tmp_path):
    text = PARAMS_POST.replace("`{python} lr` and", "`{python} lr` and `{python} boom` and")
    post, _ = parse(text, "posts/p.md")
    run = Run(key=post.key, cells=(), artifacts=(), inputs={}, basis=post.basis, environment={}, started="2026",
              seconds=0.0, inline={"lr": {"text": "<b>0.1</b>"}, "boom": {"error": "NameError: <x>"}})
    config = load_config(make_project(tmp_path / "p"))
    page = render(post, run, tmp_path, config, Theme(config.templates))
    warnings = [str(notice) for notice in page.notices]
    assert '<span class="inline-value" title="lr">&lt;b&gt;0.1&lt;/b&gt;</span>' in page.html
    assert 'class="inline-error" title="posts/p.md:8"' in page.html and "NameError: &lt;x&gt;" in page.html
    assert "posts/p.md:8: inline `boom`: NameError: <x>" in warnings
    assert 'posts/p.md:9: inline `f"{slope:.2f}"`: not evaluated' in " ".join(warnings)


def test_a_snapshot_keeps_simple_values_and_says_what_it_cannot_evaluate(tmp_path):
    numpy = pytest.importorskip("numpy")
    namespace = {"lr": 0.1, "n": 3, "name": "x", "flag": True, "none": None, "big": 10**30, "nan": math.nan,
                 "pair": (1, "a"), "table": {"a": [1, 2]}, "arr": numpy.arange(4.0), "f32": numpy.float32(1.5),
                 "np": numpy, "func": len, "_private": 1, "huge": list(range(_inline.MAX_ITEMS + 1)),
                 "obj": object()}
    data = _inline.snapshot(namespace)
    assert set(data["values"]) == {"lr", "n", "name", "flag", "none", "big", "nan", "pair", "table", "arr", "f32", "np"}
    path = tmp_path / _inline.SNAPSHOT
    path.write_text(json.dumps(data))
    assert _inline.unavailable(["round(arr.mean() * lr, 3)", "[x for x in pair]", "np.pi"], str(path)) is None
    assert "needs `func`" in _inline.unavailable(["func(1)"], str(path))
    assert "no snapshot" in _inline.unavailable(["lr"], str(tmp_path / "missing.json"))
    done = subprocess.run([sys.executable, "-m", "labbook._inline", str(path)], capture_output=True, text=True,
                          input=json.dumps(["round(arr.mean() * lr, 3)", "pair[1] * n", "f32 * 2", "nan", "1/0"]))
    values = json.loads(done.stdout.strip().splitlines()[-1])
    assert values == {"round(arr.mean() * lr, 3)": {"text": "0.15"}, "pair[1] * n": {"text": "aaa"},
                      "f32 * 2": {"text": "3.0"}, "nan": {"text": "nan"},
                      "1/0": {"error": "ZeroDivisionError: division by zero"}}


def test_old_run_records_load_and_new_fields_stay_out_when_empty():
    record = {"schema": 1, "key": "k", "cells": [], "artifacts": [], "inputs": {}, "basis": {}, "environment": {},
              "started": "2026-01-01", "seconds": 1.0}
    run = Run.from_json(record)
    assert run.params == {} and run.inline == {}
    assert "params" not in run.to_json() and "inline" not in run.to_json()
    full = Run.from_json({**record, "params": {"lr": 0.1}, "inline": {"lr": {"text": "0.1"}}})
    assert Run.from_json(json.loads(json.dumps(full.to_json()))) == full


# --- the terminal --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("title\x1b]0;PWNED\x07 set", "title set"),
    ("a \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ b", "a link b"),
    ("\x1b]52;c;ZXZpbA==\x07clipboard", "clipboard"),
    ("\x1b[31mred\x1b[0m \x1b[2J\x1b[Hcleared", "red cleared"),
    ("\x9b31mC1\x9d0;t\x07", "\\x9b31mC1\\x9d0;t\\x07"),  # shown, never obeyed
    ("10%\r50%\rdone\nnext", "done\nnext"),
    ("crlf\r\nline", "crlf\nline"),
    ("tab\tand\x00nul\x08", "tab\tand\\x00nul\\x08"),
    ("\x1bPq#0;2;0;0;0\x1b\\sixel", "sixel"),
])
def test_terminal_text_removes_every_escape_sequence(raw, shown):
    assert terminal_text(raw) == shown


# --- labbook new ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("title", [
    "Grokking: a first look", 'He said "no" & left', "---", "yes", "# not a comment", "a: b: c", "- item",
    "[x]", "{y}", "'quoted'", "2026-01-01", "@at `tick`", "C++ <html>", "Ünïcode Ñame", "x" * 150, "null",
])
def test_new_writes_a_post_that_reads_cleanly_whatever_the_title(tmp_path, title, capsys):
    root = make_project(tmp_path / "p")
    assert main(["--root", str(root), "new", f"--title={title}"]) == 0
    created = next((root / "posts").glob("*.md"))
    post, warnings = read(created, load_config(root))
    assert post.meta.title == title and warnings == []
    header = created.read_text().split("---\n")[1]
    for key in ("tags", "status", "models", "data", "phenomena", "observables", "questions", "description"):
        assert re.search(rf"^{key}:", header, re.M), key
    assert post.inline and post.cells


def test_new_asks_nothing_never_overwrites_and_needs_a_name(tmp_path, capsys):
    root = make_project(tmp_path / "p")
    done = subprocess.run([sys.executable, "-m", "labbook", "--root", str(root), "new", "idea"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "created posts/idea.md" in done.stdout
    before = (root / "posts/idea.md").read_bytes()
    assert main(["--root", str(root), "new", "idea", "--title", "Other"]) == 2
    assert (root / "posts/idea.md").read_bytes() == before
    assert main(["--root", str(root), "new"]) == 2
    assert "needs a name or a title" in capsys.readouterr().err


# --- help ---------------------------------------------------------------------------------------------


def test_every_command_has_help_and_the_readme_lists_it():
    from labbook.cli import _parser

    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them there
    readme = (ROOT / "README.md").read_text()
    for name, sub in commands.items():
        if name == "list":
            continue
        text = sub.format_help()
        assert sub.description, name
        assert f"`labbook {name}" in readme, f"README does not document labbook {name}"
        for action in sub._actions:  # noqa: SLF001
            assert action.help, f"labbook {name} {action.option_strings or action.dest} has no help"
        assert "usage: labbook " + name in text
    top = parser.format_help()
    assert all(name in top for name in commands)
