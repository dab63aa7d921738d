"""The journaled commit: all of a change or none of it, whatever the disk refuses, and a crash finished later."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from labbook import journal
from labbook.errors import PathEscapeError, SiteError

from .helpers import tree


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "a").mkdir(parents=True)
    (root / "a" / "page.html").write_text("old page")
    (root / "a" / "run.json").write_text("old run")
    (root / "gone.txt").write_text("to delete")
    return root


def test_a_commit_puts_and_deletes(folder):
    journal.commit(folder, {"a/page.html": b"new page", "b/new.txt": b"new"}, ["gone.txt"], "site")
    assert tree(folder) == {"a/page.html": b"new page", "a/run.json": b"old run", "b/new.txt": b"new"}
    assert not (folder / journal.JOURNAL).exists() and not (folder / journal.STAGING).exists()


def test_a_rename_the_disk_refuses_undoes_the_whole_commit_and_names_the_file(folder, monkeypatch):
    before = tree(folder)
    real = os.replace

    def refuse_run_json(src, dst):  # as a folder the process may not write into: no entry in or out
        if str(dst).endswith("a/run.json") or str(src).endswith("a/run.json"):
            raise PermissionError(13, "Permission denied", str(src), None, str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_run_json)
    with pytest.raises(SiteError) as caught:
        journal.commit(folder, {"a/page.html": b"new page", "a/run.json": b"new run", "z.txt": b"z"},
                       ["gone.txt"], "site")
    assert caught.value.path == "site/a/run.json" and "Permission denied" in str(caught.value)
    monkeypatch.setattr(os, "replace", real)
    assert tree(folder) == before  # the page is not new while its run.json is old
    assert not (folder / journal.JOURNAL).exists()


def test_a_destination_that_cannot_be_a_folder_fails_cleanly(folder):
    (folder / "blocked").write_text("a file where a folder should be")
    before = tree(folder)
    with pytest.raises(SiteError) as caught:
        journal.commit(folder, {"a/page.html": b"new", "blocked/x.txt": b"x"}, [], "site")
    assert caught.value.path == "site/blocked/x.txt"
    assert tree(folder) == before


def _fsyncs_of_staged_files(monkeypatch) -> list[str]:
    """Records every fsync of a file in the staging area (the journal's own file is written apart)."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if f"{journal.STAGING}/new/" in name:
            synced.append(name)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_the_staged_files_reach_the_disk_in_one_syncfs_on_linux(folder, monkeypatch):
    assert journal._syncfs_call() is not None  # glibc and musl both have it
    calls: list[int] = []
    real = journal._syncfs_call()
    monkeypatch.setattr(journal, "_syncfs_call", lambda: lambda fd: calls.append(fd) or real(fd))
    synced = _fsyncs_of_staged_files(monkeypatch)
    journal.commit(folder, {f"many/{i}.txt": b"x" * i for i in range(40)}, [], "site")
    assert len(calls) == 1 and synced == []
    assert tree(folder)["many/39.txt"] == b"x" * 39


def test_without_syncfs_each_staged_file_is_synced(folder, monkeypatch):
    monkeypatch.setattr(journal, "_syncfs_call", lambda: None)
    synced = _fsyncs_of_staged_files(monkeypatch) if sys.platform.startswith("linux") else None
    journal.commit(folder, {"a/page.html": b"new page", "b/new.txt": b"new"}, [], "site")
    assert synced is None or len(synced) == 2
    assert tree(folder)["b/new.txt"] == b"new"


def test_a_write_back_error_at_the_sync_changes_nothing_and_says_so(folder, monkeypatch):
    import ctypes

    def failing(fd):
        ctypes.set_errno(5)
        return -1

    monkeypatch.setattr(journal, "_syncfs_call", lambda: failing)
    before = tree(folder)
    with pytest.raises(SiteError, match="could not stage the new files: Input/output error") as caught:
        journal.commit(folder, {"a/page.html": b"new page"}, ["gone.txt"], "site")
    assert caught.value.path == f"site/{journal.STAGING}"
    assert tree(folder) == before and not (folder / journal.JOURNAL).exists()


def write_crashed_commit(folder: Path, ops: list[dict], staged: dict[str, bytes]) -> None:
    for name, data in staged.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / journal.JOURNAL).write_text(json.dumps({"version": 2, "ops": ops}))


def test_a_commit_killed_halfway_is_finished_by_the_next_command(folder):
    # the first put was applied (old page in the backup), the second not yet
    (folder / journal.STAGING / "old").mkdir(parents=True)
    os.replace(folder / "a" / "page.html", folder / journal.STAGING / "old" / "0")
    (folder / "a" / "page.html").write_text("new page")
    ops = [{"op": "put", "staged": f"{journal.STAGING}/new/0", "target": "a/page.html", "backup": f"{journal.STAGING}/old/0"},
           {"op": "put", "staged": f"{journal.STAGING}/new/1", "target": "a/run.json", "backup": f"{journal.STAGING}/old/1"},
           {"op": "delete", "target": "gone.txt", "backup": f"{journal.STAGING}/old/2"}]
    write_crashed_commit(folder, ops, {f"{journal.STAGING}/new/1": b"new run"})
    assert journal.recover(folder, "site") is True
    assert tree(folder) == {"a/page.html": b"new page", "a/run.json": b"new run"}


def test_a_crashed_commit_the_disk_still_refuses_is_undone(folder, monkeypatch):
    (folder / journal.STAGING / "old").mkdir(parents=True)
    os.replace(folder / "a" / "page.html", folder / journal.STAGING / "old" / "0")
    (folder / "a" / "page.html").write_text("new page")
    ops = [{"op": "put", "staged": f"{journal.STAGING}/new/0", "target": "a/page.html", "backup": f"{journal.STAGING}/old/0"},
           {"op": "put", "staged": f"{journal.STAGING}/new/1", "target": "a/run.json", "backup": f"{journal.STAGING}/old/1"}]
    write_crashed_commit(folder, ops, {f"{journal.STAGING}/new/1": b"new run"})
    real = os.replace

    def refuse(src, dst):
        if str(dst).endswith("a/run.json") and "new" in str(src):
            raise PermissionError(13, "Permission denied", str(src), None, str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SiteError, match="could not write this file"):
        journal.recover(folder, "site")
    monkeypatch.setattr(os, "replace", real)
    assert tree(folder) == {"a/page.html": b"old page", "a/run.json": b"old run", "gone.txt": b"to delete"}
    assert not (folder / journal.JOURNAL).exists()


def test_a_journal_of_the_first_format_is_rolled_forward(folder):
    (folder / journal.STAGING).mkdir()
    (folder / journal.STAGING / "0").write_text("new page")
    (folder / journal.JOURNAL).write_text(json.dumps(
        {"ops": [["put", f"{journal.STAGING}/0", "a/page.html"], ["delete", "gone.txt"]]}))
    assert journal.recover(folder, "site") is True
    assert tree(folder) == {"a/page.html": b"new page", "a/run.json": b"old run"}


def test_an_unreadable_journal_is_an_error_that_says_what_to_do(folder):
    (folder / journal.JOURNAL).write_text("{not json")
    with pytest.raises(SiteError, match="cannot read the journal") as caught:
        journal.recover(folder, "site")
    assert "delete" in (caught.value.hint or "")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", ""])
def test_names_cannot_leave_the_folder(folder, name):
    with pytest.raises(PathEscapeError):
        journal.commit(folder, {name: b"x"}, [], "site")
    assert not (folder.parent / "x").exists()
