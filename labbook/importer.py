"""Import: an existing Jekyll blog's posts -> labbook posts (the way in, from al-folio and the like).

In -> out: DIR/_posts/*.md (and .markdown, and .html made of HTML blocks) -> posts/<date>-<name>.md
with the front matter kept, the address kept (`slug:` when the name alone would not give it, and
`redirect_from:` the old URL when the blog's permalink differs from labbook's /blog/:year/:title/),
the images it shows copied into the project's assets folder, and notes on what needs the author's
eye (Liquid labbook does not run, missing images). `convert` is pure; `import_jekyll` reads the blog
and writes the project. Never writes into the blog; never overwrites a post or an asset unless
told `force`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import frontmatter, jekyll, liquid, source
from .config import Config
from .errors import ConfigError, LabbookError, SiteError
from .files import write_atomic

__all__ = ["Converted", "Imported", "ImportReport", "convert", "import_jekyll", "LABBOOK_PERMALINK"]

LABBOOK_PERMALINK = "/blog/:year/:title/"
_POST_NAME = re.compile(r"^(?P<date>\d{4}-\d{1,2}-\d{1,2})-(?P<title>.+)\.(?P<ext>md|markdown|html)$")
_OLD_FIGURE = re.compile(r"(\{%-?\s*include\s+)figure\.html(\s)")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?(?P<src>[^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"'](?P<src>[^\"']+)[\"']", re.I)
_VARIABLE = re.compile(r"\{\{.*?\}\}", re.S)
_DROPPED = ("layout", "permalink")
"""Keys labbook sets itself: the layout is `post`, the address is /blog/:year/:slug/ (plus redirects)."""


@dataclass(frozen=True, slots=True)
class Converted:
    """One Jekyll post as a labbook post."""

    name: str
    """posts/<name>: the Jekyll file name, as .md."""
    text: str
    url: str
    """Its address on labbook's site (baseurl not included)."""
    old_url: str
    """Its address on the blog (baseurl not included)."""
    assets: tuple[str, ...]
    """Site paths of the images it shows (assets/img/…), to copy."""
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Imported:
    source: str
    post: str
    url: str
    assets: tuple[str, ...]


@dataclass(slots=True)
class ImportReport:
    imported: list[Imported] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)


def _titleize(slug: str) -> str:
    """Jekyll's `Utils.titleize_slug`: the title of a post that gives none."""
    return " ".join(word.capitalize() for word in slug.split("-"))


def _words(value: Any) -> list[str]:
    """Jekyll's reading of tags and categories: a string is split on whitespace."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def convert(text: str, filename: str, permalink: str = "date") -> Converted:
    """A Jekyll post (its text and `_posts/` file name) as a labbook post; `permalink` is the blog's setting.

    Raises:
        ValueError: not a post labbook can take (no front matter, not a dated name, HTML that is not
            plain blocks); the message says why.
    """
    match = _POST_NAME.match(PurePosixPath(filename).name)
    if not match:
        raise ValueError("not a post file name (YYYY-MM-DD-title.md)")
    front, body = _front_and_body(text, html=match["ext"] == "html")
    date = dt.date.fromisoformat("-".join(f"{int(p):02d}" for p in match["date"].split("-")))
    name = f"{date.isoformat()}-{match['title']}.md"
    notes: list[str] = []
    jekyll_title = jekyll.slugify(str(front.get("slug") or match["title"]), "pretty", cased=True).rstrip(".")
    front_date = _front_date(front.get("date"), date)
    categories = _words(front.get("categories"))
    old_url = jekyll.permalink_url(str(front.get("permalink") or permalink), date=front_date, title=jekyll_title,
                                   categories=categories)
    values: dict[str, Any] = {key: value for key, value in front.items() if key not in _DROPPED}
    if front.get("layout") not in (None, "post"):
        notes.append(f"layout {front['layout']!r} dropped: labbook posts use the blog's 'post' layout")
    values.setdefault("title", _titleize(match["title"]))
    if isinstance(front.get("tags"), str):
        values["tags"] = _words(front["tags"])
    slug = _keep_slug(jekyll_title, name)
    values.pop("slug", None)
    if slug is not None:
        values["slug"] = slug
    url = jekyll.permalink_url(LABBOOK_PERMALINK, date=front_date, title=slug or source.slug_of(PurePosixPath(name)))
    redirects = _words(front.get("redirect_from"))
    if old_url != url:
        if _redirectable(old_url):
            redirects.append(old_url)
        else:
            notes.append(f"its old address {old_url} cannot be kept (labbook writes redirects only at plain paths)")
    if redirects:
        values["redirect_from"] = list(dict.fromkeys(redirects))
    head = frontmatter.dump(values, width=1000)
    body = _OLD_FIGURE.sub(r"\1figure.liquid\2", body)
    body, shown = _shown_not_run(body, head.count("\n") + 1)
    assets, body_notes = _body_assets(body, head.count("\n") + 1)
    return Converted(name, head + body, url, old_url, assets, tuple(notes + shown + body_notes))


_PYTHON_FENCE = re.compile(r"^(\s*`{3,}\s*)python(?=\s|$)")


def _shown_not_run(body: str, body_line: int) -> tuple[str, list[str]]:
    """A blog post's ```python blocks are examples to read: in a labbook post the same fence is a
    cell that every build runs (old Python 2 code fails the post, and any code does what it says).
    Each is written as ```py, which is shown highlighted as Python and never run; the note names
    its line, where writing ```python again makes it a cell."""
    from .commonmark import blocks

    lines = body.split("\n")
    notes = []
    for token in blocks(body):
        if token.type == "fence" and token.markup.startswith("`") and token.map:
            opening = lines[token.map[0]]
            if _PYTHON_FENCE.match(opening):
                lines[token.map[0]] = _PYTHON_FENCE.sub(r"\1py", opening, count=1)
                notes.append(f"{body_line + token.map[0]}: a ```python block, written as ```py: shown as code, "
                             "never run (```python makes it a cell that every build runs)")
    return "\n".join(lines), notes


def _front_and_body(text: str, *, html: bool) -> tuple[dict[str, Any], str]:
    """The post's front matter (a mapping) and its body.

    Raises:
        ValueError: no front matter, or not a mapping; an .html post that is not plain HTML blocks.
    """
    try:
        split = frontmatter.split(text)
        if split is None:
            raise ValueError("no front matter between '---' lines")
        header, body, _ = split
        front = frontmatter.load_yaml(header) or {}
    except frontmatter.FrontMatterProblem as problem:
        raise ValueError(f"line {problem.line}: {problem.message}") from None
    if not isinstance(front, dict):
        raise ValueError("its front matter is not a mapping")
    if html and any(line.strip() and not line.lstrip().startswith("<") for line in body.splitlines()):
        raise ValueError("an .html post with text outside HTML tags: Markdown would read it differently")
    return front, body


def _redirectable(url: str) -> bool:
    """A plain path labbook can write a redirect page at."""
    return bool(_REDIRECTABLE.match(url)) and not any(p.startswith((".", "_")) for p in url.split("/"))


def _body_assets(body: str, body_line: int) -> tuple[tuple[str, ...], list[str]]:
    """The images the body shows that can be copied, and notes on what needs the author's eye; the
    notes name lines of the post as written (its body starts at `body_line`, under the new front matter)."""
    figures, warnings = liquid.scan_prose(body, body_line)
    notes = [f"{line}: {message}" for line, message in warnings]
    addressed = liquid.site_addresses(body, "", "")  # the site's own address: labbook prints it (lines kept)
    notes += _variable_notes(addressed, body_line)
    assets = [f.path.lstrip("/") for f in figures] + _images(addressed)
    for path in assets:
        if not path.startswith("assets/") or not _SAFE_PATH.match(path):
            notes.append(f"image {path} is not a file under assets/: not copied")
    return tuple(dict.fromkeys(a for a in assets if a.startswith("assets/") and _SAFE_PATH.match(a))), notes


_REDIRECTABLE = re.compile(r"^/[A-Za-z0-9._~/-]+$")
_SAFE_PATH = re.compile(r"^(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*/)*[A-Za-z0-9_~-][A-Za-z0-9._~-]*$")
"""A site path labbook copies: no '..', no '.'-segment, no empty part, nothing a shell or URL would read twice."""


def _front_date(value: Any, fallback: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value).strip()[:10]) if value else fallback
    except ValueError:
        return fallback


def _keep_slug(jekyll_title: str, name: str) -> str | None:
    """`slug:` to write so labbook's address ends like Jekyll's; None when the file name already gives it."""
    if source.slug_of(PurePosixPath(name)) == jekyll_title:
        return None
    if re.match(r"^[A-Za-z0-9][A-Za-z0-9._~-]*$", jekyll_title) and ".." not in jekyll_title:
        return jekyll_title
    return None  # not a labbook slug: the old address becomes a redirect


def _images(body: str) -> list[str]:
    """Site paths of plain Markdown and HTML images in the body (./, / and the blog's own assets)."""
    found = [m["src"] for m in _MARKDOWN_IMAGE.finditer(body)] + [m["src"] for m in _HTML_IMAGE.finditer(body)]
    return [src.lstrip("/") for src in found if "://" not in src and not src.startswith(("data:", "{{", "#"))]


def _variable_notes(body: str, first_line: int) -> list[str]:
    masked = liquid.liquid_mask(body)
    notes = []
    for match in _VARIABLE.finditer(masked):
        shown = " ".join(match.group(0).split())[:60]
        notes.append(f"{first_line + body.count(chr(10), 0, match.start())}: {shown} is shown as written "
                     "(labbook does not run Liquid in prose)")
    return notes


# --- the edge: read the blog, write the project -------------------------------------------------------


def _blog_permalink(blog: Path) -> str:
    settings = blog / "_config.yml"
    if not settings.is_file():
        raise ConfigError(f"{blog} is not a Jekyll site: it has no _config.yml",
                          hint="give the folder of the blog, the one holding _config.yml and _posts/")
    try:
        values = frontmatter.load_yaml(settings.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, frontmatter.FrontMatterProblem) as exc:
        raise ConfigError(f"cannot read the blog's _config.yml: {exc}", path=str(settings)) from None
    return str(values.get("permalink") or "date") if isinstance(values, dict) else "date"


def import_jekyll(config: Config, blog: Path, *, force: bool = False) -> ImportReport:
    """Convert every post of the blog into posts/, copy the images they show into the assets folder.

    Raises:
        ConfigError: `blog` is not a Jekyll site.
        SiteError: a post or an image would overwrite one already in the project (nothing is written then).
    """
    blog = blog.resolve()
    permalink = _blog_permalink(blog)
    report = ImportReport()
    taken = _taken_slugs(config)
    writes: dict[Path, bytes] = {}
    conflicts: list[str] = []
    for path in sorted(p for p in (blog / "_posts").glob("*") if p.is_file()):
        shown = f"_posts/{path.name}"
        try:
            converted = convert(path.read_text(encoding="utf-8-sig"), path.name, permalink)
            post, _ = source.parse(converted.text, f"posts/{converted.name}", config=config)
        except (ValueError, UnicodeDecodeError) as exc:
            report.attention.append(f"{shown}: not imported: {exc}")
            continue
        except LabbookError as error:
            report.attention.append(f"{shown}: not imported: as a labbook post it reads {error}")
            continue
        target = config.posts / converted.name
        owner = taken.get(post.slug)
        if target.exists() or (owner is not None and owner != target):
            conflicts.append(f"{config.relative(target)}" + (f" (slug '{post.slug}' is {config.relative(owner)}'s)"
                                                              if owner is not None and owner != target else ""))
        writes[target] = converted.text.encode()
        images = _images_of(converted, target, blog, config)
        writes |= images.files
        conflicts += images.conflicts
        report.attention += images.notes
        copied = [config.relative(local) for local in images.files]
        where = config.relative(target)
        report.attention += [f"{where}:{note}" if note[:1].isdigit() else f"{where}: {note}"
                             for note in converted.notes]
        report.imported.append(Imported(shown, config.relative(target), converted.url, tuple(copied)))
    if conflicts and not force:
        raise SiteError("refusing to overwrite what the project already holds:\n    " + "\n    ".join(conflicts),
                        hint="move them away, or pass --force to overwrite them; nothing was written")
    _write_changed(writes, config)
    return report


@dataclass(frozen=True, slots=True)
class _Images:
    files: dict[Path, bytes]
    """Where each image goes in the project, and its bytes."""
    conflicts: list[str]
    """Local copies that differ from the blog's."""
    notes: list[str]
    """Images the post shows that the blog does not have."""


def _images_of(converted: Converted, target: Path, blog: Path, config: Config) -> _Images:
    """The images a converted post shows, read from the blog, with where they go in the project."""
    images = _Images({}, [], [])
    for asset in converted.assets:
        local = config.assets / asset.removeprefix("assets/")
        original = blog / asset
        if not original.is_file():
            images.notes.append(f"{config.relative(target)}: image {asset} is not in the blog: not copied")
            continue
        data = original.read_bytes()
        if local.exists() and local.read_bytes() != data:
            images.conflicts.append(f"{config.relative(local)} (differs from the blog's {asset})")
        images.files[local] = data
    return images


def _write_changed(writes: Mapping[Path, bytes], config: Config) -> None:
    """Each file written atomically, unless it already holds those bytes.

    Raises:
        SiteError: the disk refused.
    """
    try:
        for target, data in writes.items():
            if not target.exists() or target.read_bytes() != data:
                write_atomic(target, data)
    except OSError as exc:
        raise SiteError(f"could not write into the project: {exc}", path=str(config.root)) from exc


def _taken_slugs(config: Config) -> Mapping[str, Path]:
    if not config.posts.is_dir():
        return {}  # a new project: importing a blog is how its posts/ begins
    read = source.read_all(config)
    return {post.slug: config.root / post.path for post in read.posts}
