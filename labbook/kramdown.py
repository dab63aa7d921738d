"""kramdown's block attribute lists in Markdown: `{: .block-tip }` under a block gives it a class.

Jekyll posts (al-folio's custom blockquotes, its tables) write a line `{: .class #id key="value" }`
right under a block, or right above one after a blank line, to set that block's attributes.
CommonMark has no such syntax, so without this plugin the line was printed, glued by lazy
continuation onto the last paragraph of the blockquote above it. This is a markdown-it plugin:
a block rule that reads the line (it ends a paragraph or a blockquote, as in kramdown), and a
core rule that moves its attributes onto the block it belongs to. Span attribute lists
(`*x*{: .y}`) are not read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["attribute_list_plugin", "parse_attributes"]

_VALUE = r"""(?:"[^"\n]*"|'[^'\n]*'|[^\s"'}]+)"""
_PART = rf"(?:[.#][\w-]+|[A-Za-z_][\w:-]*={_VALUE})"
_LINE = re.compile(rf"\A\{{:\s*({_PART}(?:\s+{_PART})*)\s*\}}\s*\Z")
_ONE = re.compile(rf"[.#][\w-]+|[A-Za-z_][\w:-]*={_VALUE}")
_TAKES = {"paragraph_open", "blockquote_open", "bullet_list_open", "ordered_list_open", "table_open", "heading_open"}
"""Blocks whose opening tag the renderer writes with the token's attributes."""


def parse_attributes(text: str) -> list[tuple[str, str]]:
    """`.a .b #x k="v"` -> [("class", "a"), ("class", "b"), ("id", "x"), ("k", "v")]; event
    handlers (`on…`) are left out: a page runs labbook's scripts only."""
    found = []
    for part in _ONE.findall(text):
        if part[0] == ".":
            found.append(("class", part[1:]))
        elif part[0] == "#":
            found.append(("id", part[1:]))
        else:
            key, _, value = part.partition("=")
            if not key.lower().startswith("on"):
                found.append((key, value[1:-1] if value[:1] in "\"'" else value))
    return found


def attribute_list_plugin(md: Any) -> None:
    md.block.ruler.before("paragraph", "kramdown_ial", _block_rule,
                          {"alt": ["paragraph", "blockquote", "list"]})
    md.core.ruler.push("kramdown_ial", _attach)


def _block_rule(state: Any, start: int, end: int, silent: bool) -> bool:
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    line = state.src[state.bMarks[start] + state.tShift[start]:state.eMarks[start]]
    match = _LINE.match(line)
    if match is None:
        return False
    if not silent:
        token = state.push("kramdown_ial", "", 0)
        token.map = [start, start + 1]
        token.meta = {"attributes": parse_attributes(match[1])}
        token.hidden = True
        state.line = start + 1
    return True


def _attach(state: Any) -> None:
    """Each list's attributes onto the block right above it (no blank line between), else onto
    the block right below it; a list with neither is dropped, as kramdown drops it."""
    tokens = state.tokens
    kept = []
    for index, token in enumerate(tokens):
        if token.type != "kramdown_ial":
            kept.append(token)
            continue
        target = _block_above(tokens, index) or _block_below(tokens, index)
        for key, value in token.meta["attributes"] if target is not None else ():
            if key == "class":
                target.attrJoin("class", value)
            else:
                target.attrSet(key, value)
    state.tokens = kept


def _block_above(tokens: Sequence[Any], index: int) -> Any:
    if index == 0 or tokens[index - 1].nesting != -1:
        return None
    close = tokens[index - 1]
    for opener in reversed(tokens[:index - 1]):
        if opener.level == close.level and opener.nesting == 1:
            touching = opener.map is not None and opener.map[1] == tokens[index].map[0]
            return opener if opener.type in _TAKES and touching else None
    return None


def _block_below(tokens: Sequence[Any], index: int) -> Any:
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    return following if following is not None and following.type in _TAKES else None
