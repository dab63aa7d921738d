"""TeX -> MathML at build time: Temml in an embedded V8, and the markdown rules for math.

In: prose as researchers write it for MathJax/KaTeX blogs ($…$, $$…$$, \\(…\\), \\[…\\], bare AMS
environments, \\label/\\eqref, \\newcommand). Out: MathML that a browser lays out with no script.
Owns the math delimiters of markdown, each page's equation numbers, references and macros, and
the one V8 engine of the process (started by the first formula, shared by every page after it).
Never fetches anything (Temml is vendored in labbook/vendor/temml), never lets a formula inject
markup (Temml's `trust` stays off), and never leaves TeX on a page silently: a formula that will
not typeset is shown as marked source, with a warning naming its line.

The delimiters (kramdown/al-folio and MathJax conventions together):

* ``$…$`` is inline math when the ``$`` hug their content and the closing one is not followed by
  a digit, so ``$5 and $10`` stays text; ``\\$`` is a dollar sign.
* ``$$…$$`` inside a sentence is inline math (kramdown). ``$$`` opening a line whose formula
  closes at the end of a line is display math, as are ``\\[…\\]`` and a bare
  ``\\begin{align}…\\end{align}`` (or equation, gather, multline, …) starting a line.
* ``\\eqref{x}`` and ``\\ref{x}`` work in prose as in math; equations are numbered per page in
  document order (align, gather, equation, multline rows; a display formula with a ``\\label``
  and no numbered environment is numbered as an equation), ``\\tag`` sets a number by hand.
* ``\\newcommand``, ``\\renewcommand``, ``\\def``, ``\\gdef``, ``\\let`` and
  ``\\DeclareMathOperator`` in any formula define a macro for the whole page (as MathJax does).

Page state lives in the markdown-it ``env`` (key ``"math"``), never in a global: each page
numbers from 1. Warnings go to ``env["warnings"]`` as ``(line, message)``, where the line is
``env["line_of"](markdown line)`` when the caller maps rendered markdown back to its file.
``env["math_store"]``, a folder, keeps typeset formulas between builds (see `TypesetStore`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import html
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RenderError
from .files import Memo, digest

__all__ = [
    "Formula",
    "PageMath",
    "Typeset",
    "TypesetStore",
    "inline_html",
    "math_plugin",
    "split_definitions",
    "typeset_formula",
    "typeset_formulas",
]

TEMML_JS = Path(__file__).parent / "vendor" / "temml" / "temml.min.js"
"""Temml's browser build, copied unchanged from the npm package (see vendor/temml/README.md)."""

PAGE_SECONDS = 60.0
"""A page's formulas that take longer than this to typeset are abandoned (a runaway macro)."""

MAX_SIZE = (20, 200)
"""Largest size a formula may ask for (\\rule, \\kern, \\hspace…) in em, and in pt for absolute units:
a formula cannot paint over the page. Temml's `maxSize`."""


# --- the engine ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Formula:
    """One formula to typeset."""

    tex: str
    """The TeX between its delimiters, definitions already lifted out."""
    display: bool
    """Display style (its own block, larger operators, limits under sums)."""


@dataclass(frozen=True, slots=True)
class Typeset:
    """What Temml made of a formula: MathML, or why there is none."""

    mathml: str = ""
    error: str = ""


_GLUE = r"""
var labbook = (function () {
  "use strict";
  function message(error) {
    return String(error && error.message || error).split("\n")[0]
      .replace(/ at (position \d+|end of input):?\s*$/, "").trim();
  }
  function typesetPage(request) {
    const macros = Object.create(null);
    const failures = [];
    request.definitions.forEach(function (tex, index) {
      try { Object.assign(macros, temml.definePreamble(tex, {maxExpand: 1000})); }
      catch (error) { failures.push([index, message(error)]); }
    });
    const results = request.formulas.map(function (formula) {
      try {
        return [true, temml.renderToString(formula[0], {
          displayMode: formula[1], macros: macros, throwOnError: true, trust: false, strict: false,
          wrap: formula[1] ? "none" : "tex", maxSize: request.maxSize, maxExpand: 1000})];
      } catch (error) { return [false, message(error)]; }
    });
    return {results: results, failures: failures};
  }
  return {typesetPage: typesetPage};
})();
"""


class _Engine:
    """One V8 isolate with Temml loaded. Starting it costs a few hundred ms, so it starts on the
    first formula of the process and then serves every page; a lock serializes calls, so pages
    rendered from several threads share it safely."""

    _lock = threading.Lock()
    _shared: _Engine | None = None

    def __init__(self) -> None:
        try:
            from py_mini_racer import MiniRacer

            self.context = MiniRacer()
            self.context.eval(TEMML_JS.read_text(encoding="utf-8"))
            self.context.eval(_GLUE)
        except (ImportError, OSError) as exc:
            raise RenderError(f"the math engine could not start: {exc}",
                              hint="reinstall labbook: it needs mini-racer and labbook/vendor/temml") from exc
        atexit.register(_Engine._shutdown)

    @classmethod
    def _shutdown(cls) -> None:
        """Close V8 while its threads still run.

        Left to the garbage collector at interpreter exit, a mini-racer 0.14 context waits
        forever for a thread that is already gone: the process never ends (seen 8 times in 8).
        """
        if not cls._lock.acquire(timeout=10):
            return
        try:
            if cls._shared is not None:
                cls._shared.context.close()
                cls._shared = None
        finally:
            cls._lock.release()

    @classmethod
    def typeset(cls, definitions: Sequence[str], formulas: Sequence[Formula]) -> tuple[list[Typeset], dict[int, str]]:
        """Every formula of a page in one call; and the definitions that failed, by index.

        Raises:
            RenderError: the engine could not start.
        """
        request = {"definitions": list(definitions), "formulas": [[f.tex, f.display] for f in formulas],
                   "maxSize": list(MAX_SIZE)}
        with cls._lock:
            if cls._shared is None:
                cls._shared = _Engine()
            from py_mini_racer import JSOOMException, JSTimeoutException

            try:
                reply = cls._shared.context.call("labbook.typesetPage", request, timeout_sec=PAGE_SECONDS,
                                                 max_memory=1 << 30)
            except (JSTimeoutException, JSOOMException) as exc:
                cls._shared.context.close()
                cls._shared = None  # a fresh isolate for the next page
                reason = "took too long" if isinstance(exc, JSTimeoutException) else "ran out of memory"
                return [Typeset(error=f"typesetting this page's math {reason}") for _ in formulas], {}
        results = [Typeset(mathml=value) if ok else Typeset(error=value) for ok, value in reply["results"]]
        return results, {index: error for index, error in reply["failures"]}


def typeset_formulas(formulas: Sequence[Formula], definitions: Sequence[str] = ()) -> list[Typeset]:
    """Typeset formulas with the given macro definitions (no page state, no numbering).

    Raises:
        RenderError: the engine could not start (an installation problem, not the TeX).
    """
    if not formulas:
        return []
    return _Engine.typeset(definitions, formulas)[0]


class TypesetStore(Memo):
    """Typeset formulas by content: what V8 made once is not made again.

    The engine's start-up (a few hundred ms) would otherwise be paid by every build that
    re-renders a page with math, such as a prose edit. Given a folder (render passes
    `.labbook/math`), the next build finds them too (files.Memo). The key is the formula, its
    display style, the page's macro definitions and the engine's own version: nothing else
    shapes the MathML. Errors are not kept (they are rare and their warnings must come back).
    """

    _version = ""

    def __init__(self, folder: Path | str | None) -> None:
        super().__init__(folder, "math")

    @classmethod
    def key(cls, kind: str, *parts: str) -> str:
        if not cls._version:  # Temml's build and labbook's glue: a new version typesets afresh
            cls._version = hashlib.sha256(TEMML_JS.read_bytes() + _GLUE.encode() + repr(MAX_SIZE).encode()).hexdigest()
        return digest(cls._version, kind, *parts)


def _typeset_stored(definitions: Sequence[str], formulas: Sequence[Formula],
                    store: TypesetStore) -> tuple[list[Typeset], dict[int, str]]:
    """`_Engine.typeset`, asking the engine only for what the store does not hold."""
    macros = "\n".join(definitions)
    keys = [store.key("formula", "display" if f.display else "inline", macros, f.tex) for f in formulas]
    definitions_key = store.key("definitions", macros)
    found = [store.get(key) for key in keys]
    checked = store.get(definitions_key) if definitions else "{}"
    if checked is not None and all(value is not None for value in found):
        failures = {int(index): error for index, error in json.loads(checked).items()}
        return [Typeset(mathml=value or "") for value in found], failures
    missing = [i for i, value in enumerate(found) if value is None]
    made, failures = _Engine.typeset(definitions, [formulas[i] for i in missing])
    results = [Typeset(mathml=value) if value is not None else Typeset() for value in found]
    for index, result in zip(missing, made, strict=True):
        results[index] = result
        if result.mathml:
            store.put(keys[index], result.mathml)
    if definitions:
        store.put(definitions_key, json.dumps(failures))
    return results, failures


# --- macro definitions -----------------------------------------------------------------------------

_DEFINER = re.compile(r"\\(newcommand|renewcommand|providecommand|DeclareMathOperator|def|gdef|edef|xdef|let)"
                      r"(?![A-Za-z])(\*?)")
_NAME = re.compile(r"\s*(\\(?:[A-Za-z]+|.))")
_LET_TARGET = re.compile(r"\s*=?\s*(\\(?:[A-Za-z]+|.)|[^\s\\])")
_PARAMETERS = re.compile(r"(\s*#\d)*\s*")
_ARGUMENT_COUNT = re.compile(r"\s*\[\s*(\d)\s*\]")
_OPTIONAL_DEFAULT = re.compile(r"\s*\[")
_LONE_NAME = re.compile(r"\s*\\(?:[A-Za-z]+|.)\s*")


def split_definitions(tex: str) -> tuple[list[str], str]:
    """The macro definitions a formula makes, each as TeX Temml accepts page-wide, and the rest.

    MathJax keeps a \\newcommand for the whole page; Temml keeps it inside its formula. Lifting
    definitions out lets labbook give them to every formula of the page. \\newcommand and
    \\DeclareMathOperator become \\def, which may redefine what Temml already knows (\\R, \\Tr,
    \\norm…): MathJax lets authors do that. A definition that cannot be read is left in place,
    where Temml reports it.
    """
    definitions: list[str] = []
    rest: list[str] = []
    position = 0
    for match in _DEFINER.finditer(tex):
        if match.start() < position or _escaped(tex, match.start()):
            continue
        parsed = _definition(tex, match)
        if parsed is None:
            continue
        definition, end = parsed
        definitions.append(definition)
        rest.append(tex[position:match.start()])
        position = end
    rest.append(tex[position:])
    return definitions, "".join(rest)


def _escaped(tex: str, index: int) -> bool:
    backslashes = len(tex[:index]) - len(tex[:index].rstrip("\\"))
    return backslashes % 2 == 1


def _definition(tex: str, match: re.Match[str]) -> tuple[str, int] | None:
    """One definition starting at `match`, normalized, and where it ends; None if unreadable."""
    command, star = match.group(1), match.group(2)
    position = match.end()
    if command == "let":
        return _let_definition(tex, position)
    if command in ("def", "gdef", "edef", "xdef"):
        return _def_definition(tex, command, position)
    name_group = _braced_or_name(tex, position)
    if name_group is None:
        return None
    name, position = name_group
    if command == "DeclareMathOperator":
        return _operator_definition(tex, name, bool(star), position)
    return _command_definition(tex, command, name, position)


def _let_definition(tex: str, position: int) -> tuple[str, int] | None:
    """`\\let\\a\\b` (or `\\let\\a=\\b`)."""
    name = _NAME.match(tex, position)
    if not name:
        return None
    target = _LET_TARGET.match(tex, name.end())
    return (f"\\let{name.group(1)}{target.group(1)}", target.end()) if target else None


def _def_definition(tex: str, command: str, position: int) -> tuple[str, int] | None:
    """`\\def\\name#1{body}` and its global and expanding kin (`\\gdef` as `\\def`, `\\xdef` as `\\edef`)."""
    name = _NAME.match(tex, position)
    if not name:
        return None
    brace = tex.find("{", name.end())
    parameters = tex[name.end():brace]
    if brace < 0 or not _PARAMETERS.fullmatch(parameters):
        return None
    body = _group(tex, brace)
    if body is None:
        return None
    kind = "def" if command == "gdef" else "edef" if command == "xdef" else command
    return f"\\{kind}{name.group(1)}{parameters.strip()}{{{body[0]}}}", body[1]


def _operator_definition(tex: str, name: str, star: bool, position: int) -> tuple[str, int] | None:
    """`\\DeclareMathOperator{\\name}{text}` as a `\\def` of an `\\operatorname` (starred: limits below)."""
    body = _group(tex, _skip_space(tex, position))
    if body is None:
        return None
    operator = "\\operatorname*" if star else "\\operatorname"
    return f"\\def{name}{{{operator}{{{body[0]}}}}}", body[1]


def _command_definition(tex: str, command: str, name: str, position: int) -> tuple[str, int] | None:
    """`\\newcommand{\\name}[n]{body}` (and renew-, provide-) as a `\\def` with n parameters."""
    arguments = 0
    count = _ARGUMENT_COUNT.match(tex, position)
    if count:
        arguments, position = int(count.group(1)), count.end()
    if _OPTIONAL_DEFAULT.match(tex, position):
        return None  # an optional argument's default: \def cannot say it; Temml reports it in place
    body = _group(tex, _skip_space(tex, position))
    if body is None:
        return None
    if command == "providecommand":
        return f"\\providecommand{{{name}}}[{arguments}]{{{body[0]}}}", body[1]
    parameters = "".join(f"#{n}" for n in range(1, arguments + 1))
    return f"\\def{name}{parameters}{{{body[0]}}}", body[1]


def _braced_or_name(tex: str, position: int) -> tuple[str, int] | None:
    position = _skip_space(tex, position)
    if tex.startswith("{", position):
        group = _group(tex, position)
        if group is None or not _LONE_NAME.fullmatch(group[0]):
            return None
        return group[0].strip(), group[1]
    name = _NAME.match(tex, position)
    return (name.group(1), name.end()) if name else None


def _skip_space(tex: str, position: int) -> int:
    while position < len(tex) and tex[position].isspace():
        position += 1
    return position


def _group(tex: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at `start`, and the index after it."""
    if not tex.startswith("{", start):
        return None
    depth, index = 0, start
    while index < len(tex):
        char = tex[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return tex[start + 1:index], index + 1
        index += 1
    return None


# --- page state: macros, numbers, labels --------------------------------------------------------------

_NUMBERED_ENV = re.compile(r"\\begin\s*\{(?:equation|align|alignat|flalign|gather|multline|eqnarray|xalignat)\*?\}")
_LABEL = re.compile(r"\\label\s*\{")
_TAG = re.compile(r"\\tag\*?\s*\{")
_ID_BAD = re.compile(r"[^A-Za-z_0-9-]")  # what Temml strips from \label and \ref names
_MARKUP = re.compile(r"<(/?)([A-Za-z]+)((?:\s+[^>]*?)?)>")
_ID_ATTR = re.compile(r"""\sid=(["'])([^"']*)\1""")
_REF = re.compile(r"""<a href=(["'])#([^"']*)\1 class="tml-ref( tml-eqref)?"></a>""")


@dataclass
class _Row:
    label: str | None = None
    number: str | None = None


@dataclass
class PageMath:
    """What the formulas of one page share; kept in the markdown-it env under "math"."""

    definitions: list[tuple[str, int | None]] = field(default_factory=list)
    """Macro definitions met so far (normalized TeX, line), given to every formula of the page."""
    equations: int = 0
    """Equation numbers given so far."""
    labels: dict[str, str] = field(default_factory=dict)
    """\\label name (as Temml sanitizes it) -> its number as shown, '(3)' or a \\tag's '(⋆)'."""

    @classmethod
    def of(cls, env: dict[str, Any]) -> PageMath:
        page = env.get("math")
        if not isinstance(page, PageMath):
            page = env["math"] = PageMath()
        return page

    def number(self, mathml: str, multline: bool, warn: Callable[[str], None]) -> str:
        """Write equation numbers into Temml's MathML and learn its labels.

        Temml leaves an empty `<span class="tml-eqn">` for a CSS counter to fill; labbook writes
        the number itself, so the page's numbers and its \\eqref agree and read the same anywhere
        (a feed, an al-folio theme without Temml's CSS). A \\label names its row, or the nearest
        enclosing row with a number (an `aligned` inside an `equation`).
        """
        if multline:
            mathml = _one_number_for_multline(mathml)
        rows: list[_Row] = []
        open_elements: list[int | None] = []  # per open element: where its \\tag text starts, if it is one
        out: list[str] = []
        position = 0
        for match in _MARKUP.finditer(mathml):
            if match.start() < position:  # inside an equation number's span, already replaced
                continue
            out.append(mathml[position:match.start()])
            tag, position = self._numbered(match, mathml, rows, open_elements, warn)
            out.append(tag)
        out.append(mathml[position:])
        return "".join(out)

    def _numbered(self, match: re.Match[str], mathml: str, rows: list[_Row], open_elements: list[int | None],
                  warn: Callable[[str], None]) -> tuple[str, int]:
        """One tag of the MathML as written back, and where the text after it starts: an equation's
        number filled in, a row's label made its id; rows and open elements kept up to date."""
        position = match.end()
        closing, name, attributes = match.group(1) == "/", match.group(2), match.group(3)
        tag = match.group(0)
        if name == "span" and 'class="tml-eqn"' in attributes:
            self.equations += 1
            end = mathml.find("</span>", position)
            tag = f"({self.equations})"
            if rows:
                rows[-1].number = tag
            return tag, end + len("</span>") if end >= 0 else position
        if closing:
            tag_start = open_elements.pop() if open_elements else None
            if tag_start is not None and rows:
                rows[-1].number = html.unescape(re.sub(r"<[^>]+>", "", mathml[tag_start:match.start()]))
            if name == "mtr" and rows:
                self._close_row(rows.pop(), rows, warn)
        elif not attributes.rstrip().endswith("/"):
            open_elements.append(position if 'class="tml-tag"' in attributes else None)
            if name == "mtr":
                found = _ID_ATTR.search(attributes)
                rows.append(_Row(label=found.group(2) if found else None))
                if found:
                    tag = tag.replace(found.group(0), f' id="eq-{found.group(2)}"')
        return tag, position

    def _close_row(self, row: _Row, enclosing: list[_Row], warn: Callable[[str], None]) -> None:
        if row.label is None:
            return
        if row.number is None and enclosing:
            enclosing[-1].label = enclosing[-1].label or row.label
            return
        if row.number is None:
            warn(f"\\label{{{row.label}}} is on an equation without a number: use an equation or align "
                 f"environment, or \\tag")
        elif row.label in self.labels:
            warn(f"\\label{{{row.label}}} is used twice on this page")
        else:
            self.labels[row.label] = row.number

    def reference(self, label: str, parentheses: bool, warn: Callable[[str], None]) -> str:
        """The text of \\eqref{label} ('(3)') or \\ref{label} ('3'); '??' as LaTeX when unknown."""
        number = self.labels.get(label)
        if number is None:
            warn(f"no equation on this page has \\label{{{label}}}")
            number = "??"
        bare = number[1:-1] if number.startswith("(") and number.endswith(")") else number
        return f"({bare})" if parentheses else bare


def _prepared(tex: str, display: bool) -> str:
    """A display formula with a \\label and nothing numbered is numbered as an equation.

    MathJax numbers it when its `tags` setting says so, al-folio's does; an author who labels an
    equation means to refer to it.
    """
    if display and _LABEL.search(tex) and not _NUMBERED_ENV.search(tex) and not _TAG.search(tex):
        return f"\\begin{{equation}}{tex}\\end{{equation}}"
    return tex


def _link(label: str, text: str) -> str:
    return f'<a class="eqref" href="#eq-{html.escape(label)}">{html.escape(text)}</a>'


def _error_html(source: str, error: str, block: bool) -> str:
    """The formula as written, visibly marked: the reader sees the TeX, the author the reason."""
    title = html.escape(f"TeX error: {error}")
    if block:
        return f'<pre class="math-error" title="{title}">{html.escape(source)}</pre>\n'
    return f'<code class="math-error" title="{title}">{html.escape(source)}</code>'


def _friendly(error: str) -> str:
    unknown = re.match(r"(?:Unsupported function name|Undefined control sequence): (\\\S+)", error)
    if unknown:
        return f"unknown macro {unknown.group(1)} (define it with \\newcommand in the post, or see Temml's list)"
    return error


# --- markdown: where math is -------------------------------------------------------------------------

_ENV_OPEN = re.compile(r"\\begin\{(equation|align|alignat|flalign|gather|multline|eqnarray)(\*?)\}")
_REF_TEXT = re.compile(r"\\(eqref|ref)\{([^{}\n]*)\}")
_TEXISH = re.compile(r"[\\^_=]")


def math_plugin(md: Any) -> None:
    """The math rules for a markdown-it parser: delimiters, numbering, references, rendering."""
    md.inline.ruler.before("escape", "math_inline", _math_inline)
    md.block.ruler.before("paragraph", "math_block", _math_block,
                          {"alt": ["paragraph", "reference", "blockquote", "list"]})
    md.core.ruler.push("math_typeset", _typeset_rule)
    md.add_render_rule("math_inline", _render_math)
    md.add_render_rule("math_block", _render_math)
    md.add_render_rule("math_ref", _render_math)


def _math_inline(state: Any, silent: bool) -> bool:
    """$…$, $$…$$, \\(…\\), \\[…\\], \\eqref{…} and \\ref{…} inside a line of prose."""
    src, start = state.src, state.pos
    if src.startswith("\\", start):
        found = _bracketed(src, start) or _reference(src, start)
    elif src.startswith("$", start):
        found = _dollars(src, start)
    else:
        return False
    if found is None:
        return False
    kind, content, end, display, markup = found
    if not silent:
        token = state.push(kind, "math", 0)
        token.content, token.markup = content, markup
        display = display or bool(_NUMBERED_ENV.search(content))  # align & co. exist only in display
        token.meta = {"display": display, "offset": src.count("\n", 0, start)}
    state.pos = end
    return True


def _bracketed(src: str, start: int) -> tuple[str, str, int, bool, str] | None:
    opener = src[start:start + 2]
    if opener not in ("\\(", "\\["):
        return None
    closer = "\\)" if opener == "\\(" else "\\]"
    end = src.find(closer, start + 2)
    if end < 0 or not src[start + 2:end].strip() or "`" in src[start + 2:end]:
        return None
    return "math_inline", src[start + 2:end], end + 2, opener == "\\[", opener


def _reference(src: str, start: int) -> tuple[str, str, int, bool, str] | None:
    match = _REF_TEXT.match(src, start)
    if not match:
        return None
    return "math_ref", match.group(2), match.end(), False, match.group(1)


def _dollars(src: str, start: int) -> tuple[str, str, int, bool, str] | None:
    if src.startswith("$$", start):
        end = src.find("$$", start + 2)
        if end < 0 or not src[start + 2:end].strip() or "`" in src[start + 2:end]:
            return None
        return "math_inline", src[start + 2:end], end + 2, False, "$$"
    end = start + 1
    while True:
        end = src.find("$", end)
        if end < 0:
            return None
        if not _escaped(src, end):
            break
        end += 1
    content = src[start + 1:end]
    if not content.strip() or src.startswith("$", end + 1) or src[end + 1:end + 2].isdigit():
        return None  # "$$" is the other rule's; "$5 and $10" is money
    if "`" in content:
        return None  # a code span starts inside: code spans bind tighter than math (CommonMark)
    if content[0].isdigit() and content[-1].isspace():
        return None  # "$5 and $": a price, not a formula
    if (content[0].isspace() and content[-1].isspace()) and not _TEXISH.search(content):
        return None  # "$ a $": MathJax would take it, but only TeX-looking content is worth the risk
    return "math_inline", content, end + 1, False, "$"


def _math_block(state: Any, start: int, end: int, silent: bool) -> bool:
    """Display math on lines of its own: $$…$$, \\[…\\], or a bare \\begin{align}…\\end{align}."""
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    first = state.src[state.bMarks[start] + state.tShift[start]:state.eMarks[start]]
    environment = _ENV_OPEN.match(first)
    if first.startswith("$$"):
        opener, closer = "$$", "$$"
    elif first.startswith("\\["):
        opener, closer = "\\[", "\\]"
    elif environment:
        opener, closer = "", f"\\end{{{environment.group(1)}{environment.group(2)}}}"
    else:
        return False
    last = _closing_line(state, start, end, len(opener), closer)
    if last is None:
        if not silent and opener == "$$" and first.count("$$") == 1:
            line_of = state.env.get("line_of") or (lambda line: line + 1)
            _warn(state.env, line_of(start), "this $$ is never closed: the formula is shown as text")
        return False
    if silent:
        return True
    text = state.getLines(start, last + 1, state.sCount[start], False).strip()
    content = text[len(opener):len(text) - (len(closer) if opener else 0)]
    if not content.strip():
        return False
    token = state.push("math_block", "math", 0)
    token.block = True
    token.content, token.markup, token.map = content if opener else text, opener or "env", [start, last + 1]
    token.meta = {"display": True, "offset": 0}
    state.line = last + 1
    return True


def _closing_line(state: Any, start: int, end: int, skip: int, closer: str) -> int | None:
    """The line whose end closes the formula opened at `start`; None unless it closes at a line end.

    A code fence ends the search: math never holds one, and a cell must never vanish into a
    formula whose closing `$$` was forgotten.
    """
    for line in range(start, end):
        begin = state.bMarks[line] + state.tShift[line] + (skip if line == start else 0)
        text = state.src[begin:state.eMarks[line]]
        found = text.find(closer)
        if found >= 0:
            return line if text.rstrip().endswith(closer) and found == len(text.rstrip()) - len(closer) else None
        if line > start and (state.sCount[line] < state.blkIndent or text.lstrip().startswith(("```", "~~~"))):
            return None
    return None


# --- markdown: typesetting a page -----------------------------------------------------------------------


@dataclass
class _Job:
    """One math token of a parse, where it was written, and what became of it."""

    token: Any
    line: int | None
    tex: str = ""
    result: Typeset | None = None
    mathml: str = ""


def _one_number_for_multline(mathml: str) -> str:
    """Temml numbers each row of a multline; LaTeX numbers the whole: keep the last row's number."""
    marker = '<span class="tml-eqn"></span>'
    if mathml.count(marker) <= 1:
        return mathml
    head, tail = mathml.rsplit(marker, 1)
    return head.replace(marker, "") + marker + tail


def _typeset_rule(state: Any) -> None:
    """Typeset every formula of this parse in one engine call, then number and cross-reference.

    Numbering happens here, before rendering, so an \\eqref may come before its equation.
    """
    jobs = list(_jobs(state))
    if not jobs:
        return
    env = state.env
    page = PageMath.of(env)
    known = len(page.definitions)
    for job in jobs:
        if job.token.type != "math_ref":
            definitions, job.tex = split_definitions(job.token.content)
            page.definitions += [(definition, job.line) for definition in definitions]
    wanted = [job for job in jobs if job.token.type != "math_ref" and job.tex.strip()]
    if wanted or len(page.definitions) > known:
        _typeset_jobs(wanted, page, known, env)
    for job in wanted:  # numbers in document order, before any reference is resolved
        if job.result is not None and job.result.mathml:
            multline = bool(re.search(r"\\begin\{multline\}", job.tex))
            job.mathml = page.number(job.result.mathml, multline, _warner(env, job.line))
    for job in jobs:
        job.token.meta["html"] = _finished(job, page, env)


def _typeset_jobs(wanted: Sequence[_Job], page: PageMath, known: int, env: dict[str, Any]) -> None:
    """Each job's result, from the store or one engine call; a warning for each new definition
    (past the `known` ones of earlier parses) that the engine could not read."""
    formulas = [Formula(_prepared(job.tex, _display(job)), _display(job)) for job in wanted]
    store = TypesetStore(env.get("math_store"))
    results, failures = _typeset_stored([definition for definition, _ in page.definitions], formulas, store)
    for job, result in zip(wanted, results, strict=True):
        job.result = result
    for index, error in sorted(failures.items()):
        if index >= known:
            definition, line = page.definitions[index]
            _warn(env, line, f"macro definition {_short(definition)} could not be read: {_friendly(error)}")


def _display(job: _Job) -> bool:
    return bool(job.token.meta["display"])


def _jobs(state: Any) -> Iterator[_Job]:
    """The math tokens of a parse in document order, each with the line of the file it came from."""
    line_of: Callable[[int], int] = state.env.get("line_of") or (lambda line: line + 1)
    fallback: int | None = state.env.get("math_line")
    inline_mode = getattr(state, "inlineMode", False)
    for token in state.tokens:
        if token.type == "math_block":
            yield _Job(token, line_of(token.map[0]) if token.map else fallback)
        elif token.type == "inline" and token.children:
            for child in token.children:
                if child.type not in ("math_inline", "math_ref"):
                    continue
                if inline_mode or not token.map:
                    line = fallback + child.meta["offset"] if fallback is not None else None
                else:
                    line = line_of(token.map[0] + child.meta["offset"])
                yield _Job(child, line)


def _finished(job: _Job, page: PageMath, env: dict[str, Any]) -> str:
    """The HTML of one math token: MathML with its references resolved, a link, or marked TeX."""
    token, warn = job.token, _warner(env, job.line)
    if token.type == "math_ref":
        label = _ID_BAD.sub("", token.content)
        return _link(label, page.reference(label, token.markup == "eqref", warn))
    if job.result is None:  # only macro definitions: nothing to show, as in MathJax
        return ""
    if job.result.error:
        reason = _friendly(job.result.error)
        warn(f"math could not be typeset: {reason}: {_short(token.content)}")
        return _error_html(_source(token), reason, token.type == "math_block")

    def reference(match: re.Match[str]) -> str:
        text = page.reference(match.group(2), bool(match.group(3)), warn)
        return f"<mtext>{_link(match.group(2), text)}</mtext>"

    mathml = _REF.sub(reference, job.mathml)
    if token.type == "math_block":
        return f'<div class="math display">{mathml}</div>\n'
    css = "math display" if _display(job) else "math inline"
    return f'<span class="{css}">{mathml}</span>'


def _source(token: Any) -> str:
    closers = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]", "env": ""}
    opener = "" if token.markup == "env" else token.markup
    return f"{opener}{token.content}{closers.get(token.markup, '')}"


def _short(tex: str) -> str:
    flat = " ".join(tex.split())
    return flat if len(flat) <= 60 else flat[:57] + "…"


def _warner(env: dict[str, Any], line: int | None) -> Callable[[str], None]:
    return functools.partial(_warn, env, line)


def _warn(env: dict[str, Any], line: int | None, message: str) -> None:
    env.setdefault("warnings", []).append((line, message) if line is not None else message)


def _render_math(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    if "html" in token.meta:
        return str(token.meta["html"])
    return _error_html(_source(token), "not typeset", token.type == "math_block")  # parsed without the core rule


# --- the public edges ---------------------------------------------------------------------------------


@functools.cache
def _inline_markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).use(math_plugin)


def inline_html(text: str, env: dict[str, Any] | None = None, *, line: int | None = None) -> str:
    """A short text (caption, claim, open question, description) as HTML: inline markdown and math.

    Raw HTML stays text. Given the page's env, the text shares its macros and equation labels,
    and warnings go to the page (with `line`, when the caller knows where the text was written).

    Raises:
        RenderError: the math engine could not start.
    """
    env = env if env is not None else {}
    with _written_at(env, line):
        return str(_inline_markdown().renderInline(text, env))


def typeset_formula(tex: str, *, display: bool, env: dict[str, Any] | None = None, line: int | None = None) -> str:
    """One formula as HTML (a cell's text/latex output, say), with the page's macros and numbers.

    Raises:
        RenderError: the math engine could not start.
    """
    from markdown_it.token import Token

    env = env if env is not None else {}
    token = Token("math_block" if display else "math_inline", "math", 0, content=tex, markup="$$" if display else "$",
                  block=display, meta={"display": display, "offset": 0})
    tokens = [token] if display else [Token("inline", "", 0, children=[token])]
    with _written_at(env, line):
        _typeset_rule(_Parse(tokens, env))
    return str(token.meta.get("html", ""))


@dataclass
class _Parse:
    """The two fields of a markdown-it core state that the typesetting rule reads."""

    tokens: list[Any]
    env: dict[str, Any]


@contextlib.contextmanager
def _written_at(env: dict[str, Any], line: int | None) -> Iterator[None]:
    """Warnings about text with no place in the rendered markdown name `line` instead."""
    previous = env.get("math_line")
    env["math_line"] = line
    try:
        yield
    finally:
        env["math_line"] = previous
