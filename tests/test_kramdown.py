"""kramdown's block attribute lists, as Jekyll posts write them, on the page labbook renders."""

from __future__ import annotations

import pytest

from labbook.kramdown import parse_attributes
from labbook.render import markdown_html

TIP = """> ##### TIP
>
> A tip can be used when you want to give advice
> related to a certain content.
{: .block-tip }
"""


def test_a_list_under_a_blockquote_classes_it_and_is_not_printed():
    page = markdown_html(TIP)
    assert page.startswith('<blockquote class="block-tip">') and "{:" not in page
    assert "<p>A tip can be used when you want to give advice\nrelated to a certain content.</p>" in page


@pytest.mark.parametrize(("text", "opening"), [
    ("| a |\n|---|\n| 1 |\n{: .table .table-sm}\n", '<table class="table table-sm">'),
    ("A paragraph.\n{: #intro .lead}\n", '<p id="intro" class="lead">'),
    ("Before.\n\n{: .lead}\nThe next block gets it.\n", '<p class="lead">The next block gets it.</p>'),
    ("- one\n- two\n{: .compact}\n", '<ul class="compact">'),
])
def test_the_list_goes_to_the_block_above_it_or_after_a_blank_line_to_the_block_below(text, opening):
    page = markdown_html(text)
    assert opening in page and "{:" not in page


@pytest.mark.parametrize("text", ["Para.\n\n{: .orphan }\n", "```\n{: .x}\n```\n", "    {: .indented}\n",
                                  "Text {: .inline } here.\n"])
def test_a_list_with_no_block_to_go_to_is_dropped_and_one_in_code_or_inside_a_line_is_text(text):
    page = markdown_html(text)
    assert "orphan" not in page and 'class="x"' not in page and 'class="indented"' not in page
    assert ("{:" in page) == ("orphan" not in text)


def test_attributes_are_read_as_kramdown_writes_them_and_event_handlers_are_left_out():
    assert parse_attributes('.a #b key="v w" other=\'x\' bare=1 onclick="alert(1)"') == [
        ("class", "a"), ("id", "b"), ("key", "v w"), ("other", "x"), ("bare", "1")]
