"""Data files: CSV/TSV, JSON, NPY and NPZ compared by value within the post's tolerances, any
other format by its bytes; and the one reader of a run's numeric series (for seed spreads).

in → out: a published data file and its re-run → a Difference, or None when the re-run stays
within the tolerance of each column (`labbook.tolerance`: rtol/atol, a window of rows compared
value by value, summary statistics for the rest).
Never raises because a file does not parse (that is a Difference), never imports numpy before
a comparison needs it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import ColumnTolerance, FileTolerance, SummaryTolerance, Tolerance
from .base import PARSE_ERRORS, Difference, bytes_reason, preview, same_bytes, suffix

if TYPE_CHECKING:
    import numpy as np

__all__ = ["compare_data", "numeric_series", "statistic", "DATA_SUFFIXES", "TABLE_SUFFIXES", "Rule"]


# --- the tolerance of one column -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """The tolerance that applies to one column (or array), every level resolved."""

    rtol: float
    atol: float
    rows: tuple[int, int | None] | None = None
    summary: SummaryTolerance | None = None

    @property
    def label(self) -> str:
        """What was exceeded, as a Difference shows it: "rtol=1e-05 atol=1e-08 rows=0:1000"."""
        text = f"rtol={self.rtol} atol={self.atol}"
        if self.rows is not None:
            start, stop = self.rows
            text += f" rows={start}:{'' if stop is None else stop}"
        if self.summary is not None:
            rtol, atol = self.summary_tolerances
            text += f" summary={','.join(self.summary.statistics)} (rtol={rtol} atol={atol})"
        return text

    @property
    def summary_tolerances(self) -> tuple[float, float]:
        summary = self.summary or SummaryTolerance()
        rtol = self.rtol if summary.rtol is None else summary.rtol
        return rtol, self.atol if summary.atol is None else summary.atol


@dataclass(frozen=True, slots=True)
class _Rules:
    """A file's tolerance, resolved per column on demand."""

    tolerance: Tolerance
    file: FileTolerance

    def column(self, name: str | None) -> Rule:
        column = self.file.columns.get(name, ColumnTolerance()) if name is not None else ColumnTolerance()

        def first(*values: Any) -> Any:
            return next((v for v in values if v is not None), None)

        return Rule(rtol=first(column.rtol, self.file.rtol, self.tolerance.rtol),
                    atol=first(column.atol, self.file.atol, self.tolerance.atol),
                    rows=first(column.rows, self.file.rows), summary=first(column.summary, self.file.summary))


@dataclass(frozen=True, slots=True)
class _Finding:
    """What a format comparator found; compare_data adds the name."""

    reason: str
    magnitude: float | None = None
    tolerance: str = ""


@dataclass(frozen=True, slots=True)
class _DataFormat:
    label: str
    load: Callable[[Path], Any]
    """Raises ValueError (or OSError, EOFError) when the file does not parse."""
    diff: Callable[[Any, Any, _Rules], _Finding | None]


def compare_data(published: Path, new: Path, name: str, tol: Tolerance) -> Difference | None:
    """Compare a data file by its extension: CSV/TSV, JSON, NPY, NPZ within tolerance, else sha256.

    Raises:
        OSError: either file cannot be read at all (missing files are compare_files' business).
    """
    if same_bytes(published, new):
        return None
    data_format = _DATA_FORMATS.get(suffix(name))
    if data_format is None:
        return Difference(name, "data", bytes_reason(published, new))
    rules = _Rules(tol, tol.file(name))
    try:
        before = data_format.load(published)
    except PARSE_ERRORS as error:  # nothing to compare against but the bytes
        unreadable = f"the published file does not parse as {data_format.label}: {error}"
        return Difference(name, "data", f"{bytes_reason(published, new)}; {unreadable}")
    try:
        after = data_format.load(new)
    except PARSE_ERRORS as error:
        return Difference(name, "data", f"no longer parses as {data_format.label}: {error}",
                          tolerance=rules.column(None).label)
    finding = data_format.diff(before, after, rules)
    if finding is None:
        return None
    return Difference(name, "data", finding.reason, finding.magnitude, finding.tolerance)


# --- values within tolerance ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Violation:
    """The worst out-of-tolerance value of an array comparison."""

    index: int
    """Flat index of the worst value."""
    delta: float | None
    """Its |Δ| (inf where a NaN or infinity appeared); None for exact comparisons."""
    count: int
    """How many values are out of tolerance."""
    total: int


def _numeric_violation(published: np.ndarray, new: np.ndarray, rtol: float, atol: float) -> _Violation | None:
    """Apply `np.isclose(new, published)` (NaN equals NaN) and return its worst failure."""
    import numpy as np

    before, after = _as_inexact(published), _as_inexact(new)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isclose(after, before, rtol=rtol, atol=atol, equal_nan=True)
        if not bad.any():
            return None
        delta = np.abs(after - before).astype(np.float64)
    delta = np.where(np.isfinite(delta), delta, np.inf)
    index = int(np.argmax(np.where(bad, delta, -1.0)))
    return _Violation(index, float(delta.flat[index]), int(bad.sum()), bad.size)


def _as_inexact(values: np.ndarray) -> np.ndarray:
    """Integers as float64, so unsigned differences do not wrap around."""
    import numpy as np

    values = np.asarray(values)
    return values if values.dtype.kind in "fc" else values.astype(np.float64)


def _exact_violation(published: np.ndarray, new: np.ndarray) -> _Violation | None:
    """Elementwise equality for booleans, strings and dates (NaT equal to NaT)."""
    import numpy as np

    bad = np.asarray(published != new)
    if bad.shape != published.shape:  # no elementwise comparison for this dtype
        bad = np.full(published.shape, published.tobytes() != new.tobytes())
    if published.dtype.kind in "mM":
        bad &= ~(np.isnat(published) & np.isnat(new))
    if not bad.any():
        return None
    return _Violation(int(np.argmax(bad)), None, int(bad.sum()), bad.size)


def _violation_reason(where: str, at: str, old: str, new: str, violation: _Violation, rule: Rule) -> str:
    """Say where, by how much, against which tolerance, and how many values fail.

    "column 'loss': max |Δ| 3.1e-03 at row 17 exceeds atol 1e-08 + rtol 1e-05·|x| ('0.5' → '0.503')"
    """
    at = f" at {at}" if at else ""
    if violation.delta is None or not math.isfinite(violation.delta):
        reason = f"{where}: {old} → {new}{at}"
    else:
        reason = (f"{where}: max |Δ| {violation.delta:.1e}{at} exceeds atol {rule.atol} + rtol {rule.rtol}·|x| "
                  f"({old} → {new})")
    if violation.count > 1:
        reason += f"; {violation.count} of {violation.total} values differ"
    return reason


def _show(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else repr(value)


def _series_diff(published: np.ndarray, new: np.ndarray, where: str, rule: Rule,
                 at: Callable[[tuple[int, ...]], str], exact: bool = False,
                 texts: tuple[Sequence[str], Sequence[str]] | None = None) -> _Finding | None:
    """Compare two arrays of one shape under a column's rule: the rows of its window value by
    value, the rows outside it by their summary statistics (both along the first axis).

    `at` names a position ("row 17", "index (3, 7)"); `exact` compares text and booleans, which
    have no summary, on the window (every row when there is none); `texts` are the cells as
    written (a CSV's), shown in the reason instead of the parsed values.
    """
    import numpy as np

    rows = published.shape[0] if published.ndim else 0
    if rule.rows is not None:
        compared = np.arange(rows)[slice(*rule.rows)]
    else:
        compared = np.arange(rows) if rule.summary is None or exact else np.arange(0)
    if published.ndim == 0:
        before, after = published.reshape(1), new.reshape(1)
        violation = _values_violation(before, after, rule, exact)
        return _finding(where, violation, _shown(before, after, violation), at(()), rule)
    before, after = published[compared], new[compared]
    violation = _values_violation(before, after, rule, exact)
    if violation is not None:
        index = tuple(int(i) for i in np.unravel_index(violation.index, before.shape))
        position = (int(compared[index[0]]), *index[1:])
        shown = (repr(texts[0][position[0]]), repr(texts[1][position[0]])) if texts else None
        return _finding(where, violation, shown or _shown(before, after, violation), at(position), rule)
    if rule.summary is None or exact:
        return None
    rest = np.ones(rows, dtype=bool)
    rest[compared] = False
    if not rest.any():
        return None
    return _summary_diff(published[rest], new[rest], where, rule, _row_span(rest))


def _values_violation(before: np.ndarray, after: np.ndarray, rule: Rule, exact: bool) -> _Violation | None:
    return _exact_violation(before, after) if exact else _numeric_violation(before, after, rule.rtol, rule.atol)


def _shown(before: np.ndarray, after: np.ndarray, violation: _Violation | None) -> tuple[str, str]:
    if violation is None:
        return "", ""
    return _show(before.flat[violation.index].item()), _show(after.flat[violation.index].item())


def _finding(where: str, violation: _Violation | None, shown: tuple[str, str], at: str, rule: Rule) -> _Finding | None:
    if violation is None:
        return None
    return _Finding(_violation_reason(where, at, *shown, violation, rule), violation.delta, rule.label)


def _row_span(mask: np.ndarray) -> str:
    """ "rows 1000-13502" for the rows a summary covers (first to last)."""
    import numpy as np

    rows = np.flatnonzero(mask)
    return f"row {rows[0]}" if rows.size == 1 else f"rows {rows[0]}-{rows[-1]}"


def statistic(values: np.ndarray, name: str) -> float:
    """One summary statistic of the finite values: mean, std, min, max, median or qNN."""
    import numpy as np

    if values.size == 0:
        return math.nan
    if name == "mean":
        return float(np.mean(values))
    if name == "std":
        return float(np.std(values))
    if name == "min":
        return float(np.min(values))
    if name == "max":
        return float(np.max(values))
    percent = 50.0 if name == "median" else float(name[1:])
    return float(np.percentile(values, percent))


def _summary_diff(published: np.ndarray, new: np.ndarray, where: str, rule: Rule, span: str) -> _Finding | None:
    """The statistics of the rows outside the window, each within the summary's rtol/atol."""
    import numpy as np

    assert rule.summary is not None
    before, after = _as_inexact(published).ravel(), _as_inexact(new).ravel()
    finite_before, finite_after = before[np.isfinite(before)], after[np.isfinite(after)]
    where = f"{where} ({span}, by summary)"
    if finite_before.size != finite_after.size:
        return _Finding(f"{where}: {before.size - finite_before.size} non-finite values → "
                        f"{after.size - finite_after.size}", math.inf, rule.label)
    rtol, atol = rule.summary_tolerances
    failing = []
    for name in rule.summary.statistics:
        old, now = statistic(finite_before, name), statistic(finite_after, name)
        if not (abs(now - old) <= atol + rtol * abs(old) or (math.isnan(old) and math.isnan(now))):
            failing.append((abs(now - old), name, old, now))
    if not failing:
        return None
    delta, name, old, now = max(failing)
    reason = (f"{where}: {name} {old:.6g} → {now:.6g} (|Δ| {delta:.1e}) exceeds atol {atol} + rtol {rtol}·|x|")
    if len(failing) > 1:
        reason += f"; {len(failing)} of {len(rule.summary.statistics)} statistics differ"
    return _Finding(reason, delta, rule.label)


# --- CSV / TSV ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    """A CSV file as text cells; numbers are recognised per column when comparing."""

    names: tuple[str, ...]
    """The header row, or "0", "1", … when the file has none."""
    header: bool
    rows: tuple[tuple[str, ...], ...]
    """Data rows only, counted from 0 as pandas does."""

    def label(self, column: int) -> str:
        return f"column {self.names[column]!r}" if self.header else f"column {column}"

    def cells(self, column: int) -> list[str]:
        return [row[column] for row in self.rows]


def _read_csv(path: Path) -> _Table:
    return _parse_table(path, ",")


def _read_tsv(path: Path) -> _Table:
    return _parse_table(path, "\t")


def _parse_table(path: Path, delimiter: str) -> _Table:
    """Raises ValueError for binary content, bad quoting or ragged rows."""
    import csv
    import io

    raw = path.read_bytes()
    if b"\x00" in raw:
        raise ValueError("binary content (NUL bytes)")
    text = raw.decode("utf-8-sig")
    if delimiter == "," and "," not in text.partition("\n")[0]:
        delimiter = next((d for d in ";\t|" if d in text.partition("\n")[0]), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        rows = [(tuple(row), reader.line_num) for row in reader if row]
    except csv.Error as error:
        raise ValueError(f"line {reader.line_num}: {error}") from error
    width = len(rows[0][0]) if rows else 0
    for row, line in rows:
        if len(row) != width:
            raise ValueError(f"line {line} has {len(row)} fields, the first row has {width}")
    cells = tuple(row for row, _ in rows)
    if cells and _has_header(cells):
        return _Table(cells[0], True, cells[1:])
    return _Table(tuple(str(j) for j in range(width)), False, cells)


def _has_header(rows: tuple[tuple[str, ...], ...]) -> bool:
    """A first row with no number in it, or with text above a column of numbers, is a header."""
    first, rest = rows[0], rows[1:]
    if not any(_is_number(cell) for cell in first):
        return True
    return any(not _is_number(first[j]) and _numbers([row[j] for row in rest]) is not None for j in range(len(first)))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _numbers(cells: Sequence[str]) -> list[float] | None:
    """The column as floats (empty cells as NaN), or None if any cell is text or all are empty."""
    if not any(cell.strip() for cell in cells):
        return None
    try:
        return [float(cell) if cell.strip() else math.nan for cell in cells]
    except ValueError:
        return None


def _table_diff(published: _Table, new: _Table, rules: _Rules) -> _Finding | None:
    shape = _table_shape_change(published, new)
    if shape is not None:
        return _Finding(shape)
    findings = [finding for column in range(len(published.names))
                if (finding := _column_diff(published, new, column, rules)) is not None]
    if not findings:
        return None
    more = f" (and {len(findings) - 1} more columns)" if len(findings) > 1 else ""
    return replace(findings[0], reason=findings[0].reason + more)


def _table_shape_change(published: _Table, new: _Table) -> str | None:
    """Columns gone, added or reordered, a header appeared or vanished, rows added or lost."""
    if published.header != new.header:
        return "the header row is gone" if published.header else "a header row appeared"
    if published.names != new.names:
        if not published.header:
            return f"{len(published.names)} columns → {len(new.names)} columns"
        missing = [name for name in published.names if name not in new.names]
        added = [name for name in new.names if name not in published.names]
        parts = [f"column {name!r} is missing" for name in missing] + [f"new column {name!r}" for name in added]
        return "; ".join(parts) or f"columns reordered: {', '.join(published.names)} → {', '.join(new.names)}"
    if len(published.rows) != len(new.rows):
        return f"{len(published.rows)} rows → {len(new.rows)} rows"
    return None


def _column_diff(published: _Table, new: _Table, column: int, rules: _Rules) -> _Finding | None:
    """Numeric columns within the column's tolerance, text columns exactly."""
    import numpy as np

    before, after = published.cells(column), new.cells(column)
    where, rule = published.label(column), rules.column(published.names[column])
    before_numbers, after_numbers = _numbers(before), _numbers(after)
    if before_numbers is not None and after_numbers is None:
        row = next(i for i, cell in enumerate(after) if cell.strip() and not _is_number(cell))
        return _Finding(f"{where}: row {row} is no longer a number ({before[row]!r} → {after[row]!r})", math.inf,
                        rule.label)
    texts = (before, after)
    if before_numbers is not None and after_numbers is not None:
        return _series_diff(np.array(before_numbers), np.array(after_numbers), where, rule, _row, texts=texts)
    return _series_diff(np.array(before, dtype=object), np.array(after, dtype=object), where, rule, _row, exact=True,
                        texts=texts)


def _row(position: tuple[int, ...]) -> str:
    return f"row {position[0]}"


# --- JSON ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    import json

    return json.loads(path.read_bytes())


def _json_diff(published: Any, new: Any, rules: _Rules) -> _Finding | None:
    """The first structural change in document order, else the worst number out of tolerance."""
    import numpy as np

    numbers: list[tuple[str, float, float]] = []
    structural = _json_structure_change(published, new, "$", numbers)
    if structural is not None:
        return _Finding(structural)
    if not numbers:
        return None
    rule = rules.column(None)
    violation = _numeric_violation(np.array([b for _, b, _ in numbers]), np.array([a for _, _, a in numbers]),
                                   rule.rtol, rule.atol)
    if violation is None:
        return None
    path, before, after = numbers[violation.index]
    return _Finding(_violation_reason(path, "", _show(before), _show(after), violation, rule), violation.delta,
                    rule.label)


def _json_structure_change(published: Any, new: Any, path: str, numbers: list[tuple[str, float, float]]) -> str | None:
    """Walk both documents, collecting number pairs; return the first other change found."""
    kind, new_kind = _json_type(published), _json_type(new)
    if kind != new_kind:
        return f"{path}: {kind} → {new_kind}"
    if kind == "number":
        numbers.append((path, _as_float(published), _as_float(new)))
        return None
    if kind == "object":
        change = _json_keys_change(published, new, path)
        if change is not None:
            return change
        children = ((_json_child(path, key), published[key], new[key]) for key in published)
    elif kind == "array":
        if len(published) != len(new):
            return f"{path}: length {len(published)} → {len(new)}"
        children = ((f"{path}[{i}]", b, a) for i, (b, a) in enumerate(zip(published, new, strict=True)))
    else:
        return None if published == new else f"{path}: {preview(repr(published))} → {preview(repr(new))}"
    for child, before, after in children:
        change = _json_structure_change(before, after, child, numbers)
        if change is not None:
            return change
    return None


def _json_keys_change(published: Mapping[str, Any], new: Mapping[str, Any], path: str) -> str | None:
    missing = next((key for key in published if key not in new), None)
    if missing is not None:
        return f"{_json_child(path, missing)} is missing"
    added = next((key for key in new if key not in published), None)
    return None if added is None else f"{_json_child(path, added)} is new"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null" if value is None else "string"


def _json_child(path: str, key: str) -> str:
    return f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{path}[{key!r}]"


def _as_float(number: int | float) -> float:
    try:
        return float(number)
    except OverflowError:  # an integer beyond float range
        return math.copysign(math.inf, number)


# --- NPY / NPZ ---------------------------------------------------------------------------------------


def _read_npy(path: Path) -> np.ndarray:
    import numpy as np

    with path.open("rb") as file:
        if file.read(6) != b"\x93NUMPY":
            raise ValueError("not an .npy file (no NUMPY magic)")
    return np.load(path, allow_pickle=False)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array, read now: a corrupt member would otherwise fail in the middle of comparing."""
    import zipfile
    import zlib

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(str(error)) from error


def _npy_diff(published: np.ndarray, new: np.ndarray, rules: _Rules) -> _Finding | None:
    return _array_diff(published, new, "array", rules, None)


def _npz_diff(published: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray], rules: _Rules) -> _Finding | None:
    missing = sorted(set(published) - set(new))
    added = sorted(set(new) - set(published))
    if missing or added:
        parts = [f"array {key!r} is missing" for key in missing] + [f"new array {key!r}" for key in added]
        return _Finding("; ".join(parts))
    for key in sorted(published):
        finding = _array_diff(published[key], new[key], f"array {key!r}", rules, key)
        if finding is not None:
            return finding
    return None


def _array_diff(published: np.ndarray, new: np.ndarray, where: str, rules: _Rules,
                column: str | None) -> _Finding | None:
    """Same shape, same dtype kind, values within tolerance (record fields one by one, each
    under the tolerance of its own name)."""
    if published.shape != new.shape:
        return _Finding(f"{where}: shape {published.shape} → {new.shape}")
    if published.dtype.kind != new.dtype.kind or published.dtype.names != new.dtype.names:
        return _Finding(f"{where}: dtype {published.dtype} → {new.dtype}")
    if published.dtype.names:
        for field in published.dtype.names:
            finding = _array_diff(published[field], new[field], f"{where}[{field!r}]", rules, field)
            if finding is not None:
                return finding
        return None
    return _series_diff(published, new, where, rules.column(column), _array_index,
                        exact=published.dtype.kind not in "iufc")


def _array_index(position: tuple[int, ...]) -> str:
    """ "index 3" or "index (3, 7)"; "" for a 0-d array."""
    if not position:
        return ""
    return f"index {position[0]}" if len(position) == 1 else f"index {position}"


_DATA_FORMATS: Mapping[str, _DataFormat] = {
    ".csv": _DataFormat("CSV", _read_csv, _table_diff),
    ".tsv": _DataFormat("TSV", _read_tsv, _table_diff),
    ".json": _DataFormat("JSON", _read_json, _json_diff),
    ".npy": _DataFormat("NPY", _read_npy, _npy_diff),
    ".npz": _DataFormat("NPZ", _read_npz, _npz_diff),
}
"""Data formats compared by value; any other extension is compared by sha256."""

DATA_SUFFIXES = tuple(_DATA_FORMATS)
TABLE_SUFFIXES = (".csv", ".tsv", ".npy", ".npz")
"""Formats with rows and columns: where `rows`, `summary` and `columns` tolerances apply."""


# --- numeric series, for the spread across seeds ----------------------------------------------------


def numeric_series(path: Path, label: str) -> dict[str, Any]:
    """name -> number or array: every numeric CSV/TSV column, JSON leaf, NPY and NPZ array of a
    data file, named `label:column` (`label` alone for an .npy). A file that does not parse has
    none: the comparison already says why."""
    import numpy as np

    found: dict[str, Any] = {}
    try:
        read = _SERIES.get(suffix(path.name))
        series = read(path, label) if read is not None else {}
    except PARSE_ERRORS:
        return {}
    for name, values in series.items():
        if isinstance(values, float) or (np.asarray(values).dtype.kind in "iuf" and np.isfinite(values).any()):
            found[name] = values
    return found


def _table_series(path: Path, label: str) -> dict[str, Any]:
    import numpy as np

    table = _parse_table(path, "\t" if suffix(path.name) == ".tsv" else ",")
    columns = {name: _numbers(table.cells(j)) for j, name in enumerate(table.names)}
    return {f"{label}:{name}": np.asarray(values) for name, values in columns.items() if values is not None}


def _json_series(path: Path, label: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    _json_numbers(_read_json(path), label + ":$", found)
    return found


_SERIES: Mapping[str, Callable[[Path, str], dict[str, Any]]] = {
    ".csv": _table_series,
    ".tsv": _table_series,
    ".npy": lambda path, label: {label: _read_npy(path)},
    ".npz": lambda path, label: {f"{label}:{key}": array for key, array in _read_npz(path).items()},
    ".json": _json_series,
}


def _json_numbers(value: Any, name: str, found: dict[str, Any]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        found[name] = _as_float(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _json_numbers(item, f"{name}.{key}", found)
    elif isinstance(value, list) and value and all(_json_type(v) == "number" for v in value):
        found[name] = [_as_float(v) for v in value]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_numbers(item, f"{name}[{index}]", found)
