"""The command line: build, run, status, serve, html, new, kernel, check, export, import.

Argument parsing, then one call per command; what is printed is console's. The only place
that catches errors to exit with their code.

Exit codes: 0 all good; 1 a post failed (or a check found drift, a broken claim, a stale or new post,
or with --strict a `consistent` one); 2 bad configuration
or usage; 3 another build holds the project; 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, console
from .console import ConsoleReporter
from .errors import ConfigError, LabbookError
from .terminal import escape

__all__ = ["main", "command", "parse_param", "ConsoleReporter"]



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
    code = report.exit_code(strict=args.strict)
    console.show_build(reporter, report, config, code=code, strict_failure=report.strict_failure(args.strict))
    return code


def cmd_status(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .status import status

    rows = status(_config(args))
    console.show_status(reporter, rows)
    return 1 if any(r.state in ("failing", "invalid") for r in rows) else 0


def cmd_html(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .preview import render_html

    config = _config(args)
    output = args.output if args.output.is_absolute() else Path.cwd() / args.output
    written = render_html(config, output, force=args.force)
    reporter.err.print(f"{console.count(written, 'file')} written → {output}")
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
    console.show_kernel_installed(reporter, DISPLAY_NAME, folder)
    return 0


def cmd_run(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    """`labbook run POST`: exit 1 when a cell fails or a claim breaks."""
    from .loop import run_post, variant_config

    config = _config(args)
    [path] = _selected(argparse.Namespace(post=[args.post]), config) or []
    params = _params(args)
    trial = run_post(variant_config(config, params), path, params=params, force=args.force, reporter=reporter)
    reporter.stop()
    for warning in trial.warnings:
        reporter.warning(warning)
    console.show_trial(reporter, trial)
    if trial.error is not None:
        return 1
    console.show_run_summary(reporter, trial)
    return 1 if trial.broken_claims else 0


def cmd_new(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .config import load_config
    from .loop import new_post_file

    if not args.slug and not args.title:
        raise ConfigError("labbook new needs a name or a title: labbook new my-idea, or labbook new --title 'My idea'")
    config = load_config(args.root)
    shown = config.relative(new_post_file(config, args.slug, args.title))
    reporter.out.print(f"created {escape(shown)}: labbook run {escape(shown)} runs it")
    return 0


def cmd_check(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    """Exit 0 when every post is reproduced or consistent (reproduced only, with --strict)."""
    from . import check

    config = _variant(args, _config(args), reporter)
    began = time.perf_counter()
    if args.points < 0:
        raise ConfigError(f"--points takes a positive number, not {args.points}")
    report = check.check(config, only=_selected(args, config), seeds=args.seeds, points=args.points,
                         diff_dir=(args.report / "work") if args.report else None,
                         reporter=console.CheckProgress(reporter))
    reporter.stop()
    console.show_check(reporter, report)
    if args.junit:
        check.write_junit(report, args.junit, strict=args.strict)
    if args.report:  # before recording: the pages' build clears the re-runs' folders
        reporter.err.print(f"report: {check.write_html_report(report, args.report, config)}")
    if args.record:
        report.notes += check.record_verdicts(config, report)
    passed = report.passed(strict=args.strict)
    console.show_check_summary(reporter, report, time.perf_counter() - began, passed=passed)
    return 0 if passed else 1


def cmd_export(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    from .export import export

    config = _config(args)
    report = export(config, args.jekyll, args.theme, figures=args.assets_dir, force=args.force,
                    only=_selected(args, config))
    console.show_export(reporter, report, args.jekyll)
    return 1 if report.skipped else 0


def cmd_import_jekyll(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    """`labbook import --jekyll DIR` (a handler cannot be called `import`)."""
    from .importer import import_jekyll

    report = import_jekyll(_config(args), args.jekyll, force=args.force)
    console.show_import(reporter, report)
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
        value = json.loads(raw)
    except ValueError:
        from .frontmatter import FrontMatterProblem, load_yaml

        try:
            value = load_yaml(raw)  # as the front matter reads it: 1e-3 a number, dates as text
        except FrontMatterProblem:
            value = raw
    return value if param_value_problem(value) is None else raw


def _params(args: argparse.Namespace) -> dict[str, Any]:
    return dict(parse_param(item) for item in getattr(args, "param", None) or ())


def _variant(args: argparse.Namespace, config: Any, reporter: ConsoleReporter) -> Any:
    """With -p: the configuration of a scratch site for these values (site/ is never touched),
    once every name is known to be a parameter of the posts selected."""
    params = _params(args)
    if not params:
        return config
    from .config import did_you_mean
    from .loop import variant_config
    from .model import SEED
    from .source import check_not_swept, params_for, read_all, with_params

    read = read_all(config, _selected(args, config))
    declared = {name for post in read.posts for name in post.settings.params} | {SEED}  # seed: every post's
    for name in params:
        if name not in declared:
            raise ConfigError(f"-p {name}: no post here declares the parameter '{name}'{did_you_mean(name, declared)}",
                              hint="a post declares its parameters in its front matter: labbook: {params: {lr: 0.1}}")
    for post in read.posts:
        values = params_for(post, params)
        with_params(post, values)  # kinds checked now
        check_not_swept(post, values)
    variant = variant_config(config, params)
    console.show_variant(reporter, params, config.relative(variant.site))
    return variant



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
                         _command_named(argv))

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
                        help=text + "; VALUE is read as YAML: 1e-3, true, [1, 2], text (repeat -p for more); "
                             "-p seed=K runs with LABBOOK_SEED=K")


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



class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs: kernels killed, nothing half-done."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, and turn what it raised into an exit code.

    An interrupt is caught from the first line on: a Ctrl-C that lands while the arguments are
    parsed or the terminal is set up ends with 130 and one line, like one that lands mid-build,
    not with Python's traceback.
    """
    reporter: ConsoleReporter | None = None
    try:
        args = _parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
        if threading.current_thread() is threading.main_thread():
            import signal

            signal.signal(signal.SIGTERM, _on_sigterm)
        reporter = ConsoleReporter(quiet=args.quiet, verbose=args.verbose)
        return int(args.run(args, reporter))
    except LabbookError as error:
        if reporter is None:
            raise
        reporter.error(error)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        if reporter is None:  # before the terminal was set up: plain text, nothing to stop
            print(console.INTERRUPTED, file=sys.stderr)
        else:
            reporter.interrupted()
        return 143 if isinstance(interrupt, Terminated) else 130
    finally:
        if reporter is not None:
            reporter.stop()


def command() -> int:
    """The `labbook` executable: `main()` in a process that ends when it returns.

    What it made is frozen out of the garbage collector before the interpreter shuts down, which
    would otherwise walk every object once more (~20 ms after a no-op build, ~45 ms after a prose
    edit: a sixth and a tenth of them). Modules are torn down and atexit handlers run as always.
    Not for callers that go on living (tests call `main`): their later garbage would stay.
    """
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(command())
