"""The handlers behind the page's Documents panel: list, upload, remove.

Owns what each handler does and says. Listing lives in `rag.ingest.documents`, writing in
`rag.ingest.uploads` and `rag.ingest.trash`, the HTML in `ui.documents_view` and the widgets in
`ui.documents_layout`. Each handler checks the panel's `Rights` itself as well.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from rag.api import Index
from rag.errors import RagError
from rag.ingest.documents import DocumentEntry, list_documents, matching
from rag.ingest.trash import move_to_trash, trash_dir
from rag.ingest.uploads import Saved, save_upload
from rag.text.display import printable
from rag.types import Manifest
from ui import documents_view as view
from ui import render
from ui.failures import error_text, log_failure

log = logging.getLogger(__name__)

FILTER_FROM = 10  # documents from which the filter box is shown
Lines = list[tuple[str, str]]
View = tuple[str, Any, Any]  # the table, the filter box, the removal choices


@dataclass(frozen=True)
class Rights:
    """What the panel lets a visitor do besides looking."""

    upload: bool
    remove: bool


@dataclass(frozen=True)
class Spooled:
    """An upload as Gradio hands it over: spooled to ``path``, named ``name`` by the browser."""

    path: str
    name: str


def spooled(files: list[Any] | None) -> list[Spooled]:
    """The uploads of a `gr.File` event without preprocessing (dicts of Gradio's FileData,
    whose ``orig_name`` is the browser's name) or with it (paths)."""
    found = []
    for f in files or []:
        if isinstance(f, dict):
            path = str(f.get("path") or "")
            found.append(Spooled(path, str(f.get("orig_name") or os.path.basename(path))))
        else:
            found.append(Spooled(str(f), os.path.basename(str(f))))
    return found


def _in_spool(path: str) -> bool:
    """Whether ``path`` lies in Gradio's upload folder (only such files are uploads)."""
    cache = os.path.realpath(get_upload_folder())
    return os.path.commonpath([os.path.realpath(path), cache]) == cache


def _discard(path: str) -> None:
    """Delete Gradio's spooled copy of an upload (and its folder, once empty)."""
    if not path or not _in_spool(path):
        return  # not Gradio's spool: not ours to delete
    real = os.path.realpath(path)
    with contextlib.suppress(OSError):
        os.unlink(real)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(real))


class DocumentsPanel:
    """The handlers behind the Documents panel, over the page's index.

    Usage (not a doctest: it needs a built index, a model or a server)::

        rights = Rights(upload=True, remove=False)
        panel = DocumentsPanel(lambda: index, rights)
    """

    def __init__(self, index: Callable[[], Index], rights: Rights) -> None:
        self._index = index
        self.rights = rights

    def entries(self, manifest: Manifest | None = None) -> list[DocumentEntry]:
        """Every document with its status, by ``manifest`` (default: the index's now)."""
        index = self._index()
        settings = index.settings
        if manifest is None:
            manifest = index.current().manifest
        seeds = None if settings.read_only else settings.seeds_dir  # replicas never scan
        return list_documents(manifest, seeds, follow_external_links=settings.follow_external_links)

    def _view_of(self, entries: list[DocumentEntry], query: str) -> View:
        html = view.documents_html(entries, matching(entries, query or ""))
        filter_box = gr.update(visible=len(entries) >= FILTER_FROM or bool(query))
        choices = [e.source for e in entries if e.on_disk]
        return html, filter_box, gr.update(choices=choices, value=None)

    def view(self, query: str = "") -> View:
        """The table (filtered by ``query``), the filter box and the removal choices."""
        try:
            return self._view_of(self.entries(), query)
        except Exception as exc:
            log_failure(log, "listing the documents", exc)
            html = f'<p class="rag-docs-note">{render.escape_html(error_text(exc))}</p>'
            return html, gr.skip(), gr.skip()

    def _refresh(self, index: Index, progress: gr.Progress) -> None:
        def report(done: int, total: int) -> None:
            progress((done, total), desc="Indexing", unit="texts")

        index.refresh(progress=report)

    def upload(
        self,
        files: list[Any] | None,
        replace: bool,
        query: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> Iterator[tuple[Any, ...]]:
        """Save the uploaded ``files`` (see `spooled`) into the seeds folder, then index them.

        Yields the outcome message, the panel (`view`) and the cleared upload box.
        """
        uploads = spooled(files)
        if not self.rights.upload:
            for up in uploads:
                _discard(up.path)
            yield _message([("no", "uploads are off: this app is read-only")]), *_keep(), None
            return
        if not uploads:
            return
        try:
            index = self._index()
            before = index.current().manifest  # so the new files show as pending
        except Exception as exc:
            for up in uploads:
                _discard(up.path)
            log_failure(log, "opening the index for an upload", exc)
            yield _message([("no", error_text(exc))]), *_keep(), None
            return
        done = [self._save(index, up, replace) for up in uploads]
        saved = [s for s in done if isinstance(s, Saved)]
        lines: Lines = [("no", s) for s in done if isinstance(s, str)]
        if not saved:
            yield _message(lines), *self.view(query), None
            return
        busy = [*lines, ("busy", f"indexing {len(saved)} new file(s)\u2026")]
        yield _message(busy), *self._view_of(self.entries(before), query), None
        try:
            self._refresh(index, progress)
        except Exception as exc:
            log_failure(log, "indexing uploaded files", exc)
            yield _message([*lines, ("no", error_text(exc))]), *self.view(query), None
            return
        entries = self.entries()
        by_name = {e.source: e for e in entries}
        lines = [_outcome(s, by_name.get(s.source)) for s in saved] + lines
        yield _message(lines), *self._view_of(entries, query), None

    def _save(self, index: Index, up: Spooled, replace: bool) -> Saved | str:
        """One upload into the seeds folder, or why it was refused."""
        settings = index.settings
        if not up.path or not _in_spool(up.path):  # Gradio checks this too: never read others
            log.warning("refused an upload outside Gradio's upload folder: %r", up.path)
            return f"{printable(up.name)}: not a file uploaded to this page"
        try:
            return save_upload(
                settings.seeds_dir,
                up.name,
                Path(up.path),
                max_bytes=settings.max_file_bytes,
                replace=replace,
            )
        except Exception as exc:
            log_failure(log, f"saving the upload {up.name!r}", exc)
            if isinstance(exc, RagError):
                return error_text(exc)
            return f"{printable(up.name)}: {error_text(exc)}"
        finally:
            _discard(up.path)

    def ask_remove(self, source: str | None) -> tuple[Any, str, str | None]:
        """Show the confirmation for removing ``source``: (the box, its text, the source)."""
        if not self.rights.remove or not source:
            return gr.update(visible=False), "", None
        trash = trash_dir(self._index().settings.index_dir)
        text = (
            f"Move **{render.escape_markdown(source)}** out of the seeds folder into "
            f"{render.escape_markdown(str(trash))}? Answers stop quoting it."
        )
        return gr.update(visible=True), text, source

    def remove(
        self,
        source: str | None,
        query: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        """Move the confirmed ``source`` to the trash and refresh the index.

        Returns the outcome message, the panel (`view`) and the hidden confirmation box.
        """
        hide = gr.update(visible=False)
        if not self.rights.remove:
            refused = "removing needs a login: start the app with --auth or --allow-delete"
            return _message([("no", refused)]), *_keep(), hide
        if not source:
            return _message([("no", "pick a document to remove first")]), *_keep(), hide
        try:
            index = self._index()
            settings = index.settings
            moved = move_to_trash(settings.seeds_dir, source, trash_dir(settings.index_dir))
        except Exception as exc:
            log_failure(log, f"removing {source!r}", exc)
            return _message([("no", error_text(exc))]), *self.view(query), hide
        lines: Lines = [("ok", f"{printable(source)} moved to {moved.path}")]
        try:
            self._refresh(index, progress)
        except Exception as exc:  # moved all the same: the next refresh drops it
            log_failure(log, f"refreshing the index after removing {source!r}", exc)
            lines.append(("no", error_text(exc)))
        return _message(lines), *self.view(query), hide


def _keep() -> tuple[Any, Any, Any]:
    return gr.skip(), gr.skip(), gr.skip()


def _message(lines: Lines) -> str:
    return view.outcome_markdown(lines)


def _outcome(saved: Saved, entry: DocumentEntry | None) -> tuple[str, str]:
    """The line saying what became of one saved upload."""
    name = saved.source + (f" (uploaded as {printable(saved.given)})" if saved.renamed else "")
    verb = "replaced" if saved.replaced else "added"
    if entry is not None and entry.status == "indexed":
        chunks = f"{entry.chunks} chunk{'' if entry.chunks == 1 else 's'}"
        return "ok", f"{name} {verb}: {chunks} indexed"
    reason = entry.reason if entry is not None else "not found after saving"
    return "warn", f"{name} {verb} to the seeds folder but not indexed: {reason}"
