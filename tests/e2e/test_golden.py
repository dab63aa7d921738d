"""The golden site: the fixture project's site/, committed under tests/golden/site/, pins what labbook
renders, so a refactor shows its effect as a reviewable git diff (jupytext's mirror files do the same).

Regenerate after an intended change, then review `git diff tests/golden`:

    LABBOOK_UPDATE_GOLDEN=1 python -m pytest tests/e2e/test_golden.py

What varies from run to run or machine to machine is masked first: dates and durations of the run,
library versions and the numeric platform. Figures are compared by pixel RMS, notebooks by their
text, never by bytes.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from labbook.compare import compare_data, compare_figure
from labbook.compare.data import DATA_SUFFIXES
from labbook.model import Tolerance

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

GOLDEN = Path(__file__).parent.parent / "golden" / "site"
UPDATE = bool(os.environ.get("LABBOOK_UPDATE_GOLDEN"))
_RUN_RECORD = re.compile(r'<p class="run-record">.*?</p>', re.DOTALL)
_FIGURES = (".png", ".jpg", ".jpeg", ".gif")
_UNPINNED = ("pagefind/", "assets/math/")
"""Built by other tools from the pages (Pagefind's index, named by content hashes) or vendored
as they are (Temml and its fonts): tested where they are made, not pinned here."""


def run_dates(site: Path) -> set[str]:
    """The days the site's runs started: pages show them ('updated …', the feed, the sitemap)."""
    return {json.loads(p.read_text())["started"][:10] for p in site.glob("assets/posts/*/run.json")}


def masked_text(name: str, text: str, dates: Iterable[str] = ()) -> str:
    """What must be equal: the text with run days and times, versions and the platform masked."""
    for day in dates:
        text = text.replace(day, "<run-day>")
    if name.endswith("run.json"):
        record = json.loads(text)
        record["started"], record["seconds"] = "<started>", 0
        record["environment"] = {key: "<version>" for key in record.get("environment", {})}
        if "platform" in record:
            record["platform"] = "<platform>"
        for cell in record["cells"]:
            cell["seconds"] = 0
        return json.dumps(record, indent=1, sort_keys=True) + "\n"
    if name.endswith(".ipynb"):
        notebook = json.loads(text)
        for cell in notebook["cells"]:
            for output in cell.get("outputs", []):
                for mime in [m for m in output.get("data", {}) if m.startswith("image/")]:
                    output["data"][mime] = "<image>"
        return json.dumps(notebook, indent=1, sort_keys=True) + "\n"
    return _RUN_RECORD.sub('<p class="run-record"><masked></p>', text)


def site_files(site: Path) -> dict[str, Path]:
    """The pinned files: every file labbook renders, by its path in site/."""
    files = {}
    for path in sorted(site.rglob("*")):
        name = path.relative_to(site).as_posix()
        hidden = any(part.startswith(".") for part in name.split("/"))
        if path.is_file() and not hidden and not name.startswith(_UNPINNED):
            files[name] = path
    return files


def is_data(name: str) -> bool:
    """A data file the post's code wrote (compared by value, not bytes: .npz holds zip timestamps)."""
    return "/data/" in name and name.endswith(DATA_SUFFIXES)


def write_golden(built: dict[str, Path], dates: set[str]) -> None:
    shutil.rmtree(GOLDEN, ignore_errors=True)
    for name, path in built.items():
        target = GOLDEN / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(_FIGURES) or is_data(name):
            shutil.copyfile(path, target)
        else:
            target.write_text(masked_text(name, path.read_text(encoding="utf-8"), dates), encoding="utf-8")


def test_the_rendered_site_matches_the_golden_one(built_project):
    built = site_files(built_project / "site")
    dates = run_dates(built_project / "site")
    if UPDATE or not GOLDEN.exists():
        write_golden(built, dates)
        if not UPDATE:
            pytest.fail(f"created {GOLDEN}: review it and commit it", pytrace=False)
        return
    golden = site_files(GOLDEN)
    assert sorted(built) == sorted(golden), "files differ: " + str(sorted(set(built) ^ set(golden)))
    for name in sorted(built):
        if name.endswith(_FIGURES):
            difference = compare_figure(golden[name], built[name], name, Tolerance(figure_rms=2.0))
            assert difference is None, difference.reason
            continue
        if is_data(name):  # by value: another CPU's BLAS may move the last bits
            difference = compare_data(golden[name], built[name], name, Tolerance(rtol=1e-9, atol=1e-12))
            assert difference is None, difference.reason
            continue
        ours = masked_text(name, built[name].read_text(encoding="utf-8"), dates)
        theirs = golden[name].read_text(encoding="utf-8")
        if ours != theirs:
            diff = difflib.unified_diff(theirs.splitlines(), ours.splitlines(), "golden/" + name, "built/" + name,
                                        lineterm="")
            pytest.fail(f"{name} differs from the golden site (LABBOOK_UPDATE_GOLDEN=1 to accept):\n"
                        + "\n".join(list(diff)[:60]), pytrace=False)
