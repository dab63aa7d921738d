"""markdown-it's CommonMark block tokens of a text: one parser, built once, shared.

Reading a post looks for its code fences, region markers and inline values; rendering it
blanks its code before looking for Liquid tags. All of them need the same block structure
(each block with its source lines), and a parse costs ~0.5 ms per KB of Markdown: the last
few texts' tokens are kept, so a post read and rendered in one build is parsed once here.
The page itself is rendered by render.py's own parser (HTML, math and plugins enabled).
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["blocks"]


@functools.lru_cache(maxsize=4)
def blocks(text: str) -> list[Any]:
    """The tokens of `text` (markdown_it.token.Token), shared: callers only read them."""
    return _parser().parse(text)


@functools.cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")
