"""build.py's steps, one at a time: what to look up, what to run once, what a failure keeps,
when a build fails (strict) and when it may unpublish (prune).

Posts are parsed from text and runs made from the model types, so most tests start no
kernel; one test builds twin posts in a real kernel.
"""

from __future__ import annotations

import contextlib
from pathlib import Path, PurePosixPath

import pytest

from labbook import build, cache, site, source
from labbook.config import Config, load_config
from labbook.errors import CellError, LabbookError, SiteError
from labbook.gather import SweepCounts
from labbook.model import Notice, Outcome, Post, Run

from .helpers import make_project, write_post


def post_text(title: str, code: str | None = "x = 1", slug: str | None = None) -> str:
    slug_line = f"slug: {slug}\n" if slug else ""
    cell = f"\n```python\n{code}\n```\n" if code is not None else ""
    return f"---\ntitle: {title}\ndate: 2026-01-02\n{slug_line}---\n\nSome prose.\n{cell}"


def parsed(config: Config, name: str, text: str) -> Post:
    """The post as the read step gives it (its file written, so that lookups can hash it)."""
    path = write_post(config.root, name, text)
    post, _ = source.parse(path.read_text(encoding="utf-8"), f"posts/{name}", config=config)
    return post


def fake_run(post: Post, started: str = "2026-01-02T00:00:00") -> Run:
    """A run record as an execution would leave it, with no outputs: no kernel needed."""
    return Run(key=post.key, cells=(), artifacts=(), inputs={}, basis=post.basis, environment={},
               started=started, seconds=0.5)


def stored(store: cache.Store, run: Run) -> Path:
    return store.put(run, store.new_folder())


class Recorder(build.NullReporter):
    """A reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.outcomes: list[Outcome] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def done(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(make_project(tmp_path / "project"))


def chosen(config: Config, only: list[str] | None = None, force: bool = False) -> build._Chosen:
    paths = None if only is None else [config.posts / name for name in only]
    return build._Chosen(config, paths, force)


# --- _one_per_key ---------------------------------------------------------------------------------


def test_posts_with_the_same_code_share_one_execution(config):
    first = parsed(config, "a.md", post_text("A"))
    twin = parsed(config, "b.md", post_text("B"))
    other = parsed(config, "c.md", post_text("C", "y = 2"))
    assert first.key == twin.key != other.key
    assert build._one_per_key([first, twin, other]) == [first, other]


def test_posts_with_other_code_each_execute(config):
    posts = [parsed(config, f"{n}.md", post_text(n, f"x = {i}")) for i, n in enumerate("abc")]
    assert build._one_per_key(posts) == posts


# --- _look_up -------------------------------------------------------------------------------------


def test_a_post_without_code_is_ready_without_a_kernel(config):
    post = parsed(config, "prose.md", post_text("Prose", code=None))
    ready, missing, skipped = build._look_up([post], cache.Store(config), chosen(config), Recorder())
    assert [(r.post, r.status, r.folder) for r in ready] == [(post, "cached", None)] and not missing and not skipped
    assert ready[0].run.cells == ()


def test_a_post_never_executed_is_to_execute(config):
    post = parsed(config, "a.md", post_text("A"))
    ready, missing, skipped = build._look_up([post], cache.Store(config), chosen(config), Recorder())
    assert (ready, missing, skipped) == ([], [post], [])


def test_a_stored_run_with_the_posts_key_is_used(config):
    post = parsed(config, "a.md", post_text("A"))
    store = cache.Store(config)
    folder = stored(store, fake_run(post))
    ready, missing, _ = build._look_up([post], store, chosen(config), Recorder())
    assert not missing and [(r.status, r.folder, r.run.key) for r in ready] == [("cached", folder, post.key)]


def test_a_stored_run_of_other_code_is_not_used(config):
    old = parsed(config, "a.md", post_text("A", "x = 1"))
    store = cache.Store(config)
    stored(store, fake_run(old))
    new = parsed(config, "a.md", post_text("A", "x = 2"))
    ready, missing, _ = build._look_up([new], store, chosen(config), Recorder())
    assert not ready and missing == [new]


def test_force_executes_a_cached_post_again(config):
    post = parsed(config, "a.md", post_text("A"))
    store = cache.Store(config)
    stored(store, fake_run(post))
    ready, missing, _ = build._look_up([post], store, chosen(config, force=True), Recorder())
    assert not ready and missing == [post]


def test_force_on_some_posts_executes_only_those(config):
    a, b = parsed(config, "a.md", post_text("A", "x = 1")), parsed(config, "b.md", post_text("B", "x = 2"))
    store = cache.Store(config)
    stored(store, fake_run(a))
    stored(store, fake_run(b))
    ready, missing, _ = build._look_up([a, b], store, chosen(config, only=["b.md"], force=True), Recorder())
    assert [r.post for r in ready] == [a] and missing == [b]


def test_a_post_not_chosen_and_not_cached_is_left_as_published(config):
    a, b = parsed(config, "a.md", post_text("A", "x = 1")), parsed(config, "b.md", post_text("B", "x = 2"))
    ready, missing, skipped = build._look_up([a, b], cache.Store(config), chosen(config, only=["a.md"]), Recorder())
    assert (ready, missing, skipped) == ([], [a], [b])


def test_a_corrupt_cache_entry_is_a_warning_and_the_post_executes(config):
    post = parsed(config, "a.md", post_text("A"))
    store = cache.Store(config)
    folder = stored(store, fake_run(post))
    (folder / cache.RUN_FILE).write_text("{ not json", encoding="utf-8")
    reporter = Recorder()
    ready, missing, _ = build._look_up([post], store, chosen(config), reporter)
    assert not ready and missing == [post]
    assert len(reporter.warnings) == 1 and "executing again" in reporter.warnings[0]


# --- _settle: what a failed post keeps -------------------------------------------------------------


def publish_page(config: Config, slug: str, source_file: str) -> None:
    page = config.site / "_posts" / f"2026-01-02-{slug}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"---\ntitle: {slug.title()}\ndate: 2026-01-02\nlabbook:\n  source: {source_file}\n---\n<p>ok</p>\n",
                    encoding="utf-8")


def test_a_failed_post_with_a_published_page_keeps_it(config):
    write_post(config.root, "a.md", post_text("A"))
    publish_page(config, "a", "posts/a.md")
    error = CellError("CellError in cell 1: ValueError: no", path="posts/a.md", line=8)
    reporter = Recorder()
    outcome, summary = build._settle(build._Failure(PurePosixPath("posts/a.md"), error, "k", "a"), config, reporter)
    assert outcome == Outcome(PurePosixPath("posts/a.md"), "kept-last-good", error)
    assert summary is not None and summary.slug == "a" and summary.title == "A"
    assert reporter.outcomes == [outcome]


def test_a_failed_post_never_published_has_nothing_to_keep(config):
    write_post(config.root, "a.md", post_text("A"))
    error = LabbookError("broken")
    outcome, summary = build._settle(build._Failure(PurePosixPath("posts/a.md"), error), config, Recorder())
    assert (outcome.status, outcome.error, summary) == ("failed", error, None)


def test_a_post_that_did_not_even_read_keeps_its_page_by_its_slug_line(config):
    write_post(config.root, "a.md", "---\ntitle: [unclosed\nslug: renamed\n---\n")
    publish_page(config, "renamed", "posts/a.md")
    failure = build._Failure(PurePosixPath("posts/a.md"), LabbookError("front matter is not valid YAML"))
    outcome, summary = build._settle(failure, config, Recorder())
    assert outcome.status == "kept-last-good" and summary is not None and summary.slug == "renamed"


def test_a_page_published_from_another_file_is_not_kept_for_this_one(config):
    write_post(config.root, "a.md", post_text("A"))
    publish_page(config, "a", "posts/old-a.md")
    outcome, summary = build._settle(build._Failure(PurePosixPath("posts/a.md"), LabbookError("x"), slug="a"),
                                     config, Recorder())
    assert outcome.status == "failed" and summary is None


# --- strict: when a build fails --------------------------------------------------------------------


def report(**fields) -> build.BuildReport:
    return build.BuildReport(**fields)


OK = Outcome(PurePosixPath("posts/a.md"), "executed")
FAILED = Outcome(PurePosixPath("posts/b.md"), "failed", LabbookError("no"))
CLAIM = build.BrokenClaim(PurePosixPath("posts/a.md"), "x is small", "x is 3")
WARNING = Notice("a figure has no caption", "posts/a.md", 4)


@pytest.mark.parametrize("fields, strict, code", [
    ({"outcomes": (OK,)}, False, 0),
    ({"outcomes": (OK,)}, True, 0),
    ({"outcomes": (OK, FAILED)}, False, 1),
    ({"outcomes": (OK,), "broken_claims": (CLAIM,)}, False, 0),
    ({"outcomes": (OK,), "broken_claims": (CLAIM,)}, True, 1),
    ({"outcomes": (OK,), "notices": (WARNING,)}, False, 0),
    ({"outcomes": (OK,), "notices": (WARNING,)}, True, 1),
    ({"outcomes": (OK,), "sweeps": (SweepCounts(PurePosixPath("posts/s.md"), 4, 4, 0, (LabbookError("p"),)),)},
     False, 1),
], ids=["ok", "ok-strict", "a-post-failed", "broken-claim", "broken-claim-strict", "warning", "warning-strict",
        "a-sweep-point-failed"])
def test_the_exit_code_of_a_build(fields, strict, code):
    assert report(**fields).exit_code(strict=strict) == code


def test_strict_failure_is_only_claims_and_warnings():
    assert not report(outcomes=(OK, FAILED)).strict_failure(True)
    assert report(broken_claims=(CLAIM,)).strict_failure(True) and not report(broken_claims=(CLAIM,)).strict_failure(False)


# --- prune: when a build may unpublish -------------------------------------------------------------


def pages(*slugs: str) -> set[str]:
    return {f"_posts/2026-01-02-{slug}.html" for slug in slugs}


@pytest.mark.parametrize("published, going, prune, refused", [
    (("a", "b", "c"), ("a",), False, False),  # one of three: a post file deleted on purpose
    (("a", "b", "c"), ("a", "b"), False, True),  # most of them: the wrong --posts folder?
    (("a", "b", "c"), ("a", "b"), True, False),
    (("a", "b"), ("a", "b"), False, True),  # every one
    (("a",), ("a",), False, True),
    (("a",), ("a",), True, False),
    (("a", "b"), ("a",), False, False),  # half: kept as many as it unpublishes
])
def test_unpublishing_most_posts_needs_prune(config, published, going, prune, refused):
    expected = f"unpublish {len(going)} of the {len(published)} published posts"
    with pytest.raises(SiteError, match=expected) if refused else contextlib.nullcontext():
        site._refuse_mass_unpublishing(pages(*published), site.Publication([], {}), sorted(pages(*going)), prune, config)


# --- one real build: twins run once, a failure is told of each twin ---------------------------------


@pytest.mark.kernel
def test_twin_posts_execute_once_and_a_failure_names_each_twins_own_line(tmp_path):
    good = "print('same code')"
    bad = "x = 1\nraise ValueError('no')"
    root = make_project(tmp_path / "project", posts={
        "a.md": post_text("A", good),
        "b.md": post_text("B", good),
        "c.md": post_text("C", bad),
        "d.md": post_text("D", bad).replace("Some prose.\n", "Some prose.\nMore prose.\n\n"),  # two lines more
    })
    result = build.build(load_config(root))
    by_post = {str(o.path): o for o in result.outcomes}
    assert {name: o.status for name, o in by_post.items()} == {
        "posts/a.md": "executed", "posts/b.md": "executed", "posts/c.md": "failed", "posts/d.md": "failed"}
    lines = {name: by_post[name].error.line for name in ("posts/c.md", "posts/d.md")}
    assert lines == {"posts/c.md": 10, "posts/d.md": 12}  # the raise: each post's own line
    assert all(str(by_post[name].error).startswith(f"{name}:") for name in lines)
    assert (root / "site/_posts/2026-01-02-a.html").is_file() and (root / "site/_posts/2026-01-02-b.html").is_file()
    assert len(list((root / ".labbook/runs").glob("*"))) == 1  # a and b: one execution, one stored run


HEAVY = ("labbook.model", "labbook.source", "labbook.site", "labbook.render", "labbook.execute", "labbook.dispatch",
         "yaml", "markdown_it", "jinja2", "pygments", "jupytext", "tomllib", "dataclasses")


def test_a_no_op_build_imports_none_of_the_stages_it_skips(tmp_path):
    """A build that changes nothing imports neither the read, render and write stages nor their
    libraries, nor `dataclasses` (its import and each class it makes were a quarter of a no-op's
    instructions on Python 3.11: the types a no-op uses are NamedTuples), nor tomllib (the
    settings come from .labbook/pyproject.json while pyproject.toml is as it was)."""
    import subprocess
    import sys

    root = make_project(tmp_path / "p", {"a.md": post_text("A", code=None), "b.md": post_text("B", code=None)})
    code = ("import sys; from labbook.cli import main; code = main(['--root', sys.argv[1], '-q', 'build']); "
            f"print(code, sorted(set({HEAVY!r}) & set(sys.modules)))")
    first = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert first.stdout.splitlines()[-1].startswith("0 [") and "labbook.site" in first.stdout  # the first one writes
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True)  # keeps the settings
    again = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert again.stdout.splitlines()[-1] == "0 []", again.stdout + again.stderr
