"""The exact text of each indexed source, as citations' offsets refer to it, cached.

Plain text (.txt, .md) is its own file, read as it is now and cached by its stat; HTML
and PDF text comes from the store's extraction cache, keyed by the file's hash (and is
extracted again from the file if that cache is lost).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

from rag.errors import SourceNotFoundError
from rag.index.stores.base import Store
from rag.ingest.extract import ExtractFailure, extract
from rag.types import StoredIndex, sha256_text

log = logging.getLogger(__name__)


class _Text(NamedTuple):
    """A source's text as last read: ``key`` is its version (the file's stat, or the
    extracted text's hash), ``looks`` the count of seeds changes seen before the read."""

    key: str
    text: str
    looks: int


class SourceTexts:
    """The texts of the sources of ``seeds_dir`` indexed in ``store``, read once per version.

    A caller that watches the seeds may vouch that nothing changed since a text was read
    (``looks``, the count of changes it has seen, is the same): the file is then not even
    stat'ed again. Otherwise each look stats the file.
    """

    def __init__(self, seeds_dir: Path, store: Store) -> None:
        self._seeds = str(seeds_dir)
        self._store = store
        self._texts: dict[str, _Text] = {}  # by source

    def get(self, stored: StoredIndex, source: str, *, looks: int, vouched: bool) -> str:
        """The text of ``source`` in ``stored``.

        Raises:
            SourceNotFoundError: ``stored`` holds no such source, or it can no longer be read.
        """
        if source not in stored.sources:
            raise SourceNotFoundError(
                f"{source!r} is not an indexed source in {self._seeds!r}; "
                f"sources are paths relative to the seeds folder, e.g. "
                f"{next(iter(stored.sources), 'notes.txt')!r}"
            )
        record = stored.sources[source]
        cached = self._texts.get(source)
        if record.text:
            key = record.sha256
        elif vouched and cached and cached.looks == looks:
            return cached.text  # plain text: its key is the file's stat (`_stat_key`)
        else:
            key = self._stat_key(source)
        if cached and cached.key == key:
            if cached.looks != looks:
                self._texts[source] = cached._replace(looks=looks)  # as good as read now
            return cached.text
        text = self._store.read_text(record)
        if text is not None and record.text_sha256 not in (None, sha256_text(text)):
            log.warning("the cached text of %r is damaged: extracting it again", source)
            text = None
        if text is None:
            text = self._read_source(source)
        self._texts[source] = _Text(key, text, looks)
        return text

    def _stat_key(self, source: str) -> str:
        try:
            st = os.stat(os.path.join(self._seeds, source))  # per citation: no Path objects
        except OSError as exc:
            raise SourceNotFoundError(f"source {source!r} can no longer be read: {exc}") from exc
        return f"{st.st_size}:{st.st_mtime_ns}"

    def _read_source(self, source: str) -> str:
        path = os.path.join(self._seeds, source)  # on the answer path: no Path objects
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise SourceNotFoundError(f"source {source!r} can no longer be read: {exc}") from exc
        extracted = extract(os.path.splitext(path)[1], data)
        if isinstance(extracted, ExtractFailure):
            raise SourceNotFoundError(
                f"source {source!r} can no longer be read: {extracted.reason}"
            )
        return extracted.text
