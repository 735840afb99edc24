"""The manifest of the folder store (``manifest.json``) and what makes an index reusable.

Owns reading and atomically replacing the manifest file, the format version this
seedrag reads, and the identity fields (model, splitter, segmenter, model pass) that
must match the settings for an index to be extended instead of rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from rag.config import DEFAULT_MODEL_PASS, Settings
from rag.embedding.factory import runtime_in
from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.types import Manifest

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FIX = "run `rag index --rebuild` to rebuild it from the seeds"
STORE_KEY = "faiss"  # the folder store records its vector index under this key


def check_version(version: object, where: str) -> None:
    """Raise `IndexCorruptError` unless ``version`` is the format this seedrag reads."""
    if version != FORMAT_VERSION:
        raise IndexCorruptError(
            f"index format version {version!r} in {where} is not {FORMAT_VERSION}, "
            f"the version this seedrag reads; {FIX}"
        )


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of the index in ``index_dir``, or `IndexNotFoundError` /
    `IndexCorruptError`."""
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"no index in {str(index_dir)!r}: run `rag index` to build it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"unreadable manifest {path}: {exc}; {FIX}") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"manifest {path} is not a JSON object; {FIX}")
    check_version(data.get("format_version"), str(path))
    try:
        return Manifest.from_json(data)
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise IndexCorruptError(f"manifest {path} is damaged ({exc}); {FIX}") from exc


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """Atomically replace ``manifest.json`` (temp file, fsync, ``os.replace``)."""
    tmp = index_dir / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(manifest.to_json(STORE_KEY), fh, ensure_ascii=False, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, index_dir / MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):
        fsync_path(index_dir)


def new_generation() -> str:
    """A fresh generation id: sortable time, then randomness against same-second writers."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def fsync_path(path: Path) -> None:
    """Flush a file's or folder's metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def incompatibility(manifest: Manifest, identity: dict[str, Any]) -> str | None:
    """Why an index built as ``manifest`` says cannot be extended under ``identity``
    (`rag.index.build.index_identity`), or None."""
    for key, want in identity.items():
        have = getattr(manifest, key)
        if have != want:
            return f"{key} changed from {have!r} to {want!r}"
    return None


def as_built(
    settings: Settings, current: Settings, manifest: Manifest, embedder_name: str
) -> dict[str, Any]:
    """The settings to change so that an index is answered (and extended) as ``manifest``
    says it was built: its model pass and runtime, where ``settings`` leave them open.
    ``current`` are the settings in use, ``embedder_name`` the name of their embedder.

    Example:
        >>> built = Manifest(model={"name": "all-MiniLM-L6-v2"}, model_pass="both")
        >>> as_built(Settings(), Settings(), built, "all-MiniLM-L6-v2+onnx-int8")
        {'model_pass': 'both', 'runtime': 'torch'}
    """
    changes: dict[str, Any] = {}
    if settings.model_pass is None and manifest.model_pass != (
        current.model_pass or DEFAULT_MODEL_PASS
    ):
        changes["model_pass"] = manifest.model_pass
    built = runtime_in(manifest.model_name)
    if (
        settings.runtime is None
        and (settings.device == "cpu" or built == "torch")
        and built != runtime_in(embedder_name)
    ):
        changes["runtime"] = built
    return changes
