"""The Documents panel's widgets on the page, and which handler each one runs.

Owns the layout and the wiring: every event is private to the page (no API endpoint),
upload widgets exist only where the index is writable and removal widgets only where
the app was started with a login or ``allow_delete``. Handlers live in `ui.documents`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from rag.config import SUPPORTED_SUFFIXES
from ui import documents_view as view
from ui import render
from ui.documents import DocumentsPanel

INDEX_GROUP = "index"  # concurrency_id of every handler that writes the seeds or the index


def limits_text(max_bytes: int) -> str:
    """What may be uploaded, for the upload box's label."""
    kinds = ", ".join(SUPPORTED_SUFFIXES)
    return f"Add documents ({kinds}; up to {view.size_text(max_bytes)} each)"


@dataclass(frozen=True)
class DocumentsWidgets:
    """The panel's components that other events refresh (`DocumentsPanel.view`'s input
    and outputs), and the events after which the seeds and the index may have changed."""

    filter_box: gr.Textbox
    table: gr.HTML
    choice: gr.Dropdown
    changed: tuple[Any, ...] = ()  # gradio event dependencies, to chain `.then` on

    @property
    def outputs(self) -> list[Any]:
        """The components `DocumentsPanel.view` updates, in its order."""
        return [self.table, self.filter_box, self.choice]


def _note(panel: DocumentsPanel, trash: Path) -> str:
    if not panel.rights.upload:
        return "_This app is read-only: documents are added where the index is built._"
    if not panel.rights.remove:
        return "_Removing documents from the page needs `rag serve --auth` or `--allow-delete`._"
    return f"_Removed documents are moved to {render.escape_markdown(str(trash))}, not deleted._"


def documents_panel(panel: DocumentsPanel, max_bytes: int, trash: Path) -> DocumentsWidgets:
    """Build and wire the Documents panel inside the current Blocks.

    Upload widgets exist only with ``panel.rights.upload``, removal widgets only with
    ``panel.rights.remove``: a right not granted has no handler on the server at all.
    """
    with gr.Accordion("Documents", open=False, elem_id="rag-documents"):
        gr.Markdown(_note(panel, trash))
        upload = _upload_widgets(max_bytes) if panel.rights.upload else None
        message = gr.Markdown(elem_id="rag-docs-message")
        filter_box = gr.Textbox(
            placeholder="Filter by name or status\u2026",
            show_label=False,
            visible=False,
            elem_id="rag-docs-filter",
        )
        table = gr.HTML(
            view.NO_DOCUMENTS, css_template=view.DOCUMENTS_CSS, js_on_load=None, elem_id="rag-docs"
        )
        refresh = gr.Button("Refresh list", size="sm", variant="secondary")
        choice = gr.Dropdown(
            choices=[],
            value=None,
            label="Document to remove",
            visible=panel.rights.remove,
            elem_id="rag-remove-choice",
        )
        listed = DocumentsWidgets(filter_box, table, choice)
        changed = [_removal(panel, listed, message)] if panel.rights.remove else []
    if upload is not None:
        changed.append(_wire_upload(panel, listed, message, *upload))
    private: dict[str, Any] = {"api_visibility": "private"}
    filter_box.change(
        panel.view,
        filter_box,
        listed.outputs,
        trigger_mode="always_last",
        show_progress="hidden",
        **private,
    )
    refresh.click(panel.view, filter_box, listed.outputs, **private)
    return DocumentsWidgets(filter_box, table, choice, tuple(changed))


def _upload_widgets(max_bytes: int) -> tuple[gr.File, gr.Checkbox]:
    files = gr.File(
        label=limits_text(max_bytes),
        file_count="multiple",
        type="filepath",
        height=140,
        elem_id="rag-upload",
    )  # no file_types: a refused type gets this panel's message, not Gradio's
    replace = gr.Checkbox(
        label="Replace documents that have the same name", value=False, elem_id="rag-replace"
    )
    return files, replace


def _wire_upload(
    panel: DocumentsPanel,
    listed: DocumentsWidgets,
    message: gr.Markdown,
    files: gr.File,
    replace: gr.Checkbox,
) -> Any:
    return files.upload(  # unprocessed: Gradio's preprocessing leaks an empty temp file each
        panel.upload,
        [files, replace, listed.filter_box],
        [message, *listed.outputs, files],
        preprocess=False,
        api_visibility="private",
        concurrency_id=INDEX_GROUP,
        concurrency_limit=1,
    )


def _removal(panel: DocumentsPanel, listed: DocumentsWidgets, message: gr.Markdown) -> Any:
    """The removal widgets (a two-step confirmation) and their events; returns the event
    that removes."""
    ask = gr.Button("Move to trash\u2026", size="sm", variant="secondary", elem_id="rag-remove")
    asked = gr.State(None)  # the document the confirmation names, whatever is picked since
    with gr.Group(visible=False, elem_id="rag-remove-confirm") as confirm:
        question = gr.Markdown()
        with gr.Row():
            yes = gr.Button("Yes, move it to the trash", variant="stop", size="sm")
            no = gr.Button("Cancel", size="sm", variant="secondary")
    ask.click(panel.ask_remove, listed.choice, [confirm, question, asked], api_visibility="private")
    no.click(
        lambda: (gr.update(visible=False), None), None, [confirm, asked], api_visibility="private"
    )
    return yes.click(
        panel.remove,
        [asked, listed.filter_box],
        [message, *listed.outputs, confirm],
        api_visibility="private",
        concurrency_id=INDEX_GROUP,
        concurrency_limit=1,
    )
