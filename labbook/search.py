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
the bundle records what it indexed. The site is indexed in shards (a post's shard fixed by a
hash of its address; their number grows as the square root of the site, `shard_count`): an
edit re-indexes one shard, not the site (Pagefind takes ~50 ms plus ~5 ms a page here: 5 s
for 1000 posts in one index, 0.35 s for one of their 16 shards). Shard 0 is the bundle in
pagefind/ (with the UI); shard k lives in pagefind/shard-k/, and the search page merges them
(`mergeIndex`). The binary comes with the `pagefind[bin]` package and
reads nothing but the files given to it. Never renders posts, never writes into site/ itself
(it returns files for the write stage's commit).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import SiteError
from .files import dump_json

__all__ = ["BUNDLE", "STAMP", "SHARD_RATIO", "bundle_files", "pagefind_binary", "document", "merged_bundles",
           "stamp_without"]

BUNDLE = "pagefind"
STAMP = f"{BUNDLE}/.labbook-search.json"
"""What the bundle indexes (url -> sha256 of the page) and the files it is made of. A dot-file:
neither builder publishes it."""
_STAMP_VERSION = 2
SHARD_RATIO = 4
"""A shard holds at most SHARD_RATIO × the number of shards of posts: 20 posts are 4 shards of
~5, 1000 posts 16 of ~63. An edit waits for its shard's re-indexing (~50 ms + ~5 ms a page) and
a search loads one index per shard: both grow as the square root of the site."""
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


def shard_count(pages: int) -> int:
    """The least power of two whose shards hold at most SHARD_RATIO × itself pages each: the
    count (and so every post's shard) changes only when the site grows fourfold."""
    count = 1
    while pages > SHARD_RATIO * count * count:
        count *= 2
    return count


def _assign(urls: Iterable[str], count: int) -> dict[str, int]:
    """Each page's shard, by a hash of its address: a post that comes or goes changes one shard.
    Shard 0 (the bundle the UI loads first) is never empty: the first address goes there if
    no hash sends one."""
    shards = {url: int(hashlib.sha256(url.encode()).hexdigest()[:8], 16) % count for url in sorted(urls)}
    if shards and 0 not in shards.values():
        shards[min(shards)] = 0
    return shards


def _shards(urls: Iterable[str]) -> tuple[int, dict[str, int]]:
    """The site's shard count, and each page's shard."""
    urls = list(urls)
    count = shard_count(len(urls))
    return count, _assign(urls, count)


def _folder(shard: int) -> str:
    return BUNDLE if shard == 0 else f"{BUNDLE}/shard-{shard}"


def merged_bundles(urls: Iterable[str]) -> list[str]:
    """The shards the search page merges into shard 0's results: their folders, site-relative."""
    return [f"{_folder(shard)}/" for shard in sorted(set(_shards(urls)[1].values())) if shard]


def bundle_files(site: Path, fresh: Mapping[str, str],
                 kept: Mapping[str, Callable[[], str]]) -> dict[str, bytes | Path]:
    """The search bundle for every post: site-relative name -> content.

    `fresh` are the pages rendered in this build (url -> page document), `kept` the pages
    published before and left as they are (url -> a function giving their document). A shard
    whose pages are all as it indexed them is kept as it is in site/.

    Raises:
        SiteError: the Pagefind binary is missing or failed.
    """
    urls = set(fresh) | set(kept)
    if not urls:  # Pagefind refuses an empty site; the search page still needs its bundle
        fresh = {"/": document("No entries yet", "<main data-pagefind-body><p>No entries yet.</p></main>")}
        urls = {"/"}
    count, assignment = _shards(urls)
    stamp = _read_stamp(site)
    indexed = stamp["shards"] if stamp is not None and stamp["count"] == count else {}
    hashes = {url: _digest(text) for url, text in fresh.items()}
    members: dict[int, list[str]] = {}
    for url, shard in assignment.items():
        members.setdefault(shard, []).append(url)
    files: dict[str, bytes | Path] = {}
    shards: dict[str, Any] = {}
    for shard, pages in sorted(members.items()):
        before = indexed.get(str(shard))
        if before is not None and _still_indexed(before, pages, hashes, site):
            files.update({name: site / name for name in before["files"]})
            shards[str(shard)] = before
            continue
        documents = {url: fresh[url] if url in fresh else kept[url]() for url in pages}
        made = _run_pagefind(documents, _folder(shard), ui=shard == 0)
        files.update(made)
        shards[str(shard)] = {"pages": {url: _digest(text) for url, text in sorted(documents.items())},
                              "files": sorted(made)}
    files[f"{BUNDLE}/LICENSE.txt"] = _LICENSE.read_bytes()
    files[STAMP] = dump_json({"version": _STAMP_VERSION, "count": count, "shards": shards})
    return files


def _still_indexed(before: Any, pages: list[str], hashes: Mapping[str, str], site: Path) -> bool:
    """The shard holds these pages, the fresh ones as rendered now, and its files are in site/."""
    return (isinstance(before, dict) and set(before["pages"]) == set(pages)
            and all(before["pages"][url] == sha for url, sha in hashes.items() if url in before["pages"])
            and all((site / name).is_file() for name in before["files"]))


def stamp_without(site: Path, changed: Iterable[str], urls: Iterable[str]) -> bytes | None:
    """The stamp, less the shards that hold the `changed` pages (the next build indexes them
    again); None when there is no stamp, or the site has a new shard count."""
    stamp = _read_stamp(site)
    count, assignment = _shards(urls)
    if stamp is None or stamp["count"] != count:
        return None
    stale = {str(assignment[url]) for url in changed if url in assignment}
    stamp["shards"] = {k: v for k, v in stamp["shards"].items() if k not in stale}
    return dump_json(stamp)


def _read_stamp(site: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((site / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != _STAMP_VERSION or not isinstance(data.get("count"), int):
        return None
    shards = data.get("shards")
    if not isinstance(shards, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("pages"), dict) and isinstance(v.get("files"), list)
            for v in shards.values()):
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


def _run_pagefind(documents: Mapping[str, str], under: str = BUNDLE, *, ui: bool = True) -> dict[str, bytes | Path]:
    """Index the documents with the Pagefind CLI in a temporary folder; the bundle's files,
    `under` a site folder (a shard's bundle leaves out the UI: the search page loads shard 0's)."""
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
        unused = _UNUSED if ui else (*_UNUSED, "pagefind-ui.")
        for path in sorted(output.rglob("*")):
            name = path.relative_to(output).as_posix()
            if path.is_file() and not name.startswith(unused):
                files[f"{under}/{name}"] = path.read_bytes()
        return files
