"""Text outputs: the sanitizers that make two runs' text comparable, and the comparison of a
cell's outputs.

in → out: nbformat outputs of a published cell and of its re-run → a Difference, or None.
Owns the one ANSI escape rule of labbook (execute strips tracebacks with it too).
Never compares figures by pixels (only by name) nor tracebacks by frames.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from .base import Difference, preview

__all__ = ["ANSI", "strip_ansi", "Sanitizer", "SANITIZERS", "sanitize_text", "normalize_output", "compare_outputs"]

ANSI = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]"
"""Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks, clipboard
writes) and the two-byte ones. A traceback printed with them would drive the reader's terminal."""


def strip_ansi(text: str) -> str:
    return re.sub(ANSI, "", text)


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
    Sanitizer("ANSI escape", ANSI, ""),
    Sanitizer("IPython cell frame", r"\b(Cell|Input) In ?\[\d*\]", r"\1 In[N]"),
    Sanitizer("IPython < 8 input frame", r"<ipython-input-\d+-[0-9a-f]+>", "<ipython-input-N>"),
    Sanitizer("Python source path", r"(?<![\w.~])(?:~|[A-Za-z]:)?(?:[/\\][\w.@+-]+)*[/\\]([\w.@+-]+\.pyx?)\b",
              r"<PATH>/\1"),
    Sanitizer("temporary directory",
              r"(?<![\w.])(?:(?:/private)?/var/folders|/var/tmp|/tmp|[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp)"
              r"(?:[/\\][^\s'\"<>:,;()\[\]/\\]*)*", "<TMP>"),
    Sanitizer("memory address", r"\b0x[0-9a-fA-F]{6,16}\b", "0xADDRESS"),
    Sanitizer("ISO date and time",
              r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\b", "<DATETIME>"),
    Sanitizer("ISO date", r"\b\d{4}-\d{2}-\d{2}\b", "<DATE>"),
    Sanitizer("%time wall time", r"Wall time: [^\n]*", "Wall time: <DURATION>"),
    Sanitizer("%time CPU times", r"CPU times: [^\n]*", "CPU times: <DURATION>"),
    Sanitizer("%timeit summary", r"(?<![\d.])[\d.]+ \S+ ± [\d.]+ \S+ per loop \(mean ± std\. dev\. of [^\n)]*\)",
              "<TIMEIT>"),
    Sanitizer("tqdm elapsed, remaining and rate", r"\[\d+:\d{2}(?::\d{2})?<[^\[\]\n]*\]", "[<PROGRESS>]"),
    Sanitizer("clock time", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<TIME>"),
    Sanitizer("duration",
              r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\s?(?:ns|[µμu]s|ms|s|secs?|seconds?|mins?|minutes?)\b",
              "<DURATION>"),
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


def normalize_output(output: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Return a sanitized copy of an nbformat output, without its execution count.

    Sanitized: stream text, every text/* mimetype (text/plain included), an error's evalue and
    traceback. Multi-line values stored as lists of lines are joined first.
    """
    normalized = {key: value for key, value in output.items() if key != "execution_count"}
    if "text" in normalized:
        normalized["text"] = sanitize_text(_joined(normalized["text"]), extra)
    if isinstance(normalized.get("data"), Mapping):
        normalized["data"] = {mime: sanitize_text(_joined(value), extra) if _is_text(mime, value) else value
                              for mime, value in normalized["data"].items()}
    if isinstance(normalized.get("evalue"), str):
        normalized["evalue"] = sanitize_text(normalized["evalue"], extra)
    if isinstance(normalized.get("traceback"), list):
        normalized["traceback"] = [sanitize_text(_joined(line), extra) for line in normalized["traceback"]]
    return normalized


def compare_outputs(published: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], cell: int,
                    extra: Sequence[tuple[str, str]] = ()) -> Difference | None:
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


def _comparable(outputs: Sequence[Mapping[str, Any]], extra: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each output as (label, sanitized text): what a reader of the page would see."""
    items = [_label_and_text(normalize_output(output, extra)) for output in _coalesce_streams(outputs)]
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
    return [{"output_type": "stream", "name": name, "text": streams[name]} for name in sorted(streams)]


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
    texts = {mime: value for mime, value in data.items() if isinstance(value, str) and mime.startswith("text/")}
    if "text/plain" in texts:
        return texts["text/plain"]
    if texts:
        return texts[min(texts)]
    return "[" + ", ".join(sorted(data)) + "]"


def _describe_change(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> str:
    """Say where the first differing output is, and how it differs."""
    count = f"{len(before)} outputs → {len(after)} outputs; " if len(before) != len(after) else ""
    index = next((i for i, (b, a) in enumerate(zip(before, after, strict=False)) if b != a),
                 min(len(before), len(after)))
    if index >= len(after):
        label, text = before[index]
        return f"{count}output {index} ({label}) is gone: {preview(text)!r}"
    if index >= len(before):
        label, text = after[index]
        return f"{count}new output {index} ({label}): {preview(text)!r}"
    (old_label, old_text), (new_label, new_text) = before[index], after[index]
    if old_label != new_label:
        return f"{count}output {index}: {old_label} → {new_label}"
    line, old_line, new_line = _first_differing_line(old_text, new_text)
    return f"{count}output {index} ({old_label}), line {line}: {old_line!r} → {new_line!r}"


def _first_differing_line(old: str, new: str) -> tuple[int, str, str]:
    pairs = zip_longest(old.splitlines(), new.splitlines(), fillvalue="(no line)")
    for number, (a, b) in enumerate(pairs, start=1):
        if a != b:
            return number, preview(a), preview(b)
    return 1, preview(old), preview(new)  # the texts differ in line endings only
