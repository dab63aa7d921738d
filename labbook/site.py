"""Write: pages -> site/, a Jekyll source tree.

Owns the tree (_config.yml, _layouts/, _posts/, assets/posts/<slug>/, listings, feed), the
rule that unchanged files are never rewritten, pruning, and the commit: every changed file
is staged, a journal is written, then renames are applied. A build killed at any point
leaves each post as before or as after, and the next build rolls the journal forward.
Never executes or renders posts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .config import Config
from .errors import PathEscapeError, SiteError
from .files import crash_point, dump_json, write_atomic
from .model import Page
from .theme import Theme, liquid_inert, tag_slug

__all__ = ["Publication", "Change", "write", "recover", "plan", "post_files", "published_summary", "JOURNAL", "STAGING"]

JOURNAL = ".labbook-journal.json"
STAGING = ".labbook-staging"
_POST_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}-(?P<slug>.+)\.html$")
_MANAGED_DIRS = ("tags",)


@dataclass(frozen=True, slots=True)
class Publication:
    """What the site should hold after this build."""

    pages: Sequence[Page]
    """Posts rendered in this build: their page and asset folder are (re)written."""
    kept: Mapping[str, Mapping[str, Any]]
    """Posts left as published (unchanged, or failed with a last good version): slug -> summary."""


@dataclass(slots=True)
class Change:
    """The files a build wrote and deleted, site-relative."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


# --- the journal ----------------------------------------------------------------------------------


def recover(site: Path) -> bool:
    """Finish a commit that a killed build left half done; drop staged files of an uncommitted one."""
    journal = site / JOURNAL
    recovered = journal.exists()
    if recovered:
        try:
            ops = json.loads(journal.read_text(encoding="utf-8"))["ops"]
        except (OSError, ValueError, KeyError) as exc:
            raise SiteError(f"cannot read the journal of an interrupted build: {exc}", path=str(journal)) from None
        _apply(site, ops)
        journal.unlink()
    shutil.rmtree(site / STAGING, ignore_errors=True)
    return recovered


def _apply(site: Path, ops: list[list[str]]) -> None:
    for op in ops:
        if op[0] == "put":
            staged, target = site / op[1], site / op[2]
            if staged.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
                crash_point("site-renamed-one")
        elif op[0] == "delete":
            target = site / op[1]
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            _remove_empty_parents(target.parent, site)


def _remove_empty_parents(folder: Path, site: Path) -> None:
    while folder != site and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _commit(site: Path, files: Mapping[str, bytes | Path], deletions: Iterable[str]) -> None:
    staging = site / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    ops: list[list[str]] = []
    for number, (target, data) in enumerate(sorted(files.items())):
        staged = staging / str(number)
        if isinstance(data, Path):
            shutil.copyfile(data, staged)
        else:
            staged.write_bytes(data)
        ops.append(["put", f"{STAGING}/{number}", target])
    _sync(staging)
    ops += [["delete", name] for name in sorted(deletions)]
    crash_point("site-staged")
    write_atomic(site / JOURNAL, dump_json({"ops": ops}))  # the commit point
    crash_point("site-journaled")
    _apply(site, ops)
    crash_point("site-applied")
    (site / JOURNAL).unlink()
    shutil.rmtree(staging, ignore_errors=True)


def _sync(folder: Path) -> None:
    """Staged bytes reach the disk before the journal that promises them does."""
    for path in folder.iterdir():
        with path.open("rb") as stream:
            os.fsync(stream.fileno())


# --- what the tree holds ----------------------------------------------------------------------------


def _inside(site: Path, relative: str) -> str:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise PathEscapeError(f"refusing to write {relative!r}: it leaves site/")
    return path.as_posix()


def post_files(page: Page) -> dict[str, bytes | Path]:
    """The page and its assets: site-relative name -> bytes, or the cached file to copy."""
    files: dict[str, bytes | Path] = {page.filename: _front_matter(page.front_matter) + page.html.encode()}
    run_dir = Path(page.run_dir)
    for source in sorted(run_dir.rglob("*")):
        if source.is_file() and not source.is_symlink():
            relative = source.relative_to(run_dir).as_posix()
            files[f"assets/posts/{page.slug}/{relative}"] = source
    return files


def _front_matter(values: Mapping[str, Any]) -> bytes:
    text = yaml.safe_dump(dict(values), sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    return f"---\n{text}---\n".encode()


def _layouts(theme: Theme, config: Config) -> dict[str, bytes]:
    """The Jekyll layouts: the same base template, its blanks filled with Liquid."""
    from markupsafe import Markup

    default = theme.render(
        "base.html",
        page_title=Markup("{% if page.title %}{{ page.title | escape }} · {% endif %}{{ site.title | escape }}"),
        description=Markup("{{ page.description | default: site.description | escape }}"),
        site_title=Markup("{{ site.title | escape }}"),
        baseurl=Markup("{{ site.baseurl }}"),
        content=Markup("{{ content }}"),
    )
    return {
        "_layouts/default.html": default.encode(),
        "_layouts/post.html": b"---\nlayout: default\n---\n{{ content }}\n",
    }


def _config_yml(config: Config) -> bytes:
    values = {
        "title": config.title,
        "author": config.author,
        "description": config.description,
        "url": config.url,
        "baseurl": config.baseurl,
        "permalink": "/blog/:year/:title/",
        "exclude": ["README.md"],
        "keep_files": [],
    }
    header = "# Generated by labbook from pyproject.toml [tool.labbook]; edits here are overwritten.\n"
    return (header + yaml.safe_dump(values, sort_keys=False, allow_unicode=True)).encode()


def _listing_page(theme: Theme, config: Config, title: str, body: str) -> bytes:
    return _front_matter({"layout": "default", "title": title}) + liquid_inert(body).encode()


def _newest_first(summaries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(summaries, key=lambda s: (s["date"], s["slug"]), reverse=True)


def _index_files(theme: Theme, config: Config, summaries: list[Mapping[str, Any]]) -> dict[str, bytes]:
    posts = _newest_first(summaries)
    math_env = {"math_store": config.cache / "math"}  # math in descriptions: typeset once, kept (texmath)
    files = {
        "index.html": _listing_page(theme, config, "Entries", theme.render(
            "index.html", heading=config.title, intro=config.description, posts=posts, math_env=math_env)),
    }
    by_tag: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    names: dict[str, str] = {}
    for post in posts:
        for tag in post["tags"]:
            slug = tag_slug(tag)
            names.setdefault(slug, tag)
            tagged = by_tag[slug]
            if not tagged or tagged[-1] is not post:  # two of a post's tags may share a slug
                tagged.append(post)
    for slug, tagged in sorted(by_tag.items()):
        tag = names[slug]
        files[f"tags/{slug}/index.html"] = _listing_page(theme, config, f"Tag: {tag}", theme.render(
            "index.html", heading=f"Tagged “{tag}”", intro="", posts=tagged, math_env=math_env))
    counts = [(names[slug], len(tagged)) for slug, tagged in sorted(by_tag.items())]
    files["tags/index.html"] = _listing_page(theme, config, "Tags", theme.render(
        "tags.html", tags=counts, baseurl=config.baseurl))
    files["phenomena/index.html"] = _listing_page(theme, config, "Models × data × phenomena", theme.render(
        "phenomena.html", rows=_matrix(posts), facets=_facets(posts)))
    updated = posts[0]["date"] if posts else dt.date(2000, 1, 1).isoformat()
    files["feed.xml"] = theme.render(
        "feed.xml", posts=posts[:50], site_title=config.title, site_url=config.url, baseurl=config.baseurl,
        updated=updated).encode()
    return files


def _matrix(posts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per phenomenon and entry: what models, on what data, show it."""
    rows = []
    for post in posts:
        for phenomenon in post["phenomena"] or ["—"]:
            rows.append({"phenomenon": phenomenon, "model": ", ".join(post["models"]) or "—",
                         "data": ", ".join(post["data"]) or "—", "posts": [post]})
    return sorted(rows, key=lambda r: (r["phenomenon"].lower(), r["posts"][0]["title"].lower()))


def _facets(posts: list[Mapping[str, Any]]) -> list[tuple[str, str, list[tuple[str, list[Mapping[str, Any]]]]]]:
    facets = []
    for facet, label in (("phenomena", "phenomenon"), ("models", "model"), ("data", "data set")):
        groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for post in posts:
            for value in post[facet]:
                groups[value].append(post)
        facets.append((facet, label, sorted(groups.items())))
    return facets


def _theme_files(theme: Theme, config: Config) -> dict[str, bytes]:
    css = "\n".join((theme.folder / name).read_text(encoding="utf-8") for name in ("labbook.css", "pygments.css"))
    static = theme.folder / "assets"  # templates/assets/** as is: the math font and its CSS (texmath)
    assets = {f"assets/{p.relative_to(static).as_posix()}": p.read_bytes() for p in sorted(static.rglob("*")) if p.is_file()}
    return {"_config.yml": _config_yml(config), **_layouts(theme, config), "assets/css/labbook.css": css.encode(), **assets}


def published_summary(site: Path, slug: str) -> dict[str, Any] | None:
    """The listing entry of a post as last published, read back from its page's front matter."""
    matches = sorted((site / "_posts").glob(f"*-{slug}.html")) if (site / "_posts").is_dir() else []
    for path in matches:
        match = _POST_FILE.match(path.name)
        if not match or match.group("slug") != slug:
            continue
        try:
            text = path.read_text(encoding="utf-8")
            front = yaml.safe_load(text.split("---\n", 2)[1])
        except (OSError, ValueError, IndexError, yaml.YAMLError):
            return None
        date = str(front.get("date", ""))[:10]
        summary = {key: front.get(key, "") for key in ("title", "description", "status")}
        summary.update({key: list(front.get(key) or []) for key in ("tags", "models", "data", "phenomena")})
        summary.update(slug=slug, date=date, url=front.get("labbook_url", ""), observables=[], questions=[])
        return summary
    return None


# --- the plan: what changes ---------------------------------------------------------------------------


def _differs(target: Path, data: bytes | Path) -> bool:
    try:
        stat = target.stat()
    except OSError:
        return True
    if isinstance(data, Path):
        if data.stat().st_size != stat.st_size:
            return True
        return data.read_bytes() != target.read_bytes()
    return stat.st_size != len(data) or target.read_bytes() != data


def _managed_files(site: Path, live_slugs: set[str], live_names: set[str], kept: set[str]) -> list[str]:
    """Files labbook put in site/ that this build does not produce any more; kept posts' stay."""
    stale = []
    posts_dir = site / "_posts"
    if posts_dir.is_dir():
        for path in posts_dir.iterdir():
            match = _POST_FILE.match(path.name)
            name = f"_posts/{path.name}"
            if not match or name in live_names or match.group("slug") in kept:
                continue
            stale.append(name)  # a deleted post, or a post whose date changed
    assets = site / "assets" / "posts"
    if assets.is_dir():
        for folder in assets.iterdir():
            if folder.is_dir() and folder.name not in live_slugs:
                stale += [p.relative_to(site).as_posix() for p in folder.rglob("*") if p.is_file()]
    for top in _MANAGED_DIRS:
        for path in (site / top).rglob("index.html") if (site / top).is_dir() else ():
            name = path.relative_to(site).as_posix()
            if name not in live_names:
                stale.append(name)
    return stale


def plan(publication: Publication, config: Config, theme: Theme) -> tuple[dict[str, bytes | Path], list[str]]:
    """Every file whose content changes, and every file to delete; nothing written yet."""
    site = config.site
    desired: dict[str, bytes | Path] = {}
    rewritten_slugs = set()
    for page in publication.pages:
        rewritten_slugs.add(page.slug)
        desired.update({_inside(site, k): v for k, v in post_files(page).items()})
    summaries = [dict(p.summary) for p in publication.pages] + [dict(s) for s in publication.kept.values()]
    desired.update(_index_files(theme, config, summaries))
    desired.update(_theme_files(theme, config))
    live_slugs = {p.slug for p in publication.pages} | set(publication.kept)
    deletions = _managed_files(site, live_slugs, set(desired), set(publication.kept))
    for slug in rewritten_slugs:  # asset files of an older run of a rewritten post
        folder = site / "assets" / "posts" / slug
        if folder.is_dir():
            deletions += [n for n in (p.relative_to(site).as_posix() for p in folder.rglob("*") if p.is_file())
                          if n not in desired]
    changed = {name: data for name, data in desired.items() if _differs(site / name, data)}
    return changed, sorted(set(deletions))


def write(publication: Publication, config: Config, theme: Theme) -> Change:
    """Bring site/ to what `publication` says, touching only what changes, atomically.

    Raises:
        SiteError: the disk refused; site/ is as it was, or as the journal will finish it.
    """
    site = config.site
    site.mkdir(parents=True, exist_ok=True)
    recover(site)
    changed, deletions = plan(publication, config, theme)
    if not changed and not deletions:
        return Change()
    try:
        _commit(site, changed, deletions)
    except OSError as exc:
        raise SiteError(f"could not write the site: {exc}", path=config.relative(site)) from exc
    return Change(written=sorted(changed), deleted=deletions)
