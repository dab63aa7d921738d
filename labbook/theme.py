"""The jinja2 templates of templates/, shared by render (pages) and site (indexes, layouts).

Autoescaping is on everywhere: titles, tags and outputs are text, never markup.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RenderError

if TYPE_CHECKING:
    from .files import FileHashes

__all__ = ["Theme", "STATUS_TEXT", "liquid_inert", "human_size", "tag_slug", "xml_safe"]

_ENVIRONMENT_MADE = threading.Lock()
"""A build compiles templates on a helper thread while its kernels run: one environment still."""

STATUS_TEXT = {
    "partial": "partial: some of it is seen, some is open",
    "open": "open: a question, not yet an answer",
    "supported": "supported: the evidence so far agrees",
    "refuted": "refuted: the evidence says no",
}


@functools.cache
def _environment(folder: Path, compiled: Path | None) -> Any:
    """One jinja2 environment per templates folder and process: `labbook serve` rebuilds without
    compiling the templates again (jinja2 reloads a template whose file changed). With
    `compiled` (the build's .labbook/jinja2/), compiled templates are kept there too, keyed by
    each template's source: a one-shot build skips compiling them."""
    import jinja2

    cache = None
    if compiled is not None:
        try:
            compiled.mkdir(parents=True, exist_ok=True, mode=0o700)
            cache = jinja2.FileSystemBytecodeCache(str(compiled))
        except OSError:  # a read-only project: compile each time
            cache = None

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
        bytecode_cache=cache,
    )
    env.filters["human_size"] = human_size
    env.filters["tag_slug"] = tag_slug
    env.filters["typeset"] = jinja2.pass_context(_typeset)  # math in captions, claims: {{ x | typeset }}
    env.globals["status_text"] = STATUS_TEXT
    return env


class Theme:
    """The jinja2 templates of templates/, with autoescaping on."""

    def __init__(self, folder: Path, compiled: Path | None = None) -> None:
        self.folder = folder
        self.compiled = compiled
        """Where compiled templates are kept between processes (None: nowhere)."""
        self._digest: str | None = None

    @property
    def env(self) -> Any:
        """jinja2's environment, made on first use: a build that renders nothing never imports jinja2."""
        with _ENVIRONMENT_MADE:
            return _environment(self.folder, self.compiled)

    def compile_all(self) -> None:
        """Load every page and layout template now (compiled, or from the compiled ones kept), so
        that the first page rendered does not wait for them."""
        env = self.env
        for name in env.list_templates(extensions=("html", "xml")):
            if not name.startswith(("assets/", "vendor/")):
                env.get_template(name)

    def render(self, name: str, **context: Any) -> str:
        import jinja2

        try:
            return self.env.get_template(name).render(**context)
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", None)
            raise RenderError(f"template error: {exc}", path=str(self.folder / name), line=line) from exc

    def digest(self, hashes: FileHashes | None = None) -> str:
        """Changes when any template changes: then every page is rendered again. With `hashes`
        (the build state's), a file whose stat is unchanged is not read again (the vendored
        math font alone is 400 KB); the digest is kept for the rest of the build."""
        if self._digest is None:
            from .files import sha_file

            digest = hashlib.sha256()
            for path in sorted(self.folder.rglob("*")):
                if path.is_file():
                    digest.update(path.relative_to(self.folder).as_posix().encode())
                    digest.update(((hashes.sha(path) if hashes is not None else None) or sha_file(path)).encode())
            self._digest = digest.hexdigest()
        return self._digest


def _typeset(context: Any, text: object) -> Any:
    """Inline markdown and math, typeset at build time; the page's macros and labels when rendering a post.

    render puts the page's markdown env in the template context as `math_env`; index pages have none.
    """
    from markupsafe import Markup

    from .texmath import inline_html

    env = context.get("math_env")
    return Markup(inline_html(str(text), env if isinstance(env, dict) else None))


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def liquid_inert(text: str) -> str:
    """Make `{{ … }}` and `{% … %}` plain text for Jekyll: braces become character references.

    Browsers show `&#123;` as `{`, in text, code and attributes alike, while Liquid never
    sees a tag. Unlike `{% raw %}`, a literal `{% endraw %}` in the content cannot break out.
    """
    return text.replace("{", "&#123;").replace("}", "&#125;")


_TAG_SYMBOLS = {"+": "plus", "#": "sharp", "&": "and", "@": "at", "%": "percent"}


def tag_slug(tag: str) -> str:
    """A tag as a folder and URL segment: 'Edge of Stability' -> 'edge-of-stability', 'C++' ->
    'c-plus-plus' (not 'c', which is the tag C); never '..' or '/'."""
    import unicodedata

    text = unicodedata.normalize("NFKD", tag).encode("ascii", "ignore").decode().lower()
    text = "".join(f"-{_TAG_SYMBOLS[c]}-" if c in _TAG_SYMBOLS else c for c in text)
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return slug or "tag-" + hashlib.sha256(tag.encode()).hexdigest()[:8]


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text with the characters XML 1.0 forbids removed (a title may hold a stray control character;
    a feed or report holding one would not parse at all)."""
    return _XML_INVALID.sub("", text)
