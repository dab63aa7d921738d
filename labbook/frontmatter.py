"""YAML front matter, read and written the way Jekyll splits it: the one home of that format.

in → out: a file's text → (the YAML mapping, its key lines, the body), and a mapping → a header
that Jekyll and labbook both read back to the same values.
Owns: the split rule (the first line that is exactly `---` closes the header, as in Jekyll),
a safe loader that leaves dates as text and refuses hostile YAML (alias bombs, absurd nesting),
and a dumper whose output can never hold a line `---` inside a value.
Never: reads or writes files, knows what a post is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

__all__ = ["Header", "FrontMatterProblem", "split", "parse", "values_of", "load_yaml", "dump", "dump_yaml",
           "MAX_NODES", "MAX_DEPTH"]

FENCE = "---"
MAX_NODES = 10_000
"""How many values a front matter may hold once its YAML aliases are expanded."""
MAX_DEPTH = 50
"""How deeply its lists and mappings may nest."""
MAX_CHARS = 1_000_000
"""How long it may be (PyYAML's reader slows down badly on huge single-line values)."""


class FrontMatterProblem(ValueError):
    """The text has no usable front matter; `line` is the 1-based line of the file to blame."""

    def __init__(self, message: str, line: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


@dataclass(frozen=True, slots=True)
class Header:
    """A file's front matter, parsed."""

    values: dict[str, Any]
    lines: dict[str, int]
    """1-based file line of each key; nested keys as 'labbook.timeout'."""
    body: str
    body_line: int
    """1-based file line where the body starts."""


def split(text: str) -> tuple[str, str, int] | None:
    """(YAML text, body, 1-based line of the body), or None when the text has no front matter.

    Jekyll's rule: the first line is `---` (trailing blanks allowed), and the next line that is
    `---` or `...` (trailing blanks allowed) closes it.

    Raises:
        FrontMatterProblem: it opens but never closes.
    """
    lines = text.splitlines(keepends=True)
    if not lines or not _OPEN.match(lines[0]):
        return None
    for number, line in enumerate(lines[1:], start=2):
        if _CLOSE.match(line):
            return "".join(lines[1 : number - 1]), "".join(lines[number:]), number + 1
    raise FrontMatterProblem("front matter is not closed by a '---' line", 1)


_OPEN = re.compile(r"^---[ \t]*\r?\n?$")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?\n?$")


_BOOL, _STR, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:str", "tag:yaml.org,2002:float"
EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
"""1e-3, 2.5E+4, 1e5: numbers, as in JSON, Python, YAML 1.2 and Jekyll's reader; YAML 1.1 (PyYAML)
wants a dot and a signed exponent (1.0e-3), and made `lr: 1e-3` the text '1e-3'."""
_NUMBER_START = list("-+0123456789")


@functools.cache
def _loader() -> type:
    """SafeLoader that leaves dates as text (labbook checks them itself, with the line), reads
    1e-3 as a number (`EXPONENT_FLOAT`), and mapping keys that read as booleans as the words they are.

    Made on first use (a build with nothing to read never imports PyYAML), then kept. On
    libyaml's C parser when PyYAML has it (the same documents, several times faster).
    """
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            """Keys written as bare on/off/yes/no/true/false stay the words: YAML 1.1 reads
            them as booleans, and `params: {on: true}` would declare a parameter named True."""
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag == _BOOL and not key.style:  # plain, not quoted
                    key.tag = _STR
            return super().construct_mapping(node, deep)

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(_FLOAT, EXPONENT_FLOAT, _NUMBER_START)
    return Loader


def load_yaml(yaml_text: str) -> Any:
    """The values of a YAML text, dates as text, hostile YAML refused (as in a post's header).

    Raises:
        FrontMatterProblem: invalid or hostile YAML (its `line` counts from the text's first line
            as line 2, as in a header).
    """
    return _construct(_compose(yaml_text), yaml_text)


def _construct(node: yaml.Node | None, yaml_text: str) -> Any:
    """The values of a composed YAML text, once its size is known to be sane."""
    import yaml

    if node is None:
        return None
    _check_size(node)
    try:
        return _loader()(yaml_text).construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc) from None
    except RecursionError:
        raise FrontMatterProblem(f"front matter nests deeper than {MAX_DEPTH} levels", 2) from None


def values_of(text: str) -> dict[str, Any] | None:
    """The front matter of a file labbook (or Jekyll) reads back, as a mapping; None when the
    text has none, or none that parses: the caller falls back, never crashes."""
    try:
        parts = split(text)
        values = load_yaml(parts[0]) if parts else None
    except FrontMatterProblem:
        return None
    return values if isinstance(values, dict) else None


def parse(text: str) -> Header:
    """The front matter of `text` as a mapping, with the line of every key.

    Raises:
        FrontMatterProblem: no front matter, invalid YAML, not a mapping, or hostile YAML.
    """
    if not text.strip():
        raise FrontMatterProblem("empty file: a post starts with '---' front matter", 1)
    parts = split(text)
    if parts is None:
        raise FrontMatterProblem("no front matter: the first line must be '---'", 1,
                                 hint="start the post with '---', then title: and date:, then '---'")
    yaml_text, body, body_line = parts
    node = _compose(yaml_text)
    values = _construct(node, yaml_text)
    if not isinstance(values, dict):
        raise FrontMatterProblem("front matter must be a mapping of keys to values", 2)
    return Header({str(k): v for k, v in values.items()}, _key_lines(node, 2), body, body_line)


def _compose(yaml_text: str) -> yaml.Node | None:
    import yaml

    if len(yaml_text) > MAX_CHARS:
        raise FrontMatterProblem(f"front matter is longer than {MAX_CHARS:,} characters", 2,
                                 hint="keep data in files next to the post, not in its front matter")
    _check_flow_depth(yaml_text)
    try:
        return yaml.compose(yaml_text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc) from None
    except RecursionError:
        raise FrontMatterProblem(f"front matter nests deeper than {MAX_DEPTH} levels", 2) from None


def _check_flow_depth(yaml_text: str) -> None:
    """Refuse `[[[[…` nested beyond MAX_DEPTH before PyYAML sees it: its scanner takes seconds
    on such input before failing. Brackets inside quotes do not count."""
    depth, quote, line = 0, "", 2
    for char in yaml_text:
        if char == "\n":
            line += 1
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise FrontMatterProblem(f"front matter nests deeper than {MAX_DEPTH} levels", line)
        elif char in "]}":
            depth = max(0, depth - 1)


def _yaml_problem(exc: yaml.YAMLError) -> FrontMatterProblem:
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    hint = next((h for words, h in _YAML_HINTS if words in f"{problem} {getattr(exc, 'context', '')}"), None)
    return FrontMatterProblem(f"front matter is not valid YAML: {problem}", 2 + mark.line if mark else 1, hint)


_YAML_HINTS = (
    ("mapping values are not allowed", 'a value holding ": " needs quotes: title: "Grokking: a first look"'),
    ("tab character", "indent with spaces: YAML refuses tabs"),
    ("quoted scalar", "a quote opened on this line is not closed"),
    ("could not find expected ':'", "each line is key: value (a value holding ': ' or '#' needs quotes)"),
    ("expected ',' or", "a [list] or {mapping} opened here is not closed, or holds an unquoted ':'"),
)
"""What an author most often did, for PyYAML's words."""


def _check_size(root: yaml.Node) -> None:
    """Refuse alias bombs and absurd nesting before anything walks or prints the values.

    Sizes are counted with aliases expanded (an alias is the same node object again), memoized
    by node, so the count itself stays linear in the YAML text.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if depth > MAX_DEPTH:
            raise FrontMatterProblem(f"front matter nests deeper than {MAX_DEPTH} levels",
                                     2 + node.start_mark.line)
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes.get(id(child), 1) for child in children)
            if sizes[id(node)] > MAX_NODES:
                raise FrontMatterProblem(
                    f"front matter expands to more than {MAX_NODES:,} values (YAML anchors and aliases?)",
                    2 + node.start_mark.line, hint="write the values out instead of repeating them with *aliases",
                )
            continue
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _key_lines(node: yaml.Node | None, first_line: int) -> dict[str, int]:
    import yaml

    """The line of every key of nested mappings, and of every list item ('labbook.sweep[2]', for a
    sweep's listed points); an aliased node is walked once, not again."""
    lines: dict[str, int] = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node | None, str]] = [(node, "")]
    while stack:
        current, prefix = stack.pop()
        if not isinstance(current, (yaml.MappingNode, yaml.SequenceNode)) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.SequenceNode):
            for number, item in enumerate(current.value):
                name = f"{prefix.rstrip('.')}[{number}]"
                lines.setdefault(name, first_line + item.start_mark.line)
                stack.append((item, name + "."))
            continue
        for key, value in current.value:
            name = f"{prefix}{key.value}"
            lines.setdefault(name, first_line + key.start_mark.line)
            stack.append((value, name + "."))
    return lines


# --- writing ----------------------------------------------------------------------------------------


@functools.cache
def _dumper() -> type:
    """SafeDumper writing strings with a line break double-quoted, breaks as `\\n`: no value can
    ever put a line `---` (which ends a Jekyll header) into the file.

    libyaml's emitter when PyYAML has it, as the loader: ~10x faster than the pure-Python one, and
    every page a rebuild writes dumps a header. The two differ only where a value holds a line
    break or NEL in a key (libyaml writes a `?` key, escapes NEL); both read back to the same values.
    """
    import yaml

    class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
        pass

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        if "\n" in value or "\r" in value or _CONTROL.search(value):
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
        return dumper.represent_scalar("tag:yaml.org,2002:str", value)

    Dumper.add_representer(str, represent_str)
    Dumper.add_implicit_resolver(_FLOAT, EXPONENT_FLOAT, _NUMBER_START)  # the text '1e-3' is quoted
    return Dumper


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029\ufeff]")


def dump(values: Mapping[str, Any], *, width: int = 10_000) -> str:
    """`---\\n<yaml>---\\n`: a header Jekyll and `parse` both read back to `values`."""
    return f"{FENCE}\n{dump_yaml(values, width=width)}{FENCE}\n"


def dump_yaml(values: Mapping[str, Any], *, width: int = 10_000) -> str:
    """The YAML of a mapping, in key order, as `dump` writes it (for _config.yml and the like)."""
    import yaml

    return yaml.dump(dict(values), Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=width)
