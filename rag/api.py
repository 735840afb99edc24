"""The public entry points: `open_index`, `Index`, `answer`, `source_text`.

`Index` is a thin facade over the stages: it keeps the current `Generation` of the
index in step with the seeds (`rag.index.freshness`), refreshes before answering, and
hands questions to retrieval and quoting (`rag.query`). It answers an existing index as
it was built (runtime and model pass) where the settings leave them open.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

from rag.config import Settings
from rag.embedding.base import Embedder
from rag.embedding.factory import make_embedder, runtime_in
from rag.errors import (
    IndexCorruptError,
    IndexNotFoundError,
    IndexStaleError,
    IndexWriteError,
    ModelLoadError,
    QuestionError,
)
from rag.index import build
from rag.index.freshness import Freshness
from rag.index.gate import RefreshGate
from rag.index.manifest import as_built, incompatibility
from rag.index.stores.base import Store
from rag.index.stores.factory import open_store
from rag.index.texts import SourceTexts
from rag.query.conversation import follow_up
from rag.query.generation import Generation
from rag.query.question import clean_question, without_surrogates
from rag.query.quotes import DEFAULT_WEIGHTS, QuoteWeights
from rag.reader.model import AnswerReader, load_reader
from rag.types import Answer, Hit, IndexReport, IndexStatus, Manifest, StoredIndex

log = logging.getLogger(__name__)


class Index:
    """An index over a seeds folder, kept in step with it.

    Usage (not a doctest: it needs a built index, a model or a server)::

        idx = Index(Settings(seeds_dir=Path("seeds"), index_dir=Path("index")))
        idx.answer("Why did Musk leave OpenAI?").citations[0].source
        # -> '000_510c6f564a1ffe89.txt'
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        reader: AnswerReader | None = None,
        weights: QuoteWeights = DEFAULT_WEIGHTS,
    ) -> None:
        self.settings = settings
        self.weights = weights  # of the quote score (`rag.query.quotes.QuoteWeights`)
        self.store: Store = open_store(settings)
        self._embedder = embedder
        self._given_embedder = embedder is not None  # used as it is, never swapped
        # The settings refreshes build with: the runtime and model pass of the index
        # found in the store where ``settings`` leave them open.
        self._build_settings = settings
        self._reader = reader
        self._generation: Generation | None = None
        self._manifest_stamp: Hashable | None = None
        self._freshness = Freshness(settings, self.store)
        self._texts = SourceTexts(settings.seeds_dir, self.store)
        self._gate = RefreshGate()  # refreshes; `_lock` guards the looks and the swap
        self._lock = threading.RLock()

    @property
    def embedder(self) -> Embedder:
        """The embedder of this index's runtime (`Settings.runtime`), made on first use."""
        if self._embedder is None:
            self._embedder = make_embedder(self._build_settings)
        return self._embedder

    @property
    def reader(self) -> AnswerReader:
        """The shipped answer model (`rag.reader.model`), loaded on first use, once per process."""
        if self._reader is None:
            self._reader = load_reader()
        return self._reader

    def _install(self, stored: StoredIndex) -> None:
        gen = Generation(stored, self.settings.max_quote_sentences)  # before the swap
        with self._lock:
            self._generation, self._manifest_stamp = gen, self.store.stamp()

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
        return self._gate.run(lambda: self._refresh(rebuild, progress))

    @property
    def refreshing(self) -> bool:
        """Whether a refresh of this index is running in this process now."""
        return self._gate.running

    def _refresh(self, rebuild: bool, progress: build.Progress | None) -> IndexReport:
        """One refresh, while questions keep being answered from the current generation."""
        stored, report = build.refresh(
            self._build_settings,
            self.embedder,
            rebuild=rebuild,
            progress=progress,
            store=self.store,
        )
        self._install(stored)
        if report.changed:
            log.info("index refreshed: %s", report.to_dict())
        return report

    def current(self) -> StoredIndex:
        """The stored index, refreshed first if the seeds changed since it was built.

        With ``Settings.read_only`` the seeds are not looked at: the index is
        served as the store holds it, reloaded when another process commits.
        """
        return self.generation().stored

    def generation(self) -> Generation:
        """The current generation with its per-generation structures (see `current`).

        A question that finds the seeds changed refreshes first, unless another refresh
        is running: then it is answered from the current generation (`RefreshGate`)."""
        with self._lock:
            if self.settings.read_only:
                if self._generation is None or self.store.stamp() != self._manifest_stamp:
                    self._load()
                if self._generation is None:
                    raise IndexNotFoundError(
                        f"no index in {self.store.location} yet, and this process is "
                        "read-only: build it with `rag index` (same --store options) first"
                    )
                return self._generation
            fresh = self._freshness
            notified = fresh.seeds_may_have_changed()  # before any look at the files
            # A commit by another process: the store's stamp, asked only after a change to
            # the index folder where that is watched with the seeds (one system call for
            # both instead of two).
            reloaded = self._generation is None or (
                fresh.store_may_have_changed() and self.store.stamp() != self._manifest_stamp
            )
            if reloaded:
                self._load()
            gen, stale = self._generation, False
            if gen is not None and (notified or reloaded):
                stale = fresh.seeds_differ(gen.stored.manifest)
            if stale:
                log.info("seeds changed since the index was built: refreshing")
        if gen is None:  # nothing to answer from: wait for the first build
            self._gate.run(lambda: self._generation or self._refresh(False, None))
        elif stale:
            try:
                if not self._gate.try_run(lambda: self._refresh(False, None)):
                    log.info("a refresh is running: answering from the current generation")
            except IndexWriteError as exc:  # disk full, read-only folder: keep answering
                log.warning("answering from the index as it is: %s", exc)
        assert self._generation is not None
        return self._generation

    def _load(self) -> None:
        """Install the store's current generation if this process can use it, adopting
        its runtime and model pass where the settings leave them open."""
        try:
            stored = self.store.load()
        except (IndexNotFoundError, IndexCorruptError) as exc:
            if self.settings.read_only:
                raise
            log.info("building the index: %s", exc)
            return
        reason = self._incompatibility(stored.manifest)
        if reason is not None and self._adopt(stored.manifest):
            reason = self._incompatibility(stored.manifest)
        if reason is None:
            self._install(stored)
        elif self.settings.read_only:
            m = stored.manifest
            raise IndexStaleError(
                f"the index in {self.store.location} does not match this process ({reason}): "
                f"answer it with --runtime {runtime_in(m.model_name)} --model-pass "
                f"{m.model_pass} (or leave both out), or rebuild it with `rag index --rebuild`"
            )

    def _incompatibility(self, manifest: Manifest) -> str | None:
        identity = build.index_identity(self._build_settings, self.embedder)
        return incompatibility(manifest, identity)

    def _adopt(self, manifest: Manifest) -> bool:
        """Take the index's runtime and model pass where the settings leave them open, so
        that it is answered (and extended) as it was built. True when anything changed."""
        s = self.settings
        changes = as_built(s, self._build_settings, manifest, self.embedder.name)
        if self._given_embedder:
            changes.pop("runtime", None)
        if not changes:
            return False
        try:
            adopted = self._build_settings.with_(**changes)
            embedder = make_embedder(adopted) if "runtime" in changes else self._embedder
        except (ModelLoadError, ValueError) as exc:
            if s.read_only:
                raise
            log.warning("the index cannot be extended as built (%s): rebuilding it", exc)
            return False
        self._build_settings, self._embedder = adopted, embedder
        log.info("answering the index as built: %s", changes)
        return True

    def search(self, question: str, k: int | None = None) -> list[Hit]:
        """The chunks most relevant to ``question``, best first (see `Settings.retrieval`)."""
        text = clean_question(question)
        gen = self.generation()
        query = self.embedder.embed_query(text)
        return gen.retrieve(text, query, k or self.settings.top_k, self.settings.retrieval)

    def answer(self, question: str, *, history: Sequence[str] = ()) -> Answer:
        """Answer with verbatim quotes from the seeds, or say they do not answer.

        ``history`` holds the earlier questions of a conversation: a short
        follow-up with a pronoun ("why did he leave?") is retrieved together
        with the question before it (see `rag.query.conversation.follow_up`).

        Raises:
            QuestionError: the question is not text or has no words, or ``history`` is
                not a list of texts.

        Usage (not a doctest: it needs a built index, a model or a server)::

            a = idx.answer("When did ChatGPT come out?")
            a.citations[0].quote
            # -> 'When ChatGPT came out in November 2022, ...'
        """
        if isinstance(history, str) or not all(isinstance(h, str) for h in history):
            raise QuestionError("history must be a list of earlier questions (text)")
        text = clean_question(follow_up(clean_question(question), history))
        gen = self.generation()
        query = self.embedder.embed_query(text)
        reader = None if self.settings.reader == "off" else self.reader
        result = gen.answer(text, query, self.settings, self._answer_text, reader, self.weights)
        return Answer(without_surrogates(question), result.text, result.citations)

    def source_text(self, source: str) -> str:
        """The exact text a citation's offsets refer to.

        For .txt and .md it is the file's bytes decoded as UTF-8; for HTML the
        visible text and for PDF the text of its pages, as extracted at indexing.

        Raises:
            SourceNotFoundError: the index holds no such source.
        """
        return self._text(source, vouched=False)

    def _answer_text(self, source: str) -> str:
        """`source_text` for the answer being composed, right after `generation` checked
        the seeds: a plain-text file read since the last reported change is not looked at
        again (see `rag.index.texts.SourceTexts`). Where nothing watches the seeds every
        answer stats the files it quotes, as `source_text` does."""
        return self._text(source, vouched=self._freshness.watching)

    def _text(self, source: str, *, vouched: bool) -> str:
        gen = self._generation or self.generation()
        looks = self._freshness.looks
        return self._texts.get(gen.stored, source, looks=looks, vouched=vouched)

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

        Usage (not a doctest: it needs a built index, a model or a server)::

            idx.watch(lambda r: print(r.to_dict()), interval=2.0)
        """
        stop = stop or threading.Event()
        while not stop.is_set():
            with self._lock:
                gen = self._generation
                changed = self._freshness.seeds_may_have_changed() and (
                    gen is None or self._freshness.seeds_differ(gen.stored.manifest)
                )
            if changed and (report := self.refresh()).changed:
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

    Usage (not a doctest: it needs a built index, a model or a server)::

        idx = open_index(seeds_dir="seeds", index_dir="index")
        idx.answer("Why did Musk leave OpenAI?").text
        shared = open_index("seeds", store="pgvector",
                            pg_url="postgresql://app@db/rag")
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

    Usage (not a doctest: it needs a built index, a model or a server)::

        import rag
        a = rag.answer("Why did Musk leave OpenAI?")
        all(rag.source_text(c.source)[c.start:c.end] == c.quote
            for c in a.citations)
        # -> True
    """
    return _default_index(seeds_dir, index_dir).answer(question, history=history)


def source_text(
    source: str, *, seeds_dir: str | Path = "seeds", index_dir: str | Path = "index"
) -> str:
    """The text that offsets of citations from ``source`` refer to."""
    return _default_index(seeds_dir, index_dir).source_text(source)
