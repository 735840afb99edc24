"""Turn answers, citations and index facts into the app's markdown and HTML.

Owns escaping: text from the seeds is always shown as text, never interpreted as
markdown or HTML. Pure functions only; no Gradio import, no index access.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rag.query.conversation import follow_up
from rag.text.display import isolated, printable
from rag.types import Answer, Citation, IndexReport, IndexStatus

CONTEXT_CHARS = 300
NO_ANSWER = "The documents do not answer this question."
EMPTY_QUESTION = "Please type a question first, for example \u201cWhen did ChatGPT come out?\u201d"
SEARCHING = "_Searching the documents\u2026_"
SOURCES_EMPTY = '<p class="rag-note">Sources of the latest answer appear here.</p>'
SOURCES_PENDING = '<p class="rag-note">Looking for quotes\u2026</p>'
SOURCES_NONE = (
    '<p class="rag-note">No source quoted: the documents do not answer this question.</p>'
)
SOURCES_ERROR = '<p class="rag-note">No sources: the question could not be answered.</p>'

# Characters that start markdown syntax (CommonMark, GFM tables, strikethrough and
# autolinks, LaTeX) or HTML. Each may be backslash-escaped in CommonMark.
_MD_SPECIALS = frozenset("\\`*_{}[]()#+-.!|<>&~$:@/=^")
_MD_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def escape_html(text: str) -> str:
    """Text made safe for HTML content and quoted attributes.

    Example:
        >>> escape_html('<img src=x onerror="alert(1)">')
        '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    return html.escape(text, quote=True)


def escape_markdown(text: str) -> str:
    """Text that markdown renders literally: every special character backslash-escaped.

    Example:
        >>> escape_markdown("**bold** [a](b)")
        '\\\\*\\\\*bold\\\\*\\\\* \\\\[a\\\\]\\\\(b\\\\)'
    """
    return "".join(f"\\{ch}" if ch in _MD_SPECIALS else ch for ch in text)


def unescape_markdown(text: str) -> str:
    """The inverse of `escape_markdown`: ``unescape_markdown(escape_markdown(s)) == s``."""
    return _MD_ESCAPED.sub(r"\1", text)


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def message_text(content: Any) -> str:
    """The plain text of a chat message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return str(content.get("text") or "")
    if isinstance(content, Sequence):
        return " ".join(message_text(part) for part in content)
    return ""


MAX_HISTORY_MESSAGES = 40  # the conversation a request may carry back, newest kept
MAX_MESSAGE_CHARS = 4000  # of each message's text


def text_history(history: Any) -> list[dict[str, str]]:
    """The chat history a request sent, as text messages only: each a user or assistant
    role with the text of its content, cut to `MAX_MESSAGE_CHARS`, the newest
    `MAX_HISTORY_MESSAGES` of them. Files, components and anything else are dropped, so
    no request makes the page copy or echo a file.

    Example:
        >>> text_history([{"role": "user", "content": "Hi"},
        ...               {"role": "assistant", "content": {"path": "/etc/passwd"}},
        ...               {"role": "system", "content": "x"}, "junk"])
        [{'role': 'user', 'content': 'Hi'}]
    """
    if not isinstance(history, Sequence) or isinstance(history, str):
        return []
    kept = []
    for m in history:
        if not isinstance(m, Mapping) or m.get("role") not in ("user", "assistant"):
            continue
        content = m.get("content")
        text = message_text(content) if isinstance(content, str | Sequence) else ""
        if text:
            kept.append({"role": str(m["role"]), "content": text[:MAX_MESSAGE_CHARS]})
    return kept[-MAX_HISTORY_MESSAGES:]


def contextualize(question: str, history: Sequence[Mapping[str, Any]]) -> str:
    """The question to retrieve with: a short follow-up with a pronoun gets the previous one.

    ``history`` is the chat in messages format; user messages hold escaped markdown.

    Example:
        >>> h = [{"role": "user", "content": "Why did Musk leave OpenAI?"}]
        >>> contextualize("When did he leave?", h)
        'Why did Musk leave OpenAI? When did he leave?'
    """
    asked = [
        unescape_markdown(message_text(m.get("content")))
        for m in history
        if m.get("role") == "user"
    ]
    return follow_up(question, asked)


def quote_markdown(n: int, citation: Citation) -> str:
    """One cited quote for the chat: the escaped quote in quotation marks, then ``[n]``."""
    quote = isolated(escape_markdown(one_line(citation.quote)))
    return f"\u201c{quote}\u201d **\\[{n}\\]**"


def page_label(citation: Citation) -> str | None:
    """The page a citation is shown with: the label printed on it ("iv"), else its number;
    None for formats without pages."""
    if citation.page is None:
        return None
    return citation.page_label or str(citation.page)


def _page_md(citation: Citation) -> str:
    label = page_label(citation)
    return f"p. {escape_markdown(label)}, " if label else ""


def shown_name(source: str) -> str:
    """A file name for the chat: control characters escaped (as ``\\uXXXX``), markdown
    escaped, and isolated when it holds right-to-left letters.

    Example:
        >>> print(shown_name("a\u202eb.md"))
        a\\\\u202eb\\.md
        >>> shown_name("\u05e9\u05dc\u05d5\u05dd") == "\u2068\u05e9\u05dc\u05d5\u05dd\u2069"
        True
    """
    return isolated(escape_markdown(printable(source)))


def sources_footer(citations: Sequence[Citation]) -> str:
    """A small line naming each citation's file and character range."""
    parts = [
        f"\\[{n}\\] {shown_name(c.source)} \\({_page_md(c)}{c.start}\u2013{c.end}\\)"
        for n, c in enumerate(citations, 1)
    ]
    return "_Sources: " + " \u00b7 ".join(parts) + "_"


def answer_steps(answer: Answer) -> list[str]:
    """The chat message as it grows, quote by quote; the last item is the full answer.

    Example:
        >>> answer_steps(Answer("q", NO_ANSWER, ()))
        ['The documents do not answer this question.']
    """
    if not answer.citations:
        return [NO_ANSWER]
    quotes = [quote_markdown(n, c) for n, c in enumerate(answer.citations, 1)]
    steps = ["\n\n".join(quotes[:k]) for k in range(1, len(quotes) + 1)]
    steps[-1] += "\n\n" + sources_footer(answer.citations)
    return steps


def context_bounds(text: str, start: int, end: int, radius: int = CONTEXT_CHARS) -> tuple[int, int]:
    """Offsets of the context shown around ``text[start:end]``.

    At most ``radius`` characters on each side, cut at a paragraph break when one is
    that close, otherwise at a space so that no word is split.
    """
    lo = max(0, start - radius)
    para = text.rfind("\n\n", lo, start)
    if para != -1:
        lo = para + 2
    elif lo > 0:
        space = text.find(" ", lo, start)
        lo = space + 1 if space != -1 else lo
    hi = min(len(text), end + radius)
    para = text.find("\n\n", end, hi)
    if para != -1:
        hi = para
    elif hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    return lo, hi


def context_html(text: str, citation: Citation) -> str:
    """The quote highlighted with ``<mark>`` inside its escaped surrounding text."""
    start, end = citation.start, citation.end
    if text[start:end] != citation.quote:  # the file changed since it was answered
        return f"<mark>{escape_html(citation.quote)}</mark>"
    lo, hi = context_bounds(text, start, end)
    before = ("\u2026" if lo > 0 and text[lo - 1] != "\n" else "") + text[lo:start].lstrip()
    after = text[end:hi].rstrip() + ("\u2026" if hi < len(text) and text[hi] != "\n" else "")
    return f"{escape_html(before)}<mark>{escape_html(citation.quote)}</mark>{escape_html(after)}"


def _page_html(citation: Citation) -> str:
    label = page_label(citation)
    if not label:
        return ""
    title = f"page {citation.page} of the file"
    return f'<span class="rag-page" title="{title}">p. {escape_html(label)}</span> '


def citation_html(n: int, citation: Citation, text: str | None) -> str:
    """One entry of the sources panel: number, file, range, score, quote in context."""
    body = (
        context_html(text, citation)
        if text is not None
        else (f"<mark>{escape_html(citation.quote)}</mark>")
    )
    return (
        f'<li class="rag-cite" id="rag-cite-{n}">'
        f'<div class="rag-head"><span class="rag-n">[{n}]</span> '
        f'<span class="rag-file">{escape_html(printable(citation.source))}</span> '
        f"{_page_html(citation)}"
        f'<span class="rag-range">chars {citation.start}\u2013{citation.end}</span> '
        f'<span class="rag-score">score {citation.score:.3f}</span> '
        f'<button type="button" class="rag-copy" data-quote="{escape_html(citation.quote)}" '
        f'title="Copy the quote">Copy quote</button></div>'
        f'<div class="rag-context">{body}</div></li>'
    )


def sources_html(answer: Answer, texts: Mapping[str, str]) -> str:
    """The sources panel for an answer; ``texts`` maps each source to its text.

    A source missing from ``texts`` shows its quote without context.
    """
    if not answer.citations:
        return SOURCES_NONE
    items = [citation_html(n, c, texts.get(c.source)) for n, c in enumerate(answer.citations, 1)]
    return f'<ol class="rag-cites">{"".join(items)}</ol>'


def status_markdown(status: IndexStatus) -> str:
    """The one-line index status: documents, chunks, last build, model."""
    built = status.built_at.replace("T", " ")[:16] or "never"
    return (
        f"**Index:** {status.documents} documents \u00b7 {status.chunks} chunks \u00b7 "
        f"built {escape_markdown(built)} \u00b7 model {escape_markdown(status.model)}"
    )


def report_markdown(report: IndexReport) -> str:
    """What a rebuild did, in one line."""
    return (
        f"**Rebuilt in {report.seconds:.1f} s:** {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.deleted} deleted; "
        f"{report.chunks_embedded} chunks embedded of {report.chunks_total}."
    )


SOURCES_CSS = """
/* A file name or quote holding bidi controls or right-to-left text cannot reorder
   what is shown around it. */
.rag-file, .rag-context, .rag-context mark { unicode-bidi: isolate; }
.rag-note { color: var(--body-text-color-subdued); font-style: italic; }
.rag-cites { list-style: none; padding: 0; margin: 0; }
.rag-cite { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 10px 12px; margin-bottom: 10px; background: var(--background-fill-secondary); }
.rag-head { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline;
  font-size: 0.85em; margin-bottom: 6px; }
.rag-n { font-weight: 700; }
.rag-file { font-family: var(--font-mono); word-break: break-all; }
.rag-page, .rag-range, .rag-score { color: var(--body-text-color-subdued); }
.rag-copy { margin-left: auto; font-size: 0.85em; padding: 1px 8px; cursor: pointer;
  border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--background-fill-primary); }
.rag-context { white-space: pre-wrap; line-height: 1.5; font-size: 0.92em; }
.rag-context mark { background: var(--color-accent-soft); color: inherit;
  padding: 0 1px; border-radius: 2px; }
"""

# Copies a quote from the button's data-quote attribute: the quote never reaches the
# script as code, only as an attribute value the browser has already unescaped.
COPY_JS = """
element.addEventListener('click', function (event) {
  const button = event.target.closest('button[data-quote]');
  if (!button) { return; }
  const quote = button.dataset.quote;
  const done = function () {
    button.textContent = 'Copied';
    setTimeout(function () { button.textContent = 'Copy quote'; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(quote).then(done);
    return;
  }
  const area = document.createElement('textarea');
  area.value = quote;
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
  done();
});
"""
