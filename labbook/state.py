"""Build state: what the last build published per post file, so a no-op build parses nothing.

A post whose file, found inputs, theme and published files are all as last built is skipped
with a handful of stats (git's index does the same for the work tree). The state also keeps
what the next commands need to say about a post without executing it: its summary, its broken
claims, and the error of its last failed execution. Losing the file costs one slower build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .config import Config
from .files import FileHashes, write_if_changed
from .published import Summary

__all__ = ["State", "Entry", "fingerprint", "VERSION"]

VERSION = 3


class Entry(NamedTuple):
    """One post as last built."""

    sha: str
    """sha256 of the post file."""
    slug: str
    key: str
    summary: Summary
    inputs: Mapping[str, str]
    """Found and declared inputs of its run: path -> sha256."""
    files: Mapping[str, tuple[int, int]]
    """Its published files in site/: name -> (size, mtime_ns)."""
    broken: tuple[str, ...] = ()
    """Claims of its run that did not hold."""

    def to_json(self) -> dict[str, Any]:
        return {"sha": self.sha, "slug": self.slug, "key": self.key, "summary": self.summary.to_json(),
                "inputs": dict(self.inputs), "files": {k: list(v) for k, v in self.files.items()},
                "broken": list(self.broken)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        return cls(data["sha"], data["slug"], data["key"], Summary.from_json(data["summary"]), dict(data["inputs"]),
                   {k: (v[0], v[1]) for k, v in data["files"].items()}, tuple(data.get("broken", ())))


def fingerprint(config: Config, theme_digest: str) -> str:
    """Everything besides the post that shapes its page: templates, site settings, labbook."""
    from . import __version__

    settings = [config.title, config.author, config.description, config.url, config.baseurl, __version__]
    return hashlib.sha256((theme_digest + json.dumps(settings)).encode()).hexdigest()


class State:
    """.labbook/state.json, read once per build and written once at its end."""

    def __init__(self, config: Config, fingerprint: str | Callable[[FileHashes], str]) -> None:
        """`fingerprint`, or how to make it from the file hashes this state remembers (so the
        templates are hashed only when their stat changed)."""
        self.config = config
        self.path = config.cache / "state.json"
        data: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("version") != VERSION:
            data = {}
        self.hashes = FileHashes(data.get("hashes", {}))
        self.fingerprint = fingerprint if isinstance(fingerprint, str) else fingerprint(self.hashes)
        self.same_theme = data.get("fingerprint") == self.fingerprint
        self.entries: dict[str, Entry] = {}
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self.entries = {name: Entry.from_json(e) for name, e in data.get("posts", {}).items()}
        self.failures: dict[str, dict[str, str]] = dict(data.get("failures", {}))
        """post file -> {"key": key of the post that failed, "error": first line of the error}."""
        self.listing: dict[str, Any] = dict(data.get("listing", {})) if self.same_theme else {}
        """The last write: a digest of every summary, and the stats of every file of site/ that
        is not a post's (listings, feed, theme, manifest, redirects, the author's assets) and
        of the project's own assets/."""

    def listing_holds(self, pages: Sequence[Any], kept: Mapping[str, Summary]) -> bool:
        """Writing these pages and kept posts would change nothing: their summaries and every
        file the write depends on besides the posts' own are as the last write left them."""
        assets = self.config.assets
        if any(p.is_relative_to(assets) for p in (self.config.site, self.config.posts, self.config.cache)):
            return False  # an assets folder holding the project: never trusted to be unchanged
        return bool(self.listing) and self.listing == self._listing(pages, kept)

    def wrote_listing(self, pages: Sequence[Any], kept: Mapping[str, Summary]) -> None:
        self.listing = self._listing(pages, kept)

    def _listing(self, pages: Sequence[Any], kept: Mapping[str, Summary]) -> dict[str, Any]:
        summaries = {**{slug: s.to_json() for slug, s in kept.items()},
                     **{page.slug: page.summary.to_json() for page in pages}}
        digest = hashlib.sha256(json.dumps(summaries, sort_keys=True, default=str).encode()).hexdigest()
        return {"digest": digest, "site": _stats(self.config.site, skip=("_posts", "assets/posts")),
                "assets": _stats(self.config.assets, skip=())}

    def unchanged(self, path: Path) -> Entry | None:
        """The entry of a post whose file, inputs, theme and published files are all as last built."""
        entry = self.entries.get(self.config.relative(path))
        if entry is None or not self.same_theme or self.hashes.sha(path) != entry.sha:
            return None
        for name, sha in entry.inputs.items():
            if self.hashes.sha(self.config.root / name) != sha:
                return None
        site = os.fspath(self.config.site)
        for name, (size, mtime) in entry.files.items():
            try:
                stat = os.stat(os.path.join(site, name))  # not pathlib: ~10 files a post, every post, every build
            except OSError:
                return None
            if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
                return None
        return entry

    def record(self, path: str, entry: Entry) -> None:
        self.entries[path] = entry
        self.failures.pop(path, None)
        self.hashes.sha(self.config.root / path)  # remember its stat, so the next build skips it

    def record_failure(self, path: str, key: str | None, error: str) -> None:
        self.failures[path] = {"key": key or "", "error": error.splitlines()[0] if error else "failed"}

    def save(self, live: Iterable[str], present: Iterable[str]) -> None:
        """Write the entries of `live` posts, and the failures of posts still `present`."""
        keep, exist = set(live), set(present)
        data = {
            "version": VERSION, "fingerprint": self.fingerprint,
            "posts": {k: v.to_json() for k, v in sorted(self.entries.items()) if k in keep},
            "failures": {k: v for k, v in sorted(self.failures.items()) if k in exist and k not in keep},
            "hashes": dict(sorted(self.hashes.known.items())), "listing": self.listing,
        }
        # compact: json's C encoder only runs without indent, and nobody reads this file
        write_if_changed(self.path, json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


def published_stat(site: Path, names: Iterable[str]) -> dict[str, tuple[int, int]]:
    files = {}
    for name in names:
        stat = (site / name).stat()
        files[name] = (stat.st_size, stat.st_mtime_ns)
    return files


def _stats(folder: Path, skip: tuple[str, ...]) -> dict[str, list[int]]:
    """Size and mtime of every file under `folder` but the `skip` subfolders (a post's files are
    its entry's to check): a no-op build compares these instead of writing the site again."""
    stats: dict[str, list[int]] = {}
    folders = [("", folder)]
    while folders:
        prefix, current = folders.pop()
        with contextlib.suppress(OSError), os.scandir(current) as entries:
            for entry in entries:
                name = prefix + entry.name
                if name in skip:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append((name + "/", Path(entry.path)))
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    stats[name] = [stat.st_size, stat.st_mtime_ns]
    return dict(sorted(stats.items()))
