"""Tests for ui.render: escaping, follow-up questions, chat steps and the sources panel."""

from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from rag.types import Answer, Citation, IndexReport, IndexStatus
from ui import render

EVIL = "<script>alert(1)</script> <img src=x onerror=alert(1)> **bold** __debug__ [link](http://x)"
SPECIALS = [*"\\`*_{}[]()#+-.!|<>&~$:@/=^'\" \n\t", "&amp;", "&#60;", "<!--", "1. ", "> "]
texts = st.lists(
    st.sampled_from(SPECIALS) | st.text(st.characters(exclude_categories=("Cs", "Cc"))),
).map("".join)
MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def rendered_text(markdown: str) -> str:
    """The text inside the single paragraph a markdown string renders to."""
    out = MARKDOWN.render(markdown)
    assert out.startswith("<p>") and out.endswith("</p>\n"), out
    inner = out[len("<p>") : -len("</p>\n")]
    assert "<" not in inner, f"markup in {out!r}"
    return html.unescape(inner)


@given(texts)
def test_escape_html_round_trips_and_leaves_no_markup(text: str) -> None:
    escaped = render.escape_html(text)
    assert html.unescape(escaped) == text
    assert not {"<", ">", '"', "'"} & set(escaped)


@given(texts)
def test_escape_markdown_round_trips(text: str) -> None:
    assert render.unescape_markdown(render.escape_markdown(text)) == text


@given(texts.map(render.one_line).filter(bool))
def test_escaped_markdown_renders_as_the_literal_text(text: str) -> None:
    assert rendered_text(render.escape_markdown(text)) == text


def test_seed_markup_is_shown_literally_in_markdown() -> None:
    assert rendered_text(render.escape_markdown(EVIL)) == EVIL
    assert "<strong>" not in MARKDOWN.render(render.escape_markdown("**bold** __debug__"))


def test_contextualize_prefixes_the_previous_question_to_a_short_follow_up() -> None:
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Why did Musk leave OpenAI\\?"}]},
        {"role": "assistant", "content": "\u201cquote\u201d \\[1\\]"},
    ]
    assert render.contextualize("When did he go?", history) == (
        "Why did Musk leave OpenAI? When did he go?"
    )


def test_contextualize_leaves_other_questions_alone() -> None:
    history = [{"role": "user", "content": "Why did Musk leave OpenAI?"}]
    assert render.contextualize("When did ChatGPT come out?", history) == (
        "When did ChatGPT come out?"
    )
    long_one = "What did he say at the MIT event in April about the future of the company?"
    assert render.contextualize(long_one, history) == long_one
    assert render.contextualize("When did he go?", []) == "When did he go?"


def citation(source: str, text: str, quote: str, score: float = 0.5) -> Citation:
    start = text.index(quote)
    return Citation(source, start, start + len(quote), quote, score)


def test_answer_steps_grow_quote_by_quote_and_end_with_sources() -> None:
    text = "First fact here. Second <b>fact</b> here."
    cites = (citation("a.txt", text, "First fact here."), citation("b_1.txt", text, "Second"))
    steps = render.answer_steps(Answer("q", "unused", cites))
    assert len(steps) == 2
    assert steps[0] == "\u201cFirst fact here\\.\u201d **\\[1\\]**"
    assert steps[1].startswith(steps[0] + "\n\n\u201cSecond\u201d **\\[2\\]**")
    assert steps[1].endswith(
        "_Sources: \\[1\\] a\\.txt \\(0\u201316\\) \u00b7 \\[2\\] b\\_1\\.txt \\(17\u201323\\)_"
    )


def test_answer_steps_say_when_the_documents_do_not_answer() -> None:
    assert render.answer_steps(Answer("q", render.NO_ANSWER, ())) == [render.NO_ANSWER]


def test_context_is_cut_at_paragraphs_and_escaped() -> None:
    text = "Other paragraph.\n\nBefore <i>it</i>. The **quote** & more. After.\n\nNext one."
    cite = citation("s.txt", text, "The **quote** & more.")
    assert render.context_html(text, cite) == (
        "Before &lt;i&gt;it&lt;/i&gt;. <mark>The **quote** &amp; more.</mark> After."
    )


@given(texts, st.data())
def test_context_html_marks_the_quote_inside_a_slice_of_the_source(
    text: str, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    out = render.context_html(text, Citation("s.txt", start, end, text[start:end], 0.1))
    assert out.count("<mark>") == 1 and out.count("</mark>") == 1
    assert "<" not in re.sub("</?mark>", "", out)
    inside = out[out.index("<mark>") + 6 : out.index("</mark>")]
    assert html.unescape(inside) == text[start:end]
    shown = html.unescape(re.sub("</?mark>", "", out)).strip("\u2026")
    assert shown in text


def test_sources_html_lists_each_citation_escaped() -> None:
    text = 'Intro line.\n\nThe payload <script>alert(1)</script> sits here. Then "more".'
    cite = citation(
        "<b>evil</b>.txt", text, "The payload <script>alert(1)</script> sits here.", 0.25
    )
    out = render.sources_html(Answer("q", "t", (cite,)), {cite.source: text})
    assert "<script" not in out and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert '<span class="rag-file">&lt;b&gt;evil&lt;/b&gt;.txt</span>' in out
    assert f"chars {cite.start}\u2013{cite.end}" in out
    assert "score 0.250" in out and '<span class="rag-n">[1]</span>' in out
    assert 'data-quote="The payload &lt;script&gt;alert(1)&lt;/script&gt; sits here."' in out
    assert "Then &quot;more&quot;." in out  # context after the quote


def test_sources_html_without_citations_or_text() -> None:
    assert render.sources_html(Answer("q", render.NO_ANSWER, ()), {}) == render.SOURCES_NONE
    cite = Citation("gone.txt", 3, 8, "quote", 0.1)
    out = render.sources_html(Answer("q", "t", (cite,)), {})
    assert '<div class="rag-context"><mark>quote</mark></div>' in out


def test_status_and_report_lines() -> None:
    status = IndexStatus(3, 12, 40, "2026-11-26T00:45:31+0000", "all-MiniLM-L6-v2", "i", "s")
    assert render.status_markdown(status) == (
        "**Index:** 3 documents \u00b7 12 chunks \u00b7 built 2026\\-11\\-26 00\\:45 \u00b7 "
        "model all\\-MiniLM\\-L6\\-v2"
    )
    report = IndexReport(1, 2, 3, 4, 5, 6, 6, 1.25)
    assert render.report_markdown(report) == (
        "**Rebuilt in 1.2 s:** 1 added, 2 updated, 3 unchanged, 4 deleted; 5 chunks embedded of 6."
    )


def test_pdf_citations_show_their_page() -> None:
    from rag.types import Answer, Citation
    from ui.render import sources_footer, sources_html

    pdf = Citation("a.pdf", 10, 20, "quote text", 0.5, page=3)
    txt = Citation("b.txt", 1, 5, "abcd", 0.4)
    html = sources_html(Answer("q", "t", (pdf, txt)), {})
    assert html.count('class="rag-page"') == 1 and "p. 3" in html
    assert "p. 3, 10" in sources_footer([pdf, txt]) and "p. " not in sources_footer([txt])


def test_pdf_citations_show_the_printed_page_label() -> None:
    from rag.types import Answer, Citation
    from ui.render import sources_footer, sources_html

    roman = Citation("a.pdf", 10, 20, "quote text", 0.5, page=4, page_label="iv")
    html = sources_html(Answer("q", "t", (roman,)), {})
    assert 'title="page 4 of the file">p. iv</span>' in html
    assert "p. iv, 10" in sources_footer([roman])
    hostile = Citation("a.pdf", 1, 2, "q", 0.5, page=1, page_label="<b>*x*")
    assert "&lt;b&gt;" in sources_html(Answer("q", "t", (hostile,)), {})
    assert "\\*x\\*" in sources_footer([hostile])


def test_bidi_controls_in_names_and_quotes_cannot_reorder_the_answer() -> None:
    from rag.query.quotes import compose

    evil = Citation("notes\u202etxt.md", 0, 20, "Musk left \u202ein 2018.", 0.9)
    plain = Citation("plain.txt", 0, 5, "Hello", 0.5)
    text = compose("q", [evil, plain]).text
    assert "\u201c\u2068Musk left \u202ein 2018.\u2069\u201d [1]" in text  # isolated
    assert "\u201cHello\u201d [2]" in text  # plain text is left as it is
    chat = render.answer_steps(Answer("q", text, (evil, plain)))[-1]
    assert "\u2068" + render.escape_markdown("Musk left \u202ein 2018.") + "\u2069" in chat
    footer = render.sources_footer([evil, plain])
    assert "\u202e" not in footer and "notes\\\\u202etxt" in footer
    panel = render.sources_html(Answer("q", text, (evil,)), {})
    assert '<span class="rag-file">notes\\u202etxt.md</span>' in panel  # escaped
    assert ".rag-context mark { unicode-bidi: isolate; }" in render.SOURCES_CSS
