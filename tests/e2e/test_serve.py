"""`labbook serve` for real: a subprocess on loopback, edits on disk, server-sent events, and a
headless Chromium page that reloads by itself and shows the error panel of a broken post."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from labbook.cli import main

from ..helpers import make_project, require_tool, searchable, wait_for

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

LIVE_POST = """---
title: Live
date: 2026-03-01
description: A post edited while it is served.
tags: [demo]
---

Prose marker ALPHA, and the value is `{python} value`.

```python
import os
from pathlib import Path
factor = int(Path(os.environ["LABBOOK_ROOT"], "data", "factor.txt").read_text())
value = 6 * factor
print("result", value)
```
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A one-post project, built once (one kernel); each test serves a copy of it."""
    root = make_project(tmp_path_factory.mktemp("serve") / "project", {"live.md": LIVE_POST})
    (root / "data").mkdir()
    (root / "data/factor.txt").write_text("7\n")  # an input the post is seen to read, outside posts/
    assert main(["--root", str(root), "-q", "build"]) == 0
    return root


@pytest.fixture
def project(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "project", symlinks=True))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Served:
    """`labbook serve` in a subprocess, its stderr lines, and the events it sends."""

    def __init__(self, root: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "labbook", "--root", str(root), *args, "serve", "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def started(self) -> Served:
        wait_for(lambda: any("serving at" in line for line in self.lines) or self.process.poll() is not None, 60)
        assert self.process.poll() is None, "\n".join(self.lines)
        wait_for(lambda: fetch(self.url + "/")[0] == 200, 60)
        threading.Thread(target=self._listen, daemon=True).start()
        wait_for(lambda: any(e["type"] == "hello" for e in self.events), 10)
        hello = next(e for e in self.events if e["type"] == "hello")
        if hello["builds"] == 0:  # the first build is still rendering: its event must not pass for an edit's
            wait_for(lambda: any(e["type"] == "built" for e in self.events), 120)
        return self

    def _listen(self) -> None:
        with urllib.request.urlopen(self.url + "/_labbook/events", timeout=120) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))

    def built(self, after: int) -> dict:
        """The first 'built' event after the `after`-th event."""
        wait_for(lambda: any(e["type"] == "built" for e in self.events[after:]), 90)
        return next(e for e in self.events[after:] if e["type"] == "built")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def served(project) -> Iterator[Served]:
    server = Served(project, "-v").started()
    yield server
    server.stop()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_one_build_at_start_then_prose_edits_run_no_kernel_and_code_edits_one(served, project):
    assert sum(line.startswith("build:") for line in served.lines) == 1, served.lines  # -v: one line per build
    status, page = fetch(served.url + "/blog/2026/live/")
    assert status == 200 and "ALPHA" in page and "/_labbook/live.js" in page
    assert '<span class="inline-value" title="value">42</span>' in page
    seen = len(served.events)
    edit(project / "posts/live.md", "ALPHA", "BETA")
    event = served.built(seen)
    assert event["executed"] == 0 and "/blog/2026/live/" in event["pages"]
    assert "BETA" in fetch(served.url + "/blog/2026/live/")[1]
    wait_for(lambda: searchable(project / "site", "BETA") and searchable(project / ".labbook/preview", "BETA"), 30)
    assert not searchable(project / "site", "ALPHA")  # indexed right after the reload, in site/ and served
    seen = len(served.events)
    edit(project / "posts/live.md", "6 * factor", "6 * factor + 1")
    event = served.built(seen)
    assert event["executed"] == 1
    page = fetch(served.url + "/blog/2026/live/")[1]
    assert "result 43" in page and 'title="value">43</span>' in page  # the value in the prose follows the code
    seen = len(served.events)
    (project / "data/factor.txt").write_text("8\n")  # a found input, outside posts/: watched too
    assert served.built(seen)["executed"] == 1
    assert "result 49" in fetch(served.url + "/blog/2026/live/")[1]
    for published in [*(project / "site").rglob("*.html"), *(project / ".labbook/preview").rglob("*.html")]:
        assert "_labbook" not in published.read_text(), published  # the live script is only ever served


def test_a_busy_port_moves_to_the_next_free_one(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        server = Served(project, port=busy)
        try:
            wait_for(lambda: any("serving at" in line for line in server.lines) or server.process.poll() is not None)
            moved = next(line for line in server.lines if "is busy" in line)
            port = int(moved.rsplit(" ", 1)[1])
            assert moved == f"port {busy} is busy; serving on port {port}" and port != busy
            wait_for(lambda: fetch(f"http://127.0.0.1:{port}/")[0] == 200)
        finally:
            server.stop()


def test_an_invalid_port_is_one_line_and_exit_2(project):
    result = subprocess.run([sys.executable, "-m", "labbook", "--root", str(project), "serve", "--port", "70000"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --port 70000 is not a port: choose one from 1024 to 65535"


def test_a_pyproject_edit_reloads_the_settings_and_a_broken_one_keeps_the_last_good_site(served, project):
    pyproject = project / "pyproject.toml"
    seen = len(served.events)
    edit(pyproject, 'title = "Test notebook"', 'title = "Renamed notebook"')
    served.built(seen)
    wait_for(lambda: "Renamed notebook" in fetch(served.url + "/")[1])
    seen = len(served.events)
    edit(pyproject, 'title = "Renamed notebook"', 'title = "unclosed')
    assert "*" in served.built(seen)["pages"]
    status, page = fetch(served.url + "/blog/2026/live/")
    assert status == 200 and "labbook-problem" in page and "pyproject.toml is not valid TOML" in page
    assert "Renamed notebook" in page and "ALPHA" in page  # the last good site, still served
    assert served.process.poll() is None
    seen = len(served.events)
    edit(pyproject, 'title = "unclosed', 'title = "Fixed notebook"')
    served.built(seen)
    wait_for(lambda: "labbook-problem" not in fetch(served.url + "/")[1] and "Fixed notebook" in fetch(served.url + "/")[1])


# --- in a real browser ------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1100,1400"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = require_tool("chromium")
    driver_path = require_tool("chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


def text_of(browser) -> str:
    return browser.execute_script("return document.querySelector('main').innerText")


@pytest.mark.browser
def test_the_open_page_reloads_by_itself_shows_progress_and_the_error_of_a_broken_post(browser, served, project):
    browser.get(served.url + "/blog/2026/live/")
    assert "ALPHA" in text_of(browser)
    wait_for(lambda: browser.execute_script("return document.documentElement.dataset.labbookLive") == "connected", 10)
    browser.execute_script("window.labbookMarker = 'before'")  # gone once the page reloads itself
    post = project / "posts/live.md"
    edit(post, "ALPHA", "GAMMA")
    wait_for(lambda: "GAMMA" in text_of(browser), 30)
    assert browser.execute_script("return window.labbookMarker") is None

    browser.execute_script("window.labbookMarker = 'before'")
    edit(post, 'print("result", value)', 'import time\ntime.sleep(2)\nprint("slow result", value)')
    wait_for(lambda: browser.execute_script(
        "const b = document.getElementById('labbook-running'); return b && b.textContent"), 30)
    banner = browser.execute_script("return document.getElementById('labbook-running').textContent")
    assert "running this post: cell 1/1" in banner
    assert browser.execute_script("return window.labbookMarker") == "before"  # the last good version, still open
    wait_for(lambda: "slow result 42" in text_of(browser), 60)

    edit(post, "value = 6 * factor", "value = 6 * factor\nraise ValueError('broken on purpose')")
    wait_for(lambda: browser.execute_script("return document.querySelector('.labbook-error') !== null"), 60)
    panel = browser.execute_script("return document.querySelector('.labbook-error').innerText")
    lines = post.read_text().splitlines()
    line = lines.index("raise ValueError('broken on purpose')") + 1
    assert f"posts/live.md:{line}" in panel and "ValueError: broken on purpose" in panel
    assert f"{line}raiseValueError('brokenonpurpose')" in panel.replace(" ", "")  # the cell, numbered as the post
    assert "slow result 42" in text_of(browser)  # the last good content, below the error
