"""Text that came from a post, made safe for the author's terminal: the one sanitizer of the CLI.

A post's outputs, tracebacks and error messages may hold terminal escape sequences (a
library's colours, or a hostile file's OSC sequences that set the window title, write the
clipboard or fake hyperlinks). Everything the CLI prints that a post produced goes through
`terminal_text` (plain printing) or `escape` (rich markup).
"""

from __future__ import annotations

import re

__all__ = ["terminal_text", "escape"]

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"             # CSI: colours, cursor moves, erase
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window title, hyperlinks, clipboard
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"      # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"                   # any other escape
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1 (8-bit CSI, OSC)


def terminal_text(text: str) -> str:
    """Text from a post (outputs, tracebacks, messages), made safe for the author's terminal.

    A post's output may hold escape sequences: OSC ones set the window title, write the
    clipboard or fake hyperlinks, CSI ones move the cursor over earlier lines. All are
    removed; a carriage return keeps what a terminal would show (the text after it, as a
    progress bar ends); any other control character is shown as text, `\\x07`, so the
    reader sees it was there (as check's reports show them). Tabs and newlines stay.
    """
    text = _ESCAPES.sub("", text).replace("\r\n", "\n")
    if "\r" in text:
        text = "\n".join(line.rsplit("\r", 1)[-1] if line.rstrip("\r") else line for line in text.split("\n"))
    return _CONTROLS.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def escape(text: str) -> str:
    """Text for rich markup: made terminal-safe, and never read as markup (`[tool.labbook]` stays)."""
    from rich.markup import escape as rich_escape

    return rich_escape(terminal_text(text))
