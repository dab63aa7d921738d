"""Render: Post + Run -> Page.

Owns markdown (markdown-it-py, with its fence rule replaced so each cell's outputs follow
it), math as server-side MathML, code highlighting, figures, and the jinja2 templates.
Never executes code and never writes files.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import kramdown, pageparts, texmath
from . import outputs as rich
from ._inline import expression_of
from .config import Config
from .errors import RenderError
from .files import Memo, digest
from .liquid import FigureTag, Live, Marks, blocks_plugin, readable_markdown, replace_tags, site_addresses
from .model import Artifact, Cell, CellResult, Notice, Page, Post, Prose, Run, Summary, show_value
from .theme import STATUS_TEXT, Theme, liquid_inert

if TYPE_CHECKING:
    from . import sweep

__all__ = ["render", "post_url", "asset_url", "summary_of", "markdown_html", "inline_html", "mathml", "Flavour",
           "site_flavour"]

# --- URLs ------------------------------------------------------------------------------------------


def post_url(config: Config, post: Post) -> str:
    """The Jekyll permalink /blog/:year/:title/, which `labbook serve` reproduces."""
    return f"{config.baseurl}/blog/{post.meta.date.year}/{post.slug}/"


def asset_url(config: Config, slug: str, name: str) -> str:
    return f"{config.baseurl}/assets/posts/{slug}/{name}"


# --- flavours: where the page is published ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flavour:
    """What depends on where a page is published: labbook's own site, or an existing Jekyll blog.

    A hook returns plain HTML, or `Live` Liquid that must run under Jekyll: render keeps that
    live through `liquid_inert` with a mark, everything else on the page stays inert.
    """

    asset_href: Callable[[str, str], str | Live]
    """(slug, name under the post's asset folder) -> the link to a data file, notebook or run.json."""
    prose_figure: Callable[[FigureTag], Live]
    """An author's `{% include figure.liquid … %}` in prose, as the live tag to write."""
    cell_figure: Callable[[Mapping[str, Any]], Live] | None = None
    """A cell's figure (number, id, name, caption, alt) as markup; None: the theme's <figure>."""
    body_only: bool = False
    """Leave out the title, date, tags and description (the blog's own post layout prints them)."""
    baseurl: str = ""
    url: str = ""
    """The site's baseurl and url, for `{{ site.baseurl }}` and `{{ '/x' | relative_url }}` in prose."""


def site_flavour(config: Config) -> Flavour:
    """labbook's own Jekyll tree: links with the site's baseurl, an author's figure tags kept live."""
    return Flavour(asset_href=lambda slug, name: asset_url(config, slug, name),
                   prose_figure=lambda tag: Live(tag.liquid()), baseurl=config.baseurl, url=config.url)


# --- markdown ------------------------------------------------------------------------------------


@functools.cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.anchors import anchors_plugin
    from mdit_py_plugins.footnote import footnote_plugin

    md = (
        MarkdownIt("commonmark", {"html": True, "typographer": False})
        .enable(["table", "strikethrough"])
        .use(texmath.math_plugin)  # $…$, $$…$$, \(…\), \[…\], equation numbers: see texmath
        .use(footnote_plugin)
        .use(anchors_plugin, min_level=2, max_level=3)
        .use(kramdown.attribute_list_plugin)  # `{: .block-tip }` under a block, as Jekyll posts write it
        .use(blocks_plugin)  # al-folio's `{% details %}` and tabs blocks, left as marks by replace_tags
    )
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_inline", _render_code_inline)
    return md


def mathml(tex: str, *, display: bool, env: dict[str, Any] | None = None, line: int | None = None) -> str:
    """TeX -> MathML, typeset here so a page needs no script and no network to show math."""
    return texmath.typeset_formula(tex, display=display, env=env, line=line)


def inline_html(text: str, env: dict[str, Any] | None = None, *, line: int | None = None) -> str:
    """A caption, claim, question or description: inline markdown with math, raw HTML as text."""
    return texmath.inline_html(text, env, line=line)


_PYGMENTS = threading.Lock()
"""Held while pygments' lexers and formatters are imported and made: those modules replace
themselves in sys.modules with lazy ones as they load, and a second thread importing a name
from them meanwhile gets an ImportError (a build makes the code cells' lexer on a helper thread
while the first pages may already render)."""


@functools.cache
def _formatter() -> Any:
    with _PYGMENTS:
        from pygments.formatters import HtmlFormatter

        return HtmlFormatter(cssclass="highlight", wrapcode=True)


@functools.cache
def _lexer(language: str) -> Any:
    """pygments' lexer for a fence's language (bibtex, bash, console, yaml, …); plain text when unknown."""
    with _PYGMENTS:
        from pygments.lexers import TextLexer, get_lexer_by_name
        from pygments.util import ClassNotFound

        try:
            return get_lexer_by_name(language) if language else TextLexer()
        except ClassNotFound:
            return TextLexer()


def ready_to_highlight() -> None:
    """Make the lexer of code cells (pygments compiles its ~100 patterns then: ~0.1 s) and the
    formatter's style, for a build to do while its kernels run."""
    import pygments

    pygments.highlight("", _lexer("python"), _formatter())


def highlight(code: str, language: str = "python", folder: Path | None = None) -> str:
    """Code as highlighted HTML (`<div class="highlight">`), every character escaped.

    Kept by content (in memory, and in `folder` between builds): a prose edit re-renders cells
    whose code did not change, and compiling pygments' lexers costs more than the rest of it.
    """
    import pygments

    memo = Memo(folder, "highlight")
    key = digest(pygments.__version__, language.lower(), code)
    found = memo.get(key)
    if found is None:
        found = pygments.highlight(code, _lexer(language.lower()), _formatter())
        memo.put(key, found)
    return found


def _render_fence(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    """A code cell is followed by its outputs; any other fence is prose, shown as written.

    Fences are paired with cells by identity: the line the fence starts on, which the read
    stage recorded as `Cell.line` (never by counting: a ```text block before a cell would shift
    every cell after it).
    """
    token = tokens[idx]
    language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    cells: Mapping[int, Cell] = env.get("cells_by_line", {})
    if token.map and language == "python":
        cell = cells.get(env.get("first_line", 1) + token.map[0] + 1)
        if cell is not None:
            env.setdefault("placed", set()).add(cell.index)
            return env["render_cell"](cell)
    css = f" language-{html.escape(language)}" if language else ""
    return f'<div class="code-block{css}">{highlight(token.content, language, env.get("highlight_store"))}</div>\n'


def _render_code_inline(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    """`{python} expression` shows the value the run computed (escaped); other code as code."""
    content = tokens[idx].content
    expression = expression_of(content) if "inline" in env else None
    if expression is None:
        return f"<code>{html.escape(content)}</code>"
    value = env["inline"].get(expression, {"error": "not evaluated (labbook run or build evaluates it)"})
    if "text" in value:
        return f'<span class="inline-value" title="{html.escape(expression)}">{html.escape(value["text"])}</span>'
    line = env["inline_lines"].get(expression)
    env["warnings"].append(Notice(f"inline `{expression}`: {value['error']}", env["path"], line))
    where = f"{env['path']}:{line}" if line else env["path"]
    return (f'<span class="inline-error" title="{html.escape(where)}">⚠ <code>{html.escape(expression)}</code>: '
            f'{html.escape(value["error"])}</span>')


def markdown_html(text: str, env: dict[str, Any] | None = None) -> str:
    """Prose (no cells) as HTML: descriptions, questions."""
    return _markdown().render(text, env if env is not None else {})


# --- cells and outputs -----------------------------------------------------------------------------


class _CellRenderer:
    """Renders one cell with its outputs; numbers the figures of the page."""

    def __init__(self, post: Post, run: Run, config: Config, theme: Theme, env: dict[str, Any],
                 flavour: Flavour, marks: Marks, run_dir: Path | None = None) -> None:
        self.post, self.run, self.config, self.theme = post, run, config, theme
        self.flavour, self.marks = flavour, marks
        self.env = env  # the page's markdown env: its math (macros, equation labels) and warnings
        self.run_dir = run_dir  # the run's files: figure sizes when the output record has none
        self.results = {r.index: r for r in run.cells}
        self.figures = 0
        self.warnings: list[str] = []
        """Met while rendering outputs (math that would not render); render() reports them."""

    def __call__(self, cell: Cell) -> str:
        return self.env.get("before_cell", {}).get(cell.index, "") + self._cell(cell)

    def _cell(self, cell: Cell) -> str:
        result = self.results.get(cell.index)
        outputs = result.outputs if result and cell.options.output else ()
        shown = [self._output(o, cell) for o in outputs]
        return self.theme.render(
            "cell.html",
            cell=cell,
            code=highlight(cell.source, "python", self.config.cache / "highlight")
            if cell.options.echo and cell.source.strip() else "",
            outputs=[s for s in shown if s],
            verdict=result.claim if result else None,
            seconds=result.seconds if result else None,
            line=cell.line,
            source_path=str(self.post.path),
            math_env=self.env,
            **_fold(cell),
        )

    def _output(self, output: Mapping[str, Any], cell: Cell) -> dict[str, Any] | None:
        """One output for cell.html, in display order: {"figure": …} or {"html": …}."""
        if output.get("output_type") == "figure":
            return {"figure": self._figure(output, cell)}
        markup = _text_output_html(output, self.warnings)
        return {"html": markup} if markup else None

    def _figure(self, output: Mapping[str, Any], cell: Cell) -> dict[str, Any]:
        self.figures += 1
        name = output["name"]
        anchor = Path(name).stem
        size = pageparts.figure_size(output, self.run_dir / name if self.run_dir else None)
        figure = {
            "number": self.figures,
            "id": anchor,
            "name": name,
            "caption": cell.options.caption or "",
            "alt": cell.options.caption or f"Figure {self.figures}",
            "width": size[0] if size else None,
            "height": size[1] if size else None,
            "wide": bool(size and size[0] >= 2 * size[1]),
        }
        hook = self.flavour.cell_figure
        if hook is not None:  # the flavour writes the whole figure (a blog theme's include)
            return {**figure, "src": "", "html": self.marks.mark(hook(figure))}
        href = self.flavour.asset_href
        return {**figure, "src": self.marks.text(href(self.post.slug, name)),
                "href": self.marks.text(href(self.post.slug, name)), "html": None}  # a mark is used once


def _fold(cell: Cell) -> dict[str, Any]:
    """Long code is folded (`<details>`) so the prose and figures lead; `#| code-fold:` decides."""
    lines = cell.source.count("\n") + 1 if cell.source.strip() else 0
    fold = cell.options.code_fold if cell.options.code_fold is not None else lines > pageparts.FOLD_LINES
    return {"fold": fold, "code_lines": lines}


def _text_output_html(output: Mapping[str, Any], warnings: list[str] | None = None) -> str:
    """Any output but a figure file: the richest safe MIME type, sanitized (outputs.py)."""
    return rich.output_html(output, markdown=_markdown(), mathml=mathml, warnings=warnings)


# --- the page ----------------------------------------------------------------------------------------


def summary_of(post: Post, run: Run, url: str, config: Config, links: tuple[str, ...] = ()) -> Summary:
    """What the indexes, the feed and the next build need of a post."""
    meta = post.meta
    figure = next((a.name for a in run.artifacts if a.kind == "figure"), None)
    check = run.check or {}
    return Summary(
        slug=post.slug, url=url, source=str(post.path), title=meta.title, date=meta.date.isoformat(),
        description=meta.description, status=meta.status, tags=meta.tags, models=meta.models, data=meta.data,
        phenomena=meta.phenomena, observables=meta.observables, questions=meta.questions,
        figure=asset_url(config, post.slug, figure) if figure else "",
        verdict=str(check.get("verdict", "")), checked=str(check.get("date", "")),
        redirect_from=meta.redirect_from,
        authors=pageparts.authors_of(meta.extra, config.author), updated=_updated(post, run), links=links,
    )


def _updated(post: Post, run: Run) -> str:
    """The post's `updated:` date, else the day its results were last produced, when after its date."""
    given = post.meta.extra.get("updated", post.meta.extra.get("last_modified_at"))
    if isinstance(given, (dt.date, dt.datetime)):
        return given.isoformat()[:10]
    if isinstance(given, str) and re.match(r"^\d{4}-\d{2}-\d{2}", given):
        return given[:10]
    ran = run.started[:10] if post.cells else ""
    return ran if ran > post.meta.date.isoformat() else ""


def _downloads(run: Run, slug: str, notebook: str | None, href: Callable[[str, str], str],
               run_dir: Path | None = None) -> list[dict[str, Any]]:
    files = sorted((a for a in run.artifacts if a.kind == "data"), key=lambda a: a.name)
    rows = [_download(a, slug, href, run_dir) for a in files]
    if notebook is not None:
        rows.append({"name": notebook, "href": href(slug, notebook), "size": None, "kind": "notebook", "preview": None})
    rows.append({"name": "run.json", "href": href(slug, "run.json"), "size": None, "kind": "record", "preview": None})
    return rows


def _download(artifact: Artifact, slug: str, href: Callable[[str, str], str],
              run_dir: Path | None = None) -> dict[str, Any]:
    label = artifact.name.removeprefix("data/")
    preview = pageparts.data_preview(run_dir / artifact.name) if run_dir is not None else None
    return {"name": label, "href": href(slug, artifact.name), "size": artifact.size, "kind": artifact.kind,
            "preview": preview}


def _live_figures(post: Post, flavour: Flavour, marks: Marks, assets: Path) -> tuple[str, list[Notice]]:
    """The post's Markdown with each author's figure tag replaced by a mark of its live Liquid (lines kept),
    and a notice for every other Liquid tag in its prose and for a figure whose file is missing."""
    notices: list[Notice] = []

    def figure(tag: FigureTag) -> str:
        name = tag.path.lstrip("/")
        if name.startswith("assets/") and not (assets / name.removeprefix("assets/")).is_file():
            notices.append(Notice(f"figure {tag.path}: no such file in the project's {assets.name}/ folder",
                                  str(post.path), tag.line))
        return marks.mark(flavour.prose_figure(tag))

    addressed = site_addresses(post.body, flavour.baseurl, flavour.url)
    body, found = replace_tags(addressed, post.body_line, figure, filler=lambda: marks.mark(""))
    return body, notices + [Notice(message, str(post.path), line) for line, message in found]


def _body_html(post: Post, run: Run, config: Config, theme: Theme, flavour: Flavour,
               marks: Marks, run_dir: Path | None = None,
               before_cell: Mapping[int, str] | None = None) -> tuple[str, dict[str, Any]]:
    """The post's Markdown as written, each code cell followed by its outputs; and the page's env
    (its math: macros and equation labels that captions and claims share; its warnings).

    Raises:
        RenderError: a cell the read stage found has no fence here (the two parsers disagree).
    """
    env: dict[str, Any] = {
        "cells_by_line": {cell.line: cell for cell in post.cells},
        "first_line": post.body_line,
        "warnings": [],
        "line_of": lambda line: post.body_line + line,  # math warnings name the post's line (texmath)
        "math_store": config.cache / "math",  # typeset formulas kept between builds (texmath)
        "highlight_store": config.cache / "highlight",  # highlighted code, likewise
        "inline": run.inline,  # computed values in prose
        "inline_lines": {i.expression: i.line for i in post.inline},
        "path": str(post.path),
        "before_cell": dict(before_cell or {}),  # a sweep's section, before its first gather cell
    }
    env["render_cell"] = _CellRenderer(post, run, config, theme, env, flavour, marks, run_dir)
    text, liquid_notices = _live_figures(post, flavour, marks, config.assets)
    env["warnings"].extend(liquid_notices)
    body = _markdown().render(text, env)
    lost = [cell for cell in post.cells if cell.index not in env.get("placed", set())]
    if lost:
        raise RenderError(f"code cell {lost[0].index + 1} could not be placed on the page", line=lost[0].line,
                          hint="is its ``` fence inside a $$ math block or an HTML block?")
    return body, env


def _notices(post: Post, env: dict[str, Any]) -> list[Notice]:
    """The page's warnings. Math's come as (line, message); those from math in outputs keep only
    the path (their lines count in the output, not in the post)."""
    path = str(post.path)

    def notice(warning: Any, in_post: bool) -> Notice:
        if isinstance(warning, Notice):
            return warning
        if isinstance(warning, tuple):
            return Notice(warning[1], path, warning[0] if in_post else None)
        return Notice(str(warning), path)

    return [notice(w, True) for w in env["warnings"]] + [notice(w, False) for w in env["render_cell"].warnings]


def notebook_of(post: Post, run: Run, run_dir: Path | None, baseurl: str = "", url: str = "") -> bytes | None:
    """The post as a notebook: its own prose, with the code cells and outputs of its run.

    Two posts with equal code share one run, but each publishes its own notebook. None for a
    post without code. The prose is Markdown a notebook renders: the site's address printed
    (`baseurl`, `url`) and al-folio's block tags as plain Markdown (`liquid.readable_markdown`).
    """
    import json

    if not post.cells or run_dir is None:
        return None
    executed = [a for a in run.artifacts if a.kind == "notebook" and (run_dir / a.name).is_file()]
    if not executed:
        return None
    ran = json.loads((run_dir / executed[0].name).read_text(encoding="utf-8"))
    # by the cell's index: a sweep's page joins a point's notebook and the gather's
    code: dict[int, dict[str, Any]] = {}
    for artifact in reversed(executed):
        cells_ran = json.loads((run_dir / artifact.name).read_text(encoding="utf-8")).get("cells", [])
        ran_code = [c for c in cells_ran if c.get("cell_type") == "code"]
        for position, cell in enumerate(ran_code):
            code[cell.get("metadata", {}).get("labbook", {}).get("index", position)] = cell
    header = post.text.splitlines(keepends=True)[: post.body_line - 1]
    cells: list[dict[str, Any]] = [_nb_cell("raw", "".join(header).rstrip("\n"), "front-matter")]
    readable = readable_markdown(site_addresses(post.body, baseurl, url), post.body_line).split("\n")
    lines_kept = len(readable) == post.body.count("\n") + 1  # neither rewrite moves a line
    for block in post.blocks:
        if isinstance(block, Prose):
            first = block.line - post.body_line
            text = "\n".join(readable[first:first + block.text.count("\n") + 1]).strip() if lines_kept else block.text
            cells.append(_nb_cell("markdown", text, f"prose-{block.line}"))
        elif block.index in code:
            cells.append({**code[block.index], "id": f"cell-{block.index + 1}"})
    notebook = {**{k: v for k, v in ran.items() if k != "cells"}, "cells": cells}
    return (json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _nb_cell(kind: str, text: str, cell_id: str) -> dict[str, Any]:
    return {"cell_type": kind, "id": cell_id, "metadata": {}, "source": text}


def render(post: Post, run: Run, run_dir: Path | None, config: Config, theme: Theme,
           flavour: Flavour | None = None) -> Page:
    """The page of one post, with the notices met (math that would not render, Liquid in prose, …).

    `flavour` says where the page goes (default: labbook's own site).

    Raises:
        RenderError: a template failed, or a cell could not be placed.
    """
    flavour = flavour or site_flavour(config)
    marks = Marks()
    url = post_url(config, post)
    href = lambda slug, name: marks.text(flavour.asset_href(slug, name))  # noqa: E731 - a mark is used once
    swept = _sweep_page(post, run, run_dir, theme, href) if post.sweep is not None else None
    shown = swept.run if swept is not None else run  # a sweep: one point's cells beside the gather's
    body, env = _body_html(post, shown, config, theme, flavour, marks, run_dir, swept.before if swept else None)
    if swept is not None and not _gather_cells(post):
        body += swept.section  # no gather part: the table closes the post
    claims = [r.claim for r in run.cells if r.claim is not None]
    links = pageparts.internal_links(body, config.baseurl, config.url, url)
    summary = summary_of(post, shown, url, config, links)
    notebook = notebook_of(post, shown, run_dir, flavour.baseurl, flavour.url)  # an export: the blog's
    notebook_name = f"{post.slug}.ipynb" if notebook is not None else None
    references, problems = pageparts.references_of(post.meta.extra.get("references"))
    article = theme.render(
        "post.html",
        post=summary,
        body=body,
        claims=claims,
        downloads=_downloads(run, post.slug, notebook_name, href, run_dir) if post.cells else [],
        sweep=swept.record if swept is not None else None,
        run=run if post.cells else None,
        ran_on=run.started[:10],
        check=run.check or {},
        seed_tallies=dict((run.check or {}).get("seeds", {}).get("claims", {})),
        status_text=STATUS_TEXT.get(post.meta.status or "", ""),
        baseurl=config.baseurl,
        math_env=env,
        body_only=flavour.body_only,
        verification=pageparts.verification_of(run.check) if post.cells else None,
        toc=pageparts.headings(body),
        references=references,
        citation=pageparts.citation_of(title=post.meta.title, authors=summary.authors, date=summary.date,
                                       url=config.url.rstrip("/") + url if config.url else url,
                                       site_title=config.title, slug=post.slug),
    )
    notices = _notices(post, env) + [Notice(problem, str(post.path)) for problem in problems]
    front_matter = {"layout": "post", **summary.to_front_matter(),
                    **{k: v for k, v in post.meta.extra.items() if _plain(v)}}
    front_matter["labbook"] = {**front_matter["labbook"], "links": pageparts.links_include(post.slug)}
    return Page(
        post=post,
        run=run,
        url=url,
        filename=f"_posts/{post.date_slug}.html",
        front_matter=front_matter,
        html=_inert_but_marks(article, marks),
        run_dir=str(run_dir) if run_dir is not None and (post.cells or post.inline) else None,
        summary=summary,
        files={notebook_name: notebook} if notebook_name and notebook else {},
        notices=tuple(notices),
    )


# --- a sweep's page ---------------------------------------------------------------------------------

MAX_TABLE_ROWS = 100
"""Rows of a sweep's table shown on its page; the CSV has them all."""


@dataclass(frozen=True, slots=True)
class _SweepPage:
    """What a sweep post's page adds: the run its cells show, its section, and its record line."""

    run: Run
    """The gather's run, with the per-point cells' results of the point shown."""
    before: dict[int, str]
    """HTML placed before a cell: the note on the first per-point cell, the section on the first gather cell."""
    section: str
    record: dict[str, Any]


def _gather_cells(post: Post) -> bool:
    from . import sweep  # only for a sweep post: most pages never import it

    return bool(sweep.split_cells(post.cells, swept=True, path=str(post.path)).gather_cells)


def _sweep_page(post: Post, run: Run, run_dir: Path | None, theme: Theme,
                href: Callable[[str, str], str]) -> _SweepPage:
    """The sweep's grid, table, downloads and failed points, read from the folder build laid out
    (sweep.json, points/<folder>/run.json); the per-point cells show the first point that ran.

    Raises:
        RenderError: the folder has no readable table.
    """
    import json

    from . import sweep

    assert post.sweep is not None
    try:
        table = sweep.Table.from_json((run_dir / sweep.TABLE_JSON).read_bytes()) if run_dir else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RenderError(f"the sweep's table could not be read: {exc}") from None
    if table is None:
        raise RenderError("the sweep's table is missing: build the post again")
    split = sweep.split_cells(post.cells, swept=True, path=str(post.path))
    records = table.records()
    ok = [r for r in records if r["status"] == "ok"]
    shown_folder = str(ok[0]["point"]) if ok else None
    cells: list[CellResult] = []
    artifacts: list[Artifact] = list(run.artifacts)
    if shown_folder is not None and run_dir is not None:
        prefix = f"points/{shown_folder}/"
        try:
            point = Run.from_json(json.loads((run_dir / prefix / "run.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RenderError(f"the run of point {shown_folder} could not be read: {exc}") from None
        point_cells = {c.index for c in split.point_cells}
        cells = [_prefixed(c, prefix) for c in point.cells if c.index in point_cells]
        artifacts += [replace(a, name=prefix + a.name) for a in point.artifacts if a.kind in ("figure", "notebook")]
    shown_id = next((p.id for p in post.sweep.points if p.folder == shown_folder), "")
    view = _sweep_view(post, table, records, shown_id, run_dir, href)
    section = theme.render("sweep.html", **view)
    before = {split.point_cells[0].index: f'<p class="sweep-note">{html.escape(view["note"])}</p>\n'}
    if split.gather_cells:
        before[split.gather_cells[0].index] = section
    record = {"points": len(records), "failed": len(records) - len(ok), "describe": view["describe"],
              "gathered": bool(split.gather_cells)}
    return _SweepPage(replace(run, cells=tuple(cells) + run.cells, artifacts=tuple(artifacts)), before, section, record)


def _prefixed(result: CellResult, prefix: str) -> CellResult:
    """A point's cell result with its figures named from the post's folder (points/<folder>/figures/…)."""
    outputs = tuple({**o, "name": prefix + o["name"]} if o.get("output_type") == "figure" else o
                    for o in result.outputs)
    return replace(result, outputs=outputs)


def _sweep_view(post: Post, table: sweep.Table, records: list[dict[str, Any]], shown: str, run_dir: Path | None,
                href: Callable[[str, str], str]) -> dict[str, Any]:
    """The template's values: grid, columns, rows (at most MAX_TABLE_ROWS), downloads, failures."""
    from . import sweep

    assert post.sweep is not None
    hidden = {"error", "point"}
    columns = [c for c in table.columns if c.name not in hidden]
    numeric = {c.name for c in columns if c.type in ("int", "float")}
    rows = []
    for record in records[:MAX_TABLE_ROWS]:
        folder = str(record["point"])
        rows.append({
            "failed": record["status"] != "ok",
            "cells": [{"text": _shown_value(record[c.name], exact=c.role == "axis"),
                       "sort": _sort_value(record[c.name]), "numeric": c.name in numeric} for c in columns],
            "notebook": href(post.slug, f"points/{folder}/outputs.ipynb") if record["status"] == "ok" else None,
            "record": href(post.slug, f"points/{folder}/run.json") if record["status"] == "ok" else None,
            "files": _point_files(post, folder, run_dir, href) if record["status"] == "ok" else [],
        })
    downloads = []
    for name in (sweep.TABLE_CSV, sweep.TABLE_PARQUET, sweep.TABLE_JSON):
        path = run_dir / name if run_dir is not None else None
        if path is not None and path.is_file():
            downloads.append({"name": name, "href": href(post.slug, name), "size": path.stat().st_size})
    point_ids = {p.folder: p.id for p in post.sweep.points}
    failures = [{"point": point_ids.get(str(r["point"]), str(r["point"])), "error": str(r["error"])}
                for r in records if r["status"] != "ok"]
    describe = post.sweep.describe()
    note = (f"These cells run once per point ({len(records)} points, each its own cached run); the outputs shown "
            f"are those of point {shown}." if shown else
            f"These cells run once per point ({len(records)} points); none of them ran to the end.")
    return {"describe": describe, "grid": [(axis, [show_value(v) for v in values]) for axis, values in post.sweep.grid],
            "columns": [{"name": c.name, "numeric": c.name in numeric, "role": c.role} for c in columns],
            "rows": rows, "total": len(records), "ok": len(records) - len(failures), "failures": failures,
            "downloads": downloads, "note": note, "more_rows": max(0, len(records) - MAX_TABLE_ROWS)}


MAX_POINT_FILES = 4
"""A row of the sweep's table links at most this many of its point's own files (data, then figures)."""


def _point_files(post: Post, folder: str, run_dir: Path | None,
                 href: Callable[[str, str], str]) -> list[dict[str, str]]:
    """A point's own files for its row: what its code wrote and the figures it drew, linked where
    site/ publishes them (points/<folder>/data/, figures/), so a reader can fetch one point's data
    without guessing its address; the observations it reported are the row itself."""
    from .observations import OBSERVATIONS

    if run_dir is None:
        return []
    found = []
    for kind in ("data", "figures"):
        top = run_dir / "points" / folder / kind
        if top.is_dir():
            found += sorted(f"{kind}/{p.relative_to(top).as_posix()}" for p in top.rglob("*") if p.is_file())
    found = [name for name in found if name != f"data/{OBSERVATIONS}"]
    shown = [{"name": name.split("/", 1)[1], "href": href(post.slug, f"points/{folder}/{name}")}
             for name in found[:MAX_POINT_FILES]]
    if len(found) > MAX_POINT_FILES:
        shown.append({"name": f"+{len(found) - MAX_POINT_FILES} more", "href": ""})
    return shown


def _shown_value(value: Any, *, exact: bool = False) -> str:
    """A table cell: an axis value as its point's id writes it (2.0), an observable to 6 digits."""
    if value is None:
        return "–"
    if exact and isinstance(value, (bool, int, float, str)):
        return show_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def _sort_value(value: Any) -> str:
    """What the table's script sorts by: numbers as numbers, the rest as text; empty last."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _inert_but_marks(article: str, marks: Marks) -> str:
    """The page Liquid-inert, then the marked snippets put back live: the only Liquid Jekyll runs."""
    try:
        return marks.restore(liquid_inert(article))
    except ValueError as exc:
        raise RenderError(f"bug in labbook: {exc}") from exc


def _plain(value: Any) -> bool:
    """Front matter that YAML can carry to Jekyll unchanged."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, (dt.date, dt.datetime)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
