"""Search: the published posts' pages -> a static Pagefind index in site/pagefind/.

The index is built from labbook's own rendering of each post (the page body that both
builders lay out), at build time, into site/: `jekyll build` copies it as it copies any
asset, `labbook html` and `labbook serve` do the same, so search works in both with no
extra command, and on hosts that run Jekyll themselves. The post pages mark what is indexed
(`data-pagefind-body`: title, description, prose, captions, claims, models, data, phenomena)
and what is not (`data-pagefind-ignore`: code, data previews, the citation). No Pagefind filters:
Pagefind writes them in a different order on every run, and the site must be the same bytes
whenever its pages are.

Pagefind runs only when a page it indexed changed, or a post came or went: a stamp beside
the bundle records what it indexed. The binary comes with the `pagefind[bin]` package and
reads nothing but the files given to it. Never renders posts, never writes into site/ itself
(it returns files for the write stage's commit).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import SiteError
from .files import dump_json

__all__ = ["BUNDLE", "STAMP", "bundle_files", "pagefind_binary", "document"]

BUNDLE = "pagefind"
STAMP = f"{BUNDLE}/.labbook-search.json"
"""What the bundle indexes (url -> sha256 of the page) and the files it is made of. A dot-file:
neither builder publishes it."""
_STAMP_VERSION = 1
_UNUSED = ("pagefind-component-ui.", "pagefind-modular-ui.", "pagefind-highlight.", "playground/")
"""Bundle files no labbook page loads: left out of site/."""
_LICENSE = Path(__file__).parent / "templates" / "vendor" / "pagefind-LICENSE.txt"


def document(title: str, body: str) -> str:
    """A post's page as Pagefind reads it: the body labbook rendered, nothing of the layout."""
    import html

    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"</head><body>\n{body}\n</body></html>\n")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def bundle_files(site: Path, fresh: Mapping[str, str],
                 kept: Mapping[str, Callable[[], str]]) -> dict[str, bytes | Path]:
    """The search bundle for every post: site-relative name -> content.

    `fresh` are the pages rendered in this build (url -> page document), `kept` the pages
    published before and left as they are (url -> a function giving their document). When
    nothing indexed changed, the bundle already in site/ is kept as it is.

    Raises:
        SiteError: the Pagefind binary is missing or failed.
    """
    stamp = _read_stamp(site)
    hashes = {url: _digest(text) for url, text in fresh.items()}
    if stamp is not None and set(stamp["pages"]) == set(fresh) | set(kept) and all(
            stamp["pages"][url] == sha for url, sha in hashes.items()) and all(
            (site / name).is_file() for name in stamp["files"]):
        return {name: site / name for name in [*stamp["files"], STAMP]}
    documents = dict(fresh)
    for url, load in kept.items():
        documents[url] = load()
    if not documents:  # Pagefind refuses an empty site; the search page still needs its bundle
        documents["/"] = document("No entries yet", "<main data-pagefind-body><p>No entries yet.</p></main>")
    files = _run_pagefind(documents)
    files[f"{BUNDLE}/LICENSE.txt"] = _LICENSE.read_bytes()
    pages = {url: _digest(text) for url, text in sorted(documents.items())}
    files[STAMP] = dump_json({"version": _STAMP_VERSION, "pages": pages, "files": sorted(files)})
    return files


def _read_stamp(site: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((site / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != _STAMP_VERSION:
        return None
    if not isinstance(data.get("pages"), dict) or not isinstance(data.get("files"), list):
        return None
    return data


def pagefind_binary() -> str:
    """The Pagefind executable that the `pagefind[bin]` package installed.

    Raises:
        SiteError: it is not installed.
    """
    try:
        from pagefind_bin import get_executable

        return str(get_executable())
    except (ImportError, FileNotFoundError):
        found = shutil.which("pagefind")
        if found:
            return found
    raise SiteError("cannot build the search index: the Pagefind binary is not installed",
                    hint="pip install 'pagefind[bin]' (labbook depends on it; a broken install lacks it)")


def _run_pagefind(documents: Mapping[str, str]) -> dict[str, bytes | Path]:
    """Index the documents with the Pagefind CLI in a temporary folder; the bundle's files."""
    binary = pagefind_binary()
    with tempfile.TemporaryDirectory(prefix="labbook-search-") as folder:
        source, output = Path(folder) / "site", Path(folder) / "bundle"
        for url, text in documents.items():
            target = source / PurePosixPath(url.strip("/")) / "index.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        source.mkdir(exist_ok=True)
        command = [binary, "--site", str(source), "--output-path", str(output), "--force-language", "en", "--silent"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SiteError(f"cannot build the search index: {exc}") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise SiteError("Pagefind failed to build the search index: " + " / ".join(detail))
        files: dict[str, bytes | Path] = {}
        for path in sorted(output.rglob("*")):
            name = path.relative_to(output).as_posix()
            if path.is_file() and not name.startswith(_UNUSED):
                files[f"{BUNDLE}/{name}"] = path.read_bytes()
        return files
