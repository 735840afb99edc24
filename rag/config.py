"""`Settings`: every tunable of seedrag in one frozen, validated dataclass.

Owns defaults and validation, grouped by concern: documents, chunking, embedding, the
index store, retrieval and quoting, the answer model. Contradictory combinations
are rejected with the fix, never silently overridden. It reads no environment variable
and no file: the CLI and the UI translate their flags into a `Settings`.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from rag.errors import SettingsError, redact_url

DEFAULT_MODEL = "all-MiniLM-L6-v2"
SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
DEFAULT_MAX_FILE_BYTES = 50_000_000  # larger files are skipped (with a logged reason)
# Chunks from which the index is HNSW instead of exact: chosen in benchmarks/ann.py.
DEFAULT_ANN_THRESHOLD = 50_000

Device = Literal["cpu", "cuda"]
Runtime = Literal["torch", "onnx", "onnx-int8"]
StoreKind = Literal["faiss", "pgvector"]
SeedsCheck = Literal["notify", "stat"]
ModelPass = Literal["sentences", "chunks", "both"]
ReaderMode = Literal["full", "rerank", "windows", "off"]
Retrieval = Literal["hybrid", "dense"]

DEVICES: tuple[Device, ...] = get_args(Device)
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
STORES: tuple[StoreKind, ...] = get_args(StoreKind)
SEEDS_CHECKS: tuple[SeedsCheck, ...] = get_args(SeedsCheck)
MODEL_PASSES: tuple[ModelPass, ...] = get_args(ModelPass)
READER_MODES: tuple[ReaderMode, ...] = get_args(ReaderMode)
RETRIEVALS: tuple[Retrieval, ...] = get_args(Retrieval)
# `Settings.reader_evidence` that leaves a chunk's probability to the answer model alone.
MODEL_ALONE = (0.0, 1.0, 0.0, 0.0)
# What a new index is built with when the settings leave it open (see `runtime`).
DEFAULT_RUNTIME: Runtime = "onnx-int8"
DEFAULT_MODEL_PASS: ModelPass = "sentences"
_CHOICES: dict[str, tuple[str, ...]] = {
    "device": DEVICES,
    "store": STORES,
    "seeds_check": SEEDS_CHECKS,
    "reader": READER_MODES,
    "retrieval": RETRIEVALS,
}
_OPTIONAL_CHOICES: dict[str, tuple[str, ...]] = {"runtime": RUNTIMES, "model_pass": MODEL_PASSES}
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_POSITIVE_INTS = (
    "chunk_size",
    "top_k",
    "max_citations",
    "max_quote_sentences",
    "batch_size",
    "max_file_bytes",
    "ann_threshold",
)


@dataclass(frozen=True)
class Settings:
    """Configuration for indexing and answering.

    Documents:
        seeds_dir: folder of source documents, read recursively.
        max_file_bytes: files larger than this are skipped with a logged reason,
            so one huge file cannot exhaust memory or stall indexing.
        follow_external_links: index a file symlink whose target lies outside the seeds
            folder. Off by default: a link to ``/etc/passwd`` must not become quotable;
            such links are skipped and listed with the reason.
        seeds_check: how each question learns whether the seeds changed: "notify"
            (the operating system reports changes, inotify on Linux, so an unchanged
            folder costs no file look-ups; the index folder is watched the same way for
            generations other processes commit; where inotify is unavailable every
            file's stat is checked) or "stat" (always check every file's stat and the
            index's manifest: for folders on a network file system written to by other
            machines).

    Chunking:
        chunk_size: maximum chunk length in characters (kept under the model's
            256-token window).
        chunk_overlap: characters shared by neighbouring chunks.

    Embedding:
        model: name of the bundled embedding model, or a local model folder.
        runtime: what runs the model: "onnx-int8" (int8 ONNX Runtime: no torch import
            when answering), "onnx" (fp32) or "torch". None (the default): as the
            existing index was built, and "onnx-int8" for a new one ("torch" on
            ``device="cuda"``). An explicit runtime other than the index's rebuilds it
            (or, read-only, is refused). Compared in benchmarks/backends.py.
        device: where the model runs, "cpu" or "cuda" (torch only; falls back to the CPU
            with a logged warning when no GPU is usable).
        batch_size: texts per embedding batch.
        model_pass: which texts the model embeds when indexing. "sentences": each
            sentence alone; a chunk's vector is the mean of its sentences' vectors,
            weighted by the characters each shares with the chunk. "both": each chunk and
            each sentence on its own. "chunks": each chunk once, sentence vectors pooled
            from that pass. None (the default): as the existing index was built, and
            "sentences" for a new one. Compared in benchmarks/RESULTS.md.
        onnx_cache_dir: where the exported ONNX model files are kept; None:
            ``$XDG_CACHE_HOME/seedrag/onnx`` (``~/.cache/seedrag/onnx``).

    Index store:
        index_dir: folder where the built index lives (``store="faiss"``).
        store: where the index lives: "faiss" (files in ``index_dir``, no server)
            or "pgvector" (tables in the PostgreSQL database at ``pg_url``).
        pg_url: PostgreSQL connection URL, for ``store="pgvector"`` only.
        pg_schema: the database schema holding this index's tables, so one
            database can hold several indexes.
        ann_threshold: chunk count from which the vector index is approximate
            (FAISS HNSW, or pgvector's HNSW) instead of exact; see benchmarks/ann.py.
        read_only: serve the index as the store holds it: never scan the seeds, never
            write, never export a model (app replicas that share a database one
            indexer keeps up to date).

    Retrieval and quoting:
        top_k: chunks retrieved per question.
        retrieval: "hybrid" (dense and BM25 fused by reciprocal rank) or "dense".
        max_citations: most quotes cited in one answer.
        max_quote_sentences: most consecutive sentences in one quote.
        min_score: with ``reader="off"``, the similarity to the question of the closest
            retrieved sentence under which the answer abstains; no quote window scored
            under it is cited.
        confident_score: that similarity at or above which the answer does not also
            need a question word in the retrieved chunks. Both thresholds are calibrated
            in benchmarks/abstention.py.

    Answer model:
        reader: how the answer model (`rag.reader.model`, trained by ``training/``) takes
            part. "full": it reads the retrieved chunks with the question, decides
            whether they answer, and its probabilities join the quote scores. "off":
            quotes are chosen by similarity and lexical features, abstention by
            ``min_score`` and ``confident_score``. "rerank" and "windows" use one half of
            it only (chunk order, or sentence probabilities), for the ablation.
        reader_min_answer: the probability that the best retrieved chunk answers (see
            ``reader_evidence``), under which the answer abstains; a quote is cited only
            from a chunk that reaches it.
        reader_evidence: ``(bias, model, similarity, coverage)``: how a chunk's
            probability of answering is made from the model's and retrieval's evidence,
            ``sigmoid(bias + model * logit(p) + similarity * s + coverage * c)`` with
            ``p`` the model's probability, ``s`` the similarity of the chunk's closest
            sentence to the question and ``c`` the share of the question's words
            (weighted by rarity) the chunk holds (`rag.query.reading.believe`). Fitted
            for the bundled embedding model; ``(0, 1, 0, 0)`` is the model alone.
        reader_quote_ratio: a quote after the first is cited only when the chunk it comes
            from is at least this share as likely to answer as the first quote's (its
            `Citation.score` against the first's).
        reader_weight: how much the model's probability for a window's best sentence
            adds to the window's score.
        reader_bridge: a quote grows over the one sentence between it and the window
            that would be quoted next, when the model finds that window at least this
            share as likely to hold the answer as the quote: two parts of one answer
            become one quote with the sentence that links them. None never grows a quote.
        reader_widen: when the best retrieved chunk's probability of answering is under
            this (but reaches ``reader_min_answer``), the chunks that a retrieval of twice
            ``top_k`` adds are read too, and their quotes compete for the places after the
            first quote. An unsure answer looks further; the decision to answer, and the
            first quote, stay the first read's. None never reads more.

    ``backend`` is the old name of ``runtime``: it still works, with a
    `DeprecationWarning`, and goes in the next release.

    Example:
        >>> Settings(chunk_size=500, chunk_overlap=50).chunk_size
        500
    """

    # Documents
    seeds_dir: Path = field(default_factory=lambda: Path("seeds"))
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    follow_external_links: bool = False
    seeds_check: SeedsCheck = "notify"
    # Chunking
    chunk_size: int = 800
    chunk_overlap: int = 160
    # Embedding
    model: str = DEFAULT_MODEL
    runtime: Runtime | None = None
    device: Device = "cpu"
    batch_size: int = 32
    model_pass: ModelPass | None = None
    onnx_cache_dir: Path | None = None
    # Index store
    index_dir: Path = field(default_factory=lambda: Path("index"))
    store: StoreKind = "faiss"
    pg_url: str | None = field(default=None, repr=False)  # may hold a password
    pg_schema: str = "seedrag"
    ann_threshold: int = DEFAULT_ANN_THRESHOLD
    read_only: bool = False
    # Retrieval and quoting
    top_k: int = 6
    retrieval: Retrieval = "hybrid"
    max_citations: int = 3
    max_quote_sentences: int = 3
    min_score: float = 0.375
    confident_score: float = 0.50
    # Answer model. The reader_* values are chosen by training/tune.py on the model's
    # validation split (rag/reader/weights/MODEL_CARD.md), never on a reporting set.
    reader: ReaderMode = "full"
    reader_min_answer: float = 0.021
    reader_evidence: tuple[float, float, float, float] = (-5.3233, 0.7659, 4.1614, 2.4819)
    reader_quote_ratio: float = 0.05
    reader_weight: float = 0.25
    reader_bridge: float | None = 0.5
    reader_widen: float | None = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds_dir", Path(self.seeds_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        if self.onnx_cache_dir is not None:
            object.__setattr__(self, "onnx_cache_dir", Path(self.onnx_cache_dir))
        self._check()

    def _check(self) -> None:
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingsError(
                    f"{name} must be a whole number >= 1. Currently, {name} is {value!r}"
                )
        for name, choices in {**_CHOICES, **_OPTIONAL_CHOICES}.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_CHOICES:
                continue
            if value not in choices:
                raise SettingsError(
                    f"{name} must be {_either(choices)}. Currently, it is {value!r}"
                )
        if not isinstance(self.chunk_overlap, int) or self.chunk_overlap < 0:
            raise SettingsError(
                "chunk_overlap must be a whole number >= 0. "
                f"Currently, it is {self.chunk_overlap!r}"
            )
        if self.chunk_overlap >= self.chunk_size:
            raise SettingsError(
                f"chunk_overlap ({self.chunk_overlap}) must be < chunk_size ({self.chunk_size})"
            )
        if not -1.0 <= float(self.min_score) <= 1.0:
            raise SettingsError(
                f"min_score must lie in [-1, 1]. Currently, it is {self.min_score!r}"
            )
        if not self.min_score <= self.confident_score <= 1.0:
            raise SettingsError(
                f"confident_score ({self.confident_score}) must lie between min_score "
                f"({self.min_score}) and 1"
            )
        for name in ("reader_min_answer", "reader_quote_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise SettingsError(f"{name} must lie in [0, 1]. Currently, it is {value!r}")
        evidence = self.reader_evidence
        if (
            not isinstance(evidence, tuple | list)
            or len(evidence) != 4
            or not all(
                isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w)
                for w in evidence
            )
        ):
            raise SettingsError(
                "reader_evidence must be four numbers (bias, model, similarity, coverage), "
                f"e.g. (0, 1, 0, 0) for the model alone. Currently, it is {evidence!r}"
            )
        object.__setattr__(self, "reader_evidence", tuple(float(w) for w in evidence))
        for name, off in (("reader_bridge", "join quotes"), ("reader_widen", "read more")):
            ratio = getattr(self, name)
            if ratio is not None and (
                not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0 <= ratio <= 1
            ):
                raise SettingsError(
                    f"{name} must lie in [0, 1], or be None to never {off}. "
                    f"Currently, it is {ratio!r}"
                )
        if not isinstance(self.reader_weight, int | float) or self.reader_weight < 0:
            raise SettingsError(
                f"reader_weight must be a number >= 0. Currently, it is {self.reader_weight!r}"
            )
        if self.device == "cuda" and self.runtime not in (None, "torch"):
            raise SettingsError(
                f"device 'cuda' runs the torch model, not runtime {self.runtime!r}: "
                "pass --runtime torch (or leave the runtime out), or --device cpu"
            )
        if self.store == "pgvector" and not self.pg_url:
            raise SettingsError(
                "store 'pgvector' needs a database: pass --pg-url URL (or set SEEDRAG_PG_URL), "
                "e.g. postgresql://user@localhost/seedrag"
            )
        if self.store != "pgvector" and self.pg_url:
            raise SettingsError(
                "pg_url is set but the store is 'faiss', which would ignore it: pass "
                "--store pgvector to use the database, or drop --pg-url / SEEDRAG_PG_URL"
            )
        if not _SCHEMA.fullmatch(self.pg_schema):
            raise SettingsError(
                "pg_schema must be a lower-case SQL name (letters, digits, _), e.g. 'seedrag'. "
                f"Currently, it is {self.pg_schema!r}"
            )
        if not self.model.strip():
            raise SettingsError("model must name an embedding model, e.g. 'all-MiniLM-L6-v2'")

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again).

        Example:
            >>> Settings().with_(top_k=3).top_k
            3
        """
        return replace(self, **changes)

    def splitter_settings(self) -> dict[str, Any]:
        """The part of the settings an index's chunks depend on."""
        return {
            "name": "RecursiveCharacterTextSplitter",
            "length": "characters",
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view, paths as strings."""
        data = asdict(self)
        data["seeds_dir"] = str(self.seeds_dir)
        data["index_dir"] = str(self.index_dir)
        if self.onnx_cache_dir is not None:
            data["onnx_cache_dir"] = str(self.onnx_cache_dir)
        if self.pg_url:
            data["pg_url"] = redact_url(self.pg_url)
        return data


def _backend(self: Settings) -> str | None:
    """Deprecated: the old name of `Settings.runtime`."""
    warnings.warn("Settings.backend is deprecated: use Settings.runtime", DeprecationWarning, 2)
    return self.runtime


_dataclass_init = Settings.__init__


def _init(self: Settings, *args: Any, backend: str | None = None, **kwargs: Any) -> None:
    """The dataclass constructor, also taking ``backend``, the deprecated name of ``runtime``."""
    if backend is not None:
        warnings.warn(
            "Settings(backend=...) is deprecated: use Settings(runtime=...)",
            DeprecationWarning,
            stacklevel=2,
        )
        if kwargs.get("runtime", backend) != backend:
            raise SettingsError(
                f"backend={backend!r} and runtime={kwargs['runtime']!r} disagree: "
                "pass runtime only (backend is its old name)"
            )
        kwargs["runtime"] = backend
    _dataclass_init(self, *args, **kwargs)


def _either(choices: tuple[str, ...]) -> str:
    quoted = [repr(c) for c in choices]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


# ``backend``, the old name of ``runtime``, keeps working for one release, with a warning.
Settings.__init__ = _init  # type: ignore[method-assign]
Settings.backend = property(_backend)  # type: ignore[attr-defined]
