"""`labbook serve`: from a save to the open page reloaded, on the example project and on the
smallest synthetic one.

in → out: the settings (and the synthetic projects) → `Measurement` rows: seconds from the
write of a prose edit to the reload event (server-sent events), and to the page fetched again
with the edit in it. No kernel starts.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ..harness import (
    BIN,
    HERE,
    Measurement,
    Sample,
    Settings,
    busy_seconds,
    checked,
    environment,
    progress,
    run,
    wait_quiet,
)
from ..posts import first_post, fresh_copy
from .builds import labbook_build

EXAMPLE = HERE.parent
"""The example project (posts/, site/ with its published runs, pyproject.toml): what an author serves."""


def example_copy(target: Path) -> Path:
    """The example project's sources and published site: served with no kernel to start."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(EXAMPLE / "pyproject.toml", target / "pyproject.toml")
    for folder in ("posts", "site"):
        shutil.copytree(EXAMPLE / folder, target / folder)
    return target


class Events(threading.Thread):
    """The server-sent events of `labbook serve`, each with the time it arrived."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        import urllib.request

        with urllib.request.urlopen(self.url, timeout=600) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    self.received.append((time.perf_counter(), event))
                    if event.get("builds"):
                        self.ready.set()

    def built_after(self, start: float, page: str, timeout: float = 60.0) -> float:
        """When the first 'built' event naming `page` came after `start`."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for arrived, event in list(self.received):
                if arrived >= start and event["type"] == "built" and (page in event["pages"] or "*" in event["pages"]):
                    return arrived
            time.sleep(0.001)
        raise SystemExit(f"no reload event for {page} within {timeout:.0f} s")


def measure_serve_reload(work: Path, repeat: int, project: Path | None = None, label: str = "example") -> Measurement:
    """`labbook serve` on a built project; a prose edit of one post, timed from the write to
    the reload event the open page receives (server-sent events), and to the page fetched again
    with the edit in it (what the browser does on that event). No kernel starts."""
    import urllib.request

    root = example_copy(work / f"serve-{label}") if project is None else project
    if project is None:
        checked(run([BIN / "labbook", "--root", root, "build", "-q"], cwd=root), "labbook build (example)")
    post = first_post(root / "posts") if project is not None else root / "posts" / "superposition.md"
    port = _free_port()
    server = subprocess.Popen([str(BIN / "labbook"), "--root", str(root), "serve", "--port", str(port)], cwd=root,
                              env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("labbook serve did not start") from None
                time.sleep(0.05)
        events = Events(base + "/_labbook/events")
        events.start()
        if not events.ready.wait(120):
            raise SystemExit("labbook serve never finished its first build")
        url = _page_url(root, post)
        posts = len(list((root / "posts").glob("*.md")))
        row = Measurement(f"serve-reload-{label}", "serve: prose edit → open page reloaded", "labbook", posts, None)
        for round_ in itertools.count():
            if len(row.samples) >= repeat:
                break
            wait_quiet()
            busy, theirs = busy_seconds(), _cpu_seconds(server.pid)
            marker = f"Served edit {round_}."
            text = post.read_text(encoding="utf-8")
            text = re.sub(r"\n\nServed edit \d+\.", "", text)
            first_blank = text.index("\n\n", text.index("\n---", 3) + 4)
            began = time.perf_counter()
            post.write_text(text[:first_blank] + f"\n\n{marker}" + text[first_blank:], encoding="utf-8")
            arrived = events.built_after(began, url)
            page = urllib.request.urlopen(base + url, timeout=10).read().decode()
            fetched = time.perf_counter()
            if marker not in page:
                raise SystemExit(f"the reloaded page lacks the edit ({marker})")
            ours = _cpu_seconds(server.pid) - theirs
            foreign = max(0.0, busy_seconds() - busy - ours) / (fetched - began)  # this script's own share included
            row.samples.append(Sample(wall=fetched - began, rss_self_mb=0.0, rss_tree_mb=0.0, children=0, executed=0,
                                      event=arrived - began, foreign=foreign))
            row.note = (f"save → page fetched with the edit; save → reload event alone: median "
                        f"{statistics.median(s.event or 0.0 for s in row.samples):.3f} s; no kernel")
        progress(row)
        return row
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its reaped children (the server and the subprocesses it ran)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _page_url(root: Path, post: Path) -> str:
    """The post's URL: /blog/<year of its date>/<slug>/ (the bench projects have no baseurl)."""
    date = re.search(r"^date:\s*(\d{4})", post.read_text(encoding="utf-8"), re.MULTILINE)
    if date is None:
        raise SystemExit(f"{post}: no date")
    return f"/blog/{date.group(1)}/{post.stem}/"


def run_serve(settings: Settings, results: dict[str, Measurement], projects: dict[int, Path] | None = None) -> None:
    """`labbook serve`: save → reload on the example project, and on the smallest synthetic one."""
    row = measure_serve_reload(settings.workdir, settings.repeat)
    results[row.key] = row
    if projects:
        size = min(projects)
        built = fresh_copy(projects[size], settings.workdir / f"serve-{size}")
        labbook_build(built, os.cpu_count() or 1, expect_executed=size)
        row = measure_serve_reload(settings.workdir, settings.repeat, project=built, label=str(size))
        results[row.key] = row
