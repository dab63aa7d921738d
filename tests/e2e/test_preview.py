"""labbook's own HTML (no Ruby) against real Jekyll's, and `labbook serve` rebuilding on an edit."""

from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labbook.config import load_config
from labbook.preview import render_html

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def files(folder: Path) -> set[str]:
    """What a web server publishes of the folder (labbook's manifest is a dot-file, like Jekyll's own)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}


def shown(markup: str) -> tuple[str, str]:
    """The title and the text of <main>, as a reader sees them."""
    title = html.unescape(re.search(r"<title>(.*?)</title>", markup, re.S).group(1)).strip()
    main = re.split(r"<main[^>]*>", markup, maxsplit=1)[1].split("</main>", 1)[0]
    return title, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


@pytest.mark.jekyll
def test_labbook_html_matches_jekyll_page_for_page(built_project, jekyll_site, tmp_path):
    output = tmp_path / "html"
    render_html(load_config(built_project), output)
    assert files(output) == files(jekyll_site)
    for name in sorted(files(output)):
        ours, theirs = (output / name).read_bytes(), (jekyll_site / name).read_bytes()
        if name.endswith(".html"):
            assert shown(ours.decode()) == shown(theirs.decode()), name
        else:
            assert ours == theirs, name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_serve_shows_the_pages_and_rebuilds_on_a_prose_edit(fresh_project):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "labbook", "--root", str(fresh_project), "serve", "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/blog/2026/liquid/"
        deadline = time.monotonic() + 60
        page = ""
        while time.monotonic() < deadline:
            try:
                page = fetch(url)
                break
            except OSError:
                time.sleep(0.2)
        assert "Prose with" in shown(page)[1] and "{{ x }}" in shown(page)[1]
        assert "Fixture notebook" in fetch(f"http://127.0.0.1:{port}/")
        post = fresh_project / "posts" / "liquid.md"
        post.write_text(post.read_text().replace("Prose with", "Edited while serving, with"))
        deadline = time.monotonic() + 60
        while "Edited while serving" not in fetch(url):
            assert time.monotonic() < deadline, "the edit never showed up"
            time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=20)
