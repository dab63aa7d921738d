"""Fault injection with real kernels and real signals: nothing published is ever lost or half-written.

Each test kills or interrupts a real `labbook build` process at a chosen point (a signal while a
kernel runs, or LABBOOK_CRASH_AT, which SIGKILLs the build at one step of its commit), then reads
site/ and the cache as they were left, and runs the next build.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labbook.cache import read_run, verify

from ..helpers import make_project, normalized_site, proc_stat, wait_for, write_post

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

POST = """---
title: Fault target
date: 2026-01-01
---

```python
#| label: fig-line
import time, numpy as np, matplotlib.pyplot as plt
time.sleep({sleep})
np.savetxt("values.csv", np.arange({n}), delimiter=",")
plt.plot(np.arange({n})); plt.show()
print("version {n}")
```
"""
OTHER = """---
title: Bystander
date: 2026-01-02
---

```python
print("I am fine")
```
"""


PROJECT_TAG = "FAULT_TEST_PROJECT"
"""Set on every labbook this module starts and inherited by its kernel servers and kernels. A kernel
forked from a server shows the server's environment in /proc (its own LABBOOK_ROOT is set after the
fork), so kernels are found by this tag, which both carry."""


def run_labbook(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180):
    return subprocess.run([sys.executable, "-m", "labbook", "--root", str(root), *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, PROJECT_TAG: str(root), **(env or {})})


def start_labbook(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """labbook as a terminal starts it: SIGINT as Python's default even when this run inherited it
    ignored (a shell without job control ignores SIGINT in what it starts in the background)."""
    return subprocess.Popen([sys.executable, "-m", "labbook", "--root", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, PROJECT_TAG: str(root), **(env or {})},
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _process(pid: str) -> tuple[bytes, bytes, str]:
    """A process's command line, environment and parent pid (raises OSError once it is gone)."""
    base = Path("/proc", pid)
    parent = (base / "stat").read_text().rsplit(")", 1)[1].split()[1]
    return (base / "cmdline").read_bytes(), (base / "environ").read_bytes(), parent


def kernels_of(root: Path) -> list[int]:
    """Pids of live kernels started for this project: exec'd (`labbook.kernel_side -f`) or forked by a
    kernel server (the server's command line, and a server as parent); the servers themselves are not."""
    tag = f"{PROJECT_TAG}={root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command, environment, parent = _process(entry.name)
            if b"labbook.kernel_side" not in command or tag not in environment:
                continue
            if b"--serve" in command and b"--serve" not in _process(parent)[0]:
                continue  # a kernel server, not a kernel
        except (OSError, IndexError):
            continue
        found.append(int(entry.name))
    return found


def published_project(tmp_path: Path) -> Path:
    """A project whose two posts are built and published (version 3 of the fault target)."""
    root = make_project(tmp_path / "p", {"target.md": POST.format(sleep=0, n=3), "other.md": OTHER})
    result = run_labbook(root, "build")
    assert result.returncode == 0, result.stderr
    return root


def assert_consistent(root: Path) -> None:
    """Every published post's run verifies against its files; no journal or staging is left over."""
    site = root / "site"
    for folder in (site / "assets" / "posts").iterdir():
        assert verify(read_run(folder), folder) is None, folder
    assert not (site / ".labbook-journal.json").exists()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["kill-9", "term", "int"])
def test_a_build_killed_while_a_kernel_runs_leaves_everything_as_before(tmp_path, how):
    root = published_project(tmp_path)
    before = normalized_site(root / "site")
    write_post(root, "target.md", POST.format(sleep=30, n=5))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    build = start_labbook(root, "build", env={"TMPDIR": str(scratch)})
    wait_for(lambda: kernels_of(root))
    time.sleep(0.5)
    build.send_signal(how)
    build.wait(timeout=60)
    if how != signal.SIGKILL:
        assert build.returncode in (130, 143), build.stderr.read()
        assert kernels_of(root) == []  # killed with the build, not left to notice
    wait_for(lambda: not kernels_of(root), timeout=10)  # even after kill -9: the kernel follows its parent
    wait_for(lambda: not list(scratch.iterdir()), timeout=10)  # nor are its folders left behind
    assert normalized_site(root / "site") == before
    assert not list((root / ".labbook" / "runs").glob("*")) or all(
        verify(read_run(f), f) is None for f in (root / ".labbook" / "runs").iterdir())
    write_post(root, "target.md", POST.format(sleep=0, n=5))
    result = run_labbook(root, "build")
    assert result.returncode == 0, result.stderr
    assert "version 5" in (root / "site" / "_posts" / "2026-01-01-target.html").read_text()
    assert_consistent(root)


@pytest.mark.parametrize("point", ["cache-before-put", "site-staged", "site-journaled", "site-renamed-one",
                                   "site-applied"])
def test_a_build_killed_at_each_step_of_its_commit_recovers(tmp_path, point):
    root = published_project(tmp_path)
    before = normalized_site(root / "site")
    write_post(root, "target.md", POST.format(sleep=0, n=7))
    crashed = run_labbook(root, "build", env={"LABBOOK_CRASH_AT": point})
    assert crashed.returncode == -signal.SIGKILL
    site_now = root / "site"
    committed = point in ("site-journaled", "site-renamed-one", "site-applied")
    if not committed:
        assert normalized_site(site_now) == before
    status = run_labbook(root, "status")  # any labbook command finishes or drops the interrupted commit
    assert status.returncode == 0, status.stderr
    page = (site_now / "_posts" / "2026-01-01-target.html").read_text()
    assert ("version 7" in page) == committed and ("version 3" in page) == (not committed)
    assert_consistent(root)
    result = run_labbook(root, "build")
    assert result.returncode == 0, result.stderr
    assert "version 7" in (site_now / "_posts" / "2026-01-01-target.html").read_text()
    assert_consistent(root)


def test_a_post_that_never_succeeded_gets_no_page(tmp_path):
    root = make_project(tmp_path / "p", {"broken.md": "---\ntitle: B\ndate: 2026-01-01\n---\n\n```python\n1/0\n```\n",
                                         "other.md": OTHER})
    result = run_labbook(root, "build")
    assert result.returncode == 1
    assert "posts/broken.md:7: CellError in cell 1: ZeroDivisionError: division by zero" in result.stderr
    assert [p.name for p in (root / "site" / "_posts").iterdir()] == ["2026-01-02-other.html"]
    assert "broken" not in (root / "site" / "index.html").read_text().lower()


@pytest.mark.parametrize("fault, message", [
    ("import os\nos._exit(1)", "the kernel died in cell 1"),
    ("import ctypes\nctypes.string_at(0)", "the kernel died in cell 1"),
    ("#| timeout: 2\nwhile True:\n    pass", "timed out after 2 s"),
    ("x = bytearray(8 * 1024**3)", "out of memory"),
    ("raise ValueError('bad value')", "CellError in cell 1: ValueError: bad value"),
])
def test_each_execution_fault_keeps_the_last_good_page(tmp_path, fault, message):
    root = published_project(tmp_path)
    before = normalized_site(root / "site")
    write_post(root, "target.md", "---\ntitle: Fault target\ndate: 2026-01-01\n---\n\n```python\n" + fault + "\n```\n")
    result = run_labbook(root, "build")
    assert result.returncode == 1
    assert "posts/target.md:" in result.stderr and message in result.stderr, result.stderr
    assert "kept the last good published version" in result.stderr
    assert normalized_site(root / "site") == before
    wait_for(lambda: not kernels_of(root), timeout=10)


def test_kernels_talk_over_private_ipc_sockets_and_no_tcp_warning(tmp_path):
    probe = """---
title: Probe
date: 2026-01-01
---

```python
import json, os, stat, sys
connection = sys.argv[sys.argv.index("-f") + 1]
info = json.load(open(connection))
folder = os.path.dirname(connection)
mode = os.stat(folder).st_mode & 0o777
print(info["transport"], oct(mode), os.stat(folder).st_uid == os.getuid())
```
"""
    root = make_project(tmp_path / "p", {"probe.md": probe})
    result = run_labbook(root, "build")
    assert result.returncode == 0, result.stderr
    assert "ipc 0o700 True" in (root / "site" / "_posts" / "2026-01-01-probe.html").read_text()
    assert "without encryption" not in result.stderr and "WARNING" not in result.stderr


def test_a_flood_of_output_is_cut_on_the_page(tmp_path):
    root = make_project(tmp_path / "p", {"flood.md": "---\ntitle: F\ndate: 2026-01-01\n---\n\n"
                                                     "```python\nfor i in range(200000):\n    print(i)\n```\n"})
    result = run_labbook(root, "build")
    assert result.returncode == 0, result.stderr
    page = (root / "site" / "_posts" / "2026-01-01-flood.html").read_text()
    assert "more characters cut here; the notebook has them all" in page
    assert len(page) < 100_000
    notebook = (root / "site" / "assets" / "posts" / "flood" / "flood.ipynb").read_text()
    assert "199999" in notebook


DAEMON = """---
title: Daemon
date: 2026-01-03
---

```python
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
open({pid_file!r}, "w").write(str(child.pid))
print("left a daemon behind")
```
"""


@pytest.mark.parametrize("kernels", ["fork", "exec"])
def test_a_daemon_a_post_detaches_does_not_outlive_the_build(tmp_path, kernels):
    pid_file = tmp_path / "daemon.pid"
    root = make_project(tmp_path / "p", {"daemon.md": DAEMON.format(pid_file=str(pid_file))})
    env = {"LABBOOK_KERNELS": "exec"} if kernels == "exec" else {}
    result = run_labbook(root, "build", env=env)
    assert result.returncode == 0, result.stderr
    pid = int(pid_file.read_text())
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or proc_stat(pid)[0] == "Z", timeout=10)


SWEEP = """---
title: Interrupted sweep
date: 2026-01-03
labbook:
  params: {{k: 0}}
  sweep: {{k: [{ks}]}}
---

```python
import time, labbook
time.sleep(1.5)
labbook.observe(k2=labbook.param("k") ** 2)
```
"""


@pytest.mark.parametrize("after", ["first kernels", "points done"])
def test_an_interrupted_sweep_at_j2_ends_at_once_and_quietly(tmp_path, after):
    """Ctrl-C while two workers have points queued behind them: every worker stops with its job
    (none starts another), the build says `interrupted` and exits 130 without a traceback from a
    worker thread, and no kernel, server or folder of it is left."""
    root = make_project(tmp_path / "p", {"sweep.md": SWEEP.format(ks=", ".join(map(str, range(10))))})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    build = start_labbook(root, "build", "-j2", env={"TMPDIR": str(scratch)})
    wait_for(lambda: len(kernels_of(root)) >= 2, timeout=60)
    if after == "points done":  # some points in the cache, the next ones started ahead
        wait_for(lambda: len(list((root / ".labbook").rglob("run.json"))) >= 3, timeout=60)
    build.send_signal(signal.SIGINT)
    began = time.monotonic()
    build.wait(timeout=60)
    stderr = build.stderr.read()
    assert build.returncode == 130, stderr
    assert time.monotonic() - began < 5, "the interrupt waited for something"
    assert "interrupted" in stderr and "Traceback" not in stderr and "Exception in thread" not in stderr, stderr
    wait_for(lambda: not kernels_of(root), timeout=10)
    wait_for(lambda: not list(scratch.iterdir()), timeout=10)
    result = run_labbook(root, "build", "-j2")
    assert result.returncode == 0, result.stderr
    summary = re.search(r"points: (\d+) executed, (\d+) cached of 10", result.stderr)
    assert summary and int(summary[1]) + int(summary[2]) == 10, result.stderr
    finished = len(re.findall(r"points \d+/10", stderr))  # each line is a point stored in the cache
    assert int(summary[2]) >= finished, (stderr, result.stderr)
