"""Preview: site/ (a Jekyll source tree) -> plain HTML, with the same URLs, and no Ruby.

Does for labbook's own tree what Jekyll does with it: pages with front matter get the layout
(the same templates/base.html that the Jekyll layouts are made from), posts go to their
permalink /blog/:year/:slug/, everything else is copied. Never executes or renders posts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import frontmatter, journal
from .config import Config
from .errors import ConfigError, LabbookError
from .liquid import render_live_figures
from .theme import Theme

__all__ = ["render_html", "page_files", "MARKER"]

MARKER = ".labbook-html.json"
"""In an output folder: the files labbook wrote there, the only ones it may delete. A folder
holding it is labbook's output, never read back as content."""
_POST = re.compile(r"^(?P<year>\d{4})-\d{2}-\d{2}-(?P<slug>.+)\.html$")
_SKIPPED = ("_layouts", "_includes", "_plugins", "_config.yml")


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    url_path: str
    """Where the output goes, relative to the output folder."""


def page_files(site: Path) -> Iterator[_Source]:
    """Every file of the tree and where Jekyll would put it (labbook's own output folders skipped)."""
    outputs = {p.parent for p in site.rglob(MARKER)}
    for path in sorted(site.rglob("*")):
        relative = path.relative_to(site).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in relative.split("/")):
            continue
        if relative.startswith(_SKIPPED) or any(path.is_relative_to(folder) for folder in outputs):
            continue
        if relative.startswith("_posts/"):
            match = _POST.match(path.name)
            if match:
                yield _Source(path, f"blog/{match['year']}/{match['slug']}/index.html")
            continue
        yield _Source(path, relative)


def _as_page(source: _Source) -> tuple[dict[str, Any], str] | None:
    """(front matter, body) of a page Jekyll would lay out; None for a file copied as it is.

    Only HTML outside assets/ that starts with front matter is a page: a data file is published
    byte for byte, whatever it holds.
    """
    if source.path.suffix != ".html" or source.url_path.startswith("assets/"):
        return None
    data = source.path.read_bytes()
    if not data.startswith(b"---"):
        return None
    try:
        text = data.decode("utf-8")
        parts = frontmatter.split(text)
    except (UnicodeDecodeError, frontmatter.FrontMatterProblem):
        return None
    return (frontmatter.values_of(text) or {}, parts[1]) if parts else None


def _page(theme: Theme, config: Config, front: dict[str, Any], body: str) -> str:
    title = front.get("title")
    page_title = f"{title} · {config.title}" if title else config.title
    return theme.render(
        "base.html", page_title=page_title, description=front.get("description") or config.description,
        site_title=config.title, baseurl=config.baseurl, content=_safe(body + _included(config, front)),
    )


def _included(config: Config, front: dict[str, Any]) -> str:
    """What the post layout's `{% include {{ page.labbook.links }} %}` adds under a post: its links to
    other posts (previous, next, related, backlinks), written by the index stage."""
    own = front.get("labbook")
    name = own.get("links") if isinstance(own, dict) else None
    if not isinstance(name, str) or not name:
        return ""
    try:
        return (config.site / "_includes" / journal.inside(name)).read_text(encoding="utf-8")
    except (OSError, LabbookError):
        return ""


def _safe(body: str) -> Any:
    from markupsafe import Markup

    return Markup(body)


def _refuse_foreign(config: Config, output: Path, force: bool) -> None:
    """labbook writes only into a folder it made (or an empty or new one), unless forced.

    Raises:
        ConfigError: the folder is the project, its posts or site, or holds files labbook did not write.
    """
    if force:
        return
    protected = {config.root: "the project folder", config.posts: "the posts folder", config.site: "the site folder"}
    for folder, what in protected.items():
        if output == folder or folder.is_relative_to(output):
            raise ConfigError(f"refusing to write HTML into {config.relative(output) or '.'}: it is (or holds) {what}",
                              hint="name a new folder, e.g. labbook html _html")
    assets = config.assets
    if output.is_relative_to(assets) and not config.root.is_relative_to(assets):
        raise ConfigError(f"refusing to write HTML into {config.relative(output)}: it is inside "
                          f"{config.relative(assets)}/, which every build publishes as site/assets/ (the pages "
                          "would come back inside themselves, one level deeper each time)",
                          hint="name a folder outside it, e.g. labbook html _html")
    if output.is_dir() and not (output / MARKER).exists() and any(output.iterdir()):
        raise ConfigError(
            f"refusing to write HTML into {config.relative(output)}/: it holds files labbook did not write",
            hint="name a new or empty folder; or, to add labbook's pages beside them, --force "
                 "(labbook still deletes only files it wrote)",
        )


def render_html(config: Config, output: Path, *, force: bool = False, only: Collection[str] | None = None) -> int:
    """Write the site as plain HTML into `output`; unchanged files are left alone. The files written.

    Deletes only files it wrote there before (its manifest); never a file it did not write.
    `only`: the site files (site-relative) a build just wrote or deleted; the pages of the
    others are taken as rendered already (`labbook serve` renders a prose edit's one page).

    Raises:
        ConfigError: `output` is not labbook's to write into (see `_refuse_foreign`).
        SiteError: the disk refused; the folder is as it was.
    """
    output = output.resolve()
    _refuse_foreign(config, output, force)
    theme = Theme(config.templates)
    wanted: dict[str, bytes | Path] = {}
    untouched: set[str] = set()
    for source in page_files(config.site):
        if only is not None and source.path.relative_to(config.site).as_posix() not in only \
                and (output / source.url_path).is_file():
            untouched.add(source.url_path)
            continue
        page = _as_page(source)
        if page is None:
            wanted[source.url_path] = source.path
        else:  # an author's figure tags, as Jekyll renders them with site/_includes/figure.liquid
            front, body = page
            wanted[source.url_path] = _page(theme, config, front, render_live_figures(body, config.baseurl)).encode()
    previous = journal.read_manifest(output / MARKER) or set()
    deletions = sorted(name for name in previous - set(wanted) - untouched if (output / name).is_file())
    wanted[MARKER] = journal.manifest_bytes([*wanted, *untouched], note="files labbook wrote here; it deletes no other")
    changed = journal.changed(output, wanted)
    if changed or deletions:
        output.mkdir(parents=True, exist_ok=True)
        journal.recover(output, config.relative(output))
        journal.commit(output, changed, deletions, config.relative(output))
    return len(changed) - (MARKER in changed)
