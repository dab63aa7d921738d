"""The command line: build, status, check, new. The only place that prints errors and exits.

Exit codes: 0 all good; 1 a post failed (or a check found drift, a broken claim, a stale or new post,
or with --strict a `consistent` one); 2 bad configuration
or usage; 3 another build holds the project; 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import BugError, ConfigError, ExecutionError, LabbookError


def escape(text: str) -> str:
    """User text (paths, messages, tracebacks) is never rich markup: `[tool.labbook]` stays as written."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))


_TERMINAL_CONTROL = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f\x9b]")


def printable(text: str) -> str:
    """Text from a post (its output, its traceback) with terminal control sequences removed: a
    cell must not retitle, recolour or hyperlink the author's terminal."""
    return _TERMINAL_CONTROL.sub("", text)

__all__ = ["main", "ConsoleReporter"]


# --- output ----------------------------------------------------------------------------------------


class ConsoleReporter:
    """Live progress on a terminal (what runs, which cell, how long); plain lines elsewhere."""

    SYMBOLS = {"cached": "·", "unchanged": "·", "skipped": "·", "unpublished": "·", "kept-last-good": "✗"}

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        from rich.console import Console

        self.out = Console(highlight=False, soft_wrap=True, emoji=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
        self.quiet, self.verbose = quiet, verbose
        self.live_ok = self.err.is_terminal and not quiet and not os.environ.get("CI")
        self.running: dict[str, tuple[float, int, int]] = {}
        self.lock = threading.Lock()
        self.live: Any = None

    # the Reporter protocol
    def stage(self, name: str, seconds: float) -> None:
        if self.verbose:
            self.err.print(f"[dim]{name}: {seconds:.2f} s[/]")

    def executing(self, posts: Sequence[Any]) -> None:
        if not self.quiet:
            self.err.print(f"executing {len(posts)} post{'s' * (len(posts) != 1)}…")
        if self.live_ok and self.live is None:
            from rich.live import Live

            self.live = Live(self._table(), console=self.err, refresh_per_second=4, transient=True,
                             get_renderable=self._table)
            self.live.start()

    def cell(self, slug: str, index: int, total: int) -> None:
        with self.lock:
            started = self.running.get(slug, (time.monotonic(), 0, 0))[0]
            self.running[slug] = (started, index, total)
        if not self.live_ok and self.verbose:
            self.err.print(f"  {slug}: cell {index + 1}/{total}")

    def executed(self, post: Any, seconds: float) -> None:
        with self.lock:
            self.running.pop(post.slug, None)
        if not self.quiet:
            self.err.print(f"✓ {escape(str(post.path))} executed ({seconds:.1f} s)", markup=True)

    def done(self, outcome: Any) -> None:
        slug = Path(str(outcome.path)).stem
        with self.lock:
            self.running.pop(slug, None)
        if outcome.status == "executed" or (outcome.status in ("cached", "unchanged", "skipped") and not self.verbose):
            return
        if outcome.error is not None:
            self._print_error(outcome)
            return
        if self.quiet:
            return
        self.err.print(f"{self.SYMBOLS.get(outcome.status, '·')} {escape(str(outcome.path))} {outcome.status}", markup=True)

    def warning(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(message)}", markup=True)

    # helpers
    def _table(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self.lock:
            rows = sorted(self.running.items())
        for slug, (started, index, total) in rows:
            table.add_row(f"[cyan]⠿[/] {slug}", f"cell {index + 1}/{total}", f"{now - started:5.1f} s")
        return table

    def _print_error(self, outcome: Any) -> None:
        error = outcome.error
        kept = outcome.status == "kept-last-good"
        where = "" if error.location else f"{outcome.path}: "
        self.err.print(f"[red]✗[/] {escape(where + str(error))}", markup=True)
        traceback = getattr(error, "traceback", "") if isinstance(error, ExecutionError) else ""
        if isinstance(error, BugError) and self.verbose:
            traceback = str(error.details.get("traceback", ""))
        if traceback:
            self.err.print(_indent(printable(traceback.strip()), "    "), markup=False, highlight=False)
        if kept:
            self.err.print("    [dim]kept the last good published version of this post[/]", markup=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# --- commands ------------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> Any:
    from .config import load_config

    overrides = {
        "posts": getattr(args, "posts", None),
        "site": getattr(args, "site", None),
        "jobs": getattr(args, "jobs", None),
        "scheduler": getattr(args, "scheduler", None),
    }
    return load_config(args.root, **overrides)


def _selected(args: argparse.Namespace, config: Any) -> list[Path] | None:
    if not args.post:
        return None
    paths = []
    for name in args.post:
        candidates = [Path(name), config.root / name, config.posts / name]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise ConfigError(f"no such post: {name}", hint=f"posts are files like {config.relative(config.posts)}/<slug>.md")
        paths.append(path)
    return paths


def cmd_build(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .build import build

    config = _config(args)
    report = build(config, only=_selected(args, config), force=args.force, prune=args.prune, wait=not args.no_wait,
                   reporter=reporter)
    reporter.stop()
    for claim in report.broken_claims:
        detail = f" ({claim.message})" if claim.message else ""
        reporter.err.print(f"[red]✗[/] {escape(f'{claim.path}: claim broken: {claim.claim}{detail}')}", markup=True)
    counts = {s: report.count(s) for s in ("executed", "cached", "unchanged", "skipped", "unpublished")}
    failed = len(report.failed)
    built = sum(counts[s] for s in ("executed", "cached", "unchanged")) + failed
    summary = f"built {_count(built, 'post')} ({counts['executed']} executed, {counts['cached'] + counts['unchanged']} cached"
    summary += f", {counts['skipped']} left as published" if counts["skipped"] else ""
    summary += f", {counts['unpublished']} drafts" if counts["unpublished"] else ""
    summary += ")"
    if failed:
        summary += f", {failed} failed"
    if report.broken_claims:
        summary += f", {_count(len(report.broken_claims), 'claim')} broken"
    summary += (f"; {_count(len(report.change.written), 'file')} written, {len(report.change.deleted)} deleted"
                f" → {config.relative(config.site)}/")
    strict_failure = args.strict and bool(report.broken_claims or report.notices)
    code = 1 if failed or strict_failure else 0
    reporter.err.print(summary + (" — exit 1" if code else ""))
    if strict_failure and not failed:
        reporter.err.print("--strict: broken claims and warnings fail the build")
    return code


STATUS_STYLES = {"cached": "green", "stale": "yellow", "new": "cyan", "failing": "red", "invalid": "red", "draft": "dim"}


def cmd_status(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .status import status

    config = _config(args)
    rows = status(config)
    for row in rows:
        reporter.out.print(f"[{STATUS_STYLES[row.state]}]{row.state:<7}[/] {escape(str(row.path))}  "
                           f"[dim]{escape(printable(row.reason))}[/]", markup=True)
    return 1 if any(r.state in ("failing", "invalid") for r in rows) else 0


def cmd_html(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .preview import render_html

    config = _config(args)
    output = args.output if args.output.is_absolute() else Path.cwd() / args.output
    written = render_html(config, output, force=args.force)
    reporter.err.print(f"{_count(written, 'file')} written → {output}")
    return 0


def cmd_serve(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .build import build
    from .preview import render_html, serve

    config = _config(args)
    output = config.cache / "preview"

    def rebuild() -> None:
        report = build(config, reporter=reporter)
        reporter.stop()
        render_html(config, output)
        failed = sum(1 for o in report.outcomes if o.error is not None)
        reporter.err.print(f"rebuilt: {report.executed} executed, {failed} failed")

    rebuild()
    reporter.err.print(f"serving {config.relative(config.site)}/ at http://127.0.0.1:{args.port}{config.baseurl}/"
                       + ("" if args.no_watch else " — rebuilding on every change, Ctrl-C to stop"))
    serve(config, output, args.port, rebuild=None if args.no_watch else rebuild)
    return 0


def cmd_new(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .config import load_config
    from .source import slug_of

    config = load_config(args.root)
    from pathlib import PurePosixPath

    slug = slug_of(PurePosixPath(args.slug + ".md"))
    path = config.posts / f"{slug}.md"
    if path.exists():
        raise ConfigError(f"{config.relative(path)} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NEW_POST.format(title=args.title or slug.replace("-", " ").capitalize(),
                                    date=dt.date.today().isoformat()), encoding="utf-8")
    reporter.out.print(f"created {config.relative(path)}")
    return 0


NEW_POST = """---
title: {title}
date: {date}
description: One line on what was done.
status: open
models: []
data: []
phenomena: []
observables: []
questions:
  - What is not known yet?
---

What was done, in a few sentences, with math where it helps: $y = f(x)$.

```python
#| label: fig-main
#| caption: What the figure shows.
import os
import numpy as np
import matplotlib.pyplot as plt

rng = np.random.default_rng(int(os.environ.get("LABBOOK_SEED", "0")))
x = np.linspace(0, 1, 50)
y = x + 0.05 * rng.standard_normal(x.size)
np.savetxt("result.csv", np.c_[x, y], delimiter=",", header="x,y", comments="")
plt.plot(x, y, ".")
plt.xlabel("x"); plt.ylabel("y")
plt.show()
```
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labbook", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"labbook {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS, help="the project folder (default: found from here upwards)")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only errors and the summary")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="every post, cell and stage, with times")
    parser.add_argument("--root", default=None, help="the project folder (default: found from here upwards)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors and the summary")
    parser.add_argument("-v", "--verbose", action="store_true", help="every post, cell and stage, with times")
    commands = _Commands(parser.add_subparsers(dest="command", required=True), common)

    build = commands.add_parser("build", help="execute what changed and write the site")
    build.add_argument("post", nargs="*", help="build only these posts (the others stay as published)")
    _add_execution_options(build)
    build.add_argument("--force", action="store_true", help="execute again even what is cached")
    build.add_argument("--prune", action="store_true",
                       help="allow unpublishing posts whose files are gone, even most of them")
    build.add_argument("--strict", action="store_true", help="exit 1 on a broken claim or a warning too")
    build.add_argument("--no-wait", action="store_true", help="stop if another build is running, instead of waiting")
    build.set_defaults(run=cmd_build)

    for name in ("status", "list"):
        status = commands.add_parser(name, help="say, per post, whether it is cached, stale (and why) or failing")
        status.add_argument("--posts")
        status.add_argument("--site")
        status.set_defaults(run=cmd_status)

    html = commands.add_parser("html", help="render site/ to plain HTML with the same URLs, no Ruby needed")
    html.add_argument("output", nargs="?", type=Path, default=Path("_html"), help="output folder (default: _html/)")
    html.add_argument("--site", help="the site folder (default: site/)")
    html.add_argument("--force", action="store_true",
                      help="write into a folder that holds files labbook did not write (it still deletes none of them)")
    html.set_defaults(run=cmd_html)

    serve = commands.add_parser("serve", help="build, then serve the pages on localhost and rebuild on every edit")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-watch", action="store_true", help="serve what is built, rebuild nothing")
    _add_execution_options(serve)
    serve.set_defaults(run=cmd_serve)

    new = commands.add_parser("new", help="start a post from a template")
    new.add_argument("slug")
    new.add_argument("--title")
    new.set_defaults(run=cmd_new)

    _add_check(commands)
    _add_blog_commands(commands)
    return parser


def _add_blog_commands(commands: Any) -> None:
    export = commands.add_parser("export", help="write the built posts into an existing Jekyll blog (al-folio)")
    export.add_argument("post", nargs="*", help="export only these posts (the others stay as exported)")
    export.add_argument("--jekyll", type=Path, required=True, metavar="DIR", help="the blog: the folder of its _config.yml")
    export.add_argument("--theme", default="al-folio", help="the blog's theme: al-folio (default) or plain")
    export.add_argument("--assets-dir", metavar="FOLDER", help="where figures go in the blog (al-folio: assets/img/blogs)")
    export.add_argument("--force", action="store_true", help="take over files labbook did not write (overwriting them)")
    export.set_defaults(run=cmd_export)
    imported = commands.add_parser("import", help="bring an existing Jekyll blog's posts into posts/")
    imported.add_argument("--jekyll", type=Path, required=True, metavar="DIR", help="the blog: the folder of its _config.yml")
    imported.add_argument("--force", action="store_true", help="overwrite posts and assets that already exist")
    imported.set_defaults(run=cmd_import_jekyll)


def cmd_export(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .export import export

    config = _config(args)
    report = export(config, args.jekyll, args.theme, figures=args.assets_dir, force=args.force,
                    only=_selected(args, config))
    for path, why in report.skipped:
        reporter.err.print(f"[yellow]not exported:[/] {escape(path)}: {escape(why)}", markup=True)
    for warning in report.warnings:
        reporter.warning(warning)
    reporter.err.print(f"exported {_count(len(report.posts), 'post')} into {args.jekyll}: "
                       f"{_count(len(report.written), 'file')} written, {len(report.deleted)} removed, "
                       f"{report.unchanged} unchanged" + (" — exit 1" if report.skipped else ""))
    return 1 if report.skipped else 0


def cmd_import_jekyll(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    """`labbook import --jekyll DIR` (a handler cannot be called `import`)."""
    from .importer import import_jekyll

    config = _config(args)
    report = import_jekyll(config, args.jekyll, force=args.force)
    for item in report.imported:
        reporter.out.print(f"[green]imported[/] {escape(item.source)} → {escape(item.post)}"
                           + (f" (+{_count(len(item.assets), 'image')})" if item.assets else ""), markup=True)
    for note in report.attention:
        reporter.warning(note)
    reporter.err.print(f"imported {_count(len(report.imported), 'post')}; {_count(len(report.attention), 'note')} "
                       "to look at; run `labbook build` next")
    return 0


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--posts", help="folder of posts (default: posts/)")
    parser.add_argument("--site", help="the site folder (default: site/)")
    parser.add_argument("-j", "--jobs", type=int, help="kernels at once (default: one per core)")
    parser.add_argument("--scheduler", help="run kernels on this Dask cluster: tcp://host:8786")


class _Commands:
    """Sub-commands that also accept the global options after their name (`labbook build -q`)."""

    def __init__(self, subparsers: Any, common: argparse.ArgumentParser) -> None:
        self.subparsers, self.common = subparsers, common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return self.subparsers.add_parser(name, parents=[self.common], **kwargs)


def _add_check(commands: Any) -> None:
    parser = commands.add_parser("check", help="execute again and compare with what site/ publishes")
    parser.add_argument("post", nargs="*", help="check only these posts")
    _add_execution_options(parser)
    parser.add_argument("--seeds", type=int, default=0, metavar="K",
                        help="also run with LABBOOK_SEED = 0…K-1 and report the spread of every result")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report for CI")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write an HTML report with figure diffs")
    parser.add_argument("--record", action="store_true",
                        help="keep each verdict in site/'s run.json and show it on the pages (changes site/)")
    parser.add_argument("--no-record", action="store_true", help=argparse.SUPPRESS)  # the default since --record
    parser.add_argument("--strict", action="store_true",
                        help="fail on `consistent` too: numbers that differ on another platform while the claims hold")
    parser.set_defaults(run=cmd_check)


CHECK_MARKS = {"reproduced": "[green]✓[/]", "consistent": "[green]≈[/]", "drifted": "[yellow]≠[/]",
               "claim broken": "[red]✗[/]", "failed": "[red]✗[/]", "new": "[cyan]?[/]", "stale": "[yellow]?[/]"}


class _CheckProgress:
    """The check's progress on the console reporter: kernels and cells as they run."""

    def __init__(self, reporter: ConsoleReporter) -> None:
        self.reporter = reporter

    def started(self, posts: Sequence[Any], runs: int) -> None:
        if runs:
            self.reporter.executing(posts)

    def cell(self, slug: str, index: int, total: int) -> None:
        self.reporter.cell(slug, index, total)

    def executed(self, post: Any, seconds: float) -> None:
        with self.reporter.lock:
            self.reporter.running.pop(post.slug, None)

    def checked(self, result: Any) -> None:
        pass


def cmd_check(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    """Exit 0 when every post is reproduced or consistent (reproduced only, with --strict)."""
    from . import check

    config = _config(args)
    began = time.perf_counter()
    report = check.check(config, only=_selected(args, config), seeds=args.seeds,
                         diff_dir=(args.report / "work") if args.report else None, reporter=_CheckProgress(reporter))
    reporter.stop()
    for result in report.posts:
        reporter.out.print(f"{CHECK_MARKS[result.verdict]} {escape(str(result.path))} [bold]{result.verdict}[/]",
                           markup=True)
        for line in check.details(result):
            reporter.out.print(f"    {check.printable(line)}", markup=False, highlight=False)
    if args.junit:
        check.write_junit(report, args.junit, strict=args.strict)
    if args.report:  # before recording: the pages' build clears the re-runs' folders
        reporter.err.print(f"report: {check.write_html_report(report, args.report, config)}")
    if args.record:
        report.notes += check.record_verdicts(config, report)
    for note in report.notes:
        reporter.warning(note)
    passed = report.passed(strict=args.strict)
    counts = {v: sum(p.verdict == v for p in report.posts) for v in check.VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "nothing to check"
    reporter.err.print(f"checked {len(report.posts)} posts in {time.perf_counter() - began:.1f} s: {summary}"
                       + ("" if passed else " — exit 1"))
    return 0 if passed else 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs: kernels killed, nothing half-done."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        import signal

        signal.signal(signal.SIGTERM, _on_sigterm)
    reporter = ConsoleReporter(quiet=args.quiet, verbose=args.verbose)
    try:
        return int(args.run(args, reporter))
    except LabbookError as error:
        reporter.stop()
        reporter.err.print(f"[red]error:[/] {escape(str(error))}", markup=True)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        reporter.stop()
        reporter.err.print("interrupted: site/ and the cache are as before or as after each post, never half-written")
        return 143 if isinstance(interrupt, Terminated) else 130
    finally:
        reporter.stop()


if __name__ == "__main__":
    sys.exit(main())
