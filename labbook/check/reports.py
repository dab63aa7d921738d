"""Reports of a check: the lines a terminal shows, JUnit XML for CI, and an HTML report with
published, new and diff images side by side.

in → out: a CheckReport → text lines, a JUnit file, an HTML folder.
Owns keeping JUnit XML valid whatever a title, claim or error holds (control characters and
terminal escapes are dropped, lone surrogates replaced).
Never executes and never writes into site/.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

from .. import compare
from ..config import Config
from .seeds import seed_lines
from .verdicts import CheckReport, PostCheck

__all__ = ["details", "summary", "write_junit", "write_html_report", "printable"]

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What XML 1.0 cannot hold even escaped: C0 controls but tab and newlines, lone surrogates,
U+FFFE and U+FFFF."""


def printable(text: str) -> str:
    """Text that an XML 1.0 document can hold: terminal escapes removed, every other character
    XML forbids shown as \\xNN (or \\uNNNN) so that the reader still sees it was there."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}",
                        compare.strip_ansi(text))


def summary(result: PostCheck) -> str:
    """One line: why the post is not reproduced."""
    if result.reason:
        return result.reason
    broken = [c.claim + (f" ({c.message})" if c.message else "") for c in result.claims if not c.now]
    if broken:
        return "; ".join(broken)
    return "; ".join(f"{d.name}: {d.reason}" for d in result.differences[:3])


def details(result: PostCheck) -> list[str]:
    """Every claim, difference, reason, note, error and seed spread, one per line."""
    lines = [f"claim {'holds' if c.now else 'broken'}: {c.claim}" + (f" ({c.message})" if c.message else "")
             for c in result.claims]
    if result.reason:
        lines.append(result.reason)
    lines += [f"{d.name}: {d.reason}" + (f" [{d.tolerance}]" if d.tolerance else "") for d in result.differences]
    if result.points:
        counts = {v: sum(p.verdict == v for p in result.points)
                  for v in dict.fromkeys(p.verdict for p in result.points)}
        lines.append(f"points: {', '.join(f'{n} {v}' for v, n in counts.items())}")
        lines += [f"  point {p.point}: {p.verdict}" + (f" ({p.reason})" if p.reason else "")
                  for p in result.points if p.verdict != "reproduced"]
    if result.note:
        lines.append(f"note: {result.note}")
    if result.error is not None:
        lines.append(str(result.error))
    if result.seeds is not None:
        lines += seed_lines(result.seeds)
    return lines


def write_junit(report: CheckReport, path: Path, *, strict: bool = False) -> None:
    """One test case per post: failures for drift, broken claims, stale and new posts (and for
    `consistent` when strict), errors for failed runs; a consistent post passes with its
    differences in system-out."""
    import xml.etree.ElementTree as ET

    failing = [p for p in report.posts if not p.passed(strict) and p.verdict != "failed"]
    suite = ET.Element("testsuite", name="labbook check", tests=str(len(report.posts)), failures=str(len(failing)),
                       errors=str(sum(p.verdict == "failed" for p in report.posts)))
    for result in report.posts:
        case = ET.SubElement(suite, "testcase", classname="labbook.check", name=printable(str(result.path)),
                             time=f"{result.seconds:.3f}")
        ET.SubElement(case, "properties").append(ET.Element("property", name="verdict", value=result.verdict))
        if result.verdict == "failed":
            message = str(result.error).splitlines()[0] if result.error else "failed"
            error = ET.SubElement(case, "error", message=printable(message))
            error.text = printable(getattr(result.error, "traceback", "") or str(result.error))
        elif not result.passed(strict):
            failure = ET.SubElement(case, "failure", message=printable(f"{result.verdict}: {summary(result)}"))
            failure.text = printable("\n".join(details(result)))
        elif result.verdict == "consistent":
            ET.SubElement(case, "system-out").text = printable("\n".join([f"consistent: {summary(result)}",
                                                                         *details(result)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_html_report(report: CheckReport, folder: Path, config: Config) -> Path:
    """Published and new figures side by side, with the diff image, for every post."""
    from ..theme import Theme

    folder.mkdir(parents=True, exist_ok=True)
    posts = [{"path": printable(str(result.path)), "verdict": result.verdict,
              "details": [printable(line) for line in details(result)], "figures": _figures(result, folder)}
             for result in report.posts]
    theme = Theme(config.templates)
    css = (theme.folder / "labbook.css").read_text(encoding="utf-8")
    notes = [printable(note) for note in report.notes]
    html = theme.render("check-report.html", posts=posts, css=css, notes=notes, date=dt.date.today().isoformat())
    index = folder / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def _figures(result: PostCheck, folder: Path) -> list[dict[str, Any]]:
    """The figures that differ, each copied beside the report: published, new and diff."""
    figures = []
    for difference in result.differences:
        if difference.kind != "figure":
            continue
        target = folder / result.slug
        target.mkdir(parents=True, exist_ok=True)
        stem = Path(difference.name).name
        pair = {"name": difference.name, "reason": difference.reason}
        for role, source_dir in (("published", result.published_dir), ("new", result.new_dir)):
            source_file = Path(source_dir) / difference.name
            if source_dir and source_file.is_file():
                shutil.copyfile(source_file, target / f"{role}-{stem}")
                pair[role] = f"{result.slug}/{role}-{stem}"
        if difference.diff_image and Path(difference.diff_image).is_file():
            shutil.copyfile(difference.diff_image, target / f"diff-{stem}")
            pair["diff"] = f"{result.slug}/diff-{stem}"
        figures.append(pair)
    return figures
