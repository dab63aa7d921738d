"""Executed notebooks, compared by their code cells' text outputs (images and timings vary).

in → out: a published executed.ipynb and its re-run → a Difference, or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .base import PARSE_ERRORS, Difference, bytes_reason, same_bytes
from .text import compare_outputs

__all__ = ["compare_notebook"]


def compare_notebook(published: Path, new: Path, name: str, extra: Sequence[tuple[str, str]]) -> Difference | None:
    """The first code cell whose text outputs differ after sanitizing, or a notebook that no
    longer parses."""
    if same_bytes(published, new):
        return None
    try:
        before = _code_cell_outputs(published)
    except PARSE_ERRORS as error:
        reason = f"{bytes_reason(published, new)}; the published notebook does not parse: {error}"
        return Difference(name, "text", reason)
    try:
        after = _code_cell_outputs(new)
    except PARSE_ERRORS as error:
        return Difference(name, "text", f"no longer parses as a notebook: {error}")
    if len(before) != len(after):
        return Difference(name, "text", f"{len(before)} code cells → {len(after)} code cells")
    for cell, (outputs_before, outputs_after) in enumerate(zip(before, after, strict=True)):
        difference = compare_outputs(outputs_before, outputs_after, cell, extra)
        if difference is not None:
            return replace(difference, name=name, reason=f"code cell {cell}: {difference.reason}")
    return None


def _code_cell_outputs(path: Path) -> list[list[Mapping[str, Any]]]:
    """Raises ValueError when the file is not a notebook."""
    import json

    notebook = json.loads(path.read_bytes())
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError("no 'cells' list")
    return [list(cell.get("outputs", [])) for cell in notebook["cells"] if cell.get("cell_type") == "code"]
