"""The console: what labbook says on a terminal while it works, and the summaries after.

in -> out: what the stages return (BuildReport, CheckReport, a Trial, status rows, export and
import reports) -> lines on stdout and stderr, through rich (imported when first used: a no-op
build never imports it).
Owns: live progress (ConsoleReporter, the terminal side of build's Reporter protocol), every
summary line, and `labbook run`'s cell-by-cell printing. Never: decides an exit code, reads or
writes the project's files. Everything a post produced is printed through terminal.terminal_text.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import BugError, ExecutionError, LabbookError
from .terminal import escape, terminal_text

__all__ = ["ConsoleReporter", "CheckProgress", "count", "shown_params", "show_build", "show_status", "show_check",
           "show_check_summary", "show_trial", "show_run_summary", "show_export", "show_import"]


# --- progress, as it happens ------------------------------------------------------------------------


class ConsoleReporter:
    """Live progress on a terminal (what runs, which cell, how long); plain lines elsewhere."""

    SYMBOLS = {"cached": "·", "unchanged": "·", "skipped": "·", "unpublished": "·", "kept-last-good": "✗"}

    def __init__(self, *, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.live_ok = sys.stderr.isatty() and not quiet and not os.environ.get("CI")
        self.running: dict[str, tuple[float, int, int]] = {}
        self.sweeps: dict[str, str] = {}
        """Sweep posts under way: slug -> 'points 12/64 · 1 failed · ETA 1:05'."""
        self.lock = threading.Lock()
        self.live: Any = None
        self._consoles: dict[bool, Any] = {}

    @property
    def out(self) -> Any:
        """rich's console on stdout, made when first used: a no-op build never imports rich."""
        return self._console(stderr=False)

    @property
    def err(self) -> Any:
        return self._console(stderr=True)

    def _console(self, stderr: bool) -> Any:
        if stderr not in self._consoles:
            from rich.console import Console

            self._consoles[stderr] = Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)
        return self._consoles[stderr]

    def say(self, line: str) -> None:
        """One plain line on stderr (a summary): no markup, so no rich needed."""
        if self._consoles.get(True) is not None:
            self.err.print(line, markup=False)
        else:
            sys.stderr.write(terminal_text(line) + "\n")
            sys.stderr.flush()

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

    def executed(self, post: Any, seconds: float, sweep: Any = None) -> None:
        with self.lock:
            self.running.pop(post.slug, None)
        if not self.quiet:
            what = f"{_sweep_work(sweep)}, " if sweep is not None else ""
            self.err.print(f"✓ {escape(str(post.path))} executed ({what}{seconds:.1f} s)", markup=True)

    def points(self, post: Any, progress: Any, finished: str = "") -> None:
        """A sweep's progress: a live row per sweep post; without a live display, a line per point."""
        with self.lock:
            self.running.pop(finished, None)
            self.sweeps[post.slug] = progress.line()
            if not progress.remaining:
                self.sweeps.pop(post.slug, None)
        if finished and not self.live_ok and not self.quiet:
            self.err.print(f"· {escape(str(post.path))} {escape(finished.split(' ', 1)[-1])}: {progress.line()}",
                           markup=True)

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
        symbol = self.SYMBOLS.get(outcome.status, "·")
        self.err.print(f"{symbol} {escape(str(outcome.path))} {outcome.status}", markup=True)

    def warning(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(message)}", markup=True)

    def detail(self, message: str) -> None:
        if self.verbose:
            self.err.print(f"  {escape(message)}", markup=True)

    # helpers
    def _table(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self.lock:
            rows = sorted(self.running.items())
            sweeps = sorted(self.sweeps.items())
        for slug, line in sweeps:
            table.add_row(f"[cyan]⠿[/] {escape(slug)}", escape(line), "")
        for slug, (started, index, total) in rows:
            table.add_row(f"[cyan]⠿[/] {escape(slug)}", f"cell {index + 1}/{total}", f"{now - started:5.1f} s")
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
            self.err.print(_indent(terminal_text(traceback.strip()), "    "), markup=False, highlight=False)
        if kept:
            self.err.print("    [dim]kept the last good published version of this post[/]", markup=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def error(self, error: LabbookError) -> None:
        """The error that ended a command."""
        self.stop()
        self.err.print(f"[red]error:[/] {escape(str(error))}", markup=True)

    def interrupted(self) -> None:
        self.stop()
        self.err.print(INTERRUPTED)


INTERRUPTED = "interrupted: site/ and the cache are as before or as after each post, never half-written"


def count(number: int, noun: str) -> str:
    """'1 post', '3 posts'."""
    return f"{number} {noun}{'s' * (number != 1)}"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _sweep_work(counts: Any) -> str:
    """What a sweep's build ran: '9 points (1 failed) and the gather', 'the gather; 6 points cached'."""
    points = f"{counts.executed} point{'s' if counts.executed != 1 else ''}" if counts.executed else ""
    if counts.failed:
        points += f" ({len(counts.failed)} failed)"
    if not counts.gathered:
        return points or "nothing"
    if not points:
        return f"the gather; {counts.cached} point{'s' if counts.cached != 1 else ''} cached"
    return f"{points} and the gather"


class CheckProgress:
    """The check's progress on the console reporter: kernels and cells as they run."""

    def __init__(self, reporter: ConsoleReporter) -> None:
        self.reporter = reporter

    def started(self, posts: Sequence[Any], runs: int) -> None:
        if runs:
            self.reporter.executing(posts)

    def cell(self, slug: str, index: int, total: int) -> None:
        self.reporter.cell(slug, index, total)

    def executed(self, post: Any, seconds: float, sweep: Any = None) -> None:
        with self.reporter.lock:
            self.reporter.running.pop(post.slug, None)

    def checked(self, result: Any) -> None:
        pass


# --- summaries ------------------------------------------------------------------------------------


def show_build(reporter: ConsoleReporter, report: Any, config: Any, *, code: int, strict_failure: bool) -> None:
    """What a build did: failed sweep points, broken claims, then one summary line."""
    for error in report.failed_points:
        reporter.err.print(f"[red]✗[/] {escape(str(error).splitlines()[0])}", markup=True)
    for claim in report.broken_claims:
        detail = f" ({claim.message})" if claim.message else ""
        reporter.err.print(f"[red]✗[/] {escape(f'{claim.path}: claim broken: {claim.claim}{detail}')}", markup=True)
    reporter.say(build_summary(report, config) + (" — exit 1" if code else ""))
    if strict_failure and not report.failed:
        reporter.err.print("--strict: broken claims and warnings fail the build")


def build_summary(report: Any, config: Any) -> str:
    """`built 12 posts (2 executed, 10 cached); 3 files written, 0 deleted → site/`."""
    counts = {s: report.count(s) for s in ("executed", "cached", "unchanged", "skipped", "unpublished")}
    failed = len(report.failed)
    built = sum(counts[s] for s in ("executed", "cached", "unchanged")) + failed
    summary = (f"built {count(built, 'post')} ({counts['executed']} executed, "
               f"{counts['cached'] + counts['unchanged']} cached")
    summary += f", {counts['skipped']} left as published" if counts["skipped"] else ""
    summary += f", {counts['unpublished']} drafts" if counts["unpublished"] else ""
    summary += ")"
    if report.sweeps:  # sweep posts read this build: what their points did
        summary += _points_summary(report)
    if failed:
        summary += f", {failed} failed"
    if report.broken_claims:
        summary += f", {count(len(report.broken_claims), 'claim')} broken"
    return summary + (f"; {count(len(report.change.written), 'file')} written, {len(report.change.deleted)} deleted"
                      f" → {config.relative(config.site)}/")


def _points_summary(report: Any) -> str:
    points = [sum(getattr(s, n) for s in report.sweeps) for n in ("points", "executed", "cached")]
    gathers = sum(s.gathered for s in report.sweeps)
    failures = f" ({len(report.failed_points)} failed)" if report.failed_points else ""
    return (f"; points: {points[1]} executed{failures}, {points[2]} cached of {points[0]}; "
            f"{count(gathers, 'gather')} executed")


STATUS_STYLES = {"cached": "green", "stale": "yellow", "new": "cyan", "failing": "red", "invalid": "red",
                 "draft": "dim"}


def show_status(reporter: ConsoleReporter, rows: Iterable[Any]) -> None:
    for row in rows:
        reporter.out.print(f"[{STATUS_STYLES[row.state]}]{row.state:<7}[/] {escape(str(row.path))}  "
                           f"[dim]{escape(row.reason)}[/]", markup=True)


CHECK_MARKS = {"reproduced": "[green]✓[/]", "consistent": "[green]≈[/]", "drifted": "[yellow]≠[/]",
               "claim broken": "[red]✗[/]", "failed": "[red]✗[/]", "new": "[cyan]?[/]", "stale": "[yellow]?[/]"}


def show_check(reporter: ConsoleReporter, report: Any) -> None:
    """Each post's verdict, with what differed."""
    from .check import details

    for result in report.posts:
        reporter.out.print(f"{CHECK_MARKS[result.verdict]} {escape(str(result.path))} [bold]{result.verdict}[/]",
                           markup=True)
        for line in details(result):
            reporter.out.print(f"    {terminal_text(line)}", markup=False, highlight=False)


def show_check_summary(reporter: ConsoleReporter, report: Any, seconds: float, *, passed: bool) -> None:
    """The check's notes, then `checked 3 posts in 12.0 s: 2 reproduced, 1 drifted`."""
    from .check import VERDICTS

    for note in report.notes:
        reporter.warning(note)
    counts = {v: sum(p.verdict == v for p in report.posts) for v in VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "nothing to check"
    if report.without_code:
        summary += f" ({count(report.without_code, 'post')} without code: nothing to run)"
    reporter.err.print(f"checked {count(len(report.posts), 'post')} in {seconds:.1f} s: {summary}"
                       + ("" if passed else " — exit 1"))


def show_export(reporter: ConsoleReporter, report: Any, blog: Path) -> None:
    for path, why in report.skipped:
        reporter.err.print(f"[yellow]not exported:[/] {escape(path)}: {escape(why)}", markup=True)
    for warning in report.warnings:
        reporter.warning(warning)
    reporter.err.print(f"exported {count(len(report.posts), 'post')} into {blog}: "
                       f"{count(len(report.written), 'file')} written, {len(report.deleted)} removed, "
                       f"{report.unchanged} unchanged" + (" — exit 1" if report.skipped else ""))


def show_import(reporter: ConsoleReporter, report: Any) -> None:
    for item in report.imported:
        reporter.out.print(f"[green]imported[/] {escape(item.source)} → {escape(item.post)}"
                           + (f" (+{count(len(item.assets), 'image')})" if item.assets else ""), markup=True)
    for note in report.attention:
        reporter.warning(note)
    reporter.err.print(f"imported {count(len(report.imported), 'post')}; {count(len(report.attention), 'note')} "
                       "to look at; run `labbook build` next")


def show_kernel_installed(reporter: ConsoleReporter, name: str, folder: Path) -> None:
    reporter.out.print(f"installed the Jupyter kernel '{name}' in {escape(str(folder))}")
    reporter.out.print("open a post in Jupyter (with jupytext) or VS Code and choose that kernel: its cells run "
                       "as in a build (LABBOOK_* variables, posts/ on sys.path, a fresh folder under "
                       ".labbook/sessions/)", markup=False)


def shown_params(params: Mapping[str, Any]) -> str:
    """`lr=0.001, wd=1.0`: parameter values as JSON, by name."""
    import json

    return ", ".join(f"{name}={json.dumps(value)}" for name, value in sorted(dict(params).items()))


def show_variant(reporter: ConsoleReporter, params: Mapping[str, Any], site: str) -> None:
    reporter.err.print(f"parameters {escape(shown_params(params))}: a scratch site in "
                       f"{escape(site)}/ (site/ is not touched)")


# --- labbook run: one post's outputs, cell by cell ---------------------------------------------------


def show_run_summary(reporter: ConsoleReporter, trial: Any) -> None:
    """`1 of 2 claims broken; 1 value in the prose failed — exit 1` (nothing when there is nothing to say)."""
    broken, run = trial.broken_claims, trial.run
    claims = sum(1 for c in run.cells if c.claim is not None) if run else 0
    failed_inline = [i for i in trial.post.inline if run and "error" in run.inline.get(i.expression, {"error": ""})]
    summary = []
    if claims:
        summary.append(f"{len(broken)} of {count(claims, 'claim')} broken" if broken else
                       f"{'the claim holds' if claims == 1 else f'all {claims} claims hold'}")
    if failed_inline:
        summary.append(f"{count(len(failed_inline), 'value')} in the prose failed")
    if summary:
        reporter.err.print("; ".join(summary) + (" — exit 1" if broken else ""))


def _shown_path(path: Path) -> str:
    """A path the author can open from here: relative to the current folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def show_trial(reporter: ConsoleReporter, trial: Any) -> None:
    """The run, cell by cell: text and tables, figure and data file paths, claims, inline values."""
    from rich.text import Text

    out, post, run = reporter.out, trial.post, trial.run
    out.print(Text.assemble((str(post.path), "bold"), f" · {_trial_head(trial)}"))
    if trial.sweep:
        out.print(Text(terminal_text(f"one point of the sweep {trial.sweep}: the cells before the gather mark, "
                                     "once; labbook build runs every point, then the gather"), style="dim"))
    if post.settings.params or trial.sweep or post.settings.seed:
        shown = [shown_params(post.settings.params)] if post.settings.params else []
        out.print(Text(terminal_text(f"parameters: {', '.join([*shown, f'seed={post.settings.seed}'])}"), style="dim"))
    results = {r.index: r for r in run.cells} if run else _partial_results(trial.error)
    for cell in post.cells:
        result = results.get(cell.index)
        if result is None:
            continue
        title = f"cell {cell.index + 1} · {post.path}:{cell.line} · {result.seconds:.2f} s"
        out.rule(Text(terminal_text(title), style="cyan"), align="left", characters="─")
        for output in result.outputs:
            _print_output(out, output, trial.folder)
        if result.claim is not None:
            mark, style = ("✓ holds", "green") if result.claim.holds else ("✗ broken", "bold red")
            message = f" ({result.claim.message})" if result.claim.message else ""
            out.print(Text.assemble((mark, style), terminal_text(f" {result.claim.claim}{message}")))
    if run is not None:
        _print_files(out, run, trial.folder)
        _print_observed(out, run, trial.folder)
        _print_inline(out, post, run)
    if trial.error is not None:
        _print_failure(reporter, post, trial.error)


def _trial_head(trial: Any) -> str:
    """What happened to the run, and why it ran: the line under the post's name."""
    if not (trial.post.cells or trial.post.inline):
        return "no code cell: nothing to run"
    first = trial.reason == "never executed"
    if trial.status == "executed":
        return f"executed in {trial.seconds:.1f} s" + (" (its first run)" if first else
                                                       f" ({trial.reason})" if trial.reason else "")
    if trial.status == "cached":
        return f"cached run from {trial.run.started[:10]} ({trial.reason}); labbook run --force runs it again"
    return "failed" + (" on its first run" if first else f" (it ran because: {trial.reason})" if trial.reason else "")


def _partial_results(error: Any) -> dict[int, Any]:
    """The cells that ran before a failure, from the error's details."""
    from .model import CellResult, Verdict

    results = {}
    for data in (getattr(error, "details", None) or {}).get("ran", ()):
        claim = Verdict(**data["claim"]) if data.get("claim") else None
        results[data["index"]] = CellResult(data["index"], tuple(data["outputs"]), data["seconds"], claim)
    return results


def _print_output(out: Any, output: dict[str, Any], folder: Path | None) -> None:
    from rich.text import Text

    kind = output.get("output_type")
    if kind == "figure":
        out.print(Text.assemble(("figure ", "magenta"), _shown_path(Path(folder or ".") / output["name"])))
    elif kind == "stream":
        style = "yellow" if output.get("name") == "stderr" else ""
        out.print(Text(terminal_text(output.get("text", "")).rstrip("\n"), style=style))
    elif kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        if "text/plain" in data:
            out.print(Text(terminal_text(data["text/plain"]).rstrip("\n")))
        elif data:
            out.print(Text(f"({', '.join(sorted(data))} output: shown on the page)", style="dim"))


def _print_files(out: Any, run: Any, folder: Path | None) -> None:
    from rich.text import Text

    from .theme import human_size

    data = [a for a in run.artifacts if a.kind == "data"]
    if data:
        out.rule(Text("data files", style="cyan"), align="left", characters="─")
        for artifact in data:
            out.print(Text.assemble(_shown_path(Path(folder or ".") / artifact.name),
                                    (f"  {human_size(artifact.size)}", "dim")))
    notebook = next((a for a in run.artifacts if a.kind == "notebook"), None)
    if notebook is not None and folder is not None:
        out.print(Text.assemble(("executed notebook ", "dim"), _shown_path(folder / notebook.name)))


def _print_observed(out: Any, run: Any, folder: Path | None) -> None:
    """What `labbook.observe(…)` reported: the point's row of the sweep table."""
    from rich.text import Text

    from .model import show_value
    from .observations import OBSERVATIONS, read_observations

    name = next((a.name for a in run.artifacts if a.kind == "data" and Path(a.name).name == OBSERVATIONS), None)
    if name is None or folder is None:
        return
    try:
        values, problems = read_observations((folder / name).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return
    out.rule(Text("observed", style="cyan"), align="left", characters="─")
    for key, value in values.items():
        out.print(Text(terminal_text(f"{key} = {show_value(value)}")))
    for problem in problems:
        out.print(Text(terminal_text(problem), style="yellow"))


def _print_inline(out: Any, post: Any, run: Any) -> None:
    from rich.text import Text

    if not post.inline:
        return
    out.rule(Text("values in the prose", style="cyan"), align="left", characters="─")
    for item in post.inline:
        value = run.inline.get(item.expression, {"error": "not evaluated"})
        where = f"{post.path}:{item.line}  "
        if "text" in value:
            out.print(Text.assemble((where, "dim"), terminal_text(item.expression), (" → ", "dim"),
                                    terminal_text(value["text"])))
        else:
            out.print(Text.assemble((where, "dim"), terminal_text(item.expression), (" ✗ ", "bold red"),
                                    (terminal_text(value["error"]), "red")))


def _print_failure(reporter: ConsoleReporter, post: Any, error: Any) -> None:
    """The failing cell with the post's own line numbers, its line marked, then the traceback."""
    from rich.syntax import Syntax
    from rich.text import Text

    err = reporter.err
    index = getattr(error, "cell", None)
    cell = next((c for c in post.cells if c.index == index), None)
    if cell is not None:
        err.rule(Text(f"cell {cell.index + 1} · {post.path}:{error.line or cell.line} failed", style="bold red"),
                 align="left", characters="─")
        for output in error.details.get("printed", ()):
            _print_output(err, output, None)
        err.print(Syntax(terminal_text(cell.text), "python", line_numbers=True, start_line=cell.line,
                         highlight_lines={error.line or cell.line}, background_color="default", word_wrap=True))
    traceback = terminal_text(getattr(error, "traceback", "") or "").strip()
    if traceback:
        *frames, last = traceback.splitlines()
        err.print(Text("\n".join(frames), style="dim"))
        err.print(Text(last, style="bold red"))
    err.print(Text.assemble(("✗ ", "bold red"), terminal_text(str(error))))

