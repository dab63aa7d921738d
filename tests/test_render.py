"""Render stage: markdown, math, code, outputs after their cells, escaping, inert Liquid."""

from __future__ import annotations

import html
import re
import subprocess
import sys

import pytest

from labbook import render, source
from labbook.cache import nothing_ran
from labbook.config import load_config
from labbook.model import Artifact, CellResult, Run, Verdict
from labbook.theme import Theme, liquid_inert

TEXT = """---
title: Render <test>
date: 2026-03-04
tags: [a&b]
---

Inline $\\alpha^2$ and display:

$$
\\int_0^1 x\\,dx = \\frac{1}{2}
$$

| h | i |
| - | - |
| 1 | 2 |

```python
#| label: fig-one
#| caption: First <figure>.
x = 1
```

Text with {{ liquid }} and {% tag %}.[^n]

[^n]: A note.

```python
#| echo: false
print("<b>hidden code</b>")
```

```python
#| output: false
print("not shown")
```

```python
#| claim: x is one
assert x == 1
```
"""


@pytest.fixture
def page(tmp_path):
    post, _ = source.parse(TEXT, "posts/render.md")
    run = Run(
        key=post.key,
        cells=(
            CellResult(0, ({"output_type": "figure", "name": "figures/fig-one.png", "alt": ""},
                           {"output_type": "execute_result", "data": {"text/plain": "<tag> & {{ x }}"}}), 0.1),
            CellResult(1, ({"output_type": "stream", "name": "stdout", "text": "<b>hidden code</b>\n"},), 0.1),
            CellResult(2, ({"output_type": "stream", "name": "stdout", "text": "not shown\n"},), 0.1),
            CellResult(3, (), 0.1, Verdict("x is one", True)),
        ),
        artifacts=(Artifact("figure", "figures/fig-one.png", "0" * 64, 3, 0),
                   Artifact("data", "data/table.csv", "1" * 64, 2048, None),
                   Artifact("notebook", "executed.ipynb", "2" * 64, 10, None)),
        inputs={}, basis=post.basis, environment={"python": "3.11"}, started="2026-03-04T10:00:00+00:00",
        seconds=1.0,
    )
    config = load_config(tmp_path)
    result = render.render(post, run, tmp_path, config, Theme(config.templates))
    assert [(n.path, n.line) for n in result.notices] == [("posts/render.md", 23)]  # {% tag %}: shown, warned of
    return result


def shown(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_math_becomes_mathml(page):
    assert "<span class=\"math inline\"><math" in page.html and "<mi>α</mi>" in page.html
    assert '<div class="math display"><math' in page.html and 'display="block"' in page.html
    assert "$" not in shown(page.html)


def test_code_is_highlighted_and_followed_by_its_outputs(page):
    body = page.html
    code = body.index('<div class="highlight">')
    figure = body.index('<figure class="figure" id="fig-one"')
    result = body.index('class="output result"')
    assert code < figure and code < result
    assert "Figure 1.</span> First &lt;figure&gt;." in body


def test_echo_false_hides_code_and_output_false_hides_outputs(page):
    text = shown(page.html)
    assert 'print("<b>hidden code</b>")' not in text and "<b>hidden code</b>" in text
    assert 'print("not shown")' in text and "not shown\n" not in text.replace('print("not shown")', "")


def test_outputs_and_metadata_are_escaped(page):
    assert "&lt;tag&gt; &amp;" in page.html
    assert "<b>hidden" not in page.html and "<test>" not in page.html
    assert "Render &lt;test&gt;" in page.html


def test_liquid_is_inert_but_reads_the_same(page):
    assert "{{" not in page.html and "{%" not in page.html
    text = shown(page.html)
    assert "Text with {{ liquid }} and {% tag %}." in text and "{{ x }}" in text


def test_claims_tables_footnotes_downloads(page):
    assert "✓ holds" in page.html and "x is one" in page.html
    assert "<table>" in page.html and "footnote" in page.html
    assert 'href="/assets/posts/render/data/table.csv"' in page.html and "2.0 KB" in page.html
    assert 'href="/assets/posts/render/run.json"' in page.html


def test_page_paths_and_front_matter(page):
    assert page.url == "/blog/2026/render/"
    assert page.filename == "_posts/2026-03-04-render.html"
    assert page.front_matter["title"] == "Render <test>" and page.front_matter["tags"] == ["a&b"]
    assert page.summary.status is None and "status" not in page.front_matter  # no status given: no badge
    assert page.front_matter["labbook"]["source"] == "posts/render.md"


def test_bad_math_is_shown_as_text_with_a_warning(tmp_path):
    env: dict = {}
    out = render.mathml("\\frac{", display=False, env=env)
    assert "math-error" in out and env["warnings"]


@pytest.mark.parametrize("text", ["{{ x }}", "{% endraw %}", "{%- raw -%}", "}}{{"])
def test_liquid_inert_round_trips_through_html(text):
    inert = liquid_inert(text)
    assert "{" not in inert and "}" not in inert
    assert html.unescape(inert) == text


def test_a_build_makes_the_code_cells_lexer_ahead_and_pages_then_use_it():
    render._lexer.cache_clear()
    render.ready_to_highlight()
    assert render._lexer.cache_info().currsize == 1
    html = render.highlight("x = 1  # a comment")
    assert render._lexer.cache_info().hits >= 1 and '<span class="c1"># a comment</span>' in html


RACE = """
import threading
from labbook import render
failed = []
def ahead():
    try:
        render.ready_to_highlight()
    except ImportError as exc:
        failed.append(exc)
thread = threading.Thread(target=ahead)
thread.start()
try:
    render._lexer("text"), render._lexer("bash")
except ImportError as exc:
    failed.append(exc)
thread.join()
print(failed)
"""


def test_the_lexer_made_ahead_on_a_thread_races_no_page_rendering_meanwhile():
    """pygments' lexers module replaces itself as it loads: without labbook's lock, one of the
    two threads got "cannot import name 'TextLexer'" in every run of this (a build failed so)."""
    for _ in range(3):  # a fresh process each time: the modules are imported anew
        done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_an_imported_posts_highlight_block_is_highlighted_code_and_raw_tags_are_gone(tmp_path):
    text = ("---\ntitle: Code\ndate: 2026-01-01\n---\n\n{% raw %}\nLiquid: {{ page.title }}\n{% endraw %}\n\n"
            "{% highlight python linenos %}\ndef f(x):\n    return x\n{% endhighlight %}\n")
    post, _ = source.parse(text, "posts/code.md")
    config = load_config(tmp_path)
    result = render.render(post, nothing_ran(post), None, config, Theme(config.templates))
    assert result.notices == ()
    assert '<div class="code-block language-python">' in result.html and "{% highlight" not in result.html
    assert "raw %}" not in result.html and "Liquid: " in result.html
