"""Preview: site/ (a Jekyll source tree) -> plain HTML, with the same URLs, and no Ruby.

Does for labbook's own tree what Jekyll does with it: pages with front matter get the layout
(the same templates/base.html that the Jekyll layouts are made from), posts go to their
permalink /blog/:year/:slug/, everything else is copied. Never executes or renders posts.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import Config
from .files import write_if_changed
from .theme import Theme

__all__ = ["render_html", "page_files"]

_POST = re.compile(r"^(?P<year>\d{4})-\d{2}-\d{2}-(?P<slug>.+)\.html$")
_SKIPPED = ("_layouts", "_includes", "_config.yml")


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    url_path: str
    """Where the output goes, relative to the output folder."""


def page_files(site: Path) -> Iterator[_Source]:
    """Every file of the tree and where Jekyll would put it."""
    for path in sorted(site.rglob("*")):
        relative = path.relative_to(site).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in relative.split("/")):
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


def render_html(config: Config, output: Path, only: Collection[str] | None = None) -> int:
    """Write the site as plain HTML into `output`; unchanged files are left alone. The files written.

    `only`: the site files (site-relative) a build just wrote or deleted; the others are taken
    as already rendered (`labbook serve` renders a prose edit's one page, not the whole site).
    """
    theme = Theme(config.templates)
    written = 0
    expected = set()
    for source in page_files(config.site):
        target = output / source.url_path
        expected.add(target)
        if only is not None and source.path.relative_to(config.site).as_posix() not in only:
            continue
        if source.path.suffix in (".html", ".xml"):
            front, body = _split(source.path.read_text(encoding="utf-8"))
            if front is not None:
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
