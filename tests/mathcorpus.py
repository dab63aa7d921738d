"""The math corpus of tests/fixtures/math/corpus.yaml, as entries and as one markdown page."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

CORPUS = Path(__file__).parent / "fixtures" / "math" / "corpus.yaml"


@dataclass(frozen=True)
class Entry:
    name: str
    tex: str
    display: bool
    delimiter: str

    def markdown(self) -> str:
        """The entry as an author writes it: its own paragraph when display, else inside a sentence."""
        if self.display:
            opener, closer = ("\\[", "\\]") if self.delimiter == "\\[" else ("$$", "$$")
            return f"{opener}\n{self.tex}\n{closer}"
        closer = {"$": "$", "$$": "$$", "\\(": "\\)"}[self.delimiter]
        return f"The {self.name} is {self.delimiter}{self.tex}{closer} in a sentence."


def entries() -> list[Entry]:
    raw = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return [Entry(e["name"], e["tex"], bool(e["display"]), e.get("delimiter", "$")) for e in raw]


def page_markdown() -> str:
    return "\n\n".join(e.markdown() for e in entries()) + "\n"


def text_outside_math(markup: str) -> str:
    """What a reader sees as plain text: the page without its <math> elements and tags."""
    without = re.sub(r"<math\b.*?</math>", " ", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", without))


def math_text(markup: str) -> str:
    """The characters inside <math> elements."""
    inside = " ".join(re.findall(r"<math\b.*?</math>", markup, flags=re.S))
    return html.unescape(re.sub(r"<[^>]+>", "", inside))


TEX_LEFT = re.compile(r"\\[A-Za-z]+|\$|\\[()\[\]]")
"""A control word, a dollar or a \\( \\[ delimiter: TeX that should have become math."""
