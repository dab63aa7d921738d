"""The parts of a post page beyond its body: figure sizes, data previews, the table of contents,
links to other posts, authors, references, the verification badge and the citation.

In: the post's front matter, its run record, its rendered body and the run's artifact files
(read, never written). Out: plain values for the templates. Never executes code, never writes
files, never reads the network.
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Preview", "Reference", "Verification", "Citation",
    "figure_size", "data_preview", "headings", "internal_links", "authors_of", "references_of",
    "verification_of", "citation_of", "links_include", "FOLD_LINES",
]

FOLD_LINES = 6
"""Code cells longer than this are folded by default (`#| code-fold: false` keeps one open)."""

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 12
_PREVIEW_BYTES = 64 * 1024
"""A CSV preview reads at most this much of the file: a 2 GB file costs what a small one does."""


def links_include(slug: str) -> str:
    """The Jekyll include (under _includes/) holding a post's links to other posts: previous and
    next, related entries, backlinks. The index stage writes it, the post layout includes it."""
    return f"labbook/links/{slug}.html"


# --- figures -------------------------------------------------------------------------------------


def _css_pixels(value: Any) -> float | None:
    """A positive number (not a bool), or None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def figure_size(output: Mapping[str, Any], path: Path | None) -> tuple[int, int] | None:
    """Width and height in CSS pixels: from the output record when it has them, else the file.

    Reserving the box (`width`/`height` on the img) keeps the page from jumping while it loads.
    """
    width, height = _css_pixels(output.get("width")), _css_pixels(output.get("height"))
    if width is not None and height is not None:
        return round(width), round(height)
    if path is None or not path.is_file():
        return None
    if path.suffix.lower() == ".svg":
        return _svg_size(path)
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, ImportError):
        return None


_SVG_LENGTH = re.compile(r"^\s*([0-9.]+)\s*(pt|px)?\s*$")


def _svg_size(path: Path) -> tuple[int, int] | None:
    head = path.read_bytes()[:4096].decode("utf-8", "replace")
    root = re.search(r"<svg\b[^>]*>", head, re.S)
    if not root:
        return None
    attributes = dict(re.findall(r'\b(width|height|viewBox)\s*=\s*"([^"]*)"', root.group(0)))
    size = [_svg_length(attributes.get(name, "")) for name in ("width", "height")]
    if size[0] and size[1]:
        return int(size[0]), int(size[1])
    box = attributes.get("viewBox", "").replace(",", " ").split()
    if len(box) == 4:
        try:
            return int(float(box[2])), int(float(box[3]))
        except ValueError:
            return None
    return None


def _svg_length(text: str) -> float | None:
    match = _SVG_LENGTH.match(text)
    if not match:
        return None
    value = float(match.group(1))
    return value * 4 / 3 if match.group(2) == "pt" else value  # matplotlib writes points


# --- data previews -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    """What a reader sees of a data file before downloading it."""

    kind: str
    """table (CSV/TSV: `columns` and `rows`), arrays (NPY/NPZ: `arrays`), or none."""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    more_rows: bool = False
    more_columns: int = 0
    """Columns left out of the preview."""
    arrays: tuple[tuple[str, str, str], ...] = ()
    """(name, shape, dtype) of each array."""
    note: str = ""


def data_preview(path: Path) -> Preview:
    """A look at a data file, computed from the file: a CSV's header and first rows, the names,
    shapes and dtypes of the arrays in an NPY/NPZ file. Never loads a whole array."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return _table_preview(path, "\t" if suffix == ".tsv" else ",")
        if suffix == ".npy":
            with path.open("rb") as stream:
                return Preview("arrays", arrays=(("(array)", *_npy_header(stream)),))
        if suffix == ".npz":
            return _npz_preview(path)
    except (OSError, ValueError, csv.Error, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        return Preview("none", note=f"no preview: {exc}")
    return Preview("none")


def _table_preview(path: Path, delimiter: str) -> Preview:
    with path.open("rb") as stream:
        head = stream.read(_PREVIEW_BYTES)
        truncated = bool(stream.read(1))
    text = head.decode("utf-8", "replace")
    if truncated:
        text = text[: text.rfind("\n") + 1] if "\n" in text else text  # drop a partial last line
    lines = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    lines = [line for line in lines if line]
    if not lines:
        return Preview("table", note="empty file")
    header, body = lines[0], lines[1:]
    shown = min(len(header), PREVIEW_COLUMNS)
    rows = tuple(tuple(_cell(value) for value in row[:shown]) for row in body[:PREVIEW_ROWS])
    return Preview("table", columns=tuple(_cell(h) for h in header[:shown]), rows=rows,
                   more_rows=len(body) > PREVIEW_ROWS or truncated, more_columns=max(0, len(header) - shown))


def _cell(value: str) -> str:
    """A value as the preview shows it: long numbers to 6 significant digits, long text cut."""
    value = value.strip()
    if len(value) > 10:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if number == number and abs(number) != float("inf"):  # not nan or inf: those stay as written
                return f"{number:.6g}"
    return value if len(value) <= 24 else value[:23] + "…"


def _npz_preview(path: Path) -> Preview:
    arrays = []
    with zipfile.ZipFile(path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as stream:
                arrays.append((info.filename[: -len(".npy")], *_npy_header(stream)))
    return Preview("arrays", arrays=tuple(arrays))


def _npy_header(stream: Any) -> tuple[str, str]:
    """(shape, dtype) from an .npy header: the array itself is never read."""
    import numpy as np

    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    return ("×".join(str(n) for n in shape) if shape else "scalar"), str(dtype)


# --- the body: headings and links ----------------------------------------------------------------

_HEADING = re.compile(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


def headings(body: str) -> list[tuple[int, str, str]]:
    """(level, id, text) of the body's h2 and h3 headings, in order: the table of contents."""
    return [(int(level), anchor, " ".join(html.unescape(_TAG.sub("", inner)).split()))
            for level, anchor, inner in _HEADING.findall(body)]


_HREF = re.compile(r'<a\b[^>]*\bhref="([^"]+)"', re.I)


def internal_links(body: str, baseurl: str, site_url: str, own: str) -> tuple[str, ...]:
    """The post pages (/blog/<year>/<slug>/, baseurl included) that this body links to: what
    makes backlinks. Absolute links to the site's own URL count; the post itself does not."""
    pattern = re.compile(r"^" + re.escape(baseurl) + r"/blog/\d{4}/[^/?#\"]+/?")
    found = set()
    for href in _HREF.findall(body):
        href = html.unescape(href)
        if site_url and href.startswith(site_url.rstrip("/") + "/"):
            href = href[len(site_url.rstrip("/")):]
        match = pattern.match(href)
        if match:
            url = match.group(0).rstrip("/") + "/"
            if url != own:
                found.add(url)
    return tuple(sorted(found))


# --- authors and references ----------------------------------------------------------------------


def authors_of(extra: Mapping[str, Any], default: str) -> tuple[str, ...]:
    """The post's `authors:` (a list or 'A and B') or `author:`, else the site's author."""
    value = extra.get("authors", extra.get("author"))
    if isinstance(value, str) and value.strip():
        return tuple(a.strip() for a in re.split(r"\s+and\s+|;", value) if a.strip())
    if isinstance(value, list):
        names = [_author_name(a) for a in value]
        return tuple(n for n in names if n)
    return (default,) if default.strip() else ()


def _author_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("name") or "").strip()
    return str(value).strip() if value is not None else ""


@dataclass(frozen=True, slots=True)
class Reference:
    """One work the post cites."""

    title: str
    authors: str = ""
    year: str = ""
    url: str = ""
    venue: str = ""


def references_of(value: Any) -> tuple[list[Reference], list[str]]:
    """The post's `references:`: a list of {title, authors, year, url} or a BibTeX string.
    Returns the references and what was wrong with the ones left out."""
    if value is None:
        return [], []
    if isinstance(value, str):
        return _bibtex(value)
    if not isinstance(value, list):
        return [], ["references: must be a list of {title, authors, year, url} or a BibTeX string"]
    found, problems = [], []
    for number, item in enumerate(value, 1):
        if isinstance(item, str) and item.strip():
            found.append(Reference(title=item.strip()))
        elif isinstance(item, Mapping) and str(item.get("title") or "").strip():
            authors = item.get("authors", item.get("author", ""))
            if isinstance(authors, list):
                authors = ", ".join(str(a) for a in authors)
            found.append(Reference(
                title=str(item["title"]).strip(), authors=str(authors or "").strip(),
                year=str(item.get("year") or "").strip(), url=_safe_url(item.get("url")),
                venue=str(item.get("venue") or item.get("journal") or "").strip(),
            ))
        else:
            problems.append(f"references: entry {number} has no title; left out")
    return found, problems


def _safe_url(value: Any) -> str:
    """Only web and DOI links become links: a `javascript:` URL is dropped."""
    text = str(value or "").strip()
    if text.lower().startswith("doi:"):
        return "https://doi.org/" + text[4:].strip()
    return text if re.match(r"^https?://", text, re.I) else ""


_BIB_ENTRY = re.compile(r"@(\w+)\s*\{\s*([^,\s]*)\s*,", re.S)


def _bibtex(text: str) -> tuple[list[Reference], list[str]]:
    found, problems = [], []
    for number, match in enumerate(_BIB_ENTRY.finditer(text), 1):
        fields = _bib_fields(text, match.end())
        title = _bib_text(fields.get("title", ""))
        if not title:
            problems.append(f"references: BibTeX entry {number} ({match.group(2) or match.group(1)}) has no title")
            continue
        authors = " and ".join(_bib_text(a) for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip())
        url = _safe_url(fields.get("url")) or (_safe_url("doi:" + fields["doi"]) if fields.get("doi") else "")
        venue = _bib_text(fields.get("journal") or fields.get("booktitle") or fields.get("eprint") or "")
        found.append(Reference(title=title, authors=authors.replace(" and ", ", "),
                               year=_bib_text(fields.get("year", "")), url=url, venue=venue))
    if not found and not problems and text.strip():
        problems.append("references: no BibTeX entry found (@article{key, title = {…}, …})")
    return found, problems


def _bib_fields(text: str, start: int) -> dict[str, str]:
    """name = {value} | "value" | bare, until the entry's closing brace."""
    fields: dict[str, str] = {}
    position, depth = start, 1
    pattern = re.compile(r"\s*(\w+)\s*=\s*")
    while position < len(text) and depth > 0:
        match = pattern.match(text, position)
        if not match:
            close = text.find("}", position)
            comma = text.find(",", position)
            if close == -1:
                break
            if comma != -1 and comma < close:
                position = comma + 1
                continue
            break
        name, position = match.group(1).lower(), match.end()
        value, position = _bib_value(text, position)
        fields[name] = value
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
    return fields


def _bib_value(text: str, position: int) -> tuple[str, int]:
    if position < len(text) and text[position] in "{\"":
        closing = "}" if text[position] == "{" else "\""
        depth, end = 0, position
        while end < len(text):
            char = text[end]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            if (closing == "}" and depth == 0 and char == "}") or (closing == "\"" and char == "\"" and
                                                                    end > position and depth == 0):
                return text[position + 1: end], end + 1
            end += 1
        return text[position + 1:], len(text)
    match = re.match(r"[^,}\s]*", text[position:])
    value = match.group(0) if match else ""
    return value, position + len(value)


def _bib_text(value: str) -> str:
    """BibTeX markup to plain text: braces and the common accents and escapes go."""
    value = re.sub(r"\\[`'^\"~=.]\{?(\w)\}?", r"\1", value)
    value = value.replace("\\&", "&").replace("\\%", "%").replace("\\_", "_").replace("\\$", "$").replace("--", "–")
    return " ".join(value.replace("{", "").replace("}", "").split())


# --- verification and citation -------------------------------------------------------------------

_VERDICT_TEXT = {
    "reproduced": "reproduced",
    "consistent": "consistent",
    "drifted": "drifted",
    "claim broken": "claim broken",
    "failed": "failed to run",
}


@dataclass(frozen=True, slots=True)
class Verification:
    """The last `labbook check` of a post's run, as a badge."""

    verdict: str
    """reproduced | consistent | drifted | claim broken | failed"""
    date: str
    seeds: int = 0
    seeds_date: str = ""
    platform: str = ""
    """Where it was re-run, when the check recorded it."""
    reason: str = ""
    """Why it is `consistent` rather than reproduced (the numbers differ on another platform)."""

    @property
    def css(self) -> str:
        return self.verdict.replace(" ", "-")

    @property
    def text(self) -> str:
        return _VERDICT_TEXT.get(self.verdict, self.verdict)

    @property
    def good(self) -> bool:
        return self.verdict in ("reproduced", "consistent")


def verification_of(check: Mapping[str, Any] | None) -> Verification | None:
    """The badge of a run's `check` record; None when the run was never checked."""
    if not check or not check.get("verdict"):
        return None
    found = check.get("seeds")
    seeds: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    platform = check.get("platform")
    if isinstance(platform, Mapping):
        platform = ", ".join(str(v) for k, v in sorted(platform.items()) if k in ("cpu", "machine", "system") and v)
    return Verification(
        verdict=str(check["verdict"]), date=str(check.get("date", "")),
        seeds=int(seeds.get("n", 0) or 0), seeds_date=str(seeds.get("date", "") or ""),
        platform=str(platform or ""), reason=str(check.get("reason") or ""),
    )


@dataclass(frozen=True, slots=True)
class Citation:
    """How to cite a post: a BibTeX entry and the same in plain text."""

    key: str
    bibtex: str
    text: str
    url: str


_BIB_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _bib_escape(text: str) -> str:
    return "".join(_BIB_ESCAPES.get(c, c) for c in text)


def citation_of(*, title: str, authors: Sequence[str], date: str, url: str, site_title: str,
                slug: str) -> Citation:
    """A BibTeX @misc entry and a plain-text citation, like those researchers paste under posts."""
    year = date[:4]
    surname = _surname(authors[0]) if authors else "anonymous"
    first_word = next((w for w in re.findall(r"[A-Za-z0-9]+", title.lower()) if w not in _STOP_WORDS), slug)
    key = re.sub(r"[^a-z0-9]", "", f"{surname}{year}{first_word}".lower()) or slug
    fields = [
        ("author", " and ".join(_bib_escape(a) for a in authors) or "Anonymous"),
        ("title", "{" + _bib_escape(title) + "}"),
        ("year", year),
        ("month", _MONTHS[int(date[5:7]) - 1] if len(date) >= 7 and date[5:7].isdigit() else ""),
        ("howpublished", _bib_escape(site_title)),
        ("url", url),
    ]
    body = ",\n".join(f"  {name} = {{{value}}}" if name != "month" else f"  month = {value}"
                      for name, value in fields if value)
    bibtex = f"@misc{{{key},\n{body}\n}}"
    names = _plain_authors(authors)
    text = f"{names} ({year}). {title}. {site_title}." + (f" {url}" if url else "")
    return Citation(key=key, bibtex=bibtex, text=text.strip(), url=url)


_STOP_WORDS = {"a", "an", "the", "of", "on", "in", "for", "and", "to", "with", "at", "by", "is"}


def _surname(name: str) -> str:
    name = name.strip()
    if "," in name:
        return name.split(",", 1)[0].strip()
    parts = name.split()
    return parts[-1] if parts else "anonymous"


def _plain_authors(authors: Sequence[str]) -> str:
    if not authors:
        return "Anonymous"
    if len(authors) == 1:
        return authors[0]
    return ", ".join(authors[:-1]) + " and " + authors[-1]
