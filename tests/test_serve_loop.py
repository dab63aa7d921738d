"""serve.py's build loop, in process (no HTTP, no kernel): a rebuild reloads the open page
first and indexes the edit for search right after; a save that lands while the index is
built is shown too."""

from __future__ import annotations

import threading
import time

import pytest

from labbook import serve
from labbook.config import load_config
from labbook.console import ConsoleReporter

from .helpers import make_project, searchable

POST = "---\ntitle: Live\ndate: 2026-03-01\n---\n\nProse marker {word}.\n"


@pytest.fixture
def session(tmp_path):
    root = make_project(tmp_path / "p", {"live.md": POST.format(word="ALPHA")})
    config = load_config(root)
    live = serve.Live()
    session = serve._Session(config, {}, config.cache / "preview", live, ConsoleReporter(quiet=True))
    serve._rebuild(session)  # the first build: pages and search at once
    assert searchable(config.site, "ALPHA") and not session.first
    return session


def built_events(channel) -> list[dict]:
    events = []
    while not channel.empty():
        event = channel.get()
        if event and event["type"] == "built":
            events.append(event)
    return events


def test_a_rebuild_reloads_the_page_then_indexes_the_edit(session):
    channel = session.live.subscribe()
    post = session.config.posts / "live.md"
    post.write_text(POST.format(word="BETA"))
    serve._rebuild(session)
    assert session.search_behind and not searchable(session.config.site, "BETA")  # the page first
    serve._index_search(session)  # what the loop does once no save came for INDEX_AFTER seconds
    events = built_events(channel)
    assert len(events) == 1 and events[0]["pages"] == ["/blog/2026/live/"]  # one reload: the search files change no page
    assert "BETA" in (session.output / "blog/2026/live/index.html").read_text() and not session.search_behind
    assert searchable(session.config.site, "BETA") and not searchable(session.config.site, "ALPHA")
    assert searchable(session.output, "BETA")  # the served copy of the bundle too


def test_a_save_during_indexing_is_shown_by_the_indexing_build(session):
    channel = session.live.subscribe()
    (session.config.posts / "live.md").write_text(POST.format(word="GAMMA"))  # saved after the last rebuild began
    serve._index_search(session)
    events = built_events(channel)
    assert [e["pages"] for e in events] == [["/blog/2026/live/"]]
    assert "GAMMA" in (session.output / "blog/2026/live/index.html").read_text()
    assert searchable(session.config.site, "GAMMA")


def test_a_save_that_truncates_then_writes_is_built_once_written(tmp_path):
    """An in-place save empties the file first; on a busy machine the write can come in a
    batch of its own. The loop waits for it rather than building an empty post."""
    root = make_project(tmp_path / "p", {"live.md": POST.format(word="ALPHA")})
    config = load_config(root)
    watcher = serve.Watcher(config)
    watcher.update(config, [])
    post = config.posts / "live.md"
    try:
        time.sleep(0.3)  # the watch is running
        post.write_text("")
        first = watcher.wait(timeout=10)
        assert post in first
        threading.Timer(0.15, post.write_text, args=(POST.format(word="BETA"),)).start()
        began = time.monotonic()
        changed = serve.settled(first, watcher)
        assert post in changed and "BETA" in post.read_text()
        assert 0.1 < time.monotonic() - began < serve.SETTLE_SECONDS + 1
        post.write_text("")  # emptied for good: built as it is, after the patience
        assert post in serve.settled(watcher.wait(timeout=10), watcher, patience=0.2)
        assert post.read_text() == ""
    finally:
        watcher.stop()


def test_the_open_page_hears_a_sweeps_progress_and_which_point_runs(tmp_path):
    """A sweep's points report cells under their label ('slug wd=0.1,seed=2'): the banner names the
    post, the sweep's progress and the point, not a post called by the label."""
    from labbook import source
    from labbook.sweep import Progress

    config = load_config(make_project(tmp_path / "p"))
    post, _ = source.parse("---\ntitle: S\ndate: 2026-03-01\n---\n\nx\n", "posts/s.md")
    live = serve.Live()
    reporter = serve._LiveReporter(ConsoleReporter(quiet=True), live, config)
    reporter.executing([post])
    channel = live.subscribe()
    progress = Progress(total=4, workers=2)
    reporter.points(post, progress)
    reporter.cell("s wd=0.1,seed=2", 0, 2)
    events = [channel.get(timeout=5) for _ in range(3)][1:]
    assert [(e["path"], e["url"], e["points"], e["point"]) for e in events] == [
        ("posts/s.md", "/blog/2026/s/", "points 0/4 · ETA …", ""),
        ("posts/s.md", "/blog/2026/s/", "points 0/4 · ETA …", "wd=0.1,seed=2")]
    reporter.cell("s", 1, 3)  # a post of its own: no point, no sweep progress
    alone = channel.get(timeout=5)
    assert {k: alone[k] for k in ("cell", "total", "point", "points")} == {"cell": 2, "total": 3, "point": "", "points": ""}
