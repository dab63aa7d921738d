"""Export: the built posts -> an existing Jekyll blog (al-folio, or any theme with a `post` layout).

In -> out: the project's posts and their published runs (site/assets/posts/<slug>/) -> files in
the blog: `_posts/<date>-<slug>.html` (the body only, under the theme's front matter), figures
where the theme keeps images, data/notebook/run.json under `assets/labbook/<slug>/`, one scoped
stylesheet, and `.labbook-export.json`, the manifest of what labbook wrote there.
Owns the themes' conventions (a table), the manifest, and the rule that a file labbook did not
write, or that was edited since, is never overwritten nor deleted. Never executes posts: it renders
them with render's export flavour, so a page reads as on labbook's own site.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import cache, frontmatter, jekyll, render, source
from .config import Config
from .errors import CacheError, ConfigError, LabbookError, SiteError, about
from .files import dump_json, write_atomic
from .liquid import FIGURE_INCLUDE, FigureTag, Live
from .model import Post, Run
from .theme import Theme

__all__ = ["BlogTheme", "THEMES", "ExportReport", "export", "plan_export", "scope_css", "MANIFEST", "STYLESHEET"]

MANIFEST = ".labbook-export.json"
STYLESHEET = "assets/css/labbook-post.css"
SCOPE = "labbook-post"
_CORE_KEYS = ("layout", "title", "date", "description", "tags", "labbook", "redirect_from")


@dataclass(frozen=True, slots=True)
class BlogTheme:
    """Where a theme keeps things and how its posts place a figure."""

    name: str
    figures: str
    """Folder of post images; each post's figures go to <figures>/<slug>/."""
    figure_include: str | None
    """The theme's own figure include (`figure.liquid`); None: labbook ships `labbook-figure.liquid`."""
    figure_class: str = ""
    figure_row: tuple[str, str] = ("", "")
    """Markup around one figure (al-folio: a Bootstrap row and column); `{id}` is the figure's anchor."""
    data: str = "assets/labbook"
    """Folder of data files, notebooks and run records; each post's go to <data>/<slug>/."""
    raw_titles: bool = False
    """The theme prints page.title, tags and categories unescaped (al-folio does, in <title>, <h1> and
    meta attributes): they are written HTML-escaped, so they show as text."""


THEMES: Mapping[str, BlogTheme] = {
    "al-folio": BlogTheme(
        name="al-folio", figures="assets/img/blogs", figure_include="figure.liquid",
        figure_class="img-fluid rounded z-depth-1",
        figure_row=('<div class="row mt-3"><div class="col-sm mt-3 mt-md-0" id="{id}">', "</div></div>"),
        raw_titles=True,
    ),
    "plain": BlogTheme(name="plain", figures="assets/img/labbook", figure_include=None),
}


@dataclass(slots=True)
class ExportReport:
    """What an export did, file by file (paths relative to the blog)."""

    posts: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(post, why) for posts not exported: not built, changed since the last build, failing."""
    warnings: list[str] = field(default_factory=list)


# --- the plan: every file the blog should hold from labbook ------------------------------------------


@dataclass(frozen=True, slots=True)
class _Blog:
    root: Path
    theme: BlogTheme
    redirect_plugin: bool
    """The blog runs jekyll-redirect-from: `redirect_from` goes in the front matter, no pages written."""
    permalink: str = "date"
    baseurl: str = ""
    url: str = ""
    owned: frozenset[str] = frozenset()
    """Files labbook exported before (the manifest's)."""

    def post_url(self, post: Post) -> str:
        """Where the blog's Jekyll will put the post, baseurl included."""
        categories = post.meta.extra.get("categories") or []
        categories = categories.split() if isinstance(categories, str) else [str(c) for c in categories]
        path = jekyll.permalink_url(self.permalink, date=post.meta.date, title=post.slug, categories=categories)
        return "/" + self.baseurl.strip("/") + path if self.baseurl.strip("/") else path


def _read_blog(folder: Path, theme: BlogTheme, owned: Iterable[str]) -> _Blog:
    settings = folder / "_config.yml"
    if not settings.is_file():
        raise ConfigError(f"{folder} is not a Jekyll site: it has no _config.yml",
                          hint="give the folder of the blog, the one holding _config.yml and _posts/")
    try:
        values = frontmatter.load_yaml(settings.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, frontmatter.FrontMatterProblem) as exc:
        raise ConfigError(f"cannot read the blog's _config.yml: {exc}", path=str(settings)) from None
    if not isinstance(values, dict):
        raise ConfigError("the blog's _config.yml is not a mapping of settings", path=str(settings))
    if theme.figure_include and not (folder / "_includes" / theme.figure_include).is_file() and not (
            values.get("theme") or values.get("remote_theme")):  # a gem theme brings its own _includes
        raise ConfigError(f"{folder} has no _includes/{theme.figure_include}: it is not an {theme.name} blog, and "
                          f"its build would stop at the first figure", path=str(settings),
                          hint="for another theme, export with --theme plain "
                               "(labbook then ships its own figure include)")
    plugins = values.get("plugins") or values.get("gems") or []
    return _Blog(folder, theme, "jekyll-redirect-from" in plugins, str(values.get("permalink") or "date"),
                 str(values.get("baseurl") or ""), str(values.get("url") or ""), frozenset(owned))


def plan_export(config: Config, blog: Path, theme_name: str = "al-folio", *, figures: str | None = None,
                only: Sequence[Path] | None = None,
                owned: Iterable[str] = ()) -> tuple[dict[str, bytes | Path], ExportReport]:
    """Every file labbook's posts need in `blog` (blog-relative path -> bytes, or a file to copy).

    Raises:
        ConfigError: not a Jekyll site, or an unknown theme.
    """
    theme = _theme(theme_name, figures)
    if blog.resolve() == config.site.resolve():
        raise ConfigError(f"{blog} is labbook's own site/: export writes into another blog",
                          hint="give the folder of the blog, the one holding its _config.yml and _posts/")
    site = _read_blog(blog, theme, owned)
    report = ExportReport()
    templates = Theme(config.templates)
    read = source.read_all(config, only)
    report.warnings += [str(notice) for notice in read.notices]
    report.skipped += [(str(path), _why(error)) for path, error in read.failures]
    files: dict[str, bytes | Path] = {}
    for post in read.posts:
        exported = _export_post(post, config, templates, site)
        if exported.skipped is not None:
            report.skipped.append((str(post.path), exported.skipped))
        if exported.files is not None:
            files.update(exported.files)
            report.posts.append(str(post.path))
        report.warnings += exported.warnings
    if report.posts:
        files |= _shared_files(theme, templates)
    data_files = {n: d for n, d in files.items() if n.startswith(theme.data + "/")}
    if any(jekyll.special_path(n) or jekyll.needs_plugin(n, _head(d)) for n, d in data_files.items()):
        files[jekyll.RAW_PLUGIN_PATH] = jekyll.raw_files_plugin([theme.data])
    return files, report


def _theme(name: str, figures: str | None) -> BlogTheme:
    """The named theme, with the figures folder the author chose.

    Raises:
        ConfigError: labbook does not know the theme.
    """
    if name not in THEMES:
        raise ConfigError(f"unknown theme {name!r}: labbook knows {', '.join(sorted(THEMES))}")
    theme = THEMES[name]
    return dataclasses.replace(theme, figures=figures.strip("/")) if figures is not None else theme


@dataclass(frozen=True, slots=True)
class _PostExport:
    """One post's share of an export."""

    files: Mapping[str, bytes | Path] | None = None
    """Its files in the blog; None when it is not exported."""
    warnings: tuple[str, ...] = ()
    skipped: str | None = None
    """Why it could not be exported (a report line), when it is skipped."""


def _export_post(post: Post, config: Config, templates: Theme, site: _Blog) -> _PostExport:
    """The post's files for the blog; or why it is left out (the blog's own post there, no run, an error)."""
    clash = _blog_post_at(site, post)
    if clash is not None:
        return _PostExport(warnings=(f"{post.path}: not exported: the blog has this post already, as {clash} "
                                     "(remove that file to publish labbook's version)",))
    run, folder, why = _published_run(config, post)
    if run is None:
        return _PostExport(skipped=why)
    try:
        with about(post.path):
            post_files, warnings = _post_files(post, run, folder, config, templates, site)
    except LabbookError as error:
        return _PostExport(skipped=_why(error))
    return _PostExport(post_files, tuple(warnings))


def _shared_files(theme: BlogTheme, templates: Theme) -> dict[str, bytes | Path]:
    """What every exported post needs once: labbook's scoped stylesheet, a figure include if the theme has none."""
    files: dict[str, bytes | Path] = {STYLESHEET: scope_css(_labbook_css(templates), SCOPE).encode()}
    if theme.figure_include is None:
        files["_includes/labbook-figure.liquid"] = FIGURE_INCLUDE.encode()
    return files


def _blog_post_at(blog: _Blog, post: Post) -> str | None:
    """A post of the blog's own (not labbook's) at this post's address: the same slug, the same year."""
    for path in sorted((blog.root / "_posts").rglob(f"*-{post.slug}.*")):
        name = path.relative_to(blog.root).as_posix()
        if name not in blog.owned and path.name.startswith(f"{post.meta.date.year:04d}-") and \
                path.stem[len("0000-00-00-"):] == post.slug:
            return name
    return None


def _why(error: LabbookError) -> str:
    """An error's message, with its line, for a report that already names the post."""
    return (f"line {error.line}: " if error.line else "") + error.message


def _published_run(config: Config, post: Post) -> tuple[Run | None, Path | None, str]:
    """The run site/ publishes for the post (its folder; None for a post without code), or why there is none."""
    if not (post.cells or post.inline):
        return cache.nothing_ran(post), None, ""
    folder = config.site / "assets" / "posts" / post.slug
    try:
        run = cache.read_run(folder)
    except CacheError:
        return None, None, "not built yet: run `labbook build` first"
    if not _current(post, run, config):
        return None, None, "its code or settings changed since the last build: run `labbook build` first"
    return run, folder, ""


def _current(post: Post, run: Run, config: Config) -> bool:
    """The published run is the post's as it stands. A sweep's published run is its gather's,
    keyed on every point's key: it is current when site/ publishes each point (or holds it as
    failed) and that gather, as `labbook check` asks."""
    if post.sweep is None:
        return run.key == post.key
    from . import gather

    state = gather.stale_points(post, cache.Store(config), published_only=True)
    return not state.missing and not state.reason


def _sweep_files(folder: Path) -> list[str]:
    """A sweep's files beyond its gather's run: the table, and each point's run, notebook, data
    and figures (points/<folder>/…), which the page's table links."""
    from .gather import TABLE_FILES

    names = [name for name in TABLE_FILES if (folder / name).is_file()]
    points = folder / "points"
    if points.is_dir():
        names += sorted(p.relative_to(folder).as_posix() for p in points.rglob("*") if p.is_file())
    return names


def _post_files(post: Post, run: Run, folder: Path | None, config: Config, templates: Theme,
                blog: _Blog) -> tuple[dict[str, bytes | Path], list[str]]:
    theme = blog.theme
    files: dict[str, bytes | Path] = {}
    warnings: list[str] = []
    prose_figures: list[FigureTag] = []

    def prose_figure(tag: FigureTag) -> Live:
        prose_figures.append(tag)
        return Live(_prose_figure(tag, theme))

    flavour = render.Flavour(
        asset_href=lambda slug, name: Live(_relative_url(_artifact_url(theme, slug, name))),
        prose_figure=prose_figure,
        cell_figure=(lambda figure: Live(_cell_figure(figure, post.slug, theme))) if theme.figure_include else None,
        body_only=True,  # the theme's post layout prints the title, date and tags
        baseurl=blog.baseurl, url=blog.url,  # an author's {{ site.baseurl }}: the blog's, where the post goes
    )
    page = render.render(post, run, folder, config, templates, flavour)
    warnings += [str(notice) for notice in page.notices]
    if folder is not None:  # what ran: figures, data, the executed notebook, run.json
        for artifact in run.artifacts:
            files[_artifact_url(theme, post.slug, artifact.name).lstrip("/")] = folder / artifact.name
        files[f"{theme.data}/{post.slug}/{cache.RUN_FILE}"] = folder / cache.RUN_FILE
        for name in _sweep_files(folder) if post.sweep is not None else ():
            files[_artifact_url(theme, post.slug, name).lstrip("/")] = folder / name
    for name, data in page.files.items():  # the post's own notebook
        files[f"{theme.data}/{post.slug}/{name}"] = data
    for tag in prose_figures:
        found, warning = _author_asset(tag, post, config, blog)
        files.update(found)
        warnings += [warning] if warning else []
    files.update(_redirects(post, blog))
    front = _front_matter(post, run, theme, blog.redirect_plugin)
    text = (f"<link rel=\"stylesheet\" href=\"{_relative_url('/' + STYLESHEET)}\">\n"
            f"<div class=\"{SCOPE}\">\n{page.html}</div>\n")
    files[f"_posts/{post.date_slug}.html"] = _with_front_matter(front, text)
    return files, warnings


def _artifact_url(theme: BlogTheme, slug: str, name: str) -> str:
    """Figures go where the theme keeps post images; the rest with the post's data."""
    if name.startswith("figures/"):
        return f"/{theme.figures}/{slug}/{name.removeprefix('figures/')}"
    return f"/{theme.data}/{slug}/{name}"


def _relative_url(path: str) -> str:
    """Live Liquid for a link that follows the blog's baseurl; the path percent-encoded, so no quote
    or brace can end the Liquid string."""
    return "{{ '" + urllib.parse.quote(path, safe="/-_.~") + "' | relative_url }}"


def _param(text: str) -> str:
    """Text as the value of a double-quoted include parameter: HTML-escaped, braces and '%' inert."""
    escaped = html.escape(text, quote=True)
    for char, ref in (("\\", "&#92;"), ("{", "&#123;"), ("}", "&#125;"), ("%", "&#37;")):
        escaped = escaped.replace(char, ref)
    return escaped


def _cell_figure(figure: Mapping[str, Any], slug: str, theme: BlogTheme) -> str:
    """A cell's figure as the theme's own include, in the theme's row."""
    path = _artifact_url(theme, slug, str(figure["name"])).lstrip("/")
    caption = f"Figure {figure['number']}. {figure['caption']}".strip()
    tag = (f'{{% include {theme.figure_include} path="{path}" class="{theme.figure_class}" '
           f'alt="{_param(str(figure["alt"]))}" caption="{_param(caption)}" zoomable=true %}}')
    start, end = theme.figure_row
    return start.replace("{id}", html.escape(str(figure["id"]), quote=True)) + tag + end


def _prose_figure(tag: FigureTag, theme: BlogTheme) -> str:
    """An author's figure tag, kept as written for the theme's include (or labbook's)."""
    text = tag.liquid()
    if theme.figure_include is None:
        return text.replace("{% include figure.liquid ", "{% include labbook-figure.liquid ", 1)
    return text


def _author_asset(tag: FigureTag, post: Post, config: Config, blog: _Blog) -> tuple[dict[str, bytes | Path], str]:
    """The project file an author's figure shows, to the same path in the blog (unless already there)."""
    name = tag.path.lstrip("/")
    where = f"{post.path}:{tag.line}"
    if not name.startswith("assets/"):
        return {}, f"{where}: figure {tag.path} is not under assets/: not exported"
    local = config.assets / name.removeprefix("assets/")
    if not local.is_file():
        return {}, ""  # render said so, with the line
    there = blog.root / name
    if name not in blog.owned and there.is_file() and there.read_bytes() == local.read_bytes():
        return {}, ""  # the blog already holds this very file (an imported post's image): leave it the blog's
    return {name: local}, ""


def _redirects(post: Post, blog: _Blog) -> dict[str, bytes]:
    """A page at each old URL of the post, sending readers to its address in the blog (unless the blog
    runs jekyll-redirect-from, which then reads `redirect_from` from the front matter)."""
    if blog.redirect_plugin:
        return {}
    url = blog.post_url(post)
    here = url.removeprefix("/" + blog.baseurl.strip("/")) if blog.baseurl.strip("/") else url
    return {jekyll.redirect_target(old): jekyll.redirect_page(url, blog.url.rstrip("/") + url)
            for old in post.meta.redirect_from if old != here}


def _front_matter(post: Post, run: Run, theme: BlogTheme, redirect_plugin: bool) -> dict[str, Any]:
    """The theme's keys (layout, title, date, description, tags, the author's own keys), labbook's under `labbook`."""
    meta = post.meta
    text = (lambda value: html.escape(value, quote=True)) if theme.raw_titles else (lambda value: value)
    front: dict[str, Any] = {"layout": "post", "title": text(meta.title), "date": meta.date,
                             "description": text(meta.description), "tags": [text(t) for t in meta.tags]}
    front.update({k: v for k, v in meta.extra.items() if k not in _CORE_KEYS})  # giscus_comments, categories, …
    categories = front.get("categories")
    if isinstance(categories, str) or (isinstance(categories, list) and all(isinstance(c, str) for c in categories)):
        front["categories"] = text(categories) if isinstance(categories, str) else [text(c) for c in categories]
    if redirect_plugin and meta.redirect_from:
        front["redirect_from"] = list(meta.redirect_from)
    front["labbook"] = {
        **({"status": meta.status} if meta.status else {}), "models": list(meta.models), "data": list(meta.data),
        "phenomena": list(meta.phenomena), "observables": list(meta.observables), "questions": list(meta.questions),
        "source": str(post.path),
    }
    if post.cells:
        front["labbook"].update(run=f"/{theme.data}/{post.slug}/{cache.RUN_FILE}", ran_on=run.started[:10])
    return front


def _with_front_matter(values: Mapping[str, Any], body: str) -> bytes:
    return (frontmatter.dump(values, width=1000) + body).encode()


def _labbook_css(templates: Theme) -> str:
    return "\n".join((templates.folder / name).read_text(encoding="utf-8") for name in ("labbook.css", "pygments.css"))


def _head(data: bytes | Path) -> bytes:
    if isinstance(data, bytes):
        return data[: jekyll.HEAD_BYTES]
    with data.open("rb") as stream:
        return stream.read(jekyll.HEAD_BYTES)


# --- scoped CSS -----------------------------------------------------------------------------------

_PAGE_LEVEL = re.compile(r"^(?:\*|html|body|main|a|h[1-6]|\.site-[\w-]+)(?![\w-])")
"""Rules of labbook's page (its body font, header, links, headings): the blog's own styles rule there."""
_GROUPING = ("@media", "@supports", "@container", "@layer")


def scope_css(css: str, scope: str) -> str:
    """Every rule of `css` under `.<scope>`: it can style labbook's part of a page and nothing else.

    `:root` becomes the scope itself (its custom properties stay within it); a theme switch on the
    root (`html[data-theme=dark] .x`) stays on the root; page-level rules (body, headings, links,
    the site header) are left out, so the blog's typography holds inside the post too.
    """
    return "".join(_scope_block(_strip_comments(css), f".{scope}")).strip() + "\n"


def _strip_comments(css: str) -> str:
    return re.sub(r"/\*.*?\*/", "", css, flags=re.S)


def _scope_block(css: str, scope: str) -> Iterable[str]:
    for prelude, block in _rules(css):
        if block is None:
            yield prelude + ";\n"
        elif prelude.startswith(_GROUPING):
            inner = "".join(_scope_block(block, scope))
            if inner.strip():
                yield f"{prelude} {{\n{inner}}}\n"
        elif prelude.startswith("@"):
            yield f"{prelude} {{{block}}}\n"  # @font-face, @keyframes: not selectors
        else:
            selectors = [_scope_selector(s.strip(), scope) for s in _split_selectors(prelude)]
            kept = [s for s in selectors if s]
            if kept:
                yield f"{', '.join(kept)} {{{block.strip()}}}\n"


def _rules(css: str) -> Iterable[tuple[str, str | None]]:
    """(prelude, block) pairs at this level; (statement, None) for `@import …;`."""
    position, depth, start, prelude = 0, 0, 0, ""
    quote = ""
    while position < len(css):
        char = css[position]
        if quote:
            quote = "" if char == quote and css[position - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char == "{":
            if depth == 0:
                prelude, start = css[start:position].strip(), position + 1
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                yield prelude, css[start:position]
                start = position + 1
        elif char == ";" and depth == 0:
            statement = css[start:position].strip()
            if statement:
                yield statement, None
            start = position + 1
        position += 1


def _split_selectors(prelude: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in prelude:
        depth += char in "(["
        depth -= char in ")]"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _scope_selector(selector: str, scope: str) -> str:
    root = re.match(r"^(:root|html)((?:\[[^\]]*\]|[.#:][\w-]+(?:\([^)]*\))?)*)(.*)$", selector, re.S)
    if root:
        qualifiers, rest = root.group(2), root.group(3)
        if not qualifiers and not rest.strip():
            return scope  # :root { --ink: … } -> the scope's own custom properties
        rest = rest.strip()
        if _PAGE_LEVEL.match(rest):
            return ""
        return f"{root.group(1)}{qualifiers} {scope}" + (f" {rest}" if rest else "")
    if _PAGE_LEVEL.match(selector):
        return ""
    return f"{scope} {selector}"


# --- writing: the manifest, and nothing that is not labbook's --------------------------------------


def _sha(data: bytes | Path) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.read_bytes()).hexdigest()


def _read_manifest(blog: Path) -> dict[str, str]:
    path = blog / MANIFEST
    if not path.exists():
        return {}
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        return {str(k): str(v) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SiteError(f"cannot read labbook's record of what it exported: {exc}", path=str(path),
                        hint="restore it from the blog's history; "
                             "without it labbook cannot tell its files from yours") from None


def _inside(blog: Path, name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise SiteError(f"refusing to write {name!r}: it leaves {blog}")
    return blog / relative


def export(config: Config, blog: Path, theme: str = "al-folio", *, figures: str | None = None, force: bool = False,
           only: Sequence[Path] | None = None) -> ExportReport:
    """Write the posts into `blog`, update what changed, remove what labbook exported before and no longer makes.

    Raises:
        ConfigError: `blog` is not a Jekyll site, or the theme is unknown.
        SiteError: a file to write was not written by labbook, or was edited since (nothing is written then),
            or the disk refused.
    """
    blog = blog.resolve()
    manifest = _read_manifest(blog)
    files, report = plan_export(config, blog, theme, figures=figures, only=only, owned=manifest)
    kept: dict[str, str] = {}
    if only is not None or report.skipped:  # the other posts' files stay as last exported
        kept = {n: sha for n, sha in manifest.items() if n not in files}
        if report.skipped and only is None:
            report.warnings.append("some posts were not exported: nothing labbook exported before was removed")
    plan = _plan_writes(files, blog, manifest, force)
    report.unchanged += plan.unchanged
    if plan.conflicts and not force:
        raise SiteError(
            f"refusing to overwrite {len(plan.conflicts)} file{'s' * (len(plan.conflicts) != 1)} in {blog}:\n    "
            + "\n    ".join(plan.conflicts),
            hint="move or rename them, or pass --force to let labbook take them over; nothing was written",
        )
    stale, edited = _stale(manifest, files.keys() | kept.keys(), blog)
    report.warnings += [f"{name}: edited since labbook exported it; left in place (it is yours now)" for name in edited]
    try:
        write_atomic(blog / MANIFEST, _manifest({**manifest, **plan.shas}))  # first: whatever is written is recorded
        for name, data in plan.changed.items():
            write_atomic(blog / name, data if isinstance(data, bytes) else data.read_bytes())
        for name in stale:
            (blog / name).unlink()
            _remove_empty_parents((blog / name).parent, blog)
        write_atomic(blog / MANIFEST, _manifest({**kept, **plan.shas}))
    except OSError as exc:
        raise SiteError(f"could not write into the blog: {exc}", path=str(blog)) from exc
    report.written, report.deleted = sorted(plan.changed), stale
    return report


@dataclass(frozen=True, slots=True)
class _Writes:
    """What an export changes in the blog, decided before anything is written."""

    changed: dict[str, bytes | Path]
    """Files to write: new, or with other bytes than the blog holds."""
    shas: dict[str, str]
    """The sha256 of every file the export makes: the next manifest."""
    conflicts: list[str]
    """Files labbook did not write, or that were edited since: not overwritten without force."""
    unchanged: int


def _plan_writes(files: Mapping[str, bytes | Path], blog: Path, manifest: Mapping[str, str], force: bool) -> _Writes:
    """Compare each file to make with the blog's copy and the manifest of what labbook wrote there."""
    plan = _Writes({}, {}, [], 0)
    unchanged = 0
    for name, data in sorted(files.items()):
        target = _inside(blog, name)
        plan.shas[name] = _sha(data)
        if not target.exists():
            plan.changed[name] = data
            continue
        current = _sha(target)
        if current == plan.shas[name]:
            unchanged += 1
            if name not in manifest and not force:
                plan.conflicts.append(f"{name} (the same bytes, but labbook did not write it)")
            continue
        if name not in manifest:
            plan.conflicts.append(f"{name} (labbook did not write it)")
        elif manifest[name] != current:
            plan.conflicts.append(f"{name} (edited since labbook exported it)")
        plan.changed[name] = data
    return dataclasses.replace(plan, unchanged=unchanged)


def _stale(manifest: Mapping[str, str], made: Iterable[str], blog: Path) -> tuple[list[str], list[str]]:
    """Files labbook exported before and no longer makes: (those to remove, those edited since: left)."""
    stale, edited = [], []
    made = set(made)
    for name, sha in sorted(manifest.items()):
        if name in made:
            continue
        target = _inside(blog, name)
        if target.exists() and _sha(target) != sha:
            edited.append(name)
        elif target.exists():
            stale.append(name)
    return stale, edited


def _manifest(shas: Mapping[str, str]) -> bytes:
    return dump_json({"version": 1, "written by": "labbook export", "files": dict(sorted(shas.items()))})


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
