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
import functools
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import frontmatter, pageparts
from .config import Config
from .published import Summary
from .theme import Theme, liquid_inert, tag_slug, xml_safe

__all__ = ["index_files", "listing_key", "feed_posts", "related", "FACETS", "FEED_ENTRIES"]

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
                body_of: Callable[[Summary], str | None] = lambda s: None,
                listings: Mapping[str, bytes | Path] | None = None,
                search_shards: Sequence[str] = ()) -> dict[str, bytes | Path]:
    """Every listing, feed and cross-link file of the site, from the posts' summaries.

    `search_shards`: the site-relative folders of the search bundles the search page merges
    into the first one's results (search.merged_bundles; they follow from the summaries too).

    `listings`, when given, are the listing files of an earlier call with the same `listing_key`
    (they depend on nothing else): they are reused, and only the feed, which carries the posts'
    bodies, is made again.
    """
    posts = newest_first(summaries)
    files: dict[str, bytes | Path] = (dict(listings) if listings is not None
                                      else dict(_listings(theme, config, posts, search_shards)))
    files["feed.xml"] = _feed(theme, config, posts, body_of).encode()
    return files


def listing_key(theme_digest: str, config: Config, summaries: Sequence[Summary]) -> str:
    """What the listing files depend on: the summaries, the site settings and the templates."""
    from . import __version__

    settings = [theme_digest, config.title, config.author, config.description, config.url, config.baseurl, __version__]
    digest = hashlib.sha256(json.dumps(settings).encode())
    for text in sorted(repr(s) for s in summaries):  # a frozen dataclass's repr holds every field, in order
        digest.update(text.encode())
    return digest.hexdigest()


def _listings(theme: Theme, config: Config, posts: Sequence[Summary],
              search_shards: Sequence[str] = ()) -> dict[str, bytes]:
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
    files["search/index.html"] = page("Search", "search.html", shards=search_shards)
    files["404.html"] = _with_front_matter({"layout": "default", "title": "Not found", "permalink": "/404.html"},
                                           theme.render("404.html", baseurl=config.baseurl, posts=posts[:5]))
    if config.url:
        files["sitemap.xml"] = _sitemap(theme, config, posts, sorted(files)).encode()  # feed.xml: not a page
    neighbours = _Neighbours(posts)
    links = theme.env.get_template("links.html")
    for post in posts:
        files[f"_includes/{pageparts.links_include(post.slug)}"] = liquid_inert(
            links.render(**neighbours.of(post), baseurl=config.baseurl)).encode()
    return files


class _Pages:
    """Renders one listing page: a template's body under front matter, Liquid made inert."""

    def __init__(self, theme: Theme, config: Config) -> None:
        self.theme, self.config = theme, config
        self.math_env = {"math_store": config.cache / "math"}  # math in descriptions: typeset once, kept (texmath)

    def __call__(self, title: str, template: str, **context: Any) -> bytes:
        body = self.theme.render(template, baseurl=self.config.baseurl, math_env=self.math_env, **context)
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
            slug = _slug(value)
            names.setdefault(slug, value)
            listed = by_slug[slug]
            if not listed or listed[-1] is not post:  # two of a post's values may share a slug
                listed.append(post)
    return sorted((_Group(names[s], s, tuple(p)) for s, p in by_slug.items()), key=lambda g: (g.name.lower(), g.slug))


def _seen_with(posts: Sequence[Summary], field: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """For a group: the other facets' values its posts share, (field, label, [(name, slug)])."""
    seen = []
    for other, _one, title in FACETS:
        if other == field:
            continue
        names: dict[str, str] = {}
        for post in posts:
            for value in getattr(post, other):
                names.setdefault(_slug(value), value)
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

_WEIGHTS = {"phenomena": 3, "models": 2, "data": 1}
"""What a shared value weighs when ranking related entries: a phenomenon most."""


class _Neighbours:
    """Previous/next, related entries and backlinks of every post, computed once for all posts
    (an inverted index from facet values to posts: no comparison of every pair)."""

    def __init__(self, posts: Sequence[Summary]) -> None:
        self.oldest_first = list(reversed(posts))
        self.position = {id(p): i for i, p in enumerate(self.oldest_first)}
        self.rank = {id(p): i for i, p in enumerate(posts)}  # newest first
        self.values: dict[int, dict[str, dict[str, str]]] = {}
        self.holders: dict[tuple[str, str], list[Summary]] = defaultdict(list)
        for post in posts:
            own = {field: {_slug(v): v for v in getattr(post, field)} for field in _WEIGHTS}
            self.values[id(post)] = own
            for field, slugs in own.items():
                for slug in slugs:
                    self.holders[(field, slug)].append(post)
        by_url = {p.url: p for p in posts}
        self.backlinks: dict[str, list[Summary]] = defaultdict(list)
        for post in posts:
            for url in dict.fromkeys(post.links):
                if url in by_url and url != post.url:
                    self.backlinks[url].append(post)

    def of(self, post: Summary) -> dict[str, Any]:
        at = self.position[id(post)]
        older = self.oldest_first[at - 1] if at > 0 else None
        newer = self.oldest_first[at + 1] if at + 1 < len(self.oldest_first) else None
        return {"post": post, "older": older, "newer": newer, "related": self.related(post),
                "backlinks": self.backlinks.get(post.url, [])}

    def related(self, post: Summary) -> list[tuple[Summary, list[str]]]:
        """Other posts sharing phenomena, models or data: most shared first (phenomena weigh most),
        then newest; with what they share."""
        scores: dict[int, int] = defaultdict(int)
        shared: dict[int, list[str]] = defaultdict(list)
        others: dict[int, Summary] = {}
        for field, slugs in self.values[id(post)].items():
            for slug, name in slugs.items():
                for other in self.holders[(field, slug)]:
                    if other is not post:
                        scores[id(other)] += _WEIGHTS[field]
                        shared[id(other)].append(name)
                        others[id(other)] = other
        best = sorted(scores, key=lambda key: (-scores[key], self.rank[key]))[:RELATED]
        return [(others[key], shared[key]) for key in best]


@functools.lru_cache(maxsize=4096)
def _slug(value: str) -> str:
    return tag_slug(value)


def related(post: Summary, posts: Sequence[Summary]) -> list[tuple[Summary, list[str]]]:
    """The entries related to `post` among `posts` (newest first), with what they share."""
    return _Neighbours(posts).related(post)


# --- feed and sitemap -----------------------------------------------------------------------------

_PAGE_ONLY = re.compile(r'<section class="entry-(?:record|cite)"[\s\S]*?</section>\s*')
"""Parts of a post page that a feed leaves out: the run record (timings that change with every
run) and the citation box."""
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
            "content": _absolute(_PAGE_ONLY.sub("", body), site_url) if body else "",
        })
    updated = max((str(e["updated"]) for e in entries), default=dt.date(2000, 1, 1).isoformat())
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

