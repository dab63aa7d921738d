"""Rich outputs: which MIME type of a Jupyter output a page shows, and how to show it safely.

In: one output as a kernel sent it (capture) or as run.json keeps it (render). Out: the choice
of MIME type (Jupyter's display priority, less what would need script), page HTML for text
types, and sanitized, measured image files. Owns the HTML allow-list (nh3), the SVG sanitizer,
the LaTeX wrappers and image sizes: one policy that execute.py (capture) and render.py (page)
share. Never executes code, never writes files, and imports nothing from labbook: the Markdown
renderer and the TeX converter are handed in by render.py.

In run.json an image output is a figure record: {"output_type": "figure", "name":
"figures/<label>.<ext>", "alt": its text/plain, "mime": "image/png" | "image/jpeg" |
"image/gif" | "image/svg+xml", "width": int, "height": int}, where width and height are CSS
pixels for the <img> attributes (absent when unknown, and in runs older than these fields).
Every other display keeps its text types (TEXT_TYPES), cut to size, and is rendered here.
"""

from __future__ import annotations

import functools
import html
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DISPLAY_PRIORITY",
    "IMAGE_TYPES",
    "TEXT_TYPES",
    "CleanSvg",
    "UnsafeImage",
    "choose_mime",
    "image_size",
    "latex_math",
    "markdown_output_html",
    "output_html",
    "sanitize_html",
    "sanitize_svg",
]

DISPLAY_PRIORITY = (
    "text/html", "image/svg+xml", "image/png", "image/jpeg", "image/gif",
    "text/markdown", "text/latex", "text/plain",
)
"""Jupyter's order, richest first; application/javascript and widget views are never shown."""

IMAGE_TYPES: Mapping[str, str] = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
"""Image MIME types published as files under figures/, with their file extension."""

TEXT_TYPES = ("text/plain", "text/markdown", "text/html", "text/latex")
"""The MIME types run.json keeps as text (images become figure files instead)."""

MathML = Callable[..., str]
"""render.mathml: (tex, *, display, env) -> markup."""


class UnsafeImage(ValueError):
    """An image output that cannot be published safely (an SVG that is not well-formed XML)."""


# --- the choice ------------------------------------------------------------------------------------

_SCRIPT_TAG = re.compile(r"<script\b", re.IGNORECASE)


def choose_mime(data: Mapping[str, Any]) -> str | None:
    """The richest MIME type of a bundle that a static page can show without running script.

    Jupyter's priority, with one exception: HTML that carries a `<script>` is an interactive
    view (plotly, altair, widgets) that the sanitizer would empty, so an image of the same
    output wins over it when the bundle has one.
    """
    has_image = any(m in data for m in IMAGE_TYPES)
    for mime in DISPLAY_PRIORITY:
        if mime not in data:
            continue
        if mime == "text/html" and has_image and _SCRIPT_TAG.search(_text(data[mime])):
            continue
        return mime
    return None


def _text(value: Any) -> str:
    """nbformat may store multi-line text as a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


# --- HTML ---------------------------------------------------------------------------------------------

_TAGS = (
    {"a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
     "data", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2",
     "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "rp",
     "rt", "ruby", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody",
     "td", "tfoot", "th", "thead", "time", "tr", "u", "ul", "var", "wbr"}
    # inline SVG drawings: shapes and text only (no href, no ids, no animation, no foreignObject)
    | {"svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan", "title"}
)
"""Simple markup, tables and plain SVG shapes. No forms, frames, media, style or script."""

_DROPPED_WITH_CONTENT = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript", "noembed",
    "noframes", "template", "textarea", "select", "option", "xmp", "math", "foreignObject",
}
"""Tags removed together with what they hold: their content is code, or is not meant as text."""

_CELL = {"align", "valign", "halign", "rowspan", "colspan", "scope", "headers", "style"}
_SVG_PAINT = {"fill", "stroke", "stroke-width", "stroke-dasharray", "stroke-linecap", "stroke-linejoin",
              "fill-opacity", "stroke-opacity", "opacity", "transform", "font-size", "font-family",
              "font-weight", "text-anchor", "dominant-baseline"}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"align"},
    "tr": {"align", "valign", "style"},
    "th": _CELL, "td": _CELL,
    "thead": {"align", "valign"}, "tbody": {"align", "valign"}, "tfoot": {"align", "valign"},
    "col": {"span", "align", "valign"}, "colgroup": {"span", "align", "valign"},
    "ol": {"start", "reversed"}, "li": {"value"}, "time": {"datetime"}, "data": {"value"},
    "del": {"datetime"}, "ins": {"datetime"}, "details": {"open"}, "bdo": {"dir"},
    "svg": {"width", "height", "viewBox", "preserveAspectRatio"} | _SVG_PAINT,
    "g": _SVG_PAINT,
    "path": {"d"} | _SVG_PAINT,
    "rect": {"x", "y", "width", "height", "rx", "ry"} | _SVG_PAINT,
    "circle": {"cx", "cy", "r"} | _SVG_PAINT,
    "ellipse": {"cx", "cy", "rx", "ry"} | _SVG_PAINT,
    "line": {"x1", "y1", "x2", "y2"} | _SVG_PAINT,
    "polyline": {"points"} | _SVG_PAINT,
    "polygon": {"points"} | _SVG_PAINT,
    "text": {"x", "y", "dx", "dy"} | _SVG_PAINT,
    "tspan": {"x", "y", "dx", "dy"} | _SVG_PAINT,
}
"""No event handler, no `style` outside table cells (and there only alignment), no id or name."""

_TAG_ATTRIBUTE_VALUES = {"table": {"border": {"0", "1"}}}
_ALLOWED_CLASSES = {"table": {"dataframe"}}
"""pandas' `<table border="1" class="dataframe">`; other classes could dress output as page UI."""
_STYLE_PROPERTIES = {"text-align", "vertical-align"}
"""What a `style` attribute may keep: pandas aligns its header row with `text-align`."""

_URL_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_IGNORED_IN_URLS = re.compile(r"[\x00-\x20\x7f]+")
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml)[;,]", re.IGNORECASE)
_LINK_SCHEMES = {"http", "https", "mailto"}


def _safe_url(element: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: links to the web or the page, images from the page or inline data.

    The URL is judged as a browser reads it (tabs, newlines and control characters dropped,
    any case), so `jAvAsCrIpT:` and `java&#9;script:` are refused as well. An image never comes
    from another host (`//host/x.png`, `https:`): a page loads nothing from the network.
    """
    if attribute not in ("href", "src"):
        return value
    squeezed = _IGNORED_IN_URLS.sub("", value)
    scheme_match = _URL_SCHEME.match(squeezed)
    scheme = scheme_match.group(1).lower() if scheme_match else None
    if attribute == "src":
        if scheme is None and not squeezed.startswith(("//", "\\\\", "/\\", "\\/")):
            return value
        return value if scheme == "data" and _DATA_IMAGE.match(squeezed) else None
    if scheme is None or scheme in _LINK_SCHEMES:
        return value
    return None


@functools.cache
def _cleaner() -> Any:
    import nh3

    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=_safe_url,
        tag_attribute_values=_TAG_ATTRIBUTE_VALUES,
        allowed_classes=_ALLOWED_CLASSES,
        filter_style_properties=_STYLE_PROPERTIES,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def sanitize_html(markup: str) -> str:
    """HTML an output displayed, with only what cannot run, load or break the page left in it.

    Tables (pandas' included), simple markup, links and inline images survive; scripts, event
    handlers, `javascript:`/`vbscript:`/`data:text/html` URLs, frames, forms, `<base>`, `<meta>`,
    `<style>`, style attributes (but alignment in tables) and SVG scripts do not (nh3, an
    html5ever parse: what it keeps is what a browser would build).
    """
    return _cleaner().clean(markup)


# --- Markdown -------------------------------------------------------------------------------------------

_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")


def markdown_output_html(text: str, markdown: Any, warnings: list[str] | None = None) -> str:
    """A text/markdown output through the prose renderer, its raw HTML sanitized as text/html.

    `markdown` is render.py's MarkdownIt. Only the author's raw HTML goes through nh3: an
    HTML block alone; the inline tags of a paragraph together, with everything markdown-it
    rendered itself (math, code, links) held out as placeholders, so `<b>x</b>` stays bold
    and MathML is never touched.
    """
    env: dict[str, Any] = {"warnings": []}
    tokens = markdown.parse(text.replace(_OPEN, "").replace(_CLOSE, ""), env)
    for token in tokens:
        if token.type == "html_block":
            token.content = sanitize_html(token.content)
        elif token.type == "inline" and any(c.type == "html_inline" for c in token.children or ()):
            token.children = [_sanitized_inline(markdown, token.children, env)]
    markup = markdown.renderer.render(tokens, markdown.options, env)
    if warnings is not None:
        warnings.extend(env.get("warnings", []))
    return markup


def _sanitized_inline(markdown: Any, children: Sequence[Any], env: dict[str, Any]) -> Any:
    from markdown_it.token import Token

    held: list[str] = []
    parts = []
    for child in children:
        if child.type == "html_inline":
            parts.append(child.content)
        else:
            held.append(markdown.renderer.renderInline([child], markdown.options, env))
            parts.append(f"{_OPEN}{len(held) - 1}{_CLOSE}")
    clean = _PLACEHOLDER.sub(lambda m: held[int(m.group(1))], sanitize_html("".join(parts)))
    return Token("html_inline", "", 0, content=clean)


# --- LaTeX ----------------------------------------------------------------------------------------------

_LATEX_WRAPPERS = (
    (re.compile(r"^\$\$((?:(?!\$\$).)+)\$\$$", re.S), True),
    (re.compile(r"^\\\[(.+)\\\]$", re.S), True),
    (re.compile(r"^\\begin\{(?:equation|displaymath)\*?\}(.+)\\end\{(?:equation|displaymath)\*?\}$", re.S), True),
    (re.compile(r"^\$((?:\\\$|[^$])+)\$$", re.S), False),
    (re.compile(r"^\\\((.+)\\\)$", re.S), False),
)
_MATH_DELIMITER = re.compile(r"\$|\\\(|\\\[|\\begin\{")


def latex_math(latex: str) -> tuple[str, bool] | None:
    """The TeX of a text/latex output without the wrapper Jupyter's outputs carry, and whether
    it was display math: `$…$` (IPython's Math), `$$…$$`, `\\[…\\]`, `\\(…\\)`, an `equation`.

    Returns None when the text mixes prose with math (`Latex("The value is $x$.")`): that is
    shown through the Markdown renderer, which knows inline `$…$`. TeX with no delimiters at
    all is taken as one formula.
    """
    stripped = latex.strip()
    for pattern, display in _LATEX_WRAPPERS:
        if match := pattern.match(stripped):
            return match.group(1).strip(), display
    if not _MATH_DELIMITER.search(stripped):
        return stripped, True
    if stripped.startswith("\\begin{") and stripped.endswith("}"):
        return stripped, True  # align, gather, …: the environment is the formula
    return None


def latex_output_html(latex: str, markdown: Any, mathml: MathML, warnings: list[str] | None = None) -> str:
    found = latex_math(latex)
    if found is None:
        return markdown_output_html(latex, markdown, warnings)
    tex, display = found
    env: dict[str, Any] = {"warnings": []}
    markup = mathml(tex, display=display, env=env)
    if warnings is not None:
        warnings.extend(env["warnings"])
    return markup


# --- the page --------------------------------------------------------------------------------------------

_OBJECT_REPR = re.compile(r"^<[\w.]+ object(?: at 0x[0-9a-f]+)?>$")


def output_html(output: Mapping[str, Any], *, markdown: Any, mathml: MathML,
                warnings: list[str] | None = None) -> str:
    """One output that is not a figure file, as page HTML: streams, errors and the richest
    safe text type of a display. Empty for an output with nothing a static page can show.
    """
    kind = output.get("output_type")
    if kind == "stream":
        css = "stderr" if output.get("name") == "stderr" else "stdout"
        return f'<pre class="output {css}">{html.escape(_text(output.get("text", "")))}</pre>'
    if kind == "error":
        return f'<pre class="output error">{html.escape(_text(output.get("traceback", "")))}</pre>'
    data = {m: _text(v) for m, v in output.get("data", {}).items() if m in TEXT_TYPES}
    while (mime := choose_mime(data)) is not None:
        markup = _mime_html(mime, data[mime], markdown, mathml, warnings)
        if markup:
            return markup
        del data[mime]  # HTML that was all script: show the next type, if it says something
        if _OBJECT_REPR.match(data.get("text/plain", "").strip()):
            del data["text/plain"]  # `<IPython.core.display.HTML object>` says nothing
    return ""


def _mime_html(mime: str, text: str, markdown: Any, mathml: MathML, warnings: list[str] | None) -> str:
    if mime == "text/html":
        head, note = _split_cut_note(text)
        clean = sanitize_html(head)
        if not _shows_something(clean) and not note:
            return ""
        cut = f'<p class="output-cut">{html.escape(note)}</p>' if note else ""
        return f'<div class="output output-html">{clean}{cut}</div>'

    if mime == "text/markdown":
        return f'<div class="output output-markdown">{markdown_output_html(text, markdown, warnings)}</div>'
    if mime == "text/latex":
        return f'<div class="output output-latex">{latex_output_html(text, markdown, mathml, warnings)}</div>'
    if mime == "text/plain":
        return f'<pre class="output result">{html.escape(text)}</pre>'
    return ""


_CUT_NOTE = re.compile(r"\n(… \[[\d,]+ more characters cut here; executed\.ipynb has them all\])\n$")


def _split_cut_note(text: str) -> tuple[str, str]:
    """HTML cut to size (execute's MAX_OUTPUT_CHARS) and the note saying so, kept apart: cut
    inside a tag or an attribute, the note would vanish with it."""
    match = _CUT_NOTE.search(text)
    return (text[:match.start()], match.group(1)) if match else (text, "")


def _shows_something(markup: str) -> bool:
    return bool(re.sub(r"<[^>]*>|\s+", "", markup)) or "<img" in markup or "<svg" in markup or "<hr" in markup


# --- images ------------------------------------------------------------------------------------------------

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_METADATA_NS = {
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://purl.org/dc/elements/1.1/",
    "http://creativecommons.org/ns#",
    "http://purl.org/dc/terms/",
}
"""matplotlib writes its metadata as RDF with Dublin Core and Creative Commons terms."""

_SVG_ELEMENTS = {
    "svg", "g", "defs", "desc", "title", "metadata", "symbol", "use", "switch", "a", "view", "style",
    "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan", "textPath",
    "clipPath", "mask", "pattern", "marker", "linearGradient", "radialGradient", "stop", "image",
    "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix",
    "feDiffuseLighting", "feDisplacementMap", "feDistantLight", "feDropShadow", "feFlood", "feFuncA",
    "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feMerge", "feMergeNode", "feMorphology",
    "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence",
}
"""Drawing elements. Not script, foreignObject (HTML inside), animate/set (they can rewrite an
href into `javascript:`), feImage, cursor or font-face-uri (they load other files)."""

_UNSAFE_VALUE = re.compile(r"javascript:|vbscript:|data:|livescript:", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]*)", re.IGNORECASE)
_UNSAFE_CSS = re.compile(r"@import|expression\s*\(|-moz-binding|behavior\s*:|javascript:|</", re.IGNORECASE)
_EXTRA_MARKUP = re.compile(r"<\?(?!xml\s)|<!ENTITY|<!DOCTYPE[^>]*\[", re.IGNORECASE)
"""Processing instructions (xml-stylesheet can run XSLT), entity definitions, DTD subsets."""


@dataclass(frozen=True, slots=True)
class CleanSvg:
    """An SVG output made safe to publish."""

    data: bytes
    """The original bytes when nothing had to go (matplotlib's figures), else the cleaned tree."""
    removed: tuple[str, ...]
    """What was taken out, for the author's warning: 'script', 'onload', 'href=javascript:…'."""


def sanitize_svg(svg: str | bytes) -> CleanSvg:
    """An SVG with nothing in it that could run or load another file, should a reader open it.

    Published as a file and shown through `<img>` (where no SVG script ever runs), the figure
    is still sanitized, because a reader can open the file itself, on the site's origin. An
    allow-list walk over the XML tree (the parse a browser makes of an .svg file): drawing
    elements only, no event handlers, links only within the drawing, inline images only as
    data:image, CSS without imports or outside URLs.

    Raises:
        UnsafeImage: the SVG is not well-formed XML (a browser would not show it either).
    """
    raw = svg.encode() if isinstance(svg, str) else svg
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise UnsafeImage(f"the SVG output is not well-formed XML ({exc})") from exc
    removed: list[str] = []
    if _local(root.tag) != "svg":
        raise UnsafeImage(f"the SVG output's root element is <{_local(root.tag)}>, not <svg>")
    rewritten = _namespace(root.tag) is None
    if rewritten:  # an <svg> without xmlns is not an SVG image to a browser: give it one
        for element in root.iter():
            if isinstance(element.tag, str) and _namespace(element.tag) is None:
                element.tag = f"{{{SVG_NS}}}{element.tag}"
    _clean_element(root, removed, in_metadata=False)
    if not removed and not rewritten and not _EXTRA_MARKUP.search(raw.decode("utf-8", "replace")):
        return CleanSvg(raw, ())
    if _EXTRA_MARKUP.search(raw.decode("utf-8", "replace")):
        removed.append("processing instruction or DTD")
    declarations = "".join(f' xmlns:{prefix}="{uri}"' for uri, prefix in _PREFIXES.items() if prefix != "xml")
    document = _serialized(root, f' xmlns="{SVG_NS}"{declarations}')
    return CleanSvg(f'<?xml version="1.0" encoding="utf-8"?>\n{document}\n'.encode(), tuple(dict.fromkeys(removed)))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str | None:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else None


def _clean_element(element: ET.Element, removed: list[str], *, in_metadata: bool) -> None:
    _clean_attributes(element, removed)
    css = element.text or ""
    if _local(element.tag) == "style" and (_UNSAFE_CSS.search(css) or _outside_urls(css)):
        removed.append("style")
        element.text = ""
    for child in list(element):
        if not isinstance(child.tag, str):
            continue
        namespace, local = _namespace(child.tag), _local(child.tag)
        metadata = in_metadata or (namespace == SVG_NS and local == "metadata")
        allowed = (namespace == SVG_NS and local in _SVG_ELEMENTS) or (in_metadata and namespace in _METADATA_NS)
        if not allowed:
            removed.append(local)
            element.remove(child)
            continue
        _clean_element(child, removed, in_metadata=metadata)


def _clean_attributes(element: ET.Element, removed: list[str]) -> None:
    for name, value in list(element.attrib.items()):
        reason = _attribute_problem(element, name, value)
        if reason:
            removed.append(reason)
            del element.attrib[name]


def _attribute_problem(element: ET.Element, name: str, value: str) -> str | None:
    namespace, local = _namespace(name), _local(name)
    squeezed = _IGNORED_IN_URLS.sub("", value)
    if local.lower().startswith("on"):
        return local
    if namespace not in (None, XLINK_NS, XML_NS) and namespace not in _METADATA_NS:
        return local
    if namespace == XML_NS and local == "base":
        return "xml:base"
    if local == "href":
        if squeezed.startswith("#"):
            return None
        if _local(element.tag) == "image" and _DATA_IMAGE.match(squeezed) and "svg" not in squeezed[:20].lower():
            return None
        return f"href={squeezed[:20]}"
    if _UNSAFE_VALUE.search(squeezed):
        return f"{local}={squeezed[:20]}"
    if local == "style" and _UNSAFE_CSS.search(value):
        return "style"
    if _outside_urls(value):
        return f"{local}={squeezed[:20]}"
    return None


def _outside_urls(css: str) -> bool:
    """A `url(…)` that points outside the drawing: only `url(#id)` stays."""
    return any(not target.strip().startswith("#") for target in _CSS_URL.findall(css))


_PREFIXES = {
    XLINK_NS: "xlink", XML_NS: "xml",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf", "http://purl.org/dc/elements/1.1/": "dc",
    "http://creativecommons.org/ns#": "cc", "http://purl.org/dc/terms/": "dcterms",
}
"""The only namespaces left in a cleaned SVG (SVG itself is the default one)."""


def _serialized(element: ET.Element, declarations: str = "") -> str:
    """A cleaned tree as XML. (ElementTree's own writer refuses a default namespace next to
    unprefixed attributes, which every SVG has.)"""
    name = _qualified(element.tag)
    attributes = "".join(f' {_qualified(k)}="{html.escape(v, quote=True)}"' for k, v in element.attrib.items())
    inner = html.escape(element.text or "", quote=False) + "".join(
        _serialized(child) + html.escape(child.tail or "", quote=False) for child in element
    )
    return f"<{name}{declarations}{attributes}>{inner}</{name}>" if inner else f"<{name}{declarations}{attributes}/>"


def _qualified(tag: str) -> str:
    namespace = _namespace(tag)
    if namespace is None or namespace == SVG_NS:
        return _local(tag)
    return f"{_PREFIXES[namespace]}:{_local(tag)}"


_CSS_PX = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4,
           "em": 16.0, "ex": 8.0}
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*([a-z]*)\s*$")


def image_size(mime: str, data: bytes, metadata: Mapping[str, Any] | None = None) -> tuple[int, int] | None:
    """The size to show an image at, in CSS pixels: (width, height), or None if unknown.

    Rasters: their pixel size, read by Pillow from the header (nothing is decoded), unless the
    output's metadata asks for another width or height (`Image(..., width=300)`, retina
    figures), as Jupyter honours it. SVG: its width/height (pt, in, cm… converted), else its
    viewBox.
    """
    size = _svg_size(data) if mime == "image/svg+xml" else _raster_size(data)
    return _display_size(size, metadata or {})


def _raster_size(data: bytes) -> tuple[float, float] | None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return float(image.width), float(image.height)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _svg_size(data: bytes) -> tuple[float, float] | None:
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    width, height = _css_length(root.get("width")), _css_length(root.get("height"))
    box = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip()) if _is_number(v)]
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        if width and not height:
            height = width * box[3] / box[2]
        elif height and not width:
            width = height * box[2] / box[3]
        elif not width and not height:
            width, height = box[2], box[3]
    return (width, height) if width and height else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _css_length(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    if not match or match.group(2) not in _CSS_PX:
        return None  # "100%" or "auto": the viewBox decides
    return float(match.group(1)) * _CSS_PX[match.group(2)]


def _display_size(size: tuple[float, float] | None, metadata: Mapping[str, Any]) -> tuple[int, int] | None:
    asked_width, asked_height = _positive(metadata.get("width")), _positive(metadata.get("height"))
    if size is None:
        return (round(asked_width), round(asked_height)) if asked_width and asked_height else None
    width, height = size
    if asked_width and asked_height:
        width, height = asked_width, asked_height
    elif asked_width:
        width, height = asked_width, height * asked_width / width
    elif asked_height:
        width, height = width * asked_height / height, asked_height
    return max(1, round(width)), max(1, round(height))


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
