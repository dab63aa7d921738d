"""Math as researchers write it: delimiters, environments, numbering, macros, errors, safety, speed."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from labbook import render, source, texmath
from labbook.config import load_config
from labbook.model import CellResult, Run, Verdict
from labbook.theme import Theme

from .mathcorpus import TEX_LEFT, entries, math_text, page_markdown, text_outside_math


def md(text: str, env: dict | None = None) -> str:
    return render.markdown_html(text, env if env is not None else {})


def shown(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def numbers(markup: str) -> list[str]:
    """Equation numbers written into display math, in page order."""
    return re.findall(r"<mtext>(\([^<]*\))</mtext>", markup)


# --- the corpus --------------------------------------------------------------------------------------


def test_corpus_has_at_least_80_formulas_of_both_kinds():
    corpus = entries()
    assert len(corpus) >= 80
    assert sum(e.display for e in corpus) >= 30 and sum(not e.display for e in corpus) >= 30
    assert {e.delimiter for e in corpus} >= {"$", "$$", "\\(", "\\["}


def test_every_corpus_formula_typesets_with_no_tex_left_and_no_error():
    env: dict = {}
    page = md(page_markdown(), env)
    assert env.get("warnings", []) == []
    assert "merror" not in page and "math-error" not in page and "temml-error" not in page
    corpus = entries()
    assert page.count("<math") == len(corpus)
    assert page.count('<div class="math display">') == sum(e.display for e in corpus)
    assert page.count('<span class="math inline">') == sum(not e.display for e in corpus)
    assert not TEX_LEFT.search(text_outside_math(page)), TEX_LEFT.findall(text_outside_math(page))[:5]
    assert not TEX_LEFT.search(math_text(page)), TEX_LEFT.findall(math_text(page))[:5]


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.name)
def test_each_corpus_formula_alone(entry):
    env: dict = {}
    out = md(entry.markdown(), env)
    assert env.get("warnings", []) == [] and "math-error" not in out
    assert out.count("<math") == 1
    assert ('display="block"' in out) == entry.display


def test_environments_keep_their_rows_and_alignment():
    out = md("$$\n\\begin{aligned} a &= b \\\\ &= c \\end{aligned}\n$$\n")
    assert out.count("<mtr>") == 2 and "&amp;" not in out and "&" not in shown(out)
    cases = md("$$ f(x) = \\begin{cases} 1 & x > 0 \\\\ 0 & \\text{otherwise} \\end{cases} $$")
    assert cases.count("<mtr>") == 2 and "otherwise" in shown(cases)
    for env in ("matrix", "pmatrix", "bmatrix"):
        out = md(f"$$\\begin{{{env}}} a & b \\\\ c & d \\end{{{env}}}$$")
        assert out.count("<mtd") >= 4, env


def test_operators_fonts_and_relations():
    out = md(r"$\operatorname{Tr}(A^\top) \sim \mathbb{E}[\mathcal{L}]$ and $\text{loss} + \underbrace{a+b}_{n}$")
    text = shown(out)
    assert "Tr" in text and "⊤" in text and "𝔼" in text and "ℒ" in text and "loss" in text and "⏟" in text
    assert "<mo>∼</mo>" in out  # a relation, not a tilde accent
    assert "<mi>Tr</mi><mo>\u2061</mo>" in out  # an operator name, followed by function application


def test_left_right_delimiters_stretch():
    out = md(r"$$\left( \frac{a}{b} \right)$$")
    assert re.search(r'<mo fence="true" form="prefix"[^>]*>\(</mo>', out) and "stretchy=\"false\"" not in out


# --- delimiters ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, inline, display", [
    ("The loss $$L = x^2$$ falls.", 1, 0),                        # kramdown: $$ in a sentence is inline
    ("$$L = x^2$$", 0, 1),                                        # its own paragraph: display
    ("$$\nL = x^2\n$$", 0, 1),
    ("Before\n$$\nL = x^2\n$$\nafter.", 0, 1),                    # on lines of its own: display
    ("$$a$$ and $$b$$", 2, 0),                                    # two formulas in one line: inline
    ("Inline \\(x^2\\) here.", 1, 0),
    ("\\[\nx^2\n\\]", 0, 1),
    ("\\begin{align}\na &= b \\\\\nc &= d\n\\end{align}", 0, 1),  # a bare AMS environment (MathJax)
    ("Inline $x^2$ and $\\alpha$.", 2, 0),
    ("> $$\n> x\n> $$", 0, 1),                                    # inside a blockquote
    ("- item $x$\n- $$y$$", 1, 1),                               # a list item of its own: display
])
def test_delimiters(text, inline, display):
    env: dict = {}
    out = md(text, env)
    assert out.count('<span class="math inline">') == inline, out
    assert out.count('<div class="math display">') == display, out
    assert "$" not in shown(out) and env.get("warnings", []) == []


@pytest.mark.parametrize("text, kept", [
    ("It costs $5 and $10.", "It costs $5 and $10."),
    ("Between $5 and $x$ there is", "Between $5 and "),
    ("A dollar \\$ sign and \\$x\\$.", "A dollar $ sign and $x$."),
    ("Prices: $3.50, $4.", "Prices: $3.50, $4."),
    ("Just $ alone.", "Just $ alone."),
])
def test_dollars_that_are_money_stay_text(text, kept):
    out = md(text)
    assert kept in shown(out)
    assert "<math" not in out or "$x$" in text


@pytest.mark.parametrize("text", [
    "Code `$x$` and `$$y$$` and `\\(z\\)`.",
    "```\n$$x$$\n$x$ \\(y\\)\n```",
    "    $$x$$ indented code",
    "```tex\n\\begin{align} a \\end{align}\n```",
])
def test_math_inside_code_is_never_touched(text):
    out = md(text)
    assert "<math" not in out
    for part in ("$x$", "$$y$$", "\\(z\\)", "$$x$$", "\\begin{align}"):
        if part in text:
            assert part in shown(out)


@pytest.mark.parametrize("text, rows", [
    ("$$\n\\begin{aligned} a \\\\ b \\end{aligned}\n$$", 2),
    ("\\begin{align}\na \\\\\nb\n\\end{align}", 2),
    ("Inline $\\begin{matrix} a \\\\ b \\end{matrix}$ here.", 2),
    ("Inline \\(\\begin{matrix} a \\\\ b \\\\ c \\end{matrix}\\) here.", 3),
])
def test_markdown_escapes_never_reach_the_tex(text, rows):
    """`\\\\`, `\\{`, `*` and `_` mean TeX inside math, not markdown."""
    assert md(text).count("<mtr") == rows


def test_braces_stars_and_underscores_inside_math_stay_tex():
    out = md("Set $\\{x_i\\}$ and $a*b$, $c*d$, $x_1 + y_2$ and $\\_$.")
    assert "<em>" not in out and "{" in shown(out) and "}" in shown(out) and out.count("<math") == 5


@pytest.mark.parametrize("tex, definitions, rest", [
    (r"\newcommand{\R}{\mathbb{R}} x", [r"\def\R{\mathbb{R}}"], " x"),
    (r"\newcommand\norm[1]{\lVert #1 \rVert}", [r"\def\norm#1{\lVert #1 \rVert}"], ""),
    (r"\renewcommand{\vec}[1]{\mathbf{#1}}", [r"\def\vec#1{\mathbf{#1}}"], ""),
    (r"\DeclareMathOperator*{\argmax}{arg\,max}", [r"\def\argmax{\operatorname*{arg\,max}}"], ""),
    (r"\def\E#1{\mathbb{E}[#1]} \gdef\G{g}", [r"\def\E#1{\mathbb{E}[#1]}", r"\def\G{g}"], " "),
    (r"\let\eps=\varepsilon \eps", [r"\let\eps\varepsilon"], r" \eps"),
    (r"\newcommand{\f}[2][x]{#1+#2}", [], r"\newcommand{\f}[2][x]{#1+#2}"),  # left for Temml to report
    (r"\newcommand{\bad}{\frac{}", [], r"\newcommand{\bad}{\frac{}"),
    (r"\\newcommand x", [], r"\\newcommand x"),  # a line break, then text
])
def test_split_definitions(tex, definitions, rest):
    assert texmath.split_definitions(tex) == (definitions, rest)


def test_an_unclosed_display_never_swallows_a_code_fence():
    env: dict = {}
    out = md("$$\nx = 1\n\n```python\nprint(1)\n```\n\nText $$ and more.\n", env)
    assert "<math" not in out and "<code" in out and "print(1)" in shown(out)
    assert env["warnings"] == [(1, "this $$ is never closed: the formula is shown as text")]


def test_a_display_block_does_not_swallow_what_follows():
    out = md("$$a$$ is the start\n\nand $$b$$ the end.")
    assert out.count('<span class="math inline">') == 2 and "is the start" in shown(out)


# --- numbering and references ------------------------------------------------------------------------


PAGE = r"""
First see \eqref{eq:loss} and \ref{eq:decay}, before they appear.

$$
\begin{align}
\mathcal{L} &= \sum_i \ell_i \label{eq:loss} \\
g &= \nabla \mathcal{L} \nonumber \\
\theta' &= \theta - \eta g \label{eq:step}
\end{align}
$$

$$ \lambda_t = \lambda_0 e^{-t/\tau} \label{eq:decay} $$

$$ x = 1 \tag{$\star$} \label{eq:star} $$

$$ y = 2 $$

$$\begin{equation} z = 3 \end{equation}$$

Then $\eqref{eq:step}$ inside math, \eqref{eq:star} by its tag, and \ref{eq:loss}.
"""


def test_equations_are_numbered_in_page_order_and_references_resolve():
    env: dict = {}
    out = md(PAGE, env)
    assert env.get("warnings", []) == []
    assert numbers(out) == ["(1)", "(2)", "(3)", "(4)"]  # align rows 1 and 3, the labelled display, equation
    assert "(⋆)" in shown(out)
    links = re.findall(r'<a class="eqref" href="#(eq-[^"]+)">([^<]+)</a>', out)
    assert links == [("eq-eqloss", "(1)"), ("eq-eqdecay", "3"), ("eq-eqstep", "(2)"), ("eq-eqstar", "(⋆)"),
                     ("eq-eqloss", "1")]
    for target, _ in links:
        assert f'id="{target}"' in out, target


def test_numbering_is_per_page():
    first, second = md(PAGE, {}), md(PAGE, {})
    assert numbers(first) == numbers(second) == ["(1)", "(2)", "(3)", "(4)"]


def test_unknown_and_duplicate_labels_warn():
    env: dict = {}
    out = md("See \\eqref{eq:nowhere}.\n\n$$a \\label{x}$$\n\n$$b \\label{x}$$\n", env)
    assert "(??)" in shown(out)
    messages = [w[1] for w in env["warnings"]]
    assert any("\\label{eqnowhere}" in m for m in messages) and any("used twice" in m for m in messages)


def test_multline_gets_one_number():
    out = md("$$\\begin{multline} a + b \\\\ + c \\label{m} \\end{multline}$$\n\nSee \\eqref{m}, and $\\begin{align} x \\end{align}$.")
    assert numbers(out) == ["(1)", "(2)"] and "(1)" in shown(out.split("See")[1])


# --- macros -----------------------------------------------------------------------------------------------


def test_macros_defined_in_a_post_apply_to_the_whole_page():
    env: dict = {}
    out = md(r"""
Used before its definition: $\norm{x} \in \R^d$.

$$\newcommand{\norm}[1]{\left\lVert #1 \right\rVert}
\newcommand{\R}{\mathbb{R}}
\DeclareMathOperator*{\argmax}{arg\,max}
\def\E{\mathbb{E}}$$

Then $\argmax_x \E[\norm{x}]$ and $\R$.
""", env)
    assert env.get("warnings", []) == []
    assert "math-error" not in out and "ℝ" in shown(out) and "𝔼" in shown(out) and "arg" in shown(out)
    assert out.count("<math") == 3  # the definitions alone show nothing, as in MathJax


def test_macros_of_one_page_do_not_leak_into_the_next():
    md(r"$\newcommand{\foo}{x} \foo$", {})
    env: dict = {}
    out = md(r"$\foo$", env)
    assert "math-error" in out and env["warnings"]


def test_a_bad_definition_warns():
    env: dict = {}
    md(r"$\newcommand{\bad}{\frac{}$ and $x$", env)
    assert env["warnings"]


# --- errors: a warning with the post's line, the TeX shown marked --------------------------------------


POST = r"""---
title: Lines
date: 2026-01-02
---

Prose with $x$.

```python
x = 1
```

Line 12 has $\foo{y}$ in it,
and line 13 has \(\bar\).

$$
\begin{aligned} a &= \baz \end{aligned}
$$
"""


def _run(post, claims=()):
    cells = tuple(CellResult(c.index, (), 0.1, claims[c.index] if c.index < len(claims) else None) for c in post.cells)
    return Run(key=post.key, cells=cells, artifacts=(), inputs={}, basis=post.basis, environment={},
               started="2026-01-02T00:00:00+00:00", seconds=1.0)


def render_post(text: str, tmp_path: Path, claims=()):
    """The page of a post, and its notices as the author reads them."""
    post, _ = source.parse(text, "posts/lines.md")
    config = load_config(tmp_path)
    page = render.render(post, _run(post, claims), tmp_path, config, Theme(config.templates))
    return page, [str(notice) for notice in page.notices]


def test_unknown_macros_warn_with_the_post_line_and_show_marked_tex(tmp_path):
    page, warnings = render_post(POST, tmp_path)
    assert [w.split(": ")[0] for w in warnings] == ["posts/lines.md:12", "posts/lines.md:13", "posts/lines.md:15"]
    assert "unknown macro \\foo" in warnings[0] and "\\bar" in warnings[1] and "\\baz" in warnings[2]
    assert '<code class="math-error" title="TeX error: unknown macro \\foo' in page.html
    assert "$\\foo&#123;y&#125;$" in page.html  # the source as written (braces made inert for Liquid)
    assert '<pre class="math-error"' in page.html and "merror" not in page.html


def test_math_in_captions_claims_questions_and_description(tmp_path):
    text = r"""---
title: Captions
date: 2026-01-02
description: Fits $y = 2x$ and keeps <b>tags</b> as text.
questions:
  - Does $t \sim \gamma^{-1}$ hold, as \eqref{eq:t} says?
---

$$ t = c / \gamma \label{eq:t} $$

```python
#| caption: Columns $W_i$ of $W$, and $\lVert W \rVert_F^2$.
x = 1
```

```python
#| claim: the norm $\|W\|_F$ shrinks
assert x == 1
```
"""
    page, warnings = render_post(text, tmp_path, claims=(None, Verdict("the norm $\\|W\\|_F$ shrinks", True)))
    assert warnings == []
    body = page.html
    caption = body[body.index("<figcaption>") if "<figcaption>" in body else 0:]
    description = re.search(r'<p class="entry-description">(.*?)</p>', body, re.S).group(1)
    assert "<math" in description and "&lt;b&gt;tags&lt;/b&gt;" in description
    questions = re.search(r'<(section|aside) class="entry-questions"[^>]*>(.*?)</\1>', body, re.S).group(2)
    assert "<math" in questions and '<a class="eqref" href="#eq-eqt">(1)</a>' in questions
    claims = re.search(r'<section class="entry-claims"[^>]*>(.*?)</section>', body, re.S).group(1)
    assert "<math" in claims and "$" not in shown(claims)
    assert "$" not in text_outside_math(re.split(r'<section class="entry-(?:data|record)"', body)[0].replace(caption, ""))


def test_inline_html_typesets_short_texts_and_keeps_html_as_text():
    out = texmath.inline_html("Columns $W_i$, *all* of them, <script>alert(1)</script>")
    assert "<math" in out and "<em>all</em>" in out and "&lt;script&gt;" in out and "<p>" not in out


def test_typeset_formula_for_outputs_shares_the_page():
    env: dict = {}
    md(r"$$\newcommand{\R}{\mathbb{R}} a \label{a}$$", env)
    out = render.mathml(r"\R \eqref{a}", display=False, env=env)
    assert "ℝ" in shown(out) and "(1)" in shown(out)
    bad = render.mathml("\\frac{", display=False, env=env)
    assert "math-error" in bad and env["warnings"]


# --- safety: a formula never injects markup ------------------------------------------------------------


XSS = [
    r"\href{javascript:alert(1)}{x}",
    r"\url{javascript:alert(1)}",
    r"\htmlClass{x}{y}",
    r"\htmlId{x}{y}",
    r"\htmlStyle{color:red}{y}",
    r"\htmlData{x=1}{y}",
    r"\class{x}{y}",
    r"\cssId{x}{y}",
    r"\style{background:url(x)}{y}",
    r"\includegraphics{javascript:alert(1)}",
    r"\text{<script>alert(1)</script>}",
    r"\text{<img src=x onerror=alert(1)>}",
    r"\operatorname{<svg onload=alert(1)>}",
    r"\label{a\"><script>alert(1)</script>} x",
    r"\tag{<b onmouseover=alert(1)>x</b>} y",
    r"\color{red;background:url(javascript:alert(1))}{x}",
    r"\textcolor{#f00\" onload=\"alert(1)}{x}",
    r"\def\x{\x}\x",
    r"\rule{100000em}{100000em}",
    r"\rule{100000cm}{100000pt} \hspace{5000em} \kern{99in}",
]


class _Elements(HTMLParser):
    """Every element and attribute of a fragment, as a browser's parser sees them."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("tex", XSS)
@pytest.mark.parametrize("display", [False, True])
def test_a_formula_cannot_inject_markup(tex, display):
    out = md(f"$${tex}$$" if display else f"Text ${tex}$ text.")
    for tag, attributes in _Elements(out).found:
        assert tag not in {"script", "img", "svg", "iframe", "object", "embed", "style", "link", "form"}, out
        assert not any(name.startswith("on") for name in attributes), out
        assert "style" not in attributes or "url(" not in (attributes["style"] or ""), out
        assert (attributes.get("href") or "#").startswith("#"), out
        for name in ("width", "height", "depth"):
            size = re.fullmatch(r"([\d.]+)(em|pt)", attributes.get(name) or "")
            limit = texmath.MAX_SIZE[0] if size and size.group(2) == "em" else texmath.MAX_SIZE[1]
            assert size is None or float(size.group(1)) <= limit, out


def test_raw_html_around_math_still_follows_the_page_rules():
    out = md("$x$ <span>kept</span>")  # posts allow raw HTML; math does not change that
    assert "<span>kept</span>" in out and "<math" in out


# --- the engine ----------------------------------------------------------------------------------------


def test_importing_labbook_or_rendering_prose_without_math_starts_no_engine():
    code = ("import sys, labbook.render as r; r.markdown_html('Plain *prose*, $5 and $10, `$x$`.', {}); "
            "print('py_mini_racer' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_a_process_that_typeset_math_exits_promptly():
    code = "from labbook import texmath; print(texmath.typeset_formulas([texmath.Formula('x', False)])[0].mathml)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "<math>" in result.stdout, result.stderr


def test_pages_rendered_from_several_threads_each_number_from_one():
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(numbers(md(PAGE, {})))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and results == [["(1)", "(2)", "(3)", "(4)"]] * 6


def test_a_page_of_50_formulas_is_fast_once_the_engine_runs():
    formulas = [texmath.Formula(e.tex, e.display) for e in entries()[:50]]
    texmath.typeset_formulas(formulas)  # the engine's start-up and V8's warm-up
    start = time.perf_counter()
    results = texmath.typeset_formulas(formulas)  # no store: the engine itself
    seconds = time.perf_counter() - start
    assert all(r.mathml and not r.error for r in results)
    assert seconds < 1.0, seconds  # about 0.03 s on a quiet machine; generous for a busy CI


STORED = """
import sys
from labbook import render
env = {"math_store": sys.argv[1]}
print(render.markdown_html("$x^2$ and\\n\\n$$\\\\newcommand{\\\\R}{\\\\mathbb{R}} a \\\\in \\\\R \\\\label{a}$$\\n\\n\\\\eqref{a}", env))
print("engine started:", "py_mini_racer" in sys.modules, env.get("warnings", []))
"""


def test_typeset_formulas_are_kept_between_builds(tmp_path):
    """A second build (a prose edit) finds every formula typeset: V8 is not even imported."""
    runs = [subprocess.run([sys.executable, "-c", STORED, str(tmp_path / "math")], capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    first, second = (r.stdout.split("engine started: ") for r in runs)
    assert first[0] == second[0] and "<math" in first[0] and "(1)" in shown(first[0]), runs[0].stderr
    assert first[1].strip() == "True []" and second[1].strip() == "False []", runs[1].stderr
    assert len(list((tmp_path / "math").rglob("*"))) >= 3
