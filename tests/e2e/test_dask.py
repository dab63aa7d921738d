"""A real Dask cluster on loopback: a scheduler and two workers, started by the test."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labbook.cli import main

from ..helpers import assert_same_site, copy_fixture_project, make_project, normalized_site, parent_pid

pytestmark = [pytest.mark.dask, pytest.mark.kernel, pytest.mark.slow]


def _dask(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "distributed.cli." + args[0], *args[1:]], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker`s, each in its own folder: no shared files."""
    pytest.importorskip("distributed")
    from distributed import Client

    base = tmp_path_factory.mktemp("dask")
    address_file = base / "scheduler.json"
    processes = [_dask("dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                       "--scheduler-file", str(address_file), cwd=base)]
    deadline = time.monotonic() + 60
    while not address_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(address_file.read_text())["address"]
    for name in ("w1", "w2"):
        folder = base / name
        folder.mkdir()
        processes.append(_dask("dask_worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                               "--name", name, "--local-directory", str(folder), cwd=folder))
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_dask_build_equals_a_local_build(cluster, tmp_path):
    local = copy_fixture_project(tmp_path / "local")
    remote = copy_fixture_project(tmp_path / "remote")
    assert main(["--root", str(local), "-q", "build", "-j", "2"]) == 0
    assert main(["--root", str(remote), "-q", "build", "--scheduler", cluster]) == 0
    assert_same_site(local / "site", remote / "site")


def test_a_worker_killed_mid_run_means_a_rerun_not_a_broken_site(cluster, tmp_path):
    root = make_project(tmp_path / "p", {"slow.md": (
        "---\ntitle: Slow\ndate: 2026-01-01\n---\n\n```python\nimport time\ntime.sleep(4)\nprint('done')\n```\n")})
    build = subprocess.Popen([sys.executable, "-m", "labbook", "--root", str(root), "build", "--scheduler", cluster],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = _wait_for_kernel_parent(timeout=60)
    os.kill(worker, signal.SIGKILL)
    out, err = build.communicate(timeout=240)
    page = root / "site" / "_posts" / "2026-01-01-slow.html"
    if build.returncode == 0:
        assert "1 executed" in err and page.exists()
        assert "done" in page.read_text()
    else:
        assert "the executor lost this run" in err and not page.exists()
    assert not (root / "site" / ".labbook-journal.json").exists()


def _wait_for_kernel_parent(timeout: float) -> int:
    """The pid of the Dask worker process whose kernel (or kernel server) is running a post."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                if b"labbook.kernel_side" in command:
                    parent = parent_pid(int(entry.name))  # a kernel's parent is the worker's fork server
                    if b"labbook.kernel_side" not in Path(f"/proc/{parent}/cmdline").read_bytes():
                        return parent
            except (OSError, IndexError, ValueError):
                continue
        time.sleep(0.1)
    raise AssertionError("no kernel started on the cluster")


def test_a_dask_built_sweep_equals_a_local_one(cluster, tmp_path):
    from .test_sweeps import SWEEP

    small = SWEEP.replace("sweep: {a: [0.5, 1.0, 2.0], n: [1, 2, 3], seed: [0, 1]}", "sweep: {a: [0.5, 2.0], n: [1, 3]}")
    local = make_project(tmp_path / "local", {"toy.md": small})
    remote = make_project(tmp_path / "remote", {"toy.md": small})
    assert main(["--root", str(local), "-q", "build", "-j", "2"]) == 0
    assert main(["--root", str(remote), "-q", "build", "--scheduler", cluster]) == 0
    points = remote / "site" / "assets" / "posts" / "toy" / "points"
    assert sorted(p.name for p in points.iterdir()) == ["a-0.5_n-1", "a-0.5_n-3", "a-2.0_n-1", "a-2.0_n-3"]
    same, other = (_without_timings(normalized_site(root / "site")) for root in (local, remote))
    assert sorted(same) == sorted(other)
    assert [name for name in same if same[name] != other[name]] == []


def _without_timings(files: dict[str, bytes]) -> dict[str, bytes]:
    """A sweep's page shows how long each point ran, so the table's size, the feed (which holds
    the page) and the search index (its text) vary with timings: masked or left out."""
    sizes = re.compile(rb'(download>sweep\.[a-z]+</a> <span class="size">)[^<]*<')
    return {name: sizes.sub(rb"\1<size><", data) for name, data in files.items()
            if name != "feed.xml" and not name.startswith("pagefind/")}
