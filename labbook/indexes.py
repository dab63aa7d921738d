"""Indexes: the published posts' summaries -> the site's listing pages, feeds and cross-links.

In: every published post's `Summary` (and, for the feed, the bodies of the newest posts).
Out: {site-relative path: bytes}: the home page, a page per tag, model, data set and phenomenon,
the models x data matrix, the open questions, the search page, the 404 page, the Atom feed, the
sitemap, and per post the links that depend on the other posts (previous/next, related entries,
backlinks) as a Jekyll include, so a new post never forces an old page to be rendered again.
Pure: reads no file and writes none.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import frontmatter, pageparts
from .config import Config
from .model import Summary
from .theme import Theme, liquid_inert, tag_slug, xml_safe

__all__ = ["index_files", "feed_posts", "related", "FACETS", "FEED_ENTRIES"]

FEED_ENTRIES = 20
"""Posts in the Atom feed, newest first, each with its full content."""

FACETS = (("models", "model", "Models"), ("data", "data set", "Data"), ("phenomena", "phenomenon", "Phenomena"))
"""(Summary field and URL folder, what one value is called, the index page's title)."""

RELATED = 5


@dataclass(frozen=True, slots=True)
class _Group:
    """The posts that share one tag, model, data set or phenomenon."""

    name: str
    slug: str
    posts: tuple[Summary, ...]


def newest_first(summaries: Iterable[Summary]) -> list[Summary]:
    return sorted(summaries, key=lambda s: (s.date, s.slug), reverse=True)


def feed_posts(summaries: Iterable[Summary]) -> list[Summary]:
    """The posts whose bodies the feed carries."""
    return newest_first(summaries)[:FEED_ENTRIES]


def index_files(theme: Theme, config: Config, summaries: Sequence[Summary],
                body_of: Callable[[Summary], str | None] = lambda s: None) -> dict[str, bytes]:
    """Every listing, feed and cross-link file of the site, from the posts' summaries."""
    posts = newest_first(summaries)
    page = _Pages(theme, config)
    files = {"index.html": page("Entries", "index.html", heading=config.title, intro=config.description,
                                posts=posts, home=True)}
    tags = _groups(posts, "tags")
    for group in tags:
        files[f"tags/{group.slug}/index.html"] = page(f"Tag: {group.name}", "index.html",
                                                      heading=f"Tagged “{group.name}”", intro="", posts=group.posts)
    files["tags/index.html"] = page("Tags", "tags.html", tags=[(g.name, g.slug, len(g.posts)) for g in tags])
    for field, one, title in FACETS:
        groups = _groups(posts, field)
        for group in groups:
            files[f"{field}/{group.slug}/index.html"] = page(
                f"{one.capitalize()}: {group.name}", "facet.html", field=field, one=one, group=group,
                seen_with=_seen_with(group.posts, field))
        files[f"{field}/index.html"] = page(title, "facets.html", field=field, one=one, heading=title, groups=groups,
                                            seen_with={g.slug: _seen_with(g.posts, field) for g in groups})
    files["matrix/index.html"] = page("Models × data", "matrix.html", matrix=_matrix(posts))
    files["questions/index.html"] = page("Open questions", "questions.html",
                                         posts=[p for p in posts if p.questions])
    files["search/index.html"] = page("Search", "search.html")
    files["404.html"] = _with_front_matter({"layout": "default", "title": "Not found", "permalink": "/404.html"},
                                           theme.render("404.html", baseurl=config.baseurl, posts=posts[:5]))
    files["feed.xml"] = _feed(theme, config, posts, body_of).encode()
    if config.url:
        files["sitemap.xml"] = _sitemap(theme, config, posts, sorted(files)).encode()
    by_url = {p.url: p for p in posts}
    for post in posts:
        files[f"_includes/{pageparts.links_include(post.slug)}"] = liquid_inert(theme.render(
            "links.html", **_links(post, posts, by_url), baseurl=config.baseurl)).encode()
    return files


class _Pages:
    """Renders one listing page: a template's body under front matter, Liquid made inert."""

    def __init__(self, theme: Theme, config: Config) -> None:
        self.theme, self.config = theme, config

    def __call__(self, title: str, template: str, **context: Any) -> bytes:
        body = self.theme.render(template, baseurl=self.config.baseurl, **context)
        return _with_front_matter({"layout": "default", "title": title}, body)


def _with_front_matter(values: Mapping[str, Any], body: str) -> bytes:
    return frontmatter.dump(dict(values)).encode() + liquid_inert(body).encode()


# --- groups: tags, models, data sets, phenomena ----------------------------------------------------


def _groups(posts: Sequence[Summary], field: str) -> list[_Group]:
    """The values of one facet, by slug, each with its posts (newest first, each once)."""
    by_slug: dict[str, list[Summary]] = defaultdict(list)
    names: dict[str, str] = {}
    for post in posts:
        for value in getattr(post, field):
            slug = tag_slug(value)
            names.setdefault(slug, value)
            listed = by_slug[slug]
            if not listed or listed[-1] is not post:  # two of a post's values may share a slug
                listed.append(post)
    return sorted((_Group(names[s], s, tuple(p)) for s, p in by_slug.items()), key=lambda g: (g.name.lower(), g.slug))


def _seen_with(posts: Sequence[Summary], field: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """For a group: the other facets' values its posts share, (field, label, [(name, slug)])."""
    seen = []
    for other, one, title in FACETS:
        if other == field:
            continue
        names: dict[str, str] = {}
        for post in posts:
            for value in getattr(post, other):
                names.setdefault(tag_slug(value), value)
        if names:
            seen.append((other, title, sorted(((n, s) for s, n in names.items()), key=lambda x: x[0].lower())))
    return seen


# --- the matrix: models x data, each cell the phenomena seen ----------------------------------------

UNSPECIFIED = "unspecified"


def _matrix(posts: Sequence[Summary]) -> dict[str, Any]:
    """Rows are models, columns data sets; a cell lists (phenomenon, post) for every post that
    used that model on that data set. A post naming no model (or no data) sits under 'unspecified';
    one naming no model, data or phenomenon is left out."""
    posts = [p for p in posts if p.models or p.data or p.phenomena]  # an entry that names none is not in it
    models = _axis(posts, "models")
    data = _axis(posts, "data")
    cells: dict[tuple[str, str], list[tuple[str, Summary]]] = defaultdict(list)
    for post in sorted(posts, key=lambda p: (p.title.lower(), p.slug)):
        for model in post.models or (UNSPECIFIED,):
            for datum in post.data or (UNSPECIFIED,):
                for phenomenon in post.phenomena or ("(none named)",):
                    cells[(model, datum)].append((phenomenon, post))
    rows = []
    for model in models:
        row = [sorted(cells.get((model, datum), []), key=lambda c: (c[0].lower(), c[1].title.lower()))
               for datum in data]
        rows.append((model, row))
    return {"models": models, "data": data, "rows": rows, "empty": not posts, "posts": posts}


def _axis(posts: Sequence[Summary], field: str) -> list[str]:
    values = sorted({v for p in posts for v in getattr(p, field)}, key=str.lower)
    if any(not getattr(p, field) for p in posts):
        values.append(UNSPECIFIED)
    return values


# --- links between posts -------------------------------------------------------------------------


def _links(post: Summary, posts: Sequence[Summary], by_url: Mapping[str, Summary]) -> dict[str, Any]:
    """Previous and next by date, related entries (most shared phenomena and models first), and
    the posts whose bodies link here."""
    ordered = list(reversed(posts))  # oldest first
    at = ordered.index(post)
    older = ordered[at - 1] if at > 0 else None
    newer = ordered[at + 1] if at + 1 < len(ordered) else None
    return {"post": post, "older": older, "newer": newer, "related": related(post, posts),
            "backlinks": [p for p in posts if post.url in p.links and p is not post and p.url in by_url]}


def related(post: Summary, posts: Sequence[Summary]) -> list[tuple[Summary, list[str]]]:
    """Other posts sharing phenomena, models or data with `post`: most shared first (phenomena
    weigh most), then newest; with what they share."""
    mine = {field: {tag_slug(v): v for v in getattr(post, field)} for field in ("phenomena", "models", "data")}
    weights = {"phenomena": 3, "models": 2, "data": 1}
    scored = []
    for other in posts:
        if other is post:
            continue
        shared: list[str] = []
        score = 0
        for field, weight in weights.items():
            common = [mine[field][tag_slug(v)] for v in getattr(other, field) if tag_slug(v) in mine[field]]
            shared += common
            score += weight * len(common)
        if score:
            scored.append((score, other.date, other.slug, other, shared))
    scored.sort(key=lambda s: (-s[0], _reverse(s[1]), s[2]))
    return [(s[3], s[4]) for s in scored[:RELATED]]


def _reverse(date: str) -> str:
    """Sort key for newest first inside an ascending sort."""
    return "".join(chr(0x10FFFF - ord(c)) for c in date)


# --- feed and sitemap -----------------------------------------------------------------------------

_RELATIVE_URL = re.compile(r'(\s(?:href|src)=")(/[^"/][^"]*|/)"')


def _absolute(body: str, site_url: str) -> str:
    """Root-relative links and images made absolute, for feed readers that ignore xml:base."""
    return _RELATIVE_URL.sub(lambda m: f'{m.group(1)}{site_url}{m.group(2)}"', body) if site_url else body


def _feed(theme: Theme, config: Config, posts: Sequence[Summary], body_of: Callable[[Summary], str | None]) -> str:
    site_url = config.url.rstrip("/")
    authority = tag_slug(config.title) if not site_url else ""
    entries = []
    for post in feed_posts(posts):
        body = body_of(post)
        entries.append({
            "post": post,
            "link": site_url + post.url,
            "id": site_url + post.url if site_url else f"tag:{authority},{post.date}:{post.url}",
            "updated": post.updated or post.date,
            "authors": post.authors or ((config.author,) if config.author else ()),
            "content": _absolute(body, site_url) if body else "",
        })
    updated = max((e["updated"] for e in entries), default=dt.date(2000, 1, 1).isoformat())
    return xml_safe(theme.render(
        "feed.xml", entries=entries, site_title=config.title, site_url=site_url, baseurl=config.baseurl,
        feed_id=f"{site_url}{config.baseurl}/" if site_url else f"tag:{authority},2000:{config.baseurl}/",
        author=config.author, subtitle=config.description, updated=updated))


def _sitemap(theme: Theme, config: Config, posts: Sequence[Summary], listing_files: Sequence[str]) -> str:
    site_url = config.url.rstrip("/")
    pages = [(site_url + p.url, p.updated or p.date) for p in posts]
    newest = posts[0].date if posts else ""
    for name in listing_files:
        if name.endswith("index.html") and not name.startswith("search/"):
            folder = name[: -len("index.html")]
            pages.append((f"{site_url}{config.baseurl}/{folder}", newest))
    return xml_safe(theme.render("sitemap.xml", pages=sorted(pages)))

