"""Test helpers: small projects under tmp_path, and the rule for external tools.

A test that needs jekyll or chromium skips with a reason on a developer machine that
lacks them, and FAILS in CI (CI=true): CI installs them, so a missing one is a broken CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
import time
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


_TIMINGS = re.compile(r"Executed on \d{4}-\d{2}-\d{2} in [\d.]+ s")
_SWEEP_SECONDS = re.compile(r'(<td class="num" data-sort=")[\d.e+-]+">[^<]*</td><td class="files">')
"""A sweep table's `seconds` cell: the last before the files."""


def _sweep_table_masked(path: Path) -> bytes:
    """A sweep's table with its `seconds` column (how long each point ran) masked."""
    from labbook import sweep

    if path.name == "sweep.parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return repr(table.drop_columns(["seconds"]).to_pylist()).encode()
    if path.name == "sweep.csv":
        lines = path.read_text().splitlines()
        seconds = lines[0].split(",").index("seconds")
        return "\n".join(",".join(c if i != seconds else "<s>" for i, c in enumerate(line.split(","))) for line in lines).encode()
    table = sweep.Table.from_json(path.read_bytes())
    index = table.names.index("seconds")
    return repr([row[:index] + row[index + 1:] for row in table.rows]).encode()


def normalized_site(site: Path) -> dict[str, bytes]:
    """A site as Jekyll reads it (dot-files ignored), with the wall-clock facts of a run masked."""
    files = {}
    for path in sorted(site.rglob("*")):
        name = path.relative_to(site).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in name.split("/")):
            continue
        data = path.read_bytes()
        if path.name == "run.json":
            record = json.loads(data)
            record["started"], record["seconds"] = "<started>", 0
            for cell in record["cells"]:
                cell["seconds"] = 0
            data = json.dumps(record, sort_keys=True).encode()
        elif name.startswith("_posts/"):
            data = _TIMINGS.sub("Executed on <date> in <seconds> s", data.decode()).encode()
            data = _SWEEP_SECONDS.sub(r'\1<seconds></td><td class="files">', data.decode()).encode()
        elif path.name in ("sweep.csv", "sweep.json", "sweep.parquet"):
            data = _sweep_table_masked(path)
        files[name] = data
    return files


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its relative name: what a test compares before and after."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_site(a: Path, b: Path) -> None:
    left, right = normalized_site(a), normalized_site(b)
    assert sorted(left) == sorted(right)
    for name in left:
        if left[name] != right[name]:
            import difflib

            diff = difflib.unified_diff(left[name].decode(errors="replace").splitlines(),
                                        right[name].decode(errors="replace").splitlines(), lineterm="")
            raise AssertionError(f"{name} differs:\n" + "\n".join(list(diff)[:40]))


def wait_for(predicate, timeout: float = 60.0) -> None:
    """Poll until `predicate()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat after the process's name (which may hold spaces and parentheses): state, ppid, …"""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_pid(pid: int) -> int:
    return int(proc_stat(pid)[1])


def searchable(folder: Path, word: str) -> bool:
    """The word is in a page of the Pagefind bundle under `folder` (its fragments are gzipped JSON)."""
    import gzip

    return any(word.encode() in gzip.decompress(path.read_bytes())
               for path in folder.glob("pagefind/fragment/*.pf_fragment"))
