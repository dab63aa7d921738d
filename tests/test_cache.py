"""Cache: what makes a run reusable, why a post is stale, and corrupt entries as misses."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from labbook import cache, source
from labbook.config import load_config
from labbook.files import dump_json
from labbook.model import Artifact, Run

from .helpers import make_project

POST = """---
title: Cached
date: 2026-01-01
labbook:
  timeout: 60
---

Prose.

```python
x = 1
```

```python
y = 2
```
"""


def fake_run(post, folder: Path, inputs: dict[str, str] | None = None) -> Run:
    """A run record with one real artifact, as execute would leave it."""
    data = b"a,b\n1,2\n"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "t.csv").write_bytes(data)
    run = Run(key=post.key, cells=(), inputs=inputs or {}, basis=post.basis, environment={},
              started="2026-01-01T00:00:00+00:00", seconds=0.1,
              artifacts=(Artifact("data", "data/t.csv", hashlib.sha256(data).hexdigest(), len(data)),))
    (folder / "run.json").write_bytes(dump_json(run.to_json()))
    return run


@pytest.fixture
def setup(tmp_path):
    root = make_project(tmp_path / "p", {"c.md": POST})
    config = load_config(root)
    post, _ = source.read(root / "posts" / "c.md", config)
    store = cache.Store(config)
    fake_run(post, store.published_folder(post.slug))
    return root, config, store, post


def reread(root: Path, config, text: str):
    (root / "posts" / "c.md").write_text(text)
    return source.read(root / "posts" / "c.md", config)[0]


def test_the_published_run_is_a_cache_entry(setup):
    _, _, store, post = setup
    found = store.lookup(post)
    assert found.run is not None and found.reason == "published"


def test_a_prose_edit_is_a_hit(setup):
    root, config, store, _ = setup
    post = reread(root, config, POST.replace("Prose.", "Much better prose.").replace("Cached", "New title"))
    assert store.lookup(post).run is not None


@pytest.mark.parametrize("before, after, reason", [
    ("y = 2", "y = 3", "code cell 2 changed"),
    ("timeout: 60", "timeout: 61", "setting labbook.timeout changed"),
    ("```python\ny = 2\n```\n", "", "code cells went from 2 to 1"),
])
def test_code_and_setting_edits_are_misses_with_a_reason(setup, before, after, reason):
    root, config, store, _ = setup
    post = reread(root, config, POST.replace(before, after))
    found = store.lookup(post)
    assert found.run is None and found.reason == reason


def test_an_edited_input_file_is_a_miss(setup):
    root, config, store, post = setup
    (root / "data").mkdir()
    (root / "data" / "x.csv").write_text("1\n")
    fake_run(post, store.published_folder(post.slug), inputs={"data/x.csv": cache.sha_file(root / "data/x.csv")})
    assert store.lookup(post).run is not None
    (root / "data" / "x.csv").write_text("2\n")
    store = cache.Store(config)
    found = store.lookup(post)
    assert found.run is None and found.reason == "input data/x.csv changed"


def test_a_corrupt_artifact_is_a_miss_with_a_note(setup):
    _, _, store, post = setup
    (store.published_folder(post.slug) / "data" / "t.csv").write_bytes(b"a,b\n1,3\n")
    found = store.lookup(post)
    assert found.run is None and "corrupt" in found.reason
    assert any("data/t.csv is corrupt" in note for note in found.notes)


def test_an_unreadable_run_record_is_a_miss_with_a_note(setup):
    _, _, store, post = setup
    (store.published_folder(post.slug) / "run.json").write_text("{not json")
    found = store.lookup(post)
    assert found.run is None and any("unreadable run record" in note for note in found.notes)


def test_the_local_store_brings_back_an_undone_edit(setup):
    root, config, store, original = setup
    folder = store.new_folder()
    run = fake_run(original, folder)
    store.put(run, folder)
    edited = reread(root, config, POST.replace("y = 2", "y = 3"))
    fake_run(edited, store.published_folder(edited.slug))  # the edit got published
    undone = reread(root, config, POST)
    found = store.lookup(undone)
    assert found.run is not None and found.reason == "stored"


def test_a_new_run_replaces_the_stored_one_with_its_key(setup):
    _, _, store, post = setup
    first, second = store.new_folder(), store.new_folder()
    run = fake_run(post, first)
    stored = store.put(run, first)
    (second / "data").mkdir()
    (second / "data" / "t.csv").write_bytes(b"a,b\n3,4\n")
    again = replace(run, started="2026-02-02T00:00:00+00:00")
    assert store.put(again, second) == stored
    assert cache.read_run(stored).started.startswith("2026-02-02")
    assert (stored / "data" / "t.csv").read_bytes() == b"a,b\n3,4\n"
    assert not second.exists() and not any(store.tmp.glob("old-*"))


def test_file_hashes_are_memoized_on_stat(tmp_path):
    path = tmp_path / "f"
    path.write_text("one")
    hashes = cache.FileHashes()
    first = hashes.sha(path)
    known = json.loads(json.dumps(hashes.known))
    assert cache.FileHashes(known).sha(path) == first
    path.write_text("two!")
    assert cache.FileHashes(known).sha(path) != first
    assert hashes.sha(tmp_path / "missing") is None
