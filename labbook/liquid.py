"""Liquid in a post's prose: the tags labbook understands, and how figures stay live under Jekyll.

In -> out: prose text -> the `{% include figure.liquid … %}` tags it holds (al-folio's figure
convention), the blocks it reads as Jekyll shows them (`raw`, `highlight`, al-folio's `details` and tabs),
and a warning, with its line, for every other Liquid tag; a labbook page holding live
figure tags -> the same page with each tag rendered as HTML (what `labbook html` shows).
Owns the figure include's grammar (Jekyll's include syntax, narrowed to what both builders render
alike), the figure's HTML, which is byte for byte what FIGURE_INCLUDE gives under Jekyll, and the
marks that carry live Liquid through `theme.liquid_inert`. Never reads or writes files.

Everything else on a page stays Liquid-inert: code, outputs, titles and any other tag in prose.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FigureTag",
    "Live",
    "Marks",
    "FIGURE_INCLUDE",
    "scan_prose",
    "replace_tags",
    "figure_html",
    "render_live_figures",
    "parse_figure_tag",
    "relative_url",
    "code_mask",
    "liquid_mask",
    "blocks_plugin",
    "site_addresses",
    "readable_markdown",
]

Value = str | bool | int | float

_TAG = re.compile(r"\{%.*?%\}", re.S)
"""A Liquid tag as Liquid's own tokenizer cuts it: from `{%` to the first `%}`."""
_INCLUDE = re.compile(r"\A\{%-?\s*include\s+(?P<file>\S+)(?P<params>.*?)\s*-?%\}\Z", re.S)
_PARAM = re.compile(
    r"""\s*(?P<key>[A-Za-z0-9_-]+)\s*=\s*(?:"(?P<dq>[^"\\]*(?:\\.[^"\\]*)*)"|'(?P<sq>[^'\\]*(?:\\.[^'\\]*)*)'"""
    r"""|(?P<bare>[A-Za-z0-9_.-]+))(?=\s|\Z)""", re.S
)
"""A parameter as Jekyll's include tag reads it (its VALID_SYNTAX): a backslash keeps the next
character inside the quotes, and only an escaped quote loses its backslash, so TeX such as
caption="$W^\\top x$" is the text it looks like."""
_NUMBER = re.compile(r"\A-?\d+(?:\.\d+)?\Z")
_SEGMENT = re.compile(r"\A[A-Za-z0-9_~-][A-Za-z0-9._~-]*\Z")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_BAD_VALUE = re.compile(r"[\x00-\x1f\x7f]|\{%|%\}")
_STRAY_BACKSLASH = re.compile(r"\\(?=[\"']|\Z)")
"""A backslash that Jekyll would read as escaping the quote after it: such a value cannot be written back."""
FIGURE_FILE = "figure.liquid"


@dataclass(frozen=True, slots=True)
class FigureTag:
    """One `{% include figure.liquid key=value … %}`, its parameters in the order written."""

    params: tuple[tuple[str, Value], ...]
    line: int = 0
    """1-based line in the post file (0 when not known)."""

    def get(self, key: str) -> Value | None:
        """The value Jekyll's `include.<key>` sees: the last one written wins, as in a Ruby hash."""
        found: Value | None = None
        for name, value in self.params:
            if name == key:
                found = value
        return found

    @property
    def path(self) -> str:
        return str(self.get("path"))

    def liquid(self, path: str | None = None) -> str:
        """The tag as live Liquid, rebuilt from the parsed values (optionally with another path)."""
        parts = []
        for key, value in self.params:
            if key == "path" and path is not None:
                value = path
            parts.append(f"{key}={_literal(value)}")
        return "{% include " + FIGURE_FILE + " " + " ".join(parts) + " %}"


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if '"' not in value:
        return f'"{value}"'
    return f"'{value}'" if "'" not in value else '"' + value.replace('"', '\\"') + '"'


# --- parsing ---------------------------------------------------------------------------------------


def parse_figure_tag(tag: str, line: int = 0) -> FigureTag:
    """A figure include's parameters.

    Raises:
        ValueError: the tag is not a figure include both builders render alike; the message says why.
    """
    match = _INCLUDE.match(tag)
    if not match:
        raise ValueError("not an include tag")
    if match["file"] != FIGURE_FILE:
        raise ValueError(f"labbook renders only {{% include {FIGURE_FILE} … %}}, not {match['file']!r}")
    params = _parse_params(match["params"])
    path = dict(params).get("path")
    if not isinstance(path, str):
        raise ValueError('a figure needs path="assets/…" (a quoted path of a project file)')
    _check_path(path)
    return FigureTag(params, line)


def _parse_params(text: str) -> tuple[tuple[str, Value], ...]:
    params: list[tuple[str, Value]] = []
    position = 0
    while text[position:].strip():
        match = _PARAM.match(text, position)
        if not match:
            rest = text[position:].strip()
            raise ValueError(f"cannot read the parameters from {rest[:40]!r}: write key=\"value\"")
        params.append((match["key"], _value(match)))
        position = match.end()
    return tuple(params)


def _value(match: re.Match[str]) -> Value:
    quoted = match["dq"].replace('\\"', '"') if match["dq"] is not None else None
    if match["sq"] is not None:
        quoted = match["sq"].replace("\\'", "'")
    if quoted is not None:
        if _BAD_VALUE.search(quoted):
            raise ValueError(f"{match['key']}: a value cannot hold a line break, '{{%' or '%}}'")
        if _STRAY_BACKSLASH.search(quoted):
            raise ValueError(f"{match['key']}: a value cannot end with a backslash or hold one before a quote")
        return quoted
    bare = match["bare"]
    if bare in ("true", "false"):
        return bare == "true"
    if _NUMBER.match(bare):
        return float(bare) if "." in bare else int(bare)
    raise ValueError(f"{match['key']}={bare}: a Liquid variable; labbook needs a quoted value here")


def _check_path(path: str) -> None:
    if "://" in path or path.startswith("//"):
        raise ValueError(f"figure path {path!r} is on another host: a post shows files of its own project")
    segments = path.removeprefix("/").split("/")
    if not all(_SEGMENT.match(s) for s in segments):
        raise ValueError(f"figure path {path!r} must be a file under the site, in letters, digits, '._~-'")


# --- prose -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int
    line: int
    figure: FigureTag | None
    problem: str = ""
    replacement: str | None = None
    """Markdown that takes the tag's place, for the tags labbook reads as Jekyll does without
    running Liquid: `raw` and `endraw` (nothing), `highlight` and `endhighlight` (a code fence),
    `details`, `tabs`, `tab` and their end tags (marks that `blocks_plugin` turns into HTML)."""


_RAW = re.compile(r"\A\{%-?\s*raw\s*-?%\}\Z")
_ENDRAW = re.compile(r"\{%-?\s*endraw\s*-?%\}")
_HIGHLIGHT = re.compile(r"\A\{%-?\s*highlight\s+(?P<language>[\w+#.-]+)(?:\s+[\w=\s\"'-]*)?-?%\}\Z")
"""Jekyll's `{% highlight ruby linenos %}`: the language, then options labbook does not show (linenos)."""
_ENDHIGHLIGHT = re.compile(r"\{%-?\s*endhighlight\s*-?%\}")
_BLOCK = re.compile(r"\A\{%-?\s*(?P<kind>details|tabs|tab)(?:\s+(?P<argument>.*?))?\s*-?%\}\Z", re.S)
"""The block tags al-folio posts use, read as its plugins render them: `{% details Click here %}` …
`{% enddetails %}` (_plugins/details.rb: a fold whose summary is the rest of the tag, as Markdown),
and jekyll-tabs' `{% tabs group %}` holding `{% tab group label %}` … `{% endtab %}` blocks."""
_END_BLOCK = re.compile(r"\A\{%-?\s*end(?P<kind>details|tabs|tab)\s*-?%\}\Z")
_BLOCK_MARK = re.compile(
    r"<!--labbook:(?:(?P<kind>details|tabs|tab) (?P<argument>[A-Za-z0-9_=-]*)|end(?P<end>details|tabs|tab))-->")
"""What a block tag becomes in the Markdown: an HTML comment on the tag's own line, which CommonMark
reads as a block of its own (it may end a paragraph; the line after it is Markdown again), so the
Markdown between the tags stays Markdown, code cells included, and no line moves."""


def code_mask(text: str) -> str:
    """The text with its code (fences, indented blocks, code spans) blanked, positions kept."""
    from .commonmark import blocks

    lines = text.split("\n")
    for token in blocks(text):
        if token.type in ("fence", "code_block") and token.map:
            for number in range(token.map[0], min(token.map[1], len(lines))):
                lines[number] = " " * len(lines[number])
    masked = "\n".join(lines)
    return _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), masked)


def liquid_mask(text: str) -> str:
    """The text with what Liquid would not run blanked, positions kept: its code, as `code_mask`
    does, and what `{% raw %}` blocks hold, which Jekyll shows as written."""
    masked = code_mask(text)
    closings = _Closings(masked)
    parts, position = [], 0
    for match in _TAG.finditer(masked):
        block = _raw_block(match, closings) if match.start() >= position else None
        if block is not None:
            start, end = block[0][0], block[1][1]
            parts += [masked[position:start], re.sub(r"[^\n]", " ", masked[start:end])]
            position = end
    return "".join(parts) + masked[position:]


def _tags(text: str, first_line: int) -> Iterator[_Found]:
    if "{%" not in text:  # most posts: no Liquid tag, no markdown pass
        return
    yield from _paired_blocks(text, list(_each_tag(text, first_line)))


def _each_tag(text: str, first_line: int) -> Iterator[_Found]:
    masked = code_mask(text)
    closings = _Closings(masked)
    skip_to = 0
    for match in _TAG.finditer(masked):
        start, end = match.span()
        if start < skip_to:  # inside a raw or highlight block: text, as Jekyll shows it
            continue
        raw = text[start:end]
        line = first_line + text.count("\n", 0, start)
        block = _raw_block(match, closings) or _highlight_block(text, match, closings)
        if block is not None:
            opening, closing = block
            yield _Found(start, end, line, None, replacement=opening[2])
            yield _Found(closing[0], closing[1], first_line + text.count("\n", 0, closing[0]), None,
                         replacement=closing[2])
            skip_to = closing[1]
            continue
        try:
            yield _Found(start, end, line, parse_figure_tag(raw, line))
        except ValueError as exc:
            yield _Found(start, end, line, None, str(exc))


def _paired_blocks(text: str, found: list[_Found]) -> list[_Found]:
    """The tags with each block tag (`_BLOCK`) that its end tag closes, nested ones too, replaced
    by its mark, both on lines of their own; an unclosed, stray, misplaced or mid-line one is
    shown as written, with why."""
    opened: list[tuple[int, str]] = []
    marks: dict[int, str] = {}
    problems: dict[int, str] = {}
    for at, tag in enumerate(found):
        raw = text[tag.start:tag.end]
        opening, closing = _BLOCK.match(raw), _END_BLOCK.match(raw)
        if tag.replacement is not None or not (opening or closing):
            continue
        kind = opening["kind"] if opening else closing["kind"] if closing else ""
        if not _alone_on_line(text, tag.start, tag.end):
            problems[at] = f"a {kind} tag must stand on a line of its own"
        elif opening and kind == "tab" and (not opened or opened[-1][1] != "tabs"):
            problems[at] = "a {% tab %} belongs right inside a {% tabs %} block"
        elif opening:
            opened.append((at, kind))
            marks[at] = _block_mark(kind, opening["argument"] or "")
        elif opened and opened[-1][1] == kind:
            opened.pop()
            marks[at] = f"<!--labbook:end{kind}-->"
        else:
            inside = f" (the open block is {{% {opened[-1][1]} %}})" if opened else ""
            problems[at] = f"no {{% {kind} %}} opens it{inside}"
    for at, kind in opened:  # never closed: Jekyll stops the whole page with a Liquid syntax error
        del marks[at]
        problems[at] = f"no {{% end{kind} %}} closes it"
    return [_replace(tag, replacement=marks[at]) if at in marks
            else _replace(tag, problem=problems[at]) if at in problems else tag
            for at, tag in enumerate(found)]


def _block_mark(kind: str, argument: str) -> str:
    import base64

    return f"<!--labbook:{kind} {base64.urlsafe_b64encode(argument.strip().encode()).decode()}-->"


def blocks_plugin(md: Any) -> None:
    """markdown-it: the marks `replace_tags` left for block tags become the HTML al-folio's plugins
    give, with the Markdown between the tags rendered as the rest of the page: `<details>` with
    its `<summary>` (inline Markdown, math included); tabs as a labelled section each, all shown
    (jekyll-tabs switches them with a script, and a labbook page runs only labbook's own)."""
    def unfold(state: Any) -> None:
        for token in state.tokens:  # a mark is a block of its own, or a line of the author's HTML block
            if token.type == "html_block" and "<!--labbook:" in token.content:
                token.content = _BLOCK_MARK.sub(lambda mark: _block_html(md, state.env, mark), token.content)

    md.core.ruler.push("liquid_blocks", unfold)


def _block_html(md: Any, env: Any, mark: re.Match[str]) -> str:
    import base64
    import html

    if mark["end"]:
        return {"details": "</details>", "tabs": "</div>", "tab": "</section>"}[mark["end"]]
    argument = base64.urlsafe_b64decode(mark["argument"]).decode()
    if mark["kind"] == "details":
        return f"<details><summary>{md.renderInline(argument, env).strip()}</summary>"
    if mark["kind"] == "tabs":
        return '<div class="tabs">'
    return f'<section class="tab"><p class="tab-label">{html.escape(_tab_label(argument))}</p>'


def readable_markdown(text: str, first_line: int) -> str:
    """The prose as Markdown that reads on its own, as a notebook's cells show it (each cell alone,
    so no HTML block can span a code cell): `raw` and `highlight` blocks as `replace_tags` makes
    them, a details tag's summary and a tab's label as a small heading on the tag's line, the other block tags
    dropped; figure tags and any other tag as written. No line moves."""
    return _BLOCK_MARK.sub(_plain_block, replace_tags(text, first_line, None)[0])


def _plain_block(mark: re.Match[str]) -> str:
    import base64

    argument = "" if mark["end"] else base64.urlsafe_b64decode(mark["argument"]).decode()
    if mark["kind"] == "tab":
        argument = _tab_label(argument)
    # a heading: a block of its own without blank lines around it (which would move lines)
    return f"##### {argument}" if argument and mark["kind"] != "tabs" else ""


def _tab_label(argument: str) -> str:
    """`{% tab group label %}`'s label: what follows the group's name."""
    words = argument.split(None, 1)
    return words[1] if len(words) == 2 else argument


def _replace(found: _Found, **changes: Any) -> _Found:
    from dataclasses import replace

    return replace(found, **changes)


_Edit = tuple[int, int, str]
"""(start, end, replacement) of one tag."""


class _Closings:
    """Where each `endraw` and `endhighlight` of a text is, found once: the closing tag after
    an opening one is a bisection, not a search to the end of the text from every opening."""

    def __init__(self, masked: str) -> None:
        self.raw = [m.span() for m in _ENDRAW.finditer(masked)]
        self.highlight = [m.span() for m in _ENDHIGHLIGHT.finditer(masked)]

    @staticmethod
    def after(spans: list[tuple[int, int]], position: int) -> tuple[int, int] | None:
        import bisect

        at = bisect.bisect_left(spans, (position, 0))
        return spans[at] if at < len(spans) else None


def _raw_block(match: re.Match[str], closings: _Closings) -> tuple[_Edit, _Edit] | None:
    """`{% raw %}…{% endraw %}`: both tags dropped, what lies between shown as written (no tag in
    it runs or is warned about); None when the tag is not `raw` or is never closed."""
    if not _RAW.match(match.group(0)):
        return None
    closing = closings.after(closings.raw, match.end())
    if closing is None:
        return None
    return (match.start(), match.end(), ""), (closing[0], closing[1], "")


def _highlight_block(text: str, match: re.Match[str], closings: _Closings) -> tuple[_Edit, _Edit] | None:
    """`{% highlight python %}` … `{% endhighlight %}`, each tag on a line of its own: a fenced
    code block in that language (longer than any run of backticks inside it); None otherwise."""
    opened = _HIGHLIGHT.match(match.group(0))
    closing = closings.after(closings.highlight, match.end()) if opened else None
    if opened is None or closing is None:
        return None
    if not (_alone_on_line(text, match.start(), match.end()) and _alone_on_line(text, *closing)):
        return None
    body = text[match.end():closing[0]]
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", body)), default=0))
    return (match.start(), match.end(), fence + opened["language"]), (closing[0], closing[1], fence)


def _alone_on_line(text: str, start: int, end: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return not text[line_start:start].strip() and not text[end:len(text) if line_end < 0 else line_end].strip()


TagWarning = tuple[int, str]
"""(file line, message): what the caller reports as `path:line: message`."""


def scan_prose(text: str, first_line: int) -> tuple[list[FigureTag], list[TagWarning]]:
    """The figure tags of a Markdown text whose first line is `first_line`, and a warning for each other tag."""
    figures, warnings = [], []
    for found in _tags(text, first_line):
        if found.figure is not None:
            figures.append(found.figure)
        elif found.replacement is None:
            warnings.append(_warning(text[found.start:found.end], found))
    return figures, warnings


def replace_tags(text: str, first_line: int, render: Callable[[FigureTag], str] | None,
                 filler: Callable[[], str] = lambda: "") -> tuple[str, list[TagWarning]]:
    """The text with each figure tag replaced by `render(tag)` (kept as written without `render`),
    and warnings for the other tags.

    A tag over several lines leaves `filler()` on each of its other lines, so every line after
    it keeps its number (code cells are found by line) and no blank line splits its block.
    """
    parts, warnings, position = [], [], 0
    for found in _tags(text, first_line):
        if found.figure is None and found.replacement is None:
            warnings.append(_warning(text[found.start:found.end], found))
            continue
        if found.figure is None:
            shown = found.replacement or ""
        elif render is None:
            continue  # the figure tag stays as written
        else:
            shown = render(found.figure)
        extra_lines = text.count("\n", found.start, found.end)
        parts += [text[position:found.start], shown, *("\n" + filler() for _ in range(extra_lines))]
        position = found.end
    parts.append(text[position:])
    return "".join(parts), warnings


def _warning(raw: str, found: _Found) -> TagWarning:
    shown = " ".join(raw.split())
    shown = shown if len(shown) <= 60 else shown[:57] + "…"
    why = f" ({found.problem})" if found.problem and found.problem != "not an include tag" else ""
    return found.line, (f"Liquid tag {shown} is shown as written{why}; "
                        f"in prose labbook runs only {{% include {FIGURE_FILE} path=\"…\" … %}}, "
                        "{% details %}, {% tabs %} and {% highlight %} blocks, and {% raw %}")


# --- the figure's HTML, in both builders ------------------------------------------------------------

FIGURE_INCLUDE = (
    "{%- comment -%} Written by labbook: an author's figure, the same markup as labbook's own HTML."
    " {%- endcomment -%}\n"
    '<figure class="figure"><img src="{{ include.path | relative_url }}"'
    '{% if include.class %} class="{{ include.class | escape }}"{% endif %}'
    '{% if include.width %} width="{{ include.width | escape }}"{% endif %}'
    '{% if include.height %} height="{{ include.height | escape }}"{% endif %}'
    ' alt="{{ include.alt | escape }}"'
    '{% if include.title %} title="{{ include.title | escape }}"{% endif %}'
    " loading=\"{{ include.loading | default: 'lazy' | escape }}\""
    "{% if include.zoomable %} data-zoomable{% endif %}>"
    '{% if include.caption %}<figcaption class="caption">{{ include.caption }}</figcaption>{% endif %}'
    "</figure>"
)
"""site/_includes/figure.liquid: labbook's Jekyll tree renders an author's figure tag with it."""


def _truthy(value: Value | None) -> bool:
    """Liquid's truth: only nil and false are false (an empty string is true)."""
    return value is not None and value is not False


def _text(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(value: Value | None) -> str:
    """Liquid's `escape` (Ruby's CGI.escapeHTML), to the byte."""
    text = _text(value)
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;")):
        text = text.replace(char, entity)
    return text


_ADDRESS = re.compile(
    r"""\{\{-?\s*(?:site\.(?P<site>baseurl|url)|(?P<quote>["'])(?P<path>[^"'{}%<>\s]*)(?P=quote)\s*\|\s*"""
    r"""(?P<filter>relative_url|absolute_url))\s*-?\}\}""")
"""The Liquid a Jekyll post writes for the site's own address: `{{ site.baseurl }}`, `{{ site.url }}`,
`{{ '/path' | relative_url }}` and `{{ "/path" | absolute_url }}` (in links, images, HTML)."""


def site_addresses(text: str, baseurl: str, url: str) -> str:
    """The text with each Liquid output of the site's address (`_ADDRESS`) replaced by its value, as
    Jekyll would print it for a site with this `baseurl` and `url`; in code and `{% raw %}` blocks
    they stay as written. No line moves. Each builder passes its own site's values: labbook's for
    its pages and its Jekyll tree (whose _config.yml has the same), the blog's for an export."""
    if "{{" not in text:
        return text
    masked = liquid_mask(text)
    parts, position = [], 0
    for match in _ADDRESS.finditer(masked):
        parts += [text[position:match.start()], _address(match, baseurl, url)]
        position = match.end()
    return "".join(parts) + text[position:]


def _address(match: re.Match[str], baseurl: str, url: str) -> str:
    site = url.rstrip("/")
    if match["site"] == "baseurl":
        return relative_url("", baseurl).rstrip("/")  # "/lab", or "" for a site at the root
    if match["site"] == "url":
        return site
    path = match["path"]
    if "://" in path or path.startswith("//"):  # Jekyll leaves an absolute URL as it is
        return path
    relative = relative_url(path, baseurl)
    return site + relative if match["filter"] == "absolute_url" else relative


def relative_url(path: str, baseurl: str) -> str:
    """Jekyll's `relative_url` for a checked path: the baseurl, then the path with one leading '/'."""
    base = "/" + baseurl.strip("/") if baseurl.strip("/") else ""
    return f"{base}/{path.lstrip('/')}"


def figure_html(tag: FigureTag, baseurl: str) -> str:
    """What FIGURE_INCLUDE renders for this tag under Jekyll, byte for byte."""
    get = tag.get
    out = [f'<figure class="figure"><img src="{relative_url(tag.path, baseurl)}"']  # a checked path: no escaping
    for key in ("class", "width", "height"):
        if _truthy(get(key)):
            out.append(f' {key}="{_escape(get(key))}"')
    out.append(f' alt="{_escape(get("alt"))}"')
    if _truthy(get("title")):
        out.append(f' title="{_escape(get("title"))}"')
    loading = get("loading")
    out.append(f' loading="{_escape(loading if loading not in (None, False, "") else "lazy")}"')
    if _truthy(get("zoomable")):
        out.append(" data-zoomable")
    out.append(">")
    if _truthy(get("caption")):
        out.append(f'<figcaption class="caption">{_text(get("caption"))}</figcaption>')
    out.append("</figure>")
    return "".join(out)


def render_live_figures(html: str, baseurl: str) -> str:
    """A labbook page with every live figure tag rendered: Jekyll's work, for `labbook html`.

    Only labbook writes `{%` into its pages (all other braces are character references), so each
    tag found is one render placed there; anything else is left as it is.
    """

    def render(match: re.Match[str]) -> str:
        try:
            return figure_html(parse_figure_tag(match.group(0)), baseurl)
        except ValueError:
            return match.group(0)

    return _TAG.sub(render, html)


# --- marks: live Liquid through liquid_inert -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Live:
    """A snippet of Liquid that must stay live on the page (a figure include, a relative_url)."""

    liquid: str


@dataclass(slots=True)
class Marks:
    """Stand-ins for live Liquid while a page is rendered and made inert, then swapped back.

    A mark holds a random nonce drawn when the page is rendered, after the post was written and
    its code ran, so no prose, output or title can contain one; each must come back exactly once.
    Marks use no brace, so `liquid_inert` leaves them alone, and no character that HTML escaping,
    markdown or an attribute would change.
    """

    nonce: str = field(default_factory=lambda: secrets.token_hex(12))
    snippets: list[str] = field(default_factory=list)

    def mark(self, snippet: str | Live) -> str:
        self.snippets.append(snippet.liquid if isinstance(snippet, Live) else snippet)
        return f"\ue000lb{self.nonce}x{len(self.snippets) - 1}\ue001"

    def text(self, value: str | Live) -> str:
        """A plain value as it is; a live one as a mark."""
        return self.mark(value) if isinstance(value, Live) else value

    def restore(self, html: str) -> str:
        """The page with every mark replaced by its live Liquid (a mark alone in a paragraph unwrapped).

        Raises:
            ValueError: a mark went missing or came back twice (a bug in labbook, never the author's).
        """
        if not self.snippets:
            return html
        mark = rf"\ue000lb{self.nonce}x(\d+)\ue001"
        alone = re.compile(rf"<p>((?:{mark}\s*)+)</p>\n?")
        html = alone.sub(lambda m: m.group(1).rstrip() + "\n", html)  # a figure is no paragraph's child
        seen: list[int] = []

        def swap(match: re.Match[str]) -> str:
            seen.append(int(match.group(1)))
            return self.snippets[int(match.group(1))]

        restored = re.sub(mark, swap, html)
        if sorted(seen) != list(range(len(self.snippets))):
            raise ValueError(f"live Liquid marks came back {sorted(seen)}, expected 0…{len(self.snippets) - 1}")
        return restored
