"""The command line: build, run, status, serve, html, new, kernel, check. The only place that
prints errors and exits; everything a post produced is printed through terminal.terminal_text.

Exit codes: 0 all good; 1 a post failed (or a check found drift, a broken claim, a stale or new post,
or with --strict a `consistent` one); 2 bad configuration
or usage; 3 another build holds the project; 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import BugError, ConfigError, ExecutionError, LabbookError
from .terminal import escape, terminal_text

__all__ = ["main", "ConsoleReporter"]


# --- output ----------------------------------------------------------------------------------------


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

    def executed(self, post: Any, seconds: float) -> None:
        with self.lock:
            self.running.pop(post.slug, None)
        if not self.quiet:
            self.err.print(f"✓ {escape(str(post.path))} executed ({seconds:.1f} s)", markup=True)

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
            raise ConfigError(f"no such post: {name}",
                              hint=f"posts are files like {config.relative(config.posts)}/<slug>.md")
        paths.append(path)
    return paths


def cmd_build(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .build import build

    config = _variant(args, _config(args), reporter)
    report = build(config, only=_selected(args, config), force=args.force, prune=args.prune, wait=not args.no_wait,
                   reporter=reporter)
    reporter.stop()
    for error in report.failed_points:
        reporter.err.print(f"[red]✗[/] {escape(str(error).splitlines()[0])}", markup=True)
    for claim in report.broken_claims:
        detail = f" ({claim.message})" if claim.message else ""
        reporter.err.print(f"[red]✗[/] {escape(f'{claim.path}: claim broken: {claim.claim}{detail}')}", markup=True)
    counts = {s: report.count(s) for s in ("executed", "cached", "unchanged", "skipped", "unpublished")}
    failed = len(report.failed)
    built = sum(counts[s] for s in ("executed", "cached", "unchanged")) + failed
    summary = (f"built {_count(built, 'post')} ({counts['executed']} executed, "
               f"{counts['cached'] + counts['unchanged']} cached")
    summary += f", {counts['skipped']} left as published" if counts["skipped"] else ""
    summary += f", {counts['unpublished']} drafts" if counts["unpublished"] else ""
    summary += ")"
    if report.sweeps:  # sweep posts read this build: what their points did
        points = [sum(getattr(s, n) for s in report.sweeps) for n in ("points", "executed", "cached")]
        gathers = sum(s.gathered for s in report.sweeps)
        failures = f" ({len(report.failed_points)} failed)" if report.failed_points else ""
        summary += (f"; points: {points[1]} executed{failures}, {points[2]} cached of {points[0]}; "
                    f"{_count(gathers, 'gather')} executed")
    if failed:
        summary += f", {failed} failed"
    if report.broken_claims:
        summary += f", {_count(len(report.broken_claims), 'claim')} broken"
    summary += (f"; {_count(len(report.change.written), 'file')} written, {len(report.change.deleted)} deleted"
                f" → {config.relative(config.site)}/")
    strict_failure = args.strict and bool(report.broken_claims or report.notices)
    code = 1 if failed or report.failed_points or strict_failure else 0
    reporter.say(summary + (" — exit 1" if code else ""))
    if strict_failure and not failed:
        reporter.err.print("--strict: broken claims and warnings fail the build")
    return code


STATUS_STYLES = {"cached": "green", "stale": "yellow", "new": "cyan", "failing": "red", "invalid": "red",
                 "draft": "dim"}


def cmd_status(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .status import status

    config = _config(args)
    rows = status(config)
    for row in rows:
        reporter.out.print(f"[{STATUS_STYLES[row.state]}]{row.state:<7}[/] {escape(str(row.path))}  "
                           f"[dim]{escape(row.reason)}[/]", markup=True)
    return 1 if any(r.state in ("failing", "invalid") for r in rows) else 0


def cmd_html(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .preview import render_html

    config = _config(args)
    output = args.output if args.output.is_absolute() else Path.cwd() / args.output
    written = render_html(config, output, force=args.force)
    reporter.err.print(f"{_count(written, 'file')} written → {output}")
    return 0


def cmd_serve(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .serve import serve

    config = _config(args)
    overrides = {k: getattr(args, k, None) for k in ("posts", "site", "jobs", "scheduler")}
    serve(config, port=args.port, console=reporter, overrides=overrides, watch=not args.no_watch)
    return 0


def cmd_kernel(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .kernelspec import DISPLAY_NAME, install

    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    prefix = args.prefix or (sys.prefix if args.sys_prefix or (in_venv and not args.user) else None)
    folder = install(user=prefix is None, prefix=prefix)
    reporter.out.print(f"installed the Jupyter kernel '{DISPLAY_NAME}' in {escape(str(folder))}")
    reporter.out.print("open a post in Jupyter (with jupytext) or VS Code and choose that kernel: its cells run "
                       "as in a build (LABBOOK_* variables, posts/ on sys.path, a fresh folder under "
                       ".labbook/sessions/)", markup=False)
    return 0


# --- parameters: -p NAME=VALUE ---------------------------------------------------------------------


def parse_param(item: str) -> tuple[str, Any]:
    """`lr=1e-3` -> ("lr", 0.001): values read as YAML (numbers, true/false, null, [lists]); other text stays text.

    Raises:
        ConfigError: not NAME=VALUE.
    """
    import keyword

    name, equals, raw = item.partition("=")
    name, raw = name.strip(), raw.strip()
    if not equals or not name.isidentifier() or keyword.iskeyword(name):
        raise ConfigError(f"-p {item!r}: write -p NAME=VALUE, with NAME a parameter of the post (-p lr=0.01)")
    return name, _param_value(raw)


def _param_value(raw: str) -> Any:
    import json

    from .source import param_value_problem

    if not raw:
        return ""
    try:
        value = json.loads(raw)  # first: 1e-3 is a number here, and a string in YAML 1.1
    except ValueError:
        import yaml

        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
    return value if param_value_problem(value) is None else raw


def _params(args: argparse.Namespace) -> dict[str, Any]:
    return dict(parse_param(item) for item in getattr(args, "param", None) or ())


def _shown_params(params: Any) -> str:
    import json

    return ", ".join(f"{name}={json.dumps(value)}" for name, value in sorted(dict(params).items()))


def _variant(args: argparse.Namespace, config: Any, reporter: ConsoleReporter) -> Any:
    """With -p: the configuration of a scratch site for these values (site/ is never touched),
    once every name is known to be a parameter of the posts selected."""
    params = _params(args)
    if not params:
        return config
    from .config import did_you_mean
    from .loop import variant_config
    from .source import read_all, with_params

    read = read_all(config, _selected(args, config))
    declared = {name for post in read.posts for name in post.settings.params}
    for name in params:
        if name not in declared:
            raise ConfigError(f"-p {name}: no post here declares the parameter '{name}'{did_you_mean(name, declared)}",
                              hint="a post declares its parameters in its front matter: labbook: {params: {lr: 0.1}}")
    for post in read.posts:
        with_params(post, {k: v for k, v in params.items() if k in post.settings.params})  # kinds checked now
    variant = variant_config(config, params)
    reporter.err.print(f"parameters {escape(_shown_params(params))}: a scratch site in "
                       f"{escape(config.relative(variant.site))}/ (site/ is not touched)")
    return variant


# --- run: one post, in the terminal -----------------------------------------------------------------


def cmd_run(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .loop import run_post, variant_config

    config = _config(args)
    [path] = _selected(argparse.Namespace(post=[args.post]), config) or []
    params = _params(args)
    trial = run_post(variant_config(config, params), path, params=params, force=args.force, reporter=reporter)
    reporter.stop()
    for warning in trial.warnings:
        reporter.warning(warning)
    _print_trial(trial, reporter)
    if trial.error is not None:
        return 1
    broken = trial.broken_claims
    run = trial.run
    claims = sum(1 for c in run.cells if c.claim is not None) if run else 0
    failed_inline = [i for i in trial.post.inline if run and "error" in run.inline.get(i.expression, {"error": ""})]
    summary = []
    if claims:
        summary.append(f"{len(broken)} of {_count(claims, 'claim')} broken" if broken else
                       f"{'the claim holds' if claims == 1 else f'all {claims} claims hold'}")
    if failed_inline:
        summary.append(f"{_count(len(failed_inline), 'value')} in the prose failed")
    if summary:
        reporter.err.print("; ".join(summary) + (" — exit 1" if broken else ""))
    return 1 if broken else 0


def _shown_path(path: Path) -> str:
    """A path the author can open from here: relative to the current folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _print_trial(trial: Any, reporter: ConsoleReporter) -> None:
    """The run, cell by cell: text and tables, figure and data file paths, claims, inline values."""
    from rich.text import Text

    out, post, run = reporter.out, trial.post, trial.run
    out.print(Text.assemble((str(post.path), "bold"), f" · {_trial_head(trial)}"))
    if post.settings.params:
        out.print(Text(f"parameters: {terminal_text(_shown_params(post.settings.params))}", style="dim"))
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
        _print_inline(out, post, run)
    if trial.error is not None:
        _print_failure(reporter, post, trial.error)


def _trial_head(trial: Any) -> str:
    """What happened to the run, and why it ran: the line under the post's name."""
    if not (trial.post.cells or trial.post.inline):
        return "no code cell: nothing to run"
    if trial.status == "executed":
        return f"executed in {trial.seconds:.1f} s" + (f" ({trial.reason})" if trial.reason else "")
    if trial.status == "cached":
        return f"cached run from {trial.run.started[:10]} ({trial.reason}); labbook run --force runs it again"
    return "failed" + (f" (it ran because: {trial.reason})" if trial.reason else "")


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


# --- new: a post from a template ----------------------------------------------------------------------


def cmd_new(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from pathlib import PurePosixPath

    from .config import load_config
    from .source import slug_of

    if not args.slug and not args.title:
        raise ConfigError("labbook new needs a name or a title: labbook new my-idea, or labbook new --title 'My idea'")
    config = load_config(args.root)
    today = dt.date.today()
    try:
        slug = slug_of(PurePosixPath((args.slug or args.title).replace("/", "-") + ".md"))
    except LabbookError:  # a title with nothing to make a file name of ("---", "???")
        if args.slug:
            raise
        slug = f"post-{today.isoformat()}"
    path = config.posts / f"{slug}.md"
    if path.exists():
        raise ConfigError(f"{config.relative(path)} already exists", hint="choose another name; nothing was written")
    title = " ".join((args.title or slug.replace("-", " ").capitalize()).split())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as stream:  # never over a file that appeared meanwhile
        stream.write(new_post(title, today))
    reporter.out.print(f"created {escape(config.relative(path))}: labbook run {escape(config.relative(path))} runs it")
    return 0


def new_post(title: str, date: dt.date) -> str:
    """A post that builds as it is: front matter dumped by YAML (any title is safe), every key present."""
    import yaml

    front = {
        "title": title, "date": date, "description": "One line on what was done.",
        "tags": [], "status": "open", "models": [], "data": [], "phenomena": [], "observables": [],
        "questions": ["What is not known yet?"],
    }
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return f"---\n{header}---\n{NEW_POST_BODY}"


NEW_POST_BODY = """
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
slope = np.polyfit(x, y, 1)[0]
np.savetxt("result.csv", np.c_[x, y], delimiter=",", header="x,y", comments="")
plt.plot(x, y, ".")
plt.xlabel("x"); plt.ylabel("y")
plt.show()
```

The fitted slope is `{python} f"{slope:.2f}"`.
"""


EPILOG = """\
a day with labbook:
  labbook new --title "Grokking: a first look"   a post that builds as it is
  labbook run posts/grokking-a-first-look.md     run it, outputs here (site/ untouched)
  labbook run posts/grokking.md -p lr=1e-3       the same with another parameter value
  labbook serve                                  the site on localhost, reloading as you save
  labbook build && labbook check                 publish into site/, then re-run and compare

exit status: 0 fine; 1 a post failed, a claim broke or a check did not reproduce;
2 bad configuration or usage; 3 another build holds the project; 130 interrupted.
"""


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line; with `argv`, only the sub-command it names gets its options (building all
    of them costs a no-op build ~10 ms of argparse and gettext), every other one just its name."""
    parser = argparse.ArgumentParser(
        prog="labbook", description="A lab notebook of executable posts, published as a Jekyll site.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"labbook {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS,
                        help="the project folder (default: found from here upwards)")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="only errors and the summary")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="every post, cell and stage, with times")
    parser.add_argument("--root", default=None, help="the project folder (default: found from here upwards)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors and the summary")
    parser.add_argument("-v", "--verbose", action="store_true", help="every post, cell and stage, with times")
    commands = _Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), common,
                         _command_named(argv) if argv is not None else None)

    build = commands.add_parser(
        "build", help="execute what changed, render, and write site/",
        description="Execute the posts whose code, settings or inputs changed (the others come from the cache), "
                    "render every page and write site/, a Jekyll source tree. A failing post keeps its last good "
                    "published version. With -p: a variant build into a scratch site, site/ untouched.")
    build.add_argument("post", nargs="*", help="build only these posts (the others stay as published)")
    _add_execution_options(build)
    build.add_argument("--force", action="store_true", help="execute again even what is cached")
    build.add_argument("--prune", action="store_true",
                       help="allow unpublishing posts whose files are gone, even most of them")
    build.add_argument("--strict", action="store_true", help="exit 1 on a broken claim or a warning too")
    build.add_argument("--no-wait", action="store_true", help="stop if another build is running, instead of waiting")
    _add_params(build, "build a variant with these parameter values into .labbook/variants/<hash>/site")
    build.set_defaults(run=cmd_build)

    run = commands.add_parser(
        "run", help="run one post now and print its outputs here (site/ untouched)",
        description="Run one post (or take its cached run: same code, settings, parameters and inputs) and print "
                    "its outputs cell by cell: text, tables, the figures and data files written (paths in the "
                    "cache, to open), claim verdicts and the values in the prose. A failing cell is shown with the "
                    "post's own line numbers and its traceback. Never changes site/. Exit status 1 when a cell "
                    "fails or a claim breaks.")
    run.add_argument("post", help="the post: posts/<slug>.md, or just <slug>.md")
    _add_params(run, "run with these parameter values (the post declares them: labbook: {params: {lr: 0.1}})")
    run.add_argument("--force", action="store_true", help="run even if a cached run holds")
    run.add_argument("--scheduler", help="run the kernel on this Dask cluster: tcp://host:8786")
    run.set_defaults(run=cmd_run)

    for name in ("status", "list"):
        status = commands.add_parser(
            name, help="per post: cached, stale (and why), new or failing" + (" (same as status)" * (name == "list")),
            description="Say, per post, whether the next build reuses its run or executes it, and why "
                        "(which code cell, setting, input file or inline value changed). Runs nothing.")
        status.add_argument("--posts", help="folder of posts (default: posts/)")
        status.add_argument("--site", help="the site folder (default: site/)")
        status.set_defaults(run=cmd_status)

    serve = commands.add_parser(
        "serve", help="serve the site on localhost, rebuild on every save, reload the open page",
        description="Build once, serve the pages on 127.0.0.1 (no Ruby needed), and rebuild on every save of a "
                    "post, a template, an input file or pyproject.toml. The open page reloads by itself, shows "
                    "'running cell i/n' while a post runs, and a failed post's error (cell, file:line) above its "
                    "last good version. A busy port moves to the next free one.")
    serve.add_argument("--port", type=int, default=8000, help="the port (default: 8000, or the next free one)")
    serve.add_argument("--no-watch", action="store_true", help="build once and serve, rebuild nothing")
    _add_execution_options(serve)
    serve.set_defaults(run=cmd_serve)

    html = commands.add_parser(
        "html", help="render site/ to plain HTML with the same URLs, no Ruby needed",
        description="Render site/ (the Jekyll source tree) into plain HTML pages with Jekyll's URLs, to publish "
                    "with no Ruby. Unchanged files are left alone.")
    html.add_argument("output", nargs="?", type=Path, default=Path("_html"), help="output folder (default: _html/)")
    html.add_argument("--site", help="the site folder (default: site/)")
    html.add_argument("--force", action="store_true",
                      help="write into a folder that holds files labbook did not write (it still deletes none of them)")
    html.set_defaults(run=cmd_html)

    new = commands.add_parser(
        "new", help="start a post from a template (asks nothing)",
        description="Write posts/<slug>.md: front matter with every key (title, date, tags, status, models, data, "
                    "phenomena, observables, questions), prose, a cell with a figure and a data file, and a value "
                    "in the prose. It builds as it is. Nothing is overwritten.")
    new.add_argument("slug", nargs="?", help="the file name (default: made from --title)")
    new.add_argument("--title", help="the post's title (default: made from the name)")
    new.set_defaults(run=cmd_new)

    kernel = commands.add_parser(
        "kernel", help="install the Jupyter kernel that runs posts as a build does",
        description="Register the Jupyter kernel 'labbook (this project)': opened on a post in Jupyter or VS Code, "
                    "it runs the cells with a build's environment (LABBOOK_* variables, posts/ and the project on "
                    "sys.path, seed, one BLAS thread, no GPU) in a fresh folder under .labbook/sessions/.")
    actions = kernel.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    help="install: register the kernelspec")
    install = actions.add_parser("install", help="register the kernelspec")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user (the default outside a virtualenv)")
    where.add_argument("--sys-prefix", action="store_true",
                       help="in this Python environment (the default in a virtualenv)")
    where.add_argument("--prefix", help="under this prefix (share/jupyter/kernels/labbook)")
    install.set_defaults(run=cmd_kernel)

    _add_check(commands)
    _add_blog_commands(commands)
    return parser


def _add_params(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                        help=text + "; VALUE is read as YAML: 1e-3, true, [1, 2], text (repeat -p for more)")


def _add_blog_commands(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write the built posts into an existing Jekyll blog (al-folio)",
        description="Write the built posts into an existing Jekyll blog (al-folio or a plain theme): body-only "
                    "posts with the theme's front matter, figures as its figure.liquid includes, baseurl-aware "
                    "links. Files labbook did not write there are never overwritten without --force.")
    export.add_argument("post", nargs="*", help="export only these posts (the others stay as exported)")
    export.add_argument("--jekyll", type=Path, required=True, metavar="DIR",
                        help="the blog: the folder of its _config.yml")
    export.add_argument("--theme", default="al-folio", help="the blog's theme: al-folio (default) or plain")
    export.add_argument("--assets-dir", metavar="FOLDER",
                        help="where figures go in the blog (al-folio: assets/img/blogs)")
    export.add_argument("--force", action="store_true", help="take over files labbook did not write (overwriting them)")
    export.set_defaults(run=cmd_export)
    imported = commands.add_parser(
        "import", help="bring an existing Jekyll blog's posts into posts/",
        description="Convert an existing Jekyll blog's posts into labbook posts in posts/, keeping their "
                    "addresses (slug:, redirect_from:) and copying their images into assets/.")
    imported.add_argument("--jekyll", type=Path, required=True, metavar="DIR",
                          help="the blog: the folder of its _config.yml")
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
    """Sub-commands that also accept the global options after their name (`labbook build -q`).

    With `wanted` (the command being run), the others are registered by name and help only.
    """

    def __init__(self, subparsers: Any, common: argparse.ArgumentParser, wanted: str | None = None) -> None:
        self.subparsers, self.common, self.wanted = subparsers, common, wanted

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.wanted is not None and name != self.wanted:
            self.subparsers.add_parser(name, help=kwargs.get("help"), add_help=False)
            return _Unbuilt()
        return self.subparsers.add_parser(name, parents=[self.common], **kwargs)


class _Unbuilt:
    """A sub-command that is not being run: every option added to it is dropped."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def _command_named(argv: Sequence[str] | None) -> str | None:
    """The sub-command `argv` runs (its first word that is not an option or --root's value); None
    when there is none (`labbook --help`), so that every command is built."""
    skip = False
    for word in argv or ():
        if skip:
            skip = False
        elif word == "--root":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _add_check(commands: Any) -> None:
    parser = commands.add_parser(
        "check", help="execute again and compare with what site/ publishes",
        description="Execute posts again, ignoring every cache, and compare with site/: data within the post's "
                    "tolerances, figures by pixel difference, text outputs and claims. Verdicts: reproduced, "
                    "consistent, drifted, claim broken, failed (and new or stale when site/ has no current run). "
                    "Exit status 0 when every post is reproduced or consistent (reproduced only with --strict). "
                    "With -p: the variant that build -p wrote.")
    parser.add_argument("post", nargs="*", help="check only these posts")
    _add_execution_options(parser)
    parser.add_argument("--seeds", type=int, default=0, metavar="K",
                        help="also run with LABBOOK_SEED = 0…K-1 and report the spread of every result "
                             "(a sweep post: every point with each seed)")
    parser.add_argument("--points", type=int, default=0, metavar="K",
                        help="a sweep post: re-run K of its points, chosen with a fixed seed (the same on every "
                             "machine), then its gather; default: every point")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report for CI")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write an HTML report with figure diffs")
    parser.add_argument("--record", action="store_true",
                        help="keep each verdict in site/'s run.json and show it on the pages (changes site/)")
    parser.add_argument("--no-record", action="store_true", help=argparse.SUPPRESS)  # the default since --record
    parser.add_argument("--strict", action="store_true",
                        help="fail on `consistent` too: numbers that differ on another platform while the claims hold")
    _add_params(parser, "check the variant with these parameter values (built by build -p)")
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

    config = _variant(args, _config(args), reporter)
    began = time.perf_counter()
    if args.points < 0:
        raise ConfigError(f"--points takes a positive number, not {args.points}")
    report = check.check(config, only=_selected(args, config), seeds=args.seeds, points=args.points,
                         diff_dir=(args.report / "work") if args.report else None, reporter=_CheckProgress(reporter))
    reporter.stop()
    for result in report.posts:
        reporter.out.print(f"{CHECK_MARKS[result.verdict]} {escape(str(result.path))} [bold]{result.verdict}[/]",
                           markup=True)
        for line in check.details(result):
            reporter.out.print(f"    {terminal_text(line)}", markup=False, highlight=False)
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
    if report.without_code:
        summary += f" ({_count(report.without_code, 'post')} without code: nothing to run)"
    reporter.err.print(f"checked {_count(len(report.posts), 'post')} in {time.perf_counter() - began:.1f} s: {summary}"
                       + ("" if passed else " — exit 1"))
    return 0 if passed else 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs: kernels killed, nothing half-done."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
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
