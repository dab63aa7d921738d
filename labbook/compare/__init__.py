"""The one definition of "same" that `labbook check` and the golden tests share.

in → out: a published artifact (or a cell's nbformat outputs) and its re-run counterpart → a
`Difference`, or None when the re-run reproduces it within the post's `Tolerance`.
Owns, one module each: the text sanitizers and cell outputs (`text`), data files within
per-file and per-column tolerances and the numeric series of a run (`data`), figures by pixel
RMS (`figures`), executed notebooks (`notebooks`), and the walk over two runs' artifacts
(`artifacts`).
Never: raises because a re-run file no longer parses (that is a Difference), writes anything but
the diff image it is asked for, or imports numpy and Pillow before a comparison needs them.
"""

from __future__ import annotations

from .artifacts import compare_files
from .base import Difference
from .data import DATA_SUFFIXES, TABLE_SUFFIXES, compare_data, numeric_series, statistic
from .figures import FIGURE_SUFFIXES, compare_figure
from .notebooks import compare_notebook
from .text import ANSI, SANITIZERS, Sanitizer, compare_outputs, normalize_output, sanitize_text, strip_ansi

__all__ = [
    "ANSI",
    "DATA_SUFFIXES",
    "FIGURE_SUFFIXES",
    "SANITIZERS",
    "TABLE_SUFFIXES",
    "Difference",
    "Sanitizer",
    "compare_data",
    "compare_figure",
    "compare_files",
    "compare_notebook",
    "compare_outputs",
    "normalize_output",
    "numeric_series",
    "sanitize_text",
    "statistic",
    "strip_ansi",
]
