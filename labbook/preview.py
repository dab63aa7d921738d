"""Preview: site/ (a Jekyll source tree) -> plain HTML, with the same URLs, and no Ruby.

Does for labbook's own tree what Jekyll does with it: pages with front matter get the layout
(the same templates/base.html that the Jekyll layouts are made from), posts go to their
permalink /blog/:year/:slug/, everything else is copied. Never executes or renders posts.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import Config
from .files import write_if_changed
from .liquid import render_live_figures
from .theme import Theme

__all__ = ["render_html", "page_files", "serve"]

_POST = re.compile(r"^(?P<year>\d{4})-\d{2}-\d{2}-(?P<slug>.+)\.html$")
_SKIPPED = ("_layouts", "_includes", "_plugins", "_config.yml")
_RAW = "assets/"
"""Everything under assets/ (run artifacts, the author's files) is copied byte for byte, whatever it holds."""


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    url_path: str
    """Where the output goes, relative to the output folder."""


def page_files(site: Path) -> Iterator[_Source]:
    """Every file of the tree and where Jekyll would put it."""
    for path in sorted(site.rglob("*")):
        relative = path.relative_to(site).as_posix()
        hidden = any(part.startswith(".") for part in relative.split("/"))
        if not path.is_file() or (hidden and not relative.startswith(_RAW)):
            continue
        if relative.startswith(_SKIPPED):
            continue
        if relative.startswith("_posts/"):
            match = _POST.match(path.name)
            if match:
                yield _Source(path, f"blog/{match['year']}/{match['slug']}/index.html")
            continue
        yield _Source(path, relative)


def _split(text: str) -> tuple[dict[str, Any] | None, str]:
    if not text.startswith("---\n"):
        return None, text
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header) or {}, body


def _page(theme: Theme, config: Config, front: dict[str, Any], body: str) -> str:
    title = front.get("title")
    page_title = f"{title} · {config.title}" if title else config.title
    return theme.render(
        "base.html", page_title=page_title, description=front.get("description") or config.description,
        site_title=config.title, baseurl=config.baseurl, content=_safe(body),
    )


def _safe(body: str) -> Any:
    from markupsafe import Markup

    return Markup(body)


def render_html(config: Config, output: Path) -> int:
    """Write the site as plain HTML into `output`; unchanged files are left alone. The files written."""
    theme = Theme(config.templates)
    written = 0
    expected = set()
    for source in page_files(config.site):
        target = output / source.url_path
        expected.add(target)
        if source.path.suffix in (".html", ".xml") and not source.url_path.startswith(_RAW):
            front, body = _split(source.path.read_text(encoding="utf-8"))
            if front is not None:
                body = render_live_figures(body, config.baseurl)  # Jekyll's work on an author's figure tags
                data = _page(theme, config, front, body).encode() if source.path.suffix == ".html" else body.encode()
                written += write_if_changed(target, data)
                continue
        if not target.exists() or target.stat().st_size != source.path.stat().st_size or \
                target.read_bytes() != source.path.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.path, target)
            written += 1
    for stale in [p for p in output.rglob("*") if p.is_file() and p not in expected]:
        stale.unlink()
    return written


def serve(config: Config, output: Path, port: int, rebuild: Any = None, host: str = "127.0.0.1") -> None:
    """Serve `output` on localhost; when `rebuild` is given, call it on every change of the posts."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, port), functools.partial(Quiet, directory=str(output)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        if rebuild is None:
            thread.join()
            return
        from watchfiles import watch

        watched = [p for p in (config.posts, config.templates, config.root / "pyproject.toml") if p.exists()]
        watching = False
        for changes in watch(*watched, yield_on_timeout=True, rust_timeout=500):
            if changes or not watching:  # once the watch is set up: catch edits made before it was
                rebuild()
            watching = True
    finally:
        server.shutdown()
