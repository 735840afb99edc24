"""Turn document listings and upload outcomes into the Documents panel's HTML and markdown.

Owns how a document's status, size and time read on the page. Pure functions only;
no Gradio import, no file or index access. Names are always escaped (they come from
the file system and from uploads).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rag.ingest.documents import DocumentEntry, counts
from rag.text.display import printable
from ui.render import escape_html, escape_markdown

MAX_ROWS = 500  # rows rendered at most; the filter finds the others
NO_DOCUMENTS = '<p class="rag-docs-note">No documents yet.</p>'
NO_MATCH = '<p class="rag-docs-note">No document matches the filter.</p>'
_UNITS = ("bytes", "kB", "MB", "GB", "TB")


def size_text(size: int | None) -> str:
    """A byte count for people (powers of 1000, as file managers show them).

    Example:
        >>> size_text(999), size_text(1_234_567), size_text(None)
        ('999 bytes', '1.2 MB', '')
    """
    if size is None:
        return ""
    value, unit = float(size), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{size} bytes" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def when_text(ns: int | None) -> str:
    """A time in ns since the epoch as the server's local "YYYY-MM-DD HH:MM"."""
    if not ns:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ns / 1e9))


def status_text(entry: DocumentEntry) -> str:
    """The status as shown: "indexed", or the status and its reason."""
    return f"{entry.status}: {entry.reason}" if entry.reason else entry.status


def summary_text(entries: Sequence[DocumentEntry]) -> str:
    """One line of counts, e.g. "3 documents: 2 indexed, 1 skipped, 0 pending"."""
    n = counts(entries)
    total = len(entries)
    noun = "document" if total == 1 else "documents"
    return f"{total} {noun}: {n['indexed']} indexed, {n['skipped']} skipped, {n['pending']} pending"


def _row(entry: DocumentEntry) -> str:
    cells = (
        ("rag-doc-name", printable(entry.source)),
        ("rag-doc-status", status_text(entry)),
        ("rag-doc-size", size_text(entry.size)),
        ("rag-doc-chunks", "" if entry.chunks is None else str(entry.chunks)),
        ("rag-doc-when", when_text(entry.indexed_ns)),
    )
    tds = "".join(f'<td class="{cls}">{escape_html(text)}</td>' for cls, text in cells)
    return f'<tr class="rag-doc" data-status="{entry.status}">{tds}</tr>'


def documents_html(entries: Sequence[DocumentEntry], shown: Sequence[DocumentEntry]) -> str:
    """The documents table: a summary of all ``entries``, then the rows of ``shown``
    (the entries the filter keeps), at most `MAX_ROWS` of them."""
    if not entries:
        return NO_DOCUMENTS
    summary = summary_text(entries)
    if len(shown) != len(entries):
        summary += f"; {len(shown)} match{'es' if len(shown) == 1 else ''} the filter"
    if len(shown) > MAX_ROWS:
        summary += f"; the first {MAX_ROWS} are shown: filter to find the others"
    if not shown:
        return f'<p class="rag-docs-sum">{escape_html(summary)}</p>{NO_MATCH}'
    head = "".join(f"<th>{h}</th>" for h in ("Document", "Status", "Size", "Chunks", "Indexed"))
    rows = "".join(_row(e) for e in shown[:MAX_ROWS])
    return (
        f'<p class="rag-docs-sum">{escape_html(summary)}</p>'
        f'<table class="rag-docs-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def outcome_markdown(lines: Sequence[tuple[str, str]]) -> str:
    """Upload or removal outcomes, one per line: (mark, plain text), the text escaped.

    Example:
        >>> outcome_markdown([("ok", "notes added"), ("no", "big refused")])
        '✅ notes added  \\n❌ big refused'
    """
    marks = {"ok": "\u2705", "warn": "\u26a0\ufe0f", "no": "\u274c", "busy": "\u23f3"}
    return "  \n".join(f"{marks.get(mark, '')} {escape_markdown(text)}" for mark, text in lines)


DOCUMENTS_CSS = """
.rag-docs-note { color: var(--body-text-color-subdued); font-style: italic; }
.rag-docs-sum { font-size: 0.9em; margin: 0 0 6px 0; }
.rag-docs-table { width: 100%; border-collapse: collapse; font-size: 0.88em; }
.rag-docs-table th { text-align: left; border-bottom: 1px solid var(--border-color-primary);
  padding: 4px 6px; }
.rag-docs-table td { padding: 3px 6px; border-bottom: 1px solid var(--border-color-primary);
  vertical-align: top; }
.rag-doc-name { font-family: var(--font-mono); word-break: break-all; }
.rag-doc-size, .rag-doc-chunks { text-align: right; white-space: nowrap; }
.rag-doc-when { white-space: nowrap; color: var(--body-text-color-subdued); }
.rag-doc[data-status="skipped"] .rag-doc-status { color: var(--color-red-500, #c00); }
.rag-doc[data-status="pending"] .rag-doc-status { color: var(--body-text-color-subdued); }
"""
