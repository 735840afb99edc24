"""The public entry points: `open_index`, `Index`, `answer`, `source_text`.

Owns the lifecycle of an open index in a process: load it, notice when the
seeds changed (stat first, hashes only for files whose stat changed) and
refresh before answering. Ranking and quoting live in their own modules.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import NamedTuple

from rag.config import Settings
from rag.embedding.base import Embedder, make_embedder
from rag.errors import (
    IndexCorruptError,
    IndexNotFoundError,
    IndexStaleError,
    QuestionError,
    SourceNotFoundError,
)
from rag.index import build
from rag.index.manifest import incompatibility
from rag.index.sentences import SentenceRows
from rag.index.stores.base import Store
from rag.index.stores.factory import open_store
from rag.index.watch import SeedsNotifier
from rag.ingest.extract import ExtractFailure, extract
from rag.ingest.scan import scan
from rag.query.conversation import follow_up
from rag.query.quotes import answer_from
from rag.query.reading import answer_with_reader
from rag.query.retrieve import LexicalIndex, hybrid_search, search
from rag.query.sentences import SentenceFeatures
from rag.reader.model import AnswerReader, load_reader
from rag.types import Answer, Hit, IndexReport, IndexStatus, StoredIndex, Vectors

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def clean_question(question: str) -> str:
    """The question stripped and cut to a size the model can take.

    Raises:
        QuestionError: the question is not text, is empty, or holds no letter or digit.
    """
    if not isinstance(question, str):
        raise QuestionError(f"question must be text, not {type(question).__name__}")
    # Lone surrogates (undecodable bytes, broken client encodings) are not text: dropped.
    text = _SURROGATES.sub("", question).replace("\x00", " ").strip()
    if not text:
        raise QuestionError("the question is empty: ask something, e.g. 'Why did Musk leave?'")
    if not any(c.isalnum() for c in text):
        raise QuestionError(
            "the question has no words (only symbols, emoji or invisible characters): "
            "ask in words, e.g. 'Why did Musk leave?'"
        )
    if len(text) > MAX_QUESTION_CHARS:
        log.info(
            "question of %d characters truncated to %d for retrieval", len(text), MAX_QUESTION_CHARS
        )
        text = text[:MAX_QUESTION_CHARS]
    return text


class _Text(NamedTuple):
    """A source's text as last read: ``key`` is its version (the file's stat, or the
    extracted text's hash), ``looks`` the count of seeds changes seen before the read."""

    key: str
    text: str
    looks: int


class Index:
    """An index over a seeds folder, kept in step with it.

    Example:
        >>> idx = Index(Settings(seeds_dir=Path("seeds"), index_dir=Path("index")))
        >>> idx.answer("Why did Musk leave OpenAI?").citations[0].source  # doctest: +SKIP
        '000_510c6f564a1ffe89.txt'
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        reader: AnswerReader | None = None,
    ) -> None:
        self.settings = settings
        self.store: Store = open_store(settings)
        self._embedder = embedder
        self._reader = reader
        self._stored: StoredIndex | None = None
        self._lookup: SentenceFeatures | None = None
        self._lexical: LexicalIndex | None = None
        self._manifest_stamp: Hashable | None = None
        self._texts: dict[str, _Text] = {}  # by source
        self._seeds = str(settings.seeds_dir)
        self._notifier: SeedsNotifier | None = None  # created on the first seeds check
        self._looks = 0  # seeds checks that found a possible change (see `_answer_text`)
        self._lock = threading.RLock()

    @property
    def embedder(self) -> Embedder:
        """The embedder `Settings.backend` selects; the real model is created on first use."""
        if self._embedder is None:
            self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def reader(self) -> AnswerReader:
        """The shipped answer model (`rag.reader.model`), loaded on first use, once per process."""
        if self._reader is None:
            self._reader = load_reader()
        return self._reader

    def _install(self, stored: StoredIndex) -> StoredIndex:
        self._stored = stored
        self._lookup = SentenceFeatures(stored, self.settings.max_quote_sentences)
        self._lexical = None  # built on the first hybrid search of this generation
        self._manifest_stamp = self._stamp()
        return stored

    def _stamp(self) -> Hashable | None:
        return self.store.stamp()

    def refresh(
        self, *, rebuild: bool = False, progress: build.Progress | None = None
    ) -> IndexReport:
        """Bring the index in line with the seeds now; see `rag.index.build.refresh`.

        Raises:
            IndexStaleError: the index was opened read-only.
        """
        if self.settings.read_only:
            raise IndexStaleError(
                f"the index in {self.store.location} is opened read-only: refresh it with "
                "`rag index` (same --store options) from the process that owns the seeds"
            )
        with self._lock:
            stored, report = build.refresh(
                self.settings,
                self.embedder,
                rebuild=rebuild,
                progress=progress,
                store=self.store,
            )
            self._install(stored)
            if report.changed:
                log.info(
                    "index refreshed: %d added, %d updated, %d deleted, %d chunks embedded",
                    report.added,
                    report.updated,
                    report.deleted,
                    report.chunks_embedded,
                )
            return report

    def current(self) -> StoredIndex:
        """The stored index, refreshed first if the seeds changed since it was built.

        With ``Settings.read_only`` the seeds are not looked at: the index is
        served as the store holds it, reloaded when another process commits.
        """
        with self._lock:
            if self.settings.read_only:
                if self._stored is None or self._stamp() != self._manifest_stamp:
                    self._load()
                if self._stored is None:
                    raise IndexNotFoundError(
                        f"no index in {self.store.location} yet, and this process is "
                        "read-only: build it with `rag index` (same --store options) first"
                    )
                return self._stored
            notified = self._notified()  # before any look at the files (see below)
            # A commit by another process: the store's stamp, asked only after a change to
            # the index folder where that is watched with the seeds (one system call for
            # both instead of two; ~0.05 ms each after a model call here).
            reloaded = self._stored is None or (
                self._store_touched() and self._stamp() != self._manifest_stamp
            )
            if reloaded:
                self._load()
            if self._stored is None:
                self.refresh()
            elif (notified or reloaded) and self._stat_changed(self._stored):
                log.info("seeds changed since the index was built: refreshing")
                self.refresh()
            assert self._stored is not None
            return self._stored

    def _store_touched(self) -> bool:
        """Whether another process may have committed since the last look: always, unless
        the notifier watches the store's folder and saw no change there."""
        return self._notifier is None or self._notifier.index_changed()

    def _notified(self) -> bool:
        """Whether the seeds may have changed since the last call, by `Settings.seeds_check`.

        With "notify" the operating system says so (`rag.index.watch.SeedsNotifier`), at the
        cost of one system call; its watches are (re-)armed before the caller looks at the
        files, so a change made while it looks is reported next time. With "stat", or
        where notifications are unavailable, the answer is always True.
        """
        if self.settings.seeds_check != "notify":
            self._looks += 1
            return True
        if self._notifier is None:
            self._notifier = SeedsNotifier(self.settings.seeds_dir, self.store.watch_folder)
        if not self._notifier.changed():
            return False
        self._looks += 1  # after the watches were re-armed: see `_answer_text`
        return True

    def _stat_changed(self, stored: StoredIndex) -> bool:
        files, _ = scan(
            self.settings.seeds_dir,
            warn=False,
            follow_external_links=self.settings.follow_external_links,
        )
        return build.stat_changes(stored.manifest, files)

    def _load(self) -> None:
        """Install the store's current generation if this process can use it."""
        try:
            stored = self.store.load()
        except (IndexNotFoundError, IndexCorruptError) as exc:
            if self.settings.read_only:
                raise
            log.info("building the index: %s", exc)
            return
        reason = incompatibility(
            stored.manifest, build.index_identity(self.settings, self.embedder)
        )
        if reason is None:
            self._install(stored)
        elif self.settings.read_only:
            raise IndexStaleError(
                f"the index in {self.store.location} does not match this process "
                f"({reason}); rebuild it with `rag index` (this process is read-only)"
            )

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        """The chunks most relevant to ``question``, best first (see `Settings.retrieval`)."""
        text = clean_question(question)
        stored = self.current()
        ranges = self._lookup_of(stored)
        return self._retrieve(stored, ranges, text, self.embedder.embed_query(text), k)

    def _lookup_of(self, stored: StoredIndex) -> SentenceFeatures:
        """The per-generation lookup of ``stored``: the cached one, unless a refresh
        raced us (then made afresh for it)."""
        lookup = self._lookup
        if lookup is None or self._stored is not stored:
            lookup = SentenceFeatures(stored, self.settings.max_quote_sentences)
        return lookup

    def _retrieve(
        self,
        stored: StoredIndex,
        ranges: SentenceRows,
        question: str,
        query: Vectors,
        k: int | None = None,
    ) -> list[Hit]:
        k = k or self.settings.top_k
        if self.settings.retrieval == "dense":
            return search(stored, ranges, query, k)
        with self._lock:
            if self._lexical is None or self._stored is not stored:
                lexical = LexicalIndex(stored)
                if self._stored is stored:
                    self._lexical = lexical
            else:
                lexical = self._lexical
        return hybrid_search(stored, lexical, ranges, query, question, k)

    def answer(self, question: str, *, history: Sequence[str] = ()) -> Answer:
        """Answer with verbatim quotes from the seeds, or say they do not answer.

        ``history`` holds the earlier questions of a conversation: a short
        follow-up with a pronoun ("why did he leave?") is retrieved together
        with the question before it (see `rag.query.conversation.follow_up`).

        Raises:
            QuestionError: the question is not text or has no words, or ``history`` is
                not a list of texts.

        Example:
            >>> a = idx.answer("When did ChatGPT come out?")  # doctest: +SKIP
            >>> a.citations[0].quote  # doctest: +SKIP
            'When ChatGPT came out in November 2022, ...'
        """
        if isinstance(history, str) or not all(isinstance(h, str) for h in history):
            raise QuestionError("history must be a list of earlier questions (text)")
        text = clean_question(follow_up(clean_question(question), history))
        stored = self.current()
        lookup = self._lookup_of(stored)
        query = self.embedder.embed_query(text)
        hits = self._retrieve(stored, lookup, text, query)
        if self.settings.reader == "off":
            result = answer_from(
                stored, text, query, hits, self.settings, self._answer_text, lookup
            )
        else:
            result = answer_with_reader(
                stored,
                text,
                query,
                hits,
                self.settings,
                self._answer_text,
                lookup,
                self.reader,
            )
        return Answer(_SURROGATES.sub("", question), result.text, result.citations)

    def source_text(self, source: str) -> str:
        """The exact text a citation's offsets refer to.

        For .txt and .md it is the file's bytes decoded as UTF-8; for HTML the
        visible text and for PDF the text of its pages, as extracted at indexing.

        Raises:
            SourceNotFoundError: the index holds no such source.
        """
        return self._text(source, vouched=False)

    def _answer_text(self, source: str) -> str:
        """`source_text` for the answer being composed, right after `current` checked the
        seeds: a plain-text file read since inotify last reported a change is not looked
        at again (a stat after a model call took ~0.04 ms here; an answer quotes up to
        three files).

        The watches are re-armed before ``_looks`` counts a change, and a text is tagged
        with the count taken before its file is read, so a write after the read is
        reported and moves the count on: the next answer reads the file again. A write
        while this answer is composed is seen by the next, as if it came just after.
        Where nothing watches (``seeds_check="stat"``, no inotify, a read-only process)
        every answer stats the files it quotes, as `source_text` does.
        """
        return self._text(source, vouched=self._notifier is not None and self._notifier.active)

    def _text(self, source: str, *, vouched: bool) -> str:
        stored = self._stored or self.current()
        if source not in stored.sources:
            raise SourceNotFoundError(
                f"{source!r} is not an indexed source in {str(self.settings.seeds_dir)!r}; "
                f"sources are paths relative to the seeds folder, e.g. "
                f"{next(iter(stored.sources), 'notes.txt')!r}"
            )
        record = stored.sources[source]
        cached = self._texts.get(source)
        looks = self._looks
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
        # Plain text is its own file, read as it is now; HTML and PDF text comes
        # from the extraction cache (and is extracted again if the cache is lost).
        text = self.store.read_text(record)
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

    def watch(
        self,
        on_report: Callable[[IndexReport], None],
        *,
        interval: float = 1.0,
        stop: threading.Event | None = None,
    ) -> None:
        """Refresh whenever the seeds change, checked every ``interval`` s, until ``stop`` is set.

        Each check costs one system call while the operating system reports no change
        (see `Settings.seeds_check`), a stat of every file otherwise.

        Example:
            >>> idx.watch(lambda r: print(r.to_dict()), interval=2.0)  # doctest: +SKIP
        """
        stop = stop or threading.Event()
        while not stop.is_set():
            with self._lock:
                stored = self._stored
                if self._notified() and (stored is None or self._stat_changed(stored)):
                    report = self.refresh()
                    if report.changed:
                        on_report(report)
            stop.wait(interval)

    def status(self) -> IndexStatus:
        """Counts and build time of the current index."""
        stored = self.current()
        return IndexStatus(
            documents=len(stored.sources),
            chunks=len(stored.chunks),
            sentences=len(stored.sentences),
            built_at=stored.manifest.built_at,
            model=stored.manifest.model_name,
            index_dir=self.store.location,
            seeds_dir=str(self.settings.seeds_dir),
        )


_OPEN: dict[tuple[str, str, Settings], Index] = {}
_OPEN_LOCK = threading.Lock()


def open_index(
    seeds_dir: str | Path = "seeds",
    index_dir: str | Path = "index",
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    store: str | None = None,
    pg_url: str | None = None,
    pg_schema: str | None = None,
) -> Index:
    """Open the index for a seeds folder, building or refreshing it as needed.

    ``store="pgvector"`` keeps the index in the PostgreSQL database at
    ``pg_url`` (schema ``pg_schema``, default "seedrag") instead of the
    ``index_dir`` folder; answers are the same.

    Example:
        >>> idx = open_index(seeds_dir="seeds", index_dir="index")  # doctest: +SKIP
        >>> idx.answer("Why did Musk leave OpenAI?").text  # doctest: +SKIP
        >>> shared = open_index("seeds", store="pgvector",
        ...                     pg_url="postgresql://app@db/rag")  # doctest: +SKIP
    """
    base = settings or Settings()
    options = {
        k: v
        for k, v in {"store": store, "pg_url": pg_url, "pg_schema": pg_schema}.items()
        if v is not None
    }
    if pg_url is not None and store is None:
        options["store"] = "pgvector"
    idx = Index(
        base.with_(seeds_dir=Path(seeds_dir), index_dir=Path(index_dir), **options), embedder
    )
    idx.current()
    return idx


def _default_index(seeds_dir: str | Path, index_dir: str | Path) -> Index:
    key = (str(Path(seeds_dir).resolve()), str(Path(index_dir).resolve()), Settings())
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = Index(Settings(seeds_dir=Path(seeds_dir), index_dir=Path(index_dir)))
        return _OPEN[key]


def answer(
    question: str,
    *,
    seeds_dir: str | Path = "seeds",
    index_dir: str | Path = "index",
    history: Sequence[str] = (),
) -> Answer:
    """Answer a question from the seeds folder, with verbatim citations.

    Example:
        >>> import rag
        >>> a = rag.answer("Why did Musk leave OpenAI?")  # doctest: +SKIP
        >>> all(rag.source_text(c.source)[c.start:c.end] == c.quote
        ...     for c in a.citations)  # doctest: +SKIP
        True
    """
    return _default_index(seeds_dir, index_dir).answer(question, history=history)


def source_text(
    source: str, *, seeds_dir: str | Path = "seeds", index_dir: str | Path = "index"
) -> str:
    """The text that offsets of citations from ``source`` refer to."""
    return _default_index(seeds_dir, index_dir).source_text(source)
