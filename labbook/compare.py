"""The one definition of "same" that `labbook check` and the golden tests share.

in → out: a published artifact (or a cell's nbformat outputs) and its re-run counterpart → a
`Difference`, or None when the re-run reproduces it within the post's `Tolerance`.
Owns: numeric tolerances for data files, pixel RMS for figures, the sanitizers for text outputs.
Never: raises because a re-run file no longer parses (that is a Difference), writes anything but
the diff image it is asked for, or imports numpy and Pillow before a comparison needs them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labbook.model import Tolerance

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SANITIZERS",
    "Difference",
    "Sanitizer",
    "compare_data",
    "compare_figure",
    "compare_files",
    "compare_outputs",
    "normalize_output",
    "sanitize_text",
]


@dataclass(frozen=True, slots=True)
class Difference:
    """One way in which a re-run does not reproduce the published run."""

    name: str
    """The artifact ("curves.csv", "fig-loss.png") or, for text outputs, "cell 3"."""
    kind: str
    """"data" | "figure" | "text" | "missing" | "extra"."""
    reason: str
    """One sentence a reader can act on: what differs, where, and by how much."""
    magnitude: float | None = None
    """The worst absolute difference (inf where a NaN or infinity appeared), or a figure's RMS."""
    tolerance: str = ""
    """The tolerance that was exceeded: "rtol=1e-05 atol=1e-08" or "figure_rms=2.0"."""
    diff_image: str | None = None
    """Where the diff image of a figure was saved, when one was asked for."""


# --------------------------------------------------------------------------- text sanitizers


@dataclass(frozen=True, slots=True)
class Sanitizer:
    """A rule that replaces what changes from run to run but says nothing about the result."""

    name: str
    regex: str
    """Compiled on first use (re caches it), so importing labbook compiles nothing."""
    replacement: str


SANITIZERS: tuple[Sanitizer, ...] = (
    # Order matters: escapes go before anything that reads the text, paths before the dates
    # and numbers inside them, whole timing lines before the single durations they contain.
    # Every rule must stay linear in the text: anchor any leading [^\n]* (a 1 MB stdout line).
    Sanitizer("line-end carriage return", r"\r+(?=\n|\Z)", ""),
    Sanitizer("overwritten line (progress bars)", r"(?m)^[^\n]*\r", ""),
    Sanitizer(
        "ANSI escape",
        r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]",
        "",
    ),
    Sanitizer("IPython cell frame", r"\b(Cell|Input) In ?\[\d*\]", r"\1 In[N]"),
    Sanitizer("IPython < 8 input frame", r"<ipython-input-\d+-[0-9a-f]+>", "<ipython-input-N>"),
    Sanitizer(
        "Python source path",
        r"(?<![\w.~])(?:~|[A-Za-z]:)?(?:[/\\][\w.@+-]+)*[/\\]([\w.@+-]+\.pyx?)\b",
        r"<PATH>/\1",
    ),
    Sanitizer(
        "temporary directory",
        r"(?<![\w.])(?:(?:/private)?/var/folders|/var/tmp|/tmp"
        r"|[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp)"
        r"(?:[/\\][^\s'\"<>:,;()\[\]/\\]*)*",
        "<TMP>",
    ),
    Sanitizer("memory address", r"\b0x[0-9a-fA-F]{6,16}\b", "0xADDRESS"),
    Sanitizer(
        "ISO date and time",
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\b",
        "<DATETIME>",
    ),
    Sanitizer("ISO date", r"\b\d{4}-\d{2}-\d{2}\b", "<DATE>"),
    Sanitizer("%time wall time", r"Wall time: [^\n]*", "Wall time: <DURATION>"),
    Sanitizer("%time CPU times", r"CPU times: [^\n]*", "CPU times: <DURATION>"),
    Sanitizer(
        "%timeit summary",
        r"(?<![\d.])[\d.]+ \S+ ± [\d.]+ \S+ per loop \(mean ± std\. dev\. of [^\n)]*\)",
        "<TIMEIT>",
    ),
    Sanitizer(
        "tqdm elapsed, remaining and rate", r"\[\d+:\d{2}(?::\d{2})?<[^\[\]\n]*\]", "[<PROGRESS>]"
    ),
    Sanitizer("clock time", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<TIME>"),
    Sanitizer(
        "duration",
        r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\s?"
        r"(?:ns|[µμu]s|ms|s|secs?|seconds?|mins?|minutes?)\b",
        "<DURATION>",
    ),
)
"""What `sanitize_text` replaces, in order (modelled on nbclient's and nbval's normalizers)."""


def sanitize_text(text: str, extra: Sequence[tuple[str, str]] = ()) -> str:
    """Replace addresses, timings, dates, temp paths and traceback frames with fixed tokens.

    `extra` holds the post's own (regex, replacement) pairs, applied after the built-in rules.

    Raises:
        re.error: an `extra` regex does not compile.
    """
    for rule in SANITIZERS:
        text = re.sub(rule.regex, rule.replacement, text)
    for regex, replacement in extra:
        text = re.sub(regex, replacement, text)
    return text


def normalize_output(
    output: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """Return a sanitized copy of an nbformat output, without its execution count.

    Sanitized: stream text, every text/* mimetype (text/plain included), an error's evalue and
    traceback. Multi-line values stored as lists of lines are joined first.
    """
    normalized = {key: value for key, value in output.items() if key != "execution_count"}
    if "text" in normalized:
        normalized["text"] = sanitize_text(_joined(normalized["text"]), extra)
    if isinstance(normalized.get("data"), Mapping):
        normalized["data"] = {
            mime: sanitize_text(_joined(value), extra) if _is_text(mime, value) else value
            for mime, value in normalized["data"].items()
        }
    if isinstance(normalized.get("evalue"), str):
        normalized["evalue"] = sanitize_text(normalized["evalue"], extra)
    if isinstance(normalized.get("traceback"), list):
        normalized["traceback"] = [
            sanitize_text(_joined(line), extra) for line in normalized["traceback"]
        ]
    return normalized


def compare_outputs(
    published: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    cell: int,
    extra: Sequence[tuple[str, str]] = (),
) -> Difference | None:
    """Compare one cell's text outputs after sanitizing; figures only by name.

    Stream chunks are joined, and stdout/stderr between two other outputs are compared as two
    texts, because how a kernel splits and interleaves its streams depends on timing. An error is
    compared by its name and value, not its traceback, whose library frames move with versions
    (nbval skips tracebacks for the same reason).
    """
    before, after = _comparable(published, extra), _comparable(new, extra)
    if before == after:
        return None
    return Difference(name=f"cell {cell}", kind="text", reason=_describe_change(before, after))


_STREAM_LABELS = ("stdout", "stderr")


def _joined(value: Any) -> Any:
    """nbformat may store multi-line text as a list of lines."""
    return "".join(value) if isinstance(value, list) else value


def _is_text(mime: str, value: Any) -> bool:
    return mime.startswith("text/") and isinstance(value, (str, list))


def _comparable(
    outputs: Sequence[Mapping[str, Any]], extra: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Each output as (label, sanitized text): what a reader of the page would see."""
    items = [
        _label_and_text(normalize_output(output, extra)) for output in _coalesce_streams(outputs)
    ]
    return [(label, text) for label, text in items if text or label not in _STREAM_LABELS]


def _coalesce_streams(outputs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Join each run of stream outputs into one output per stream name, in sorted name order."""
    merged: list[Mapping[str, Any]] = []
    streams: dict[str, str] = {}
    for output in outputs:
        if output.get("output_type") == "stream":
            name = str(output.get("name", "stdout"))
            streams[name] = streams.get(name, "") + _joined(output.get("text", ""))
            continue
        merged += _stream_outputs(streams)
        streams = {}
        merged.append(output)
    return merged + _stream_outputs(streams)


def _stream_outputs(streams: Mapping[str, str]) -> list[Mapping[str, Any]]:
    return [
        {"output_type": "stream", "name": name, "text": streams[name]} for name in sorted(streams)
    ]


def _label_and_text(output: Mapping[str, Any]) -> tuple[str, str]:
    output_type = str(output.get("output_type", ""))
    if output_type == "stream":
        return str(output.get("name", "stdout")), str(output.get("text", ""))
    if output_type == "figure":
        return "figure", str(output.get("name", ""))
    if output_type == "error":
        return "error", f"{output.get('ename', '')}: {output.get('evalue', '')}"
    if output_type in ("execute_result", "display_data"):
        label = "result" if output_type == "execute_result" else "display"
        return label, _shown_text(output.get("data", {}))
    return output_type, ""


def _shown_text(data: Mapping[str, Any]) -> str:
    """text/plain, else the first other text mimetype, else the list of mimetypes (images)."""
    texts = {
        mime: value
        for mime, value in data.items()
        if isinstance(value, str) and mime.startswith("text/")
    }
    if "text/plain" in texts:
        return texts["text/plain"]
    if texts:
        return texts[min(texts)]
    return "[" + ", ".join(sorted(data)) + "]"


def _describe_change(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> str:
    """Say where the first differing output is, and how it differs."""
    count = f"{len(before)} outputs → {len(after)} outputs; " if len(before) != len(after) else ""
    index = next(
        (i for i, (b, a) in enumerate(zip(before, after, strict=False)) if b != a),
        min(len(before), len(after)),
    )
    if index >= len(after):
        label, text = before[index]
        return f"{count}output {index} ({label}) is gone: {_preview(text)!r}"
    if index >= len(before):
        label, text = after[index]
        return f"{count}new output {index} ({label}): {_preview(text)!r}"
    (old_label, old_text), (new_label, new_text) = before[index], after[index]
    if old_label != new_label:
        return f"{count}output {index}: {old_label} → {new_label}"
    line, old_line, new_line = _first_differing_line(old_text, new_text)
    return f"{count}output {index} ({old_label}), line {line}: {old_line!r} → {new_line!r}"


def _first_differing_line(old: str, new: str) -> tuple[int, str, str]:
    pairs = zip_longest(old.splitlines(), new.splitlines(), fillvalue="(no line)")
    for number, (a, b) in enumerate(pairs, start=1):
        if a != b:
            return number, _preview(a), _preview(b)
    return 1, _preview(old), _preview(new)  # the texts differ in line endings only


def _preview(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- artifacts


def compare_files(
    published_dir: Path,
    new_dir: Path,
    names_published: Iterable[str],
    names_new: Iterable[str],
    kinds: Mapping[str, str],
    tol: Tolerance,
    diff_dir: Path | None,
    extra: Sequence[tuple[str, str]] = (),
) -> list[Difference]:
    """Compare every artifact of two runs, in name order: missing, extra, then changed files.

    `kinds` maps a name to its `Artifact.kind`; a name it lacks is classified by its extension.
    Failing raster figures get a diff image `<diff_dir>/<name stem>-diff.png` when `diff_dir` is
    given. `extra` is the post's sanitizers, used for the text outputs of notebook artifacts.
    """
    published_names, new_names = set(names_published), set(names_new)
    differences = []
    for name in sorted(published_names | new_names):
        if name not in new_names or not (new_dir / name).is_file():
            differences.append(
                Difference(name, "missing", "published, but the re-run did not produce it")
            )
        elif name not in published_names:
            differences.append(
                Difference(name, "extra", "produced by the re-run, but never published")
            )
        elif not (published_dir / name).is_file():
            differences.append(
                Difference(
                    name, "missing", f"listed in the published run, but absent from {published_dir}"
                )
            )
        else:
            difference = _compare_artifact(
                published_dir / name, new_dir / name, name, kinds, tol, diff_dir, extra
            )
            if difference is not None:
                differences.append(difference)
    return differences


def _compare_artifact(
    published: Path,
    new: Path,
    name: str,
    kinds: Mapping[str, str],
    tol: Tolerance,
    diff_dir: Path | None,
    extra: Sequence[tuple[str, str]],
) -> Difference | None:
    kind = kinds.get(name) or _kind_from_extension(name)
    if kind == "figure":
        diff_path = diff_dir / _diff_image_name(name) if diff_dir is not None else None
        return compare_figure(published, new, name, tol, diff_path)
    if kind == "notebook":
        return _compare_notebook(published, new, name, extra)
    return compare_data(published, new, name, tol)


def _kind_from_extension(name: str) -> str:
    suffix = _suffix(name)
    if suffix == ".ipynb":
        return "notebook"
    return "figure" if suffix in _FIGURE_FORMATS else "data"


def _diff_image_name(name: str) -> str:
    path = Path(name)
    return str(path.with_name(f"{path.stem}-diff.png"))


def _suffix(name: str) -> str:
    return Path(name).suffix.lower()


def _same_bytes(a: Path, b: Path) -> bool:
    """Byte equality without hashing, reading no further than the first difference."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk_a, chunk_b = fa.read(1 << 20), fb.read(1 << 20)
            if chunk_a != chunk_b:
                return False
            if not chunk_a:
                return True


def _sha256(path: Path) -> str:
    import hashlib

    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _bytes_reason(published: Path, new: Path) -> str:
    return f"content differs (sha256 {_sha256(published)[:12]}… → {_sha256(new)[:12]}…)"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class _Finding:
    """What a format comparator found; compare_data adds the name and tolerance."""

    reason: str
    magnitude: float | None = None


@dataclass(frozen=True, slots=True)
class _DataFormat:
    label: str
    load: Callable[[Path], Any]
    """Raises ValueError (or OSError, EOFError) when the file does not parse."""
    diff: Callable[[Any, Any, Tolerance], _Finding | None]


_PARSE_ERRORS = (ValueError, OSError, EOFError, RecursionError)


def compare_data(published: Path, new: Path, name: str, tol: Tolerance) -> Difference | None:
    """Compare a data file by its extension: CSV/TSV, JSON, NPY, NPZ within tolerance, else sha256.

    Raises:
        OSError: either file cannot be read at all (missing files are compare_files' business).
    """
    if _same_bytes(published, new):
        return None
    tol = tol.for_file(name)
    data_format = _DATA_FORMATS.get(_suffix(name))
    if data_format is None:
        return Difference(name, "data", _bytes_reason(published, new))
    tolerance = f"rtol={tol.rtol} atol={tol.atol}"
    try:
        before = data_format.load(published)
    except _PARSE_ERRORS as error:  # nothing to compare against but the bytes
        unreadable = f"the published file does not parse as {data_format.label}: {error}"
        reason = f"{_bytes_reason(published, new)}; {unreadable}"
        return Difference(name, "data", reason)
    try:
        after = data_format.load(new)
    except _PARSE_ERRORS as error:
        return Difference(
            name, "data", f"no longer parses as {data_format.label}: {error}", tolerance=tolerance
        )
    finding = data_format.diff(before, after, tol)
    if finding is None:
        return None
    return Difference(name, "data", finding.reason, finding.magnitude, tolerance)


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


def _numeric_violation(published: np.ndarray, new: np.ndarray, tol: Tolerance) -> _Violation | None:
    """Apply `np.isclose(new, published)` (NaN equals NaN) and return its worst failure."""
    import numpy as np

    before, after = _as_inexact(published), _as_inexact(new)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isclose(after, before, rtol=tol.rtol, atol=tol.atol, equal_nan=True)
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


def _violation_reason(
    where: str, at: str, old: str, new: str, violation: _Violation, tol: Tolerance
) -> str:
    """Say where, by how much, against which tolerance, and how many values fail.

    "column 'loss': max |Δ| 3.1e-03 at row 17 exceeds atol 1e-08 + rtol 1e-05·|x| ('0.5' → '0.503')"
    """
    at = f" at {at}" if at else ""
    if violation.delta is None or not math.isfinite(violation.delta):
        reason = f"{where}: {old} → {new}{at}"
    else:
        reason = (
            f"{where}: max |Δ| {violation.delta:.1e}{at} exceeds"
            f" atol {tol.atol} + rtol {tol.rtol}·|x| ({old} → {new})"
        )
    if violation.count > 1:
        reason += f"; {violation.count} of {violation.total} values differ"
    return reason


def _show(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else repr(value)


# ---- CSV / TSV


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
    return any(
        not _is_number(first[j]) and _numbers([row[j] for row in rest]) is not None
        for j in range(len(first))
    )


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


def _table_diff(published: _Table, new: _Table, tol: Tolerance) -> _Finding | None:
    shape = _table_shape_change(published, new)
    if shape is not None:
        return _Finding(shape)
    findings = [
        finding
        for column in range(len(published.names))
        if (finding := _column_diff(published, new, column, tol)) is not None
    ]
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
        parts = [f"column {name!r} is missing" for name in missing] + [
            f"new column {name!r}" for name in added
        ]
        return (
            "; ".join(parts)
            or f"columns reordered: {', '.join(published.names)} → {', '.join(new.names)}"
        )
    if len(published.rows) != len(new.rows):
        return f"{len(published.rows)} rows → {len(new.rows)} rows"
    return None


def _column_diff(published: _Table, new: _Table, column: int, tol: Tolerance) -> _Finding | None:
    """Numeric columns within tolerance, text columns exactly."""
    import numpy as np

    before = [row[column] for row in published.rows]
    after = [row[column] for row in new.rows]
    where = published.label(column)
    before_numbers, after_numbers = _numbers(before), _numbers(after)
    if before_numbers is not None and after_numbers is None:
        row = next(i for i, cell in enumerate(after) if cell.strip() and not _is_number(cell))
        return _Finding(
            f"{where}: row {row} is no longer a number ({before[row]!r} → {after[row]!r})",
            math.inf,
        )
    if before_numbers is not None and after_numbers is not None:
        violation = _numeric_violation(np.array(before_numbers), np.array(after_numbers), tol)
    else:
        violation = _exact_violation(np.array(before, dtype=object), np.array(after, dtype=object))
    if violation is None:
        return None
    row = violation.index
    reason = _violation_reason(
        where, f"row {row}", repr(before[row]), repr(after[row]), violation, tol
    )
    return _Finding(reason, violation.delta)


# ---- JSON


def _read_json(path: Path) -> Any:
    import json

    return json.loads(path.read_bytes())


def _json_diff(published: Any, new: Any, tol: Tolerance) -> _Finding | None:
    """The first structural change in document order, else the worst number out of tolerance."""
    import numpy as np

    numbers: list[tuple[str, float, float]] = []
    structural = _json_structure_change(published, new, "$", numbers)
    if structural is not None:
        return _Finding(structural)
    if not numbers:
        return None
    violation = _numeric_violation(
        np.array([b for _, b, _ in numbers]), np.array([a for _, _, a in numbers]), tol
    )
    if violation is None:
        return None
    path, before, after = numbers[violation.index]
    return _Finding(
        _violation_reason(path, "", _show(before), _show(after), violation, tol), violation.delta
    )


def _json_structure_change(
    published: Any, new: Any, path: str, numbers: list[tuple[str, float, float]]
) -> str | None:
    """Walk both documents, collecting number pairs; return the first other change found."""
    kind, new_kind = _json_type(published), _json_type(new)
    if kind != new_kind:
        return f"{path}: {kind} → {new_kind}"
    if kind == "number":
        numbers.append((path, _as_float(published), _as_float(new)))
        return None
    if kind == "object":
        for key in published:
            if key not in new:
                return f"{_json_child(path, key)} is missing"
        for key in new:
            if key not in published:
                return f"{_json_child(path, key)} is new"
        children = ((_json_child(path, key), published[key], new[key]) for key in published)
    elif kind == "array":
        if len(published) != len(new):
            return f"{path}: length {len(published)} → {len(new)}"
        children = (
            (f"{path}[{i}]", b, a) for i, (b, a) in enumerate(zip(published, new, strict=True))
        )
    else:
        return (
            None
            if published == new
            else f"{path}: {_preview(repr(published))} → {_preview(repr(new))}"
        )
    for child, before, after in children:
        change = _json_structure_change(before, after, child, numbers)
        if change is not None:
            return change
    return None


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


# ---- NPY / NPZ


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


def _npy_diff(published: np.ndarray, new: np.ndarray, tol: Tolerance) -> _Finding | None:
    return _array_diff(published, new, "array", tol)


def _npz_diff(
    published: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray], tol: Tolerance
) -> _Finding | None:
    missing = sorted(set(published) - set(new))
    added = sorted(set(new) - set(published))
    if missing or added:
        parts = [f"array {key!r} is missing" for key in missing] + [
            f"new array {key!r}" for key in added
        ]
        return _Finding("; ".join(parts))
    for key in sorted(published):
        finding = _array_diff(published[key], new[key], f"array {key!r}", tol)
        if finding is not None:
            return finding
    return None


def _array_diff(
    published: np.ndarray, new: np.ndarray, where: str, tol: Tolerance
) -> _Finding | None:
    """Same shape, same dtype kind, values within tolerance (record fields one by one)."""
    if published.shape != new.shape:
        return _Finding(f"{where}: shape {published.shape} → {new.shape}")
    if published.dtype.kind != new.dtype.kind or published.dtype.names != new.dtype.names:
        return _Finding(f"{where}: dtype {published.dtype} → {new.dtype}")
    if published.dtype.names:
        for field in published.dtype.names:
            finding = _array_diff(published[field], new[field], f"{where}[{field!r}]", tol)
            if finding is not None:
                return finding
        return None
    if published.dtype.kind in "iufc":
        violation = _numeric_violation(published, new, tol)
    else:
        violation = _exact_violation(published, new)
    if violation is None:
        return None
    at = _array_index(violation.index, published.shape)
    before, after = published.flat[violation.index].item(), new.flat[violation.index].item()
    return _Finding(
        _violation_reason(where, at, _show(before), _show(after), violation, tol), violation.delta
    )


def _array_index(flat: int, shape: tuple[int, ...]) -> str:
    """ "index 3" or "index (3, 7)"; "" for a 0-d array."""
    import numpy as np

    if not shape:
        return ""
    position = tuple(int(i) for i in np.unravel_index(flat, shape))
    return f"index {position[0]}" if len(position) == 1 else f"index {position}"


_DATA_FORMATS: Mapping[str, _DataFormat] = {
    ".csv": _DataFormat("CSV", _read_csv, _table_diff),
    ".tsv": _DataFormat("TSV", _read_tsv, _table_diff),
    ".json": _DataFormat("JSON", _read_json, _json_diff),
    ".npy": _DataFormat("NPY", _read_npy, _npy_diff),
    ".npz": _DataFormat("NPZ", _read_npz, _npz_diff),
}
"""Data formats compared by value; any other extension is compared by sha256."""


# --------------------------------------------------------------------------- figures


_FigureComparator = Callable[[Path, Path, str, Tolerance, Path | None], Difference | None]


def compare_figure(
    published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None = None
) -> Difference | None:
    """Compare a figure: rasters by RMS pixel difference, SVG and PDF after normalizing, else bytes.

    Identical bytes return at once, without decoding. A raster whose RMS exceeds
    `tol.figure_rms` gets a diff image at `diff_path`, when given.

    Raises:
        OSError: either file cannot be read at all.
    """
    if _same_bytes(published, new):
        return None
    compare = _FIGURE_FORMATS.get(_suffix(name), _compare_figure_bytes)
    return compare(published, new, name, tol.for_file(name), diff_path)


def _compare_raster(
    published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None
) -> Difference | None:
    """RMS over all RGB channels on the 0-255 scale, as matplotlib's calculate_rms computes it."""
    import numpy as np

    tolerance = f"figure_rms={tol.figure_rms}"
    label = _suffix(name).lstrip(".").upper()
    image_errors = _image_errors()
    try:
        before = _load_rgb(published)
    except image_errors as error:
        unreadable = f"the published figure does not open as {label}: {error}"
        reason = f"{_bytes_reason(published, new)}; {unreadable}"
        return Difference(name, "figure", reason)
    try:
        after = _load_rgb(new)
    except image_errors as error:
        return Difference(
            name, "figure", f"no longer opens as {label}: {error}", tolerance=tolerance
        )
    if before.shape != after.shape:
        return Difference(
            name, "figure", f"size {_size(before)} → {_size(after)}", tolerance=tolerance
        )
    delta = after.astype(np.int16) - before.astype(np.int16)
    rms = float(np.sqrt(np.mean(np.square(delta, dtype=np.int32))))
    if rms <= tol.figure_rms:
        return None
    changed = int(np.any(delta != 0, axis=-1).sum())
    reason = (
        f"RMS {rms:.2f} exceeds figure_rms {tol.figure_rms} (0-255 scale); "
        f"{changed} of {delta.shape[0] * delta.shape[1]} pixels differ"
    )
    saved = None
    if diff_path is not None:
        _save_diff_image(delta, diff_path)
        saved = str(diff_path)
    return Difference(name, "figure", reason, rms, tolerance, saved)


def _image_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises for a file that is not a readable image (SyntaxError: broken headers)."""
    from PIL import Image

    return (OSError, ValueError, EOFError, Image.DecompressionBombError, SyntaxError)


def _load_rgb(path: Path) -> np.ndarray:
    """RGB pixels; transparency composited on white, as the figure shows on a page."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode == "RGB":
            return np.asarray(image)
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))


def _size(pixels: np.ndarray) -> str:
    return f"{pixels.shape[1]}x{pixels.shape[0]}"


def _save_diff_image(delta: np.ndarray, path: Path) -> None:
    """|Δ| scaled 10 times so faint differences show, as matplotlib's save_diff_image does."""
    import numpy as np
    from PIL import Image

    visible = np.clip(np.abs(delta.astype(np.int32)) * 10, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(visible, "RGB").save(path, format="PNG")


def _compare_svg(
    published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None
) -> Difference | None:
    before = _normalize_svg(published.read_text(encoding="utf-8", errors="replace"))
    after = _normalize_svg(new.read_text(encoding="utf-8", errors="replace"))
    if before == after:
        return None
    at = next(
        (i for i, (b, a) in enumerate(zip(before, after, strict=False)) if b != a),
        min(len(before), len(after)),
    )
    reason = f"SVG differs at character {at}: {before[at : at + 40]!r} → {after[at : at + 40]!r}"
    return Difference(name, "figure", reason)


_SVG_DROPPED = r"(?s)<metadata\b.*?</metadata>|<!--.*?-->"
_SVG_ID = r"""\bid=(["'])(.*?)\1"""
_SVG_REFERENCE = r"""(\bhref=["']#|url\(#)([^"')]+)"""


def _normalize_svg(text: str) -> str:
    """Drop metadata and comments, number ids in order of appearance, collapse whitespace.

    matplotlib names clip paths and markers after hashes of their content and salt; renaming ids
    (and the hrefs and url()s that point at them) by order makes equal drawings equal text.
    """
    text = re.sub(_SVG_DROPPED, "", text)
    ids = {
        old: f"id{i}"
        for i, old in enumerate(dict.fromkeys(m[2] for m in re.finditer(_SVG_ID, text)))
    }
    text = re.sub(_SVG_ID, lambda m: f'id="{ids[m[2]]}"', text)
    text = re.sub(_SVG_REFERENCE, lambda m: m[1] + ids.get(m[2], m[2]), text)
    return re.sub(r"\s+", " ", re.sub(r">\s+<", "><", text)).strip()


def _compare_pdf(
    published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None
) -> Difference | None:
    """Bytes after dropping the dates and document ids that differ on every save."""
    volatile = re.compile(rb"/(?:CreationDate|ModDate) \([^)]*\)|/ID \[[^\]]*\]")
    if volatile.sub(b"", published.read_bytes()) == volatile.sub(b"", new.read_bytes()):
        return None
    return Difference(name, "figure", "PDF differs (compared without its dates and ids)")


def _compare_figure_bytes(
    published: Path, new: Path, name: str, tol: Tolerance, diff_path: Path | None
) -> Difference | None:
    return Difference(name, "figure", _bytes_reason(published, new))


_FIGURE_FORMATS: Mapping[str, _FigureComparator] = {
    **dict.fromkeys(
        (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"), _compare_raster
    ),
    ".svg": _compare_svg,
    ".pdf": _compare_pdf,
}
"""Figure formats by extension; any other is compared by sha256."""


# --------------------------------------------------------------------------- notebooks


def _compare_notebook(
    published: Path, new: Path, name: str, extra: Sequence[tuple[str, str]]
) -> Difference | None:
    """The executed notebook, compared by its code cells' text outputs (images and timings vary)."""
    if _same_bytes(published, new):
        return None
    try:
        before = _code_cell_outputs(published)
    except _PARSE_ERRORS as error:
        reason = f"{_bytes_reason(published, new)}; the published notebook does not parse: {error}"
        return Difference(name, "text", reason)
    try:
        after = _code_cell_outputs(new)
    except _PARSE_ERRORS as error:
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
    notebook = _read_json(path)
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError("no 'cells' list")
    return [
        list(cell.get("outputs", []))
        for cell in notebook["cells"]
        if cell.get("cell_type") == "code"
    ]
