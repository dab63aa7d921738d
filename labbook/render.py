"""Render: Post + Run -> Page.

Owns markdown (markdown-it-py, with its fence rule replaced so each cell's outputs follow
it), math as server-side MathML, code highlighting, figures, and the jinja2 templates.
Never executes code and never writes files.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from . import texmath
from .config import Config
from .model import Artifact, Cell, Page, Post, Prose, Run
from .theme import STATUS_TEXT, Theme, liquid_inert

__all__ = ["render", "post_url", "asset_url", "summary_of", "markdown_html", "inline_html", "mathml"]

# --- URLs ------------------------------------------------------------------------------------------


def post_url(config: Config, post: Post) -> str:
    """The Jekyll permalink /blog/:year/:title/, which `labbook serve` reproduces."""
    return f"{config.baseurl}/blog/{post.meta.date.year}/{post.slug}/"


def asset_url(config: Config, slug: str, name: str) -> str:
    return f"{config.baseurl}/assets/posts/{slug}/{name}"


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
    )
    md.add_render_rule("fence", _render_fence)
    return md


def mathml(tex: str, *, display: bool, env: dict[str, Any] | None = None, line: int | None = None) -> str:
    """TeX -> MathML, typeset here so a page needs no script and no network to show math."""
    return texmath.typeset_formula(tex, display=display, env=env, line=line)


def inline_html(text: str, env: dict[str, Any] | None = None, *, line: int | None = None) -> str:
    """A caption, claim, question or description: inline markdown with math, raw HTML as text."""
    return texmath.inline_html(text, env, line=line)


@functools.cache
def _python_highlighter() -> tuple[Any, Any, Any]:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight, PythonLexer(), HtmlFormatter(cssclass="highlight", wrapcode=True)


def highlight_python(code: str) -> str:
    highlight, lexer, formatter = _python_highlighter()
    return highlight(code, lexer, formatter)


def _render_fence(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    """A code cell is followed by its outputs; any other fence is shown as code."""
    token = tokens[idx]
    cells: list[Cell] = env.get("cells", [])
    if token.info.strip() and env.get("next_cell", 0) < len(cells):
        cell = cells[env["next_cell"]]
        env["next_cell"] += 1
        return env["render_cell"](cell)
    language = html.escape(token.info.strip().split(" ")[0]) if token.info.strip() else ""
    css = f' class="language-{language}"' if language else ""
    return f"<pre><code{css}>{html.escape(token.content)}</code></pre>\n"


def markdown_html(text: str, env: dict[str, Any] | None = None) -> str:
    """Prose (no cells) as HTML: descriptions, questions."""
    return _markdown().render(text, env if env is not None else {})


# --- cells and outputs -----------------------------------------------------------------------------


class _CellRenderer:
    """Renders one cell with its outputs; numbers the figures of the page."""

    def __init__(self, post: Post, run: Run, config: Config, theme: Theme, env: dict[str, Any]) -> None:
        self.post, self.run, self.config, self.theme = post, run, config, theme
        self.env = env  # the page's markdown env: its math (macros, equation labels) and warnings
        self.results = {r.index: r for r in run.cells}
        self.figures = 0

    def __call__(self, cell: Cell) -> str:
        result = self.results.get(cell.index)
        outputs = result.outputs if result and cell.options.output else ()
        figures = [self._figure(o, cell) for o in outputs if o.get("output_type") == "figure"]
        texts = [_text_output_html(o) for o in outputs if o.get("output_type") != "figure"]
        return self.theme.render(
            "cell.html",
            cell=cell,
            code=highlight_python(cell.source) if cell.options.echo and cell.source.strip() else "",
            texts=[t for t in texts if t],
            figures=figures,
            verdict=result.claim if result else None,
            seconds=result.seconds if result else None,
            line=cell.line,
            source_path=str(self.post.path),
            math_env=self.env,
        )

    def _figure(self, output: Mapping[str, Any], cell: Cell) -> dict[str, Any]:
        self.figures += 1
        name = output["name"]
        anchor = Path(name).stem
        return {
            "number": self.figures,
            "id": anchor,
            "src": asset_url(self.config, self.post.slug, name),
            "caption": cell.options.caption or "",
            "alt": cell.options.caption or f"Figure {self.figures}",
        }


def _text_output_html(output: Mapping[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        css = "stderr" if output.get("name") == "stderr" else "stdout"
        return f'<pre class="output {css}">{html.escape(output.get("text", ""))}</pre>'
    if kind == "error":
        return f'<pre class="output error">{html.escape(output.get("traceback", ""))}</pre>'
    data = output.get("data", {})
    if "text/markdown" in data:
        return f'<div class="output markdown">{markdown_html(data["text/markdown"])}</div>'
    if "text/plain" in data:
        return f'<pre class="output result">{html.escape(data["text/plain"])}</pre>'
    return ""


# --- the page ----------------------------------------------------------------------------------------


def summary_of(post: Post, url: str) -> dict[str, Any]:
    """What the indexes and the feed need of a post: plain, JSON-safe, cached between builds."""
    meta = post.meta
    return {
        "slug": post.slug,
        "url": url,
        "title": meta.title,
        "date": meta.date.isoformat(),
        "description": meta.description,
        "status": meta.status,
        "tags": list(meta.tags),
        "models": list(meta.models),
        "data": list(meta.data),
        "phenomena": list(meta.phenomena),
        "observables": list(meta.observables),
        "questions": list(meta.questions),
    }


def _body_markdown(post: Post) -> str:
    """The post body again, cells as fences in order: one markdown pass keeps footnotes whole."""
    parts = []
    for block in post.blocks:
        if isinstance(block, Prose):
            parts.append(block.text)
        else:
            parts.append(f"```python\n{block.text}\n```")
    return "\n\n".join(parts) + "\n"


def _source_lines(post: Post) -> Callable[[int], int]:
    """Maps a 0-based line of `_body_markdown(post)` to the 1-based line of the post file."""
    starts: list[tuple[int, int]] = []  # (first line in the body markdown, its line in the file)
    body_line = 0
    for block in post.blocks:
        if isinstance(block, Prose):
            starts.append((body_line, block.line))
            body_line += block.text.count("\n") + 2  # its lines, then the blank line between parts
        else:
            starts.append((body_line, block.line - 1))  # the fence line
            body_line += block.text.count("\n") + 4

    def line_of(line: int) -> int:
        index = max(bisect.bisect_right(starts, (line, float("inf"))) - 1, 0)
        body_start, file_start = starts[index] if starts else (0, 1)
        return file_start + line - body_start

    return line_of


def _downloads(run: Run, config: Config, slug: str) -> list[dict[str, Any]]:
    order = {"data": 0, "notebook": 1, "figure": 2}
    files = sorted(run.artifacts, key=lambda a: (order[a.kind], a.name))
    rows = [_download(a, config, slug) for a in files if a.kind != "figure"]
    rows.append({"name": "run.json", "href": asset_url(config, slug, "run.json"), "size": None, "kind": "record"})
    return rows


def _download(artifact: Artifact, config: Config, slug: str) -> dict[str, Any]:
    label = artifact.name.removeprefix("data/")
    return {"name": label, "href": asset_url(config, slug, artifact.name), "size": artifact.size, "kind": artifact.kind}


RenderStep = Callable[[str, Post, Run], str]


def render(post: Post, run: Run, run_dir: Path, config: Config, theme: Theme) -> tuple[Page, list[str]]:
    """The page of one post, and the warnings met (math that would not render, …).

    Raises:
        RenderError: a template failed.
    """
    url = post_url(config, post)
    env: dict[str, Any] = {
        "cells": list(post.cells),
        "next_cell": 0,
        "warnings": [],
        "line_of": _source_lines(post),  # math warnings name the post's line
        "math_store": config.cache / "math",  # typeset formulas kept between builds (texmath)
    }
    env["render_cell"] = _CellRenderer(post, run, config, theme, env)
    body = _markdown().render(_body_markdown(post), env)
    claims = [r.claim for r in run.cells if r.claim is not None]
    summary = summary_of(post, url)
    article = theme.render(
        "post.html",
        post=summary,
        body=body,
        claims=claims,
        downloads=_downloads(run, config, post.slug),
        run=run,
        ran_on=run.started[:10],
        check=run.check or {},
        seed_tallies=dict((run.check or {}).get("seeds", {}).get("claims", {})),
        status_text=STATUS_TEXT.get(post.meta.status, post.meta.status),
        baseurl=config.baseurl,
        math_env=env,
    )
    front_matter = {
        "layout": "post",
        "title": post.meta.title,
        "date": f"{post.meta.date.isoformat()} 00:00:00 +0000",
        "description": post.meta.description,
        "tags": list(post.meta.tags),
        "status": post.meta.status,
        "models": list(post.meta.models),
        "data": list(post.meta.data),
        "phenomena": list(post.meta.phenomena),
        "labbook_url": url,
        **{k: v for k, v in post.meta.extra.items() if _plain(v)},
    }
    page = Page(
        slug=post.slug,
        path=post.path,
        url=url,
        filename=f"_posts/{post.date_slug}.html",
        front_matter=front_matter,
        html=liquid_inert(article),
        run_dir=str(run_dir),
        summary=summary,
    )
    return page, [_located(post.path, w) for w in env["warnings"]]


def _located(path: PurePosixPath | str, warning: str | tuple[int, str]) -> str:
    """A warning as "posts/x.md:12: message" when its line is known (texmath gives (line, message))."""
    if isinstance(warning, tuple):
        return f"{path}:{warning[0]}: {warning[1]}"
    return f"{path}: {warning}"


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
