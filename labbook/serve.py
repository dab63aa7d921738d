"""Serve: the site on localhost while the author writes; rebuilt on every save, and the open
page reloads by itself.

Owns the dev server. One build at start; then a watch of the posts, the templates, the input
files the posts declared or were seen to read, and pyproject.toml (an edit reloads
[tool.labbook]; a broken one is shown, and the last good site stays served). Each change runs
`build.build` (which re-renders only changed posts and executes only changed code) and renders
the site files it wrote into the preview folder (`preview.render_html`). Pages served here,
and only here, carry a small script listening to server-sent events: it reloads the page when
the page changed, shows "running cell i/n" while a post runs, and a failed post shows its
error, the cell and `file:line` above its last good version. Writes nothing but through
build (site/) and render_html (the preview folder under .labbook/).
"""

from __future__ import annotations

import contextlib
import errno
import html
import http.server
import json
import os
import queue
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .config import Config
from .errors import ConfigError, ExecutionError, LabbookError
from .terminal import escape, terminal_text

__all__ = ["serve", "bind", "Live", "LIVE_SCRIPT", "EVENTS", "pages_of"]

EVENTS = "/_labbook/events"
"""The server-sent events of the dev server (never part of a published site)."""
_SCRIPT = "/_labbook/live.js"
_ERRORS = "/_labbook/errors"
_POST_FILE = re.compile(r"^_posts/(?P<year>\d{4})-\d{2}-\d{2}-(?P<slug>.+)\.html$")
_EVERY_PAGE = ("_layouts/", "_includes/", "_config.yml", "assets/css/")
PORT_TRIES = 20
"""A busy port: the next ones are tried, up to this many."""
WATCH_STEP_MS = 20
"""A save is built once no other change came for this long (editors write in bursts)."""

SETTLE_SECONDS = 0.5
"""The longest a save that left a changed file empty may take to write it: a save in place
truncates the file, then writes it (vim's backupcopy, Python's write_text), and on a busy
machine the two can come in separate batches. Building in between would show an empty post."""


# --- what the open pages are told ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """A post that failed in the last build, as its page shows it."""

    path: str
    slug: str
    message: str
    location: str
    """`posts/x.md:14`, or the path alone."""
    cell: int | None = None
    code: tuple[tuple[int, str], ...] = ()
    """The failing cell's lines, numbered as in the post file."""
    line: int | None = None
    traceback: str = ""
    kept: bool = False
    """Its last good version is still published (and shown under the error)."""


@dataclass(slots=True)
class Live:
    """The dev server's state, shared by the build loop and the request threads."""

    server_id: str = field(default_factory=lambda: os.urandom(4).hex())
    version: int = 0
    failures: dict[str, Failure] = field(default_factory=dict)
    problem: str = ""
    """Why the whole site could not be rebuilt (a broken pyproject.toml, …): shown on every page."""
    running: dict[str, Any] | None = None
    builds: int = 0
    """Builds finished since the server started (0: the first one is still running)."""
    _subscribers: list[queue.SimpleQueue[dict[str, Any] | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    @property
    def tag(self) -> str:
        """Changes whenever a page may have changed: the open page compares it with its own."""
        return f"{self.server_id}-{self.version}"

    def subscribe(self) -> queue.SimpleQueue[dict[str, Any] | None]:
        channel: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        with self._lock:
            self._subscribers.append(channel)
            channel.put({"type": "hello", "version": self.tag, "running": self.running, "builds": self.builds})
        return channel

    def unsubscribe(self, channel: queue.SimpleQueue[dict[str, Any] | None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(channel)

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            for channel in self._subscribers:
                channel.put(event)

    def close(self) -> None:
        """End every event stream (the server is stopping)."""
        with self._lock:
            self.closed = True
            for channel in self._subscribers:
                channel.put(None)

    def cell(self, path: str, url: str, index: int, total: int, point: str = "") -> None:
        """A cell started; in a sweep, `point` says whose (and the sweep's progress, once known, stays)."""
        previous = self.running or {}
        self.running = {"path": path, "url": url, "cell": index + 1, "total": total, "point": point,
                        "points": previous.get("points", "") if point and previous.get("path") == path else ""}
        self.publish({"type": "running", **self.running})

    def points(self, path: str, url: str, line: str) -> None:
        """A sweep's progress: `points 12/64 · 1 failed · ETA 1:05`."""
        self.running = {**(self.running or {"cell": 0, "total": 0, "point": ""}), "path": path, "url": url,
                        "points": line}
        self.publish({"type": "running", **self.running})

    def built(self, pages: Sequence[str], failures: dict[str, Failure], problem: str, executed: int,
              seconds: float) -> None:
        """A build ended: pages whose content (or error panel) changed reload."""
        changed = list(pages)
        if failures != self.failures or problem != self.problem:
            changed.append("*")  # every page shows the list of failures
        self.failures, self.problem, self.running = failures, problem, None
        self.builds += 1
        if changed:
            self.version += 1
        self.publish({"type": "built", "version": self.tag, "builds": self.builds, "pages": sorted(set(changed)),
                      "executed": executed, "failed": sorted(f.path for f in failures.values()),
                      "seconds": round(seconds, 3)})


# --- the pages: files of the preview folder, with the live script in --------------------------------


LIVE_SCRIPT = """(() => {
  const me = document.currentScript;
  const version = me.dataset.version;
  const here = location.pathname.replace(/index\\.html$/, "");
  let banner = null;
  function show(text) {
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "labbook-running";
      banner.setAttribute("role", "status");
      banner.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:9999;padding:.45em 1em;" +
        "font:600 14px/1.4 system-ui,sans-serif;background:#2b5fab;color:#fff;box-shadow:0 -1px 6px #0004";
      document.body.appendChild(banner);
    }
    banner.textContent = text;
  }
  function hide() { if (banner) { banner.remove(); banner = null; } }
  function running(event) {
    const mine = event.url === here ? "this post" : event.path;
    const cell = `cell ${event.cell}/${event.total}`;
    const point = event.point ? `${event.points ? event.points + "; " : ""}point ${event.point}, ${cell}` : "";
    const where = point || event.points || cell;
    show(`running ${mine}: ${where} (the last good version stays until it is done)`);
  }
  const source = new EventSource(me.dataset.events);
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "hello") {
      document.documentElement.dataset.labbookLive = "connected";
      if (event.version !== version) location.reload();
      else if (event.running) running(event.running);
    } else if (event.type === "running") {
      running(event);
    } else if (event.type === "built") {
      if (event.pages.includes("*") || event.pages.includes(here)) location.reload();
      else hide();
    }
  };
})();
"""

_PANEL_STYLE = """<style>
.labbook-dev { margin: 0 0 1.5rem; padding: .8rem 1rem; border: 2px solid #b3261e; border-radius: 6px;
  background: #fdf0ef; color: #1d1d1f; font: 15px/1.45 system-ui, sans-serif; }
.labbook-dev h2 { margin: 0 0 .4rem; font-size: 1.05rem; color: #b3261e; }
.labbook-dev pre { overflow-x: auto; margin: .5rem 0; padding: .5rem; background: #fff; border: 1px solid #e3c5c2;
  font: 13px/1.4 ui-monospace, monospace; }
.labbook-dev .ln { display: inline-block; min-width: 3.5em; color: #888; user-select: none; }
.labbook-dev .hit { background: #f9d6d3; font-weight: 700; }
.labbook-dev ul { margin: .3rem 0; padding-left: 1.2rem; }
</style>"""


def _panel(failure: Failure, *, here: bool) -> str:
    """A failed post: the error, the cell with the post's own line numbers, the traceback."""
    e = html.escape
    heading = ("This post failed to build; its last good version is shown below" if failure.kept and here else
               "This post failed to build" if here else f"{failure.path} failed to build")
    code = "".join(
        f'<span class="{"hit" if number == failure.line else ""}"><span class="ln">{number}</span>{e(text)}</span>\n'
        for number, text in failure.code)
    parts = [f'<section class="labbook-dev labbook-error" role="alert" data-post="{e(failure.path)}">',
             f"<h2>✗ {e(heading)}</h2>", f"<p><code>{e(failure.location)}</code>: {e(failure.message)}</p>"]
    if code:
        parts.append(f'<pre class="labbook-cell">{code}</pre>')
    if failure.traceback:
        parts.append(f'<pre class="labbook-traceback">{e(failure.traceback)}</pre>')
    parts.append("</section>")
    return "\n".join(parts)


def _notices(live: Live, slug: str | None, errors_url: str) -> str:
    """What a page shows above its content: its own failure in full, the others in a list."""
    parts = []
    if live.problem:
        parts.append('<section class="labbook-dev labbook-problem" role="alert"><h2>✗ The site could not be '
                     'rebuilt; this is the last good version</h2>'
                     f"<pre>{html.escape(live.problem)}</pre></section>")
    own = live.failures.get(slug) if slug else None
    if own is not None:
        parts.append(_panel(own, here=True))
    others = [f for s, f in sorted(live.failures.items()) if s != slug]
    if others:
        items = "".join(f"<li><code>{html.escape(f.location)}</code>: {html.escape(f.message)}</li>" for f in others)
        other = "other " if own is not None else ""
        parts.append(f'<section class="labbook-dev labbook-failures" role="alert"><h2>✗ {len(others)} {other}'
                     f'post{"s" * (len(others) != 1)} failed (<a href="{errors_url}">details</a>)</h2>'
                     f"<ul>{items}</ul></section>")
    return _PANEL_STYLE + "\n".join(parts) if parts else ""


def inject(page: str, live: Live, slug: str | None, baseurl: str) -> str:
    """A page as served here: notices at the top of <main>, the live script at the end of <body>."""
    notices = _notices(live, slug, _ERRORS)
    if notices:
        page = page.replace("<main>", "<main>\n" + notices, 1) if "<main>" in page else notices + page
    script = (f'<script src="{_SCRIPT}" data-version="{live.tag}" data-events="{EVENTS}"></script>\n')
    return page.replace("</body>", script + "</body>", 1) if "</body>" in page else page + script


def _slug_of_url(path: str) -> str | None:
    match = re.match(r"^/blog/\d{4}/([^/]+)/(?:index\.html)?$", path)
    return urllib.parse.unquote(match.group(1)) if match else None


class _Server(http.server.ThreadingHTTPServer):
    block_on_close = False  # event streams end with the process
    daemon_threads = True
    live: Live
    output: Path
    baseurl: str


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a reload always shows the file as it is now
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
        path = urllib.parse.urlsplit(self.path).path
        if path == EVENTS and not getattr(self, "_head", False):
            return self._events()
        if path == _SCRIPT:
            return self._send(LIVE_SCRIPT.encode(), "text/javascript; charset=utf-8")
        if path == _ERRORS:
            return self._errors()
        baseurl = self.server.baseurl
        if baseurl and path != baseurl and not path.startswith(baseurl + "/"):
            return self._not_found()
        local = path[len(baseurl):] or "/"
        target = Path(self.translate_path(local))
        if target.is_dir():
            if not local.endswith("/"):
                self.send_response(301)
                self.send_header("Location", path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            target = target / "index.html"
        if not target.is_file():
            return self._not_found()
        if target.suffix == ".html":
            page = target.read_text(encoding="utf-8", errors="replace")
            page = inject(page, self.server.live, _slug_of_url(local), baseurl)
            return self._send(page.encode(), "text/html; charset=utf-8")
        self.path = local
        del self.headers["If-Modified-Since"]  # never a 304: the file may have changed within the second
        return super().do_HEAD() if getattr(self, "_head", False) else super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802 - the headers a GET would send, without its body
        self._head = True
        self.do_GET()

    def list_directory(self, path: Any) -> None:
        self._not_found()
        return None

    def translate_path(self, path: str) -> str:
        self.directory = str(self.server.output)
        return super().translate_path(path)

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not getattr(self, "_head", False):
            self.wfile.write(body)

    def _not_found(self) -> None:
        """A page with the live script: it turns into the page as soon as a build writes it."""
        body = ("<!doctype html><html><head><meta charset='utf-8'><title>Not found</title></head><body><main>"
                "<h1>Not found</h1><p>No page here (yet): a post appears once it builds.</p></main></body></html>")
        local = urllib.parse.urlsplit(self.path).path[len(self.server.baseurl):]
        self._send(inject(body, self.server.live, _slug_of_url(local), self.server.baseurl).encode(),
                   "text/html; charset=utf-8", 404)

    def _errors(self) -> None:
        live = self.server.live
        panels = "\n".join(_panel(f, here=False) for _, f in sorted(live.failures.items())) or "<p>No post failed.</p>"
        body = (f"<!doctype html><html><head><meta charset='utf-8'><title>Build errors</title>{_PANEL_STYLE}</head>"
                f"<body><main><h1>Build errors</h1>{panels}</main></body></html>")
        self._send(inject(body, live, None, self.server.baseurl).encode(), "text/html; charset=utf-8")

    def _events(self) -> None:
        live = self.server.live
        channel = live.subscribe()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            while True:
                try:
                    event = channel.get(timeout=15)
                except queue.Empty:
                    self.wfile.write(b": still here\n\n")  # keeps proxies and the browser from giving up
                    self.wfile.flush()
                    continue
                if event is None:
                    return
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
        except OSError:  # the page went away
            pass
        finally:
            live.unsubscribe(channel)


def bind(port: int, output: Path, live: Live, baseurl: str, host: str = "127.0.0.1") -> tuple[_Server, str]:
    """The HTTP server on `port`, or on the next free one; and a line saying so when it moved.

    Raises:
        ConfigError: the port is not one (1-65535), needs privileges, or no port near it is free.
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port: choose one from 1024 to 65535")
    for candidate in range(port, min(port + PORT_TRIES, 65536)):
        try:
            server = _Server((host, candidate), _Handler)
        except PermissionError:
            raise ConfigError(f"port {candidate} needs administrator rights: choose one from 1024 to 65535, "
                              "e.g. --port 8000") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            raise ConfigError(f"cannot serve on {host}:{candidate}: {exc.strerror or exc}") from None
        server.live, server.output, server.baseurl = live, output, baseurl
        note = f"port {port} is busy; serving on port {candidate}" if candidate != port else ""
        return server, note
    raise ConfigError(f"ports {port}-{candidate} are all busy: choose another with --port")


# --- which pages a build changed -------------------------------------------------------------------------


def pages_of(names: Iterable[str], site: Path, baseurl: str) -> list[str]:
    """The URLs whose page a set of changed site files alters ("*": every page)."""
    pages: set[str] = set()
    for name in names:
        if name.startswith(_EVERY_PAGE):
            return ["*"]
        match = _POST_FILE.match(name)
        if match:
            pages.add(f"{baseurl}/blog/{match['year']}/{match['slug']}/")
        elif name.startswith("assets/posts/"):
            slug = name.split("/")[2]
            pages.update(f"{baseurl}/blog/{m['year']}/{slug}/" for m in map(_POST_FILE.match, _post_names(site, slug))
                         if m)
        elif name == "index.html" or name.endswith("/index.html"):
            pages.add(f"{baseurl}/{name.removesuffix('index.html')}")
    return sorted(pages)


def _post_names(site: Path, slug: str) -> list[str]:
    posts = site / "_posts"
    return [f"_posts/{p.name}" for p in posts.glob(f"*-{slug}.html")] if posts.is_dir() else []


# --- failures, for the pages -------------------------------------------------------------------------------


def failures_of(report: Any, config: Config) -> dict[str, Failure]:
    """The failed posts of a build report, each with its cell's code when a cell failed."""
    from . import source

    found: dict[str, Failure] = {}
    for outcome in report.outcomes:
        error = outcome.error
        if error is None:
            continue
        path = str(outcome.path)
        try:
            slug = source.slug_of(PurePosixPath(path))
        except LabbookError:
            slug = path
        cell_index = error.cell if isinstance(error, ExecutionError) else None
        code: tuple[tuple[int, str], ...] = ()
        if cell_index is not None:
            with contextlib.suppress(LabbookError, OSError):
                post, _ = source.read(config.root / path, config)
                cell = next(c for c in post.cells if c.index == cell_index)
                code = tuple((cell.line + n, terminal_text(text)) for n, text in enumerate(cell.text.split("\n")))
        message = terminal_text(error.message if isinstance(error, LabbookError) else str(error))
        location = error.location if isinstance(error, LabbookError) and error.location else path
        found[slug] = Failure(
            path=path, slug=slug, message=message, location=location, cell=cell_index, code=code,
            line=getattr(error, "line", None), kept=outcome.status == "kept-last-good",
            traceback=terminal_text(getattr(error, "traceback", "") or ""),
        )
    return found


# --- the watch ------------------------------------------------------------------------------------------


class Watcher:
    """The files a rebuild depends on, watched with watchfiles (inotify on Linux).

    Folders of posts, templates and input files are watched recursively; the project root
    alone (pyproject.toml, inputs at the top) is not, so .venv/ and .git/ cost nothing.
    `update` follows the inputs that builds find the posts reading.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.changes: queue.SimpleQueue[set[Path]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watched: tuple[frozenset[Path], ...] = (frozenset(), frozenset())

    def update(self, config: Config, inputs: Iterable[str]) -> None:
        """Watch what `config` and these input files (root-relative) need; restart if it changed."""
        self.config = config
        folders = {p for p in (config.posts, config.templates) if p.is_dir()}
        top = {config.root}
        for name in inputs:
            parent = (config.root / name).parent
            if parent == config.root:
                continue
            if not any(parent.is_relative_to(f) for f in folders) and parent.is_dir() and self._ours(parent):
                folders.add(parent)
        folders = {f for f in folders if not any(f != g and f.is_relative_to(g) for g in folders)}
        wanted = (frozenset(folders), frozenset(top))
        if wanted != self._watched:
            self.stop()
            self._stop = threading.Event()
            self._watched = wanted
            self._threads = [self._start(sorted(folders), True), self._start(sorted(top), False)]

    def _ours(self, path: Path) -> bool:
        """Not a build output: site/, .labbook/ (the preview, the cache)."""
        return not any(path.is_relative_to(p) for p in (self.config.site, self.config.cache))

    def _start(self, paths: list[Path], recursive: bool) -> threading.Thread:
        thread = threading.Thread(target=self._watch, args=(paths, recursive, self._stop), daemon=True,
                                  name="labbook-watch")
        thread.start()
        return thread

    def _watch(self, paths: list[Path], recursive: bool, stop: threading.Event) -> None:
        if not paths:
            return
        from watchfiles import DefaultFilter, watch

        default = DefaultFilter()

        def wanted(change: Any, name: str) -> bool:
            return default(change, name) and self._ours(Path(name))

        for batch in watch(*paths, watch_filter=wanted, recursive=recursive, step=WATCH_STEP_MS, debounce=400,
                           stop_event=stop, rust_timeout=1000, raise_interrupt=False):
            self.changes.put({Path(name) for _, name in batch})

    def wait(self, timeout: float | None = None) -> set[Path]:
        """The next batch of changed paths (and any that came with it); empty after `timeout`."""
        try:
            changed = self.changes.get(timeout=timeout)
        except queue.Empty:
            return set()
        with contextlib.suppress(queue.Empty):
            while True:
                changed |= self.changes.get_nowait()
        return changed

    def stop(self) -> None:
        self._stop.set()


def settled(changed: set[Path], watcher: Watcher, patience: float = SETTLE_SECONDS) -> set[Path]:
    """`changed`, and what changes while any of those files is still empty (see SETTLE_SECONDS);
    after `patience` seconds an empty file is taken as it is: the author emptied it."""
    deadline = time.monotonic() + patience
    while any(_empty_file(path) for path in changed):
        left = deadline - time.monotonic()
        more = watcher.wait(timeout=left) if left > 0 else set()
        if not more:
            break
        changed |= more
    return changed


def _empty_file(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:  # gone, or not readable: the build says so
        return False


def _known_inputs(config: Config, seen: dict[Path, tuple[int, list[str]]]) -> set[str]:
    """Input files of the published runs (declared or seen read): the watch follows them.
    `seen` keeps each run.json's inputs by mtime, so a rebuild parses only what changed."""
    names: set[str] = set()
    posts = config.site / "assets" / "posts"
    for record in posts.glob("*/run.json") if posts.is_dir() else ():
        try:
            mtime = record.stat().st_mtime_ns
            if record not in seen or seen[record][0] != mtime:
                seen[record] = (mtime, list(json.loads(record.read_text(encoding="utf-8")).get("inputs", {})))
        except (OSError, ValueError, AttributeError):
            continue
        names.update(seen[record][1])
    return names


# --- the loop ---------------------------------------------------------------------------------------------


class _LiveReporter:
    """The build's reporter, for the terminal and for the open pages (cell progress)."""

    def __init__(self, console: Any, live: Live, config: Config) -> None:
        self.console, self.live, self.config = console, live, config
        self.posts: dict[str, tuple[str, str]] = {}

    def stage(self, name: str, seconds: float) -> None:
        self.console.stage(name, seconds)

    def executing(self, posts: Sequence[Any]) -> None:
        for post in posts:
            url = f"{self.config.baseurl}/blog/{post.meta.date.year}/{post.slug}/"
            self.posts[post.slug] = (str(post.path), url)
        self.console.executing(posts)

    def cell(self, slug: str, index: int, total: int) -> None:
        """`slug` is a post's, or a sweep point's label: 'slug wd=0.1,seed=2'."""
        post_slug, _, point = slug.partition(" ")
        path, url = self.posts.get(post_slug, (post_slug, ""))
        self.live.cell(path, url, index, total, point)
        self.console.cell(slug, index, total)

    def executed(self, post: Any, seconds: float, sweep: Any = None) -> None:
        self.console.executed(post, seconds, sweep)

    def points(self, post: Any, progress: Any, finished: str = "") -> None:
        path, url = self.posts.get(post.slug, (str(post.path), ""))
        self.live.points(path, url, progress.line())
        self.console.points(post, progress, finished)

    def done(self, outcome: Any) -> None:
        self.console.done(outcome)

    def warning(self, message: str) -> None:
        self.console.warning(message)

    def detail(self, message: str) -> None:
        self.console.detail(message)


@dataclass(slots=True)
class _Session:
    """What the loop carries from one build to the next."""

    config: Config
    overrides: dict[str, Any]
    output: Path
    live: Live
    console: Any
    inputs_seen: dict[Path, tuple[int, list[str]]] = field(default_factory=dict)
    first: bool = True
    search_behind: bool = False
    """The last rebuild left the search index behind: it is brought up to date once the author pauses."""


def _rebuild(session: _Session) -> None:
    """Build, render what the build wrote into the preview, tell the open pages. Never raises
    (but an interrupt): a failed build is shown, and the last good site stays served."""
    from .build import build
    from .preview import render_html

    began = time.perf_counter()
    config, live = session.config, session.live
    deferred = not session.first  # the first build indexes the site; later ones show the edit first
    try:
        report = build(config, reporter=_LiveReporter(session.console, live, config), search=not deferred)
        session.console.stop()
        changed = [*report.change.written, *report.change.deleted]
        everything = session.first or any(name.startswith(_EVERY_PAGE) for name in changed)
        render_html(config, session.output, only=None if everything else changed)
    except Exception as error:  # noqa: BLE001 - the server outlives any one build; the page says why
        session.console.stop()
        message = _said(error)
        session.console.err.print(f"[red]✗[/] {escape(message)}", markup=True)
        live.built([], live.failures, terminal_text(message), 0, time.perf_counter() - began)
        return
    session.first = False
    seconds = time.perf_counter() - began
    failures = failures_of(report, config)
    live.built(pages_of(changed, config.site, config.baseurl) if changed else [], failures, "", report.executed,
               seconds)
    if changed or failures or report.executed:
        failed = f", {len(failures)} failed" if failures else ""
        session.console.err.print(f"rebuilt in {seconds:.2f} s: {report.executed} executed{failed}, "
                                  f"{len(changed)} site file{'s' * (len(changed) != 1)} changed")
    session.search_behind = session.search_behind or bool(deferred and changed)


def _said(error: Exception) -> str:
    """A failed build in one line: labbook's own message, or anything else as a bug in labbook."""
    return str(error) if isinstance(error, LabbookError) else f"bug in labbook: {type(error).__name__}: {error}"


INDEX_AFTER = 0.3
"""Seconds without a save before serve indexes the last edits for search: the open page reloads
and fetches its new version first, without an indexing build beside it."""


def _index_search(session: _Session) -> None:
    """After the open pages reloaded: the search bundle brought up to date by a second build.
    It executes nothing (no post is chosen: one that failed is left as published, not run twice)."""
    from .build import build
    from .preview import render_html

    began = time.perf_counter()
    session.search_behind = False
    try:
        report = build(session.config, only=())
        changed = [*report.change.written, *report.change.deleted]
        render_html(session.config, session.output, only=changed)
    except Exception as error:  # noqa: BLE001 - the server outlives any one build; the next save tries again
        message = _said(error)
        session.console.err.print(f"[red]✗[/] search index not updated: {escape(message)}", markup=True)
        return
    pages = pages_of(changed, session.config.site, session.config.baseurl)
    if pages:  # a save that came while the index was built, with a cached run: its page changed too
        session.live.built(pages, session.live.failures, session.live.problem, 0, time.perf_counter() - began)


def _reload_config(session: _Session) -> bool:
    """pyproject.toml changed: the new [tool.labbook], or its error shown (the last good one stays)."""
    from .config import load_config

    try:
        config = load_config(session.config.root, **session.overrides)
    except ConfigError as error:
        session.console.err.print(f"[red]✗[/] {escape(str(error))}\n  [dim]serving the last good site[/]",
                                  markup=True)
        session.live.built([], session.live.failures, terminal_text(str(error)), 0, 0.0)
        return False
    session.config = config._replace(params=session.config.params)
    return True


def serve(config: Config, *, port: int, console: Any, overrides: dict[str, Any] | None = None, watch: bool = True,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Build once, serve on 127.0.0.1, and rebuild on every change until interrupted.

    Raises:
        ConfigError: the port cannot be used.
    """
    live = Live()
    output = config.cache / "preview"
    output.mkdir(parents=True, exist_ok=True)
    server, note = bind(port, output, live, config.baseurl)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="labbook-http")
    thread.start()
    session = _Session(config, dict(overrides or {}), output, live, console)
    watcher = Watcher(config)
    url = f"http://127.0.0.1:{server.server_address[1]}{config.baseurl}/"
    try:
        if note:
            console.err.print(note)
        if watch:
            watcher.update(config, _known_inputs(config, session.inputs_seen))  # before the build: no edit is missed
        console.err.print(f"serving at {url} — " + ("rebuilding on every save, Ctrl-C to stop" if watch else
                                                     "not watching, Ctrl-C to stop"))
        _rebuild(session)
        if on_ready:
            on_ready(url)
        while watch:
            changed = watcher.wait(timeout=INDEX_AFTER if session.search_behind else None)
            if not changed:
                if session.search_behind:  # a pause: the page reloaded and was fetched; now the index
                    _index_search(session)
                continue
            changed = settled(changed, watcher)
            pyproject = session.config.root / "pyproject.toml"
            if pyproject in changed and not _reload_config(session):
                continue
            _rebuild(session)
            watcher.update(session.config, _known_inputs(session.config, session.inputs_seen))
        else:
            thread.join()
    finally:
        watcher.stop()
        live.close()
        server.shutdown()
        server.server_close()
