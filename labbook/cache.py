"""Cache: key <-> Run, content-addressed.

Owns the local run store (.labbook/runs/) and the rule that a published run in
site/assets/posts/<slug>/ is itself a valid entry, so a fresh clone executes nothing
unchanged. An entry is trusted only after its inputs and artifact hashes are verified;
anything unreadable is a miss with a note, never an error. Never executes or renders.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _inline
from .config import Config
from .errors import CacheError
from .files import FileHashes, crash_point, link_files, sha_file, write_json_atomic

if TYPE_CHECKING:  # read_run and nothing_ran import Run: opening the store (every build does) needs none of model
    from .model import Post, Run

__all__ = ["Store", "Lookup", "read_run", "verify", "stale_reason", "nothing_ran", "RUN_FILE"]

RUN_FILE = "run.json"


class Lookup(NamedTuple):
    """A usable run (`folder` holds run.json and the artifacts), or why there is none."""

    run: Run | None
    folder: Path | None
    reason: str
    """'published', 'stored', or why the post must execute: 'code cell 3 changed', …"""
    notes: tuple[str, ...] = ()
    """Corrupt or unreadable entries met on the way: shown as warnings."""


def read_run(folder: Path) -> Run:
    """The run record in `folder`.

    Raises:
        CacheError: missing, unparsable, or of another schema.
    """
    from .model import Run

    path = folder / RUN_FILE
    try:
        return Run.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CacheError("no run.json", path=str(path)) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheError(f"unreadable run record: {exc}", path=str(path)) from None


def nothing_ran(post: Post) -> Run:
    """The run of a post without code: no kernel, no record, nothing published beside the page."""
    from .model import Run

    return Run(key=post.key, cells=(), artifacts=(), inputs={}, basis=post.basis, environment={}, started="",
               seconds=0.0, seed=post.settings.seed)


def verify(run: Run, folder: Path) -> str | None:
    """None when every artifact is there with its recorded size and hash; else what is wrong."""
    for artifact in run.artifacts:
        path = folder / artifact.name
        try:
            if path.stat().st_size != artifact.size:
                return f"{artifact.name} has the wrong size"
        except OSError:
            return f"{artifact.name} is missing"
        if sha_file(path) != artifact.sha256:
            return f"{artifact.name} is corrupt (hash mismatch)"
    return None


def stale_reason(post: Post, run: Run, root: Path, hashes: FileHashes) -> str | None:
    """None when `run` is what executing `post` now would give; else why not, for `labbook status`."""
    if run.key != post.key:
        return _basis_change(post.basis, run.basis)
    for name, sha in sorted(run.inputs.items()):
        if hashes.sha(root / name) != sha:
            return f"input {name} changed" if (root / name).exists() else f"input {name} is gone"
    return None


def _basis_change(new: Mapping[str, Any], old: Mapping[str, Any]) -> str:
    new_cells, old_cells = list(new.get("cells", [])), list(old.get("cells", []))
    for index, (a, b) in enumerate(zip(new_cells, old_cells, strict=False)):
        if a != b:
            return f"code cell {index + 1} changed"
    if len(new_cells) != len(old_cells):
        return f"code cells went from {len(old_cells)} to {len(new_cells)}"
    for name, value in new.get("settings", {}).items():
        if old.get("settings", {}).get(name) != value:
            return f"setting labbook.{name} changed"
    new_inputs, old_inputs = new.get("inputs", {}), old.get("inputs", {})
    for name in sorted(set(new_inputs) | set(old_inputs)):
        if new_inputs.get(name) != old_inputs.get(name):
            return f"input {name} changed"
    return "the cache key changed (labbook's key format)"


class Store:
    """Runs on disk: the published ones in site/, the others in .labbook/runs/."""

    def __init__(self, config: Config, hashes: FileHashes | None = None) -> None:
        self.config = config
        self.runs = config.cache / "runs"
        self.tmp = config.cache / "tmp"
        self.hashes = hashes or FileHashes()

    def published_folder(self, slug: str) -> Path:
        return self.config.site / "assets" / "posts" / slug

    def published_point(self, slug: str, folder: str) -> Path:
        """Where site/ publishes one point of a sweep post: assets/posts/<slug>/points/<folder>/."""
        return self.published_folder(slug) / "points" / folder

    def lookup(self, post: Post, *, verify_artifacts: bool = True, published: Path | None = None) -> Lookup:
        """The published run if it still holds, else a stored one, else why the post must execute.

        A post without code has nothing to execute: its run is empty, and needs no folder.
        `published` is where site/ publishes this run, when not the post's own folder (a point
        of a sweep: `published_point`).
        """
        if not (post.cells or post.inline):  # inline values run in a kernel too
            return Lookup(nothing_ran(post), None, "no code")
        notes: list[str] = []
        reason = "never executed"
        candidates = [(published or self.published_folder(post.slug), "published")]
        candidates += [(folder, "stored") for folder in sorted(self.runs.glob(f"{post.key}-*"))]
        for folder, origin in candidates:
            if not (folder / RUN_FILE).exists():
                continue
            try:
                run = read_run(folder)
            except CacheError as error:
                notes.append(f"{error}; executing again")
                continue
            why = stale_reason(post, run, self.config.root, self.hashes) or _inline.unavailable(
                [i.expression for i in post.inline if i.expression not in run.inline], str(folder / _inline.SNAPSHOT))
            if why is not None:
                if origin == "published":
                    reason = why
                continue
            broken = verify(run, folder) if verify_artifacts else None
            if broken is not None:
                notes.append(f"{self.config.relative(folder)}: {broken}; executing again")
                reason = f"cached {broken}"
                continue
            return Lookup(run, folder, origin, tuple(notes))
        return Lookup(None, None, reason, tuple(notes))

    def new_folder(self) -> Path:
        """An empty folder, on the store's file system, for an execution to write into."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        import tempfile

        return Path(tempfile.mkdtemp(prefix="run-", dir=self.tmp))

    def put(self, run: Run, folder: Path) -> Path:
        """Move a finished run folder into the store, atomically; its run.json is written last.

        A new run replaces a stored one with the same key: it was executed because the stored
        one was not wanted (--force, a check), and it is the one to publish.
        """
        write_json_atomic(folder / RUN_FILE, run.to_json())
        crash_point("cache-before-put")
        target = self.runs / f"{run.key}-{_inputs_digest(run)}"
        self.runs.mkdir(parents=True, exist_ok=True)
        if target.exists():  # aside first: a directory cannot be replaced; a crash here is a cache miss
            import tempfile

            old = Path(tempfile.mkdtemp(prefix="old-", dir=self.tmp))
            os.replace(target, old / "run")
            os.replace(folder, target)
            shutil.rmtree(old, ignore_errors=True)
            return target
        os.replace(folder, target)
        return target

    def put_copy(self, run: Run, folder: Path) -> Path:
        """Store `run` with the artifacts of `folder` (a stored or published run of the same key),
        linked rather than copied where the file system allows: a new record, the same files."""
        new = self.new_folder()
        link_files(sorted({a.name for a in run.artifacts} | {_inline.SNAPSHOT}), folder, new)  # not the page's own
        return self.put(run, new)

    def clean_tmp(self) -> None:
        """Left-overs of killed builds."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def _inputs_digest(run: Run) -> str:
    return hashlib.sha256(json.dumps(sorted(run.inputs.items())).encode()).hexdigest()[:16]
