"""Liquid in prose: al-folio's figure include understood, every other tag warned of and left inert."""

from __future__ import annotations

import pytest

from labbook import liquid
from labbook.liquid import FigureTag, Live, Marks, figure_html, parse_figure_tag, replace_tags, scan_prose
from labbook.theme import liquid_inert

ALFOLIO = """This is an example post with images.

<div class="row mt-3">
    <div class="col-sm mt-3 mt-md-0">
        {% include figure.liquid path="assets/img/9.jpg" class="img-fluid rounded z-depth-1" zoomable=true %}
    </div>
    <div class="col-sm mt-3 mt-md-0">
        {% include figure.liquid loading="eager" path='assets/img/7.jpg' title="example image" class="img-fluid" %}
    </div>
</div>
<div class="caption">
    A simple, elegant caption.
</div>
"""


def test_alfolio_figure_includes_are_found_with_their_lines():
    figures, warnings = scan_prose(ALFOLIO, 10)
    assert warnings == []
    assert [(f.path, f.line) for f in figures] == [("assets/img/9.jpg", 14), ("assets/img/7.jpg", 17)]
    assert figures[0].get("zoomable") is True and figures[0].get("class") == "img-fluid rounded z-depth-1"
    assert figures[1].get("loading") == "eager" and figures[1].get("title") == "example image"


@pytest.mark.parametrize("text", [
    "```liquid\n{% include figure.liquid path=\"a.png\" %}\n```",
    "    {% include figure.liquid path=\"a.png\" %}",
    "Inline `{% include figure.liquid path=\"a.png\" %}` code.",
    "Spans ``two `{% if x %}` ticks`` too.",
])
def test_code_is_never_live_and_never_warned_of(text):
    assert scan_prose(text, 1) == ([], [])


@pytest.mark.parametrize(("tag", "why"), [
    ("{% raw %}", ""),
    ("{% include figure.html path=\"a.png\" %}", "not 'figure.html'"),
    ("{% include figure.liquid path=page.image %}", "a Liquid variable"),
    ("{% include figure.liquid class=\"x\" %}", "a figure needs path"),
    ("{% include figure.liquid path=\"https://example.org/a.png\" %}", "another host"),
    ("{% include figure.liquid path=\"assets/../secret.png\" %}", "letters, digits"),
    ("{% include figure.liquid path=\"a b.png\" %}", "letters, digits"),
    ("{% include figure.liquid path=\"a.png\" caption='ends in \\\\' %}", "backslash"),
    ("{% include figure.liquid path=\"a.png\" caption=\"x {% y\" %}", "cannot hold"),
])
def test_other_tags_are_warned_of_with_file_and_line(tag, why):
    figures, warnings = scan_prose(f"Line one.\n\nSee {tag} here.", 7)
    assert figures == []
    assert len(warnings) == 1 and warnings[0][0] == 9 and warnings[0][1].startswith("Liquid tag {%")
    assert why in warnings[0][1]


def test_variables_in_prose_are_left_alone_quietly():
    assert scan_prose("Text with {{ x }} and $\\frac{{a}}{b}$.", 1) == ([], [])


def test_a_tag_spanning_lines_ends_at_the_first_close_as_liquid_cuts_it():
    figures, _ = scan_prose('{% include figure.liquid\n   path="a.png"\n   caption="two lines" %}', 3)
    assert figures[0].line == 3 and figures[0].get("caption") == "two lines"


@pytest.mark.parametrize(("written", "value"), [
    ('caption="$W_i^\\top x$ and \\alpha"', "$W_i^\\top x$ and \\alpha"),  # TeX: backslashes are text
    ('caption="a \\"q\\" b"', 'a "q" b'),  # only an escaped quote loses its backslash, as in Jekyll
    ("caption='it\\'s'", "it's"),
    ("caption='it\\'s \"q\"'", "it's \"q\""),
])
def test_values_are_read_as_jekylls_include_reads_them_and_written_back_the_same(written, value):
    tag = parse_figure_tag(f"{{% include figure.liquid path=\"a.png\" {written} %}}")
    assert tag.get("caption") == value
    assert parse_figure_tag(tag.liquid()).get("caption") == value


def test_the_tag_is_rebuilt_from_its_values_not_copied():
    tag = parse_figure_tag("{%- include figure.liquid path='a.png' alt='say \"hi\"' width=600 zoomable=false -%}")
    assert tag.liquid() == "{% include figure.liquid path=\"a.png\" alt='say \"hi\"' width=600 zoomable=false %}"
    assert tag.liquid(path="assets/img/blogs/x/a.png").startswith('{% include figure.liquid path="assets/img/blogs/')


def test_figure_html_follows_liquid_truth_and_escaping():
    tag = FigureTag((("path", "/assets/a.png"), ("alt", "a & 'b' <c>"), ("caption", ""), ("class", False),
                     ("loading", ""), ("width", 1.5)))
    assert figure_html(tag, "/base/") == (
        '<figure class="figure"><img src="/base/assets/a.png" width="1.5" alt="a &amp; &#39;b&#39; &lt;c&gt;"'
        ' loading="lazy"><figcaption class="caption"></figcaption></figure>')


def test_the_last_value_of_a_repeated_key_wins():
    assert parse_figure_tag('{% include figure.liquid path="a.png" alt="one" alt="two" %}').get("alt") == "two"


def test_live_figures_in_a_page_are_rendered_and_the_rest_left_alone():
    page = ('<p>&#123;% raw %&#125;</p>\n{% include figure.liquid path="a.png" %}\n'
            '{% include figure.html path="b.png" %}')
    out = liquid.render_live_figures(page, "")
    assert out.startswith('<p>&#123;% raw %&#125;</p>\n<figure class="figure"><img src="/a.png"')
    assert out.endswith('{% include figure.html path="b.png" %}')


def test_marks_carry_live_liquid_through_the_inert_step():
    marks = Marks()
    text, warnings = replace_tags(ALFOLIO + "\n{% include figure.liquid path=\"c.png\" %}\n", 1,
                                  lambda tag: marks.mark(Live(tag.liquid())))
    page = f"<p>{{{{ forged }}}} {marks.text(Live('{{ x | relative_url }}'))}</p>\n" + text
    restored = marks.restore(liquid_inert(page))
    assert restored.count("{% include figure.liquid") == 3 and "{{ x | relative_url }}" in restored
    assert "&#123;&#123; forged &#125;&#125;" in restored
    assert "\ue000" not in restored


def test_a_mark_written_by_an_author_is_not_a_mark():
    marks = Marks()
    real = marks.mark("{% include figure.liquid path=\"a.png\" %}")
    forged = real.replace(marks.nonce, "0" * len(marks.nonce))
    assert marks.restore(f"{forged} {real}").startswith(forged)
    with pytest.raises(ValueError):
        marks.restore(f"{real} {real}")  # a mark twice: refused, never silently
    assert Marks().nonce != marks.nonce


def test_a_mark_alone_in_a_paragraph_leaves_its_paragraph():
    marks = Marks()
    mark = marks.mark("{% include figure.liquid path=\"a.png\" %}")
    assert marks.restore(f"<p>{mark}</p>\n<p>after</p>") == '{% include figure.liquid path="a.png" %}\n<p>after</p>'


def test_a_tag_over_lines_keeps_every_later_line_where_it_was():
    marks = Marks()
    text = 'Before {% include figure.liquid\n  path="a.png" %} after.\n\n```python\nx = 1\n```\n'
    replaced, _ = replace_tags(text, 1, lambda tag: marks.mark(tag.liquid()), filler=lambda: marks.mark(""))
    assert replaced.count("\n") == text.count("\n") and "\n\n```python" in replaced
    assert marks.restore(f"<p>{replaced.split(chr(10) + chr(10))[0]}</p>") == (
        '<p>Before {% include figure.liquid path="a.png" %}\n after.</p>')


RAW_AND_HIGHLIGHT = """Intro.

{% raw %}
{% highlight c++ linenos %} <br/> {% include figure.liquid path="assets/x.png" %} {% endhighlight %}
{% endraw %}

{% highlight c++ linenos %}
int main() { return `x`; }
{% endhighlight %}

{%- highlight ruby -%}
puts ```not a fence```
{%- endhighlight -%}
After.
"""


def test_raw_blocks_show_what_they_hold_as_written_with_no_tag_run_or_warned_of():
    figures, warnings = scan_prose(RAW_AND_HIGHLIGHT, 10)
    assert figures == [] and warnings == []
    replaced, _ = replace_tags(RAW_AND_HIGHLIGHT, 10, lambda tag: "RUN")
    assert "{% raw %}" not in replaced and "{% endraw %}" not in replaced and "RUN" not in replaced
    assert '\n{% highlight c++ linenos %} <br/> {% include figure.liquid path="assets/x.png" %} {% endhighlight %}\n' in replaced


def test_highlight_blocks_become_fenced_code_in_their_language_every_line_in_place():
    replaced, warnings = replace_tags(RAW_AND_HIGHLIGHT, 10, lambda tag: "RUN")
    assert warnings == [] and replaced.count("\n") == RAW_AND_HIGHLIGHT.count("\n")
    assert "\n```c++\nint main() { return `x`; }\n```\n" in replaced
    assert "\n````ruby\nputs ```not a fence```\n````\nAfter." in replaced  # longer than any backtick run inside


@pytest.mark.parametrize("text", ["A {% highlight py %} x {% endhighlight %} inline.",
                                  "{% raw %} never closed", "{% highlight py %}\nnever closed\n"])
def test_a_raw_or_highlight_tag_that_cannot_be_read_as_jekyll_does_is_warned_of(text):
    replaced, warnings = replace_tags(text, 1, lambda tag: "RUN")
    assert replaced == text and warnings and "is shown as written" in warnings[0][1]


DETAILS = """Before.
{% details Click for the **proof** of $x^2$ %}
The bound holds because

```python
print("inside")
```
{% details nested %}
Deeper.
{% enddetails %}
{% enddetails %}
After.
"""


def details_page(text: str) -> str:
    from labbook.render import markdown_html

    replaced, warnings = replace_tags(text, 1, lambda tag: "RUN")
    assert warnings == [] and replaced.count("\n") == text.count("\n"), "a line moved"
    return markdown_html(replaced)


def test_alfolio_details_blocks_fold_their_markdown_under_a_summary_as_alfolio_shows_them():
    html = details_page(DETAILS)
    assert html.startswith("<p>Before.</p>\n<details><summary>Click for the <strong>proof</strong> of <span class=\"math inline\"><math>")
    assert '</summary>\n<p>The bound holds because</p>\n<div class="code-block language-python">' in html
    assert "<details><summary>nested</summary>\n<p>Deeper.</p>\n</details>\n</details>\n<p>After.</p>" in html
    assert "{%" not in html and "labbook:" not in html
    assert scan_prose(DETAILS, 1) == ([], [])  # nothing to warn of: `labbook import` keeps such a post quiet


def test_a_details_tag_ends_the_paragraph_above_it_and_starts_markdown_below_it():
    html = details_page("Text right above.\n{% details  %}\n* a list\n{% enddetails %}\n")
    assert html == ("<p>Text right above.</p>\n<details><summary></summary>\n<ul>\n<li>a list</li>\n</ul>\n"
                    "</details>\n")


@pytest.mark.parametrize(("text", "why"), [
    ("{% details never closed %}\nText.\n", "no {% enddetails %} closes it"),
    ("Text.\n{% enddetails %}\n", "no {% details %} opens it"),
    ("Some {% details inline %} text\n{% enddetails %}\n", "a details tag must stand on a line of its own"),
])
def test_a_details_tag_that_cannot_be_paired_is_shown_as_written_and_warned_of_with_its_line(text, why):
    replaced, warnings = replace_tags(text, 5, lambda tag: "RUN")
    assert why in " ".join(message for _, message in warnings)
    assert all(line in (5, 6) for line, _ in warnings)
    assert replaced == text


def test_details_tags_inside_code_or_raw_blocks_are_text():
    text = "```\n{% details x %}\n```\n{% raw %}\n{% enddetails %}\n{% endraw %}\n"
    replaced, warnings = replace_tags(text, 1, lambda tag: "RUN")
    assert warnings == [] and "{% details x %}" in replaced and "{% enddetails %}" in replaced


ADDRESSES = """![box]({{ site.baseurl }}/assets/img/x.png) and [post]({{ '/blog/2026/x/' | relative_url }})
<img src="{{- "assets/y.png" | relative_url -}}"> at {{ site.url }}, whole: {{ '/feed.xml' | absolute_url }}
Elsewhere: {{ 'https://example.org/z' | relative_url }}, `{{ site.baseurl }}` in code,
{% raw %}{{ site.baseurl }}{% endraw %}

```
{{ site.baseurl }}
```
"""


def test_the_sites_address_in_prose_is_printed_as_jekyll_prints_it_but_never_in_code_or_raw():
    shown = liquid.site_addresses(ADDRESSES, "/lab/", "https://me.example.org/")
    assert shown.count("\n") == ADDRESSES.count("\n")
    first, second, third, fourth, *rest = shown.split("\n")
    assert first == "![box](/lab/assets/img/x.png) and [post](/lab/blog/2026/x/)"
    assert second == '<img src="/lab/assets/y.png"> at https://me.example.org, whole: https://me.example.org/lab/feed.xml'
    assert third == "Elsewhere: https://example.org/z, `{{ site.baseurl }}` in code,"
    assert fourth == "{% raw %}{{ site.baseurl }}{% endraw %}" and "{{ site.baseurl }}" in rest


def test_without_a_baseurl_the_sites_paths_start_at_the_root():
    assert liquid.site_addresses("[a]({{ site.baseurl }}/x) [b]({{ 'y' | relative_url }})", "", "") == "[a](/x) [b](/y)"
    assert liquid.site_addresses("{{ page.title }} {{ site.title }}", "/lab", "") == "{{ page.title }} {{ site.title }}"


TABS = """## First tabs

{% tabs log %}

{% tab log php %}

```php
var_dump('hello');
```

{% endtab %}

{% tab log plain text %}
Regular *text*
{% endtab %}

{% endtabs %}
"""
"""jekyll-tabs as al-folio's sample post writes it (`tabs: true` in its front matter)."""


def test_jekyll_tabs_become_a_labelled_section_each_all_shown_with_their_markdown():
    html = details_page(TABS)
    assert '<div class="tabs">\n<section class="tab"><p class="tab-label">php</p>\n' in html
    assert '<section class="tab"><p class="tab-label">plain text</p>\n<p>Regular <em>text</em></p>\n</section>\n</div>' in html
    assert html.count("<section") == html.count("</section>") == 2 and "var_dump" in html and "{%" not in html


@pytest.mark.parametrize(("text", "why"), [
    ("{% tab log php %}\nx\n{% endtab %}\n", "a {% tab %} belongs right inside a {% tabs %} block"),
    ("{% tabs a %}\n{% details x %}\n{% endtabs %}\n{% enddetails %}\n", "no {% tabs %} opens it (the open block is {% details %})"),
])
def test_block_tags_that_do_not_nest_are_shown_as_written_and_warned_of(text, why):
    _, warnings = replace_tags(text, 1, lambda tag: "RUN")
    assert why in " ".join(message for _, message in warnings)


def test_a_block_tag_inside_the_authors_html_still_becomes_its_html():
    html = details_page('<div class="note">\n{% details More %}\nHidden <b>text</b>\n{% enddetails %}\n</div>\n')
    assert html == '<div class="note">\n<details><summary>More</summary>\nHidden <b>text</b>\n</details>\n</div>\n'


def test_readable_markdown_keeps_every_line_and_figure_tags_as_written():
    text = ('{% include figure.liquid  path="assets/a.png" %}\n{% details Why **so** %}\nBecause.\n'
            "{% enddetails %}\n{% raw %}{{ x }}{% endraw %}\n")
    shown = liquid.readable_markdown(text, 1)
    assert shown.split("\n") == ['{% include figure.liquid  path="assets/a.png" %}', "##### Why **so**", "Because.", "",
                                 "{{ x }}", ""]
