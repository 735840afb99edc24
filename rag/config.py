"""`Settings`: every tunable of seedrag in one frozen, validated dataclass.

Owns defaults and validation. It reads no environment variable and no file:
the CLI and the UI translate their flags into a `Settings`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.errors import SettingsError, redact_url

DEFAULT_MODEL = "all-MiniLM-L6-v2"
SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
DEFAULT_MAX_FILE_BYTES = 50_000_000  # larger files are skipped (with a logged reason)
# Chunks from which the index is HNSW instead of exact: measured in benchmarks/ann.py.
DEFAULT_ANN_THRESHOLD = 50_000
DEVICES = ("cpu", "cuda")
BACKENDS = ("torch", "onnx", "onnx-int8")
STORES = ("faiss", "pgvector")
SEEDS_CHECKS = ("notify", "stat")
MODEL_PASSES = ("sentences", "chunks", "both")
READER_MODES = ("full", "rerank", "windows", "off")
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

    Attributes:
        seeds_dir: folder of source documents, read recursively.
        index_dir: folder where the built index lives.
        model: name of the bundled embedding model.
        chunk_size: maximum chunk length in characters (kept under the
            model's 256-token window).
        chunk_overlap: characters shared by neighbouring chunks.
        top_k: chunks retrieved per question.
        retrieval: "hybrid" (dense and BM25 fused by reciprocal rank) or "dense".
        max_citations: most quotes cited in one answer.
        max_quote_sentences: most consecutive sentences in one quote.
        min_score: similarity to the question of the closest sentence in the retrieved
            chunks under which the answer abstains.
        confident_score: that similarity at or above which the answer does not also
            need a question word in the retrieved chunks. Both thresholds are
            calibrated on a squadshifts_wiki corpus and checked on the seed article and
            the xquad_en passages in benchmarks/abstention.py.
        batch_size: texts per embedding batch.
        max_file_bytes: files larger than this are skipped with a logged reason,
            so one huge file cannot exhaust memory or stall indexing.
        ann_threshold: chunk count from which the vector index is approximate
            (FAISS HNSW, or pgvector's HNSW) instead of exact; see benchmarks/ann.py.
        store: where the index lives: "faiss" (files in ``index_dir``, no server)
            or "pgvector" (tables in the PostgreSQL database at ``pg_url``).
        pg_url: PostgreSQL connection URL, for ``store="pgvector"``.
        pg_schema: the database schema holding this index's tables, so one
            database can hold several indexes.
        read_only: serve the index as the store holds it: never scan the seeds,
            never write (app replicas that share a database one indexer keeps
            up to date).
        device: where the embedding model runs, "cpu" or "cuda" (falls back to
            the CPU with a logged warning when no GPU is usable).
        backend: what runs the model: "onnx-int8" (default: 1.7x torch's speed per
            CPU-second, hit@1/hit@3 on xquad_en within 0.01 of torch's, no torch import
            when answering), "onnx" or "torch". The ONNX file is exported once and
            cached; without onnxruntime the torch model is used, with a warning.
            Measured in benchmarks/backends.py.
        seeds_check: how each question learns whether the seeds changed: "notify"
            (default: the operating system reports changes, inotify on Linux, so an
            unchanged folder costs no file look-ups; the index folder is watched the
            same way for generations other processes commit; where inotify is
            unavailable every file's stat is checked) or "stat" (always check every
            file's stat and the index's manifest: for a seeds or index folder on a
            network file system written to by other machines).
        model_pass: which texts the model embeds when indexing. "sentences" (default):
            each sentence alone; a chunk's vector is the mean of its sentences' vectors,
            each weighted by the characters it shares with the chunk (a chunk holding no
            sentence is embedded itself). About half the model work of "both"; chunks are
            ranked by their closest sentence either way. "both": each chunk and each
            sentence on its own (the default until 2026-11-26). "chunks": each chunk
            once; sentence vectors are pooled from that pass (hit@3 0.007-0.016 lower,
            measured before chunks were ranked by their closest sentence). Measured in
            benchmarks/RESULTS.md.
        follow_external_links: index a file symlink whose target lies outside the seeds
            folder. Off by default: a link to ``/etc/passwd`` must not become quotable;
            such links are skipped and listed with the reason.
        reader: how the answer model (`rag.reader.model`, trained by ``training/``) takes part.
            "full" (default): it reads the retrieved chunks with the question, decides
            whether they answer, and its probabilities join the quote scores. "off":
            quotes are chosen by similarity and lexical features, abstention by ``min_score`` and
            ``confident_score``. "rerank" and "windows" use one half of it only (chunk
            order, or sentence probabilities), for the ablation; see `rag.query.reading`.
        reader_min_answer: the model's probability that the best retrieved chunk
            answers, under which the answer abstains.
        reader_quote_ratio: a quote after the first is cited only when the model finds
            it at least this share as likely as the first (no padding with quotes that
            only restate the topic).
        reader_weight: how much the model's probability for a window's best sentence
            adds to the window's score (the similarity features' weights sum to about 1).

    Example:
        >>> Settings(chunk_size=500, chunk_overlap=50).chunk_size
        500
    """

    seeds_dir: Path = field(default_factory=lambda: Path("seeds"))
    index_dir: Path = field(default_factory=lambda: Path("index"))
    model: str = DEFAULT_MODEL
    chunk_size: int = 800
    chunk_overlap: int = 160
    top_k: int = 6
    retrieval: str = "hybrid"
    max_citations: int = 3
    max_quote_sentences: int = 3
    min_score: float = 0.375
    confident_score: float = 0.50
    batch_size: int = 32
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ann_threshold: int = DEFAULT_ANN_THRESHOLD
    store: str = "faiss"
    pg_url: str | None = field(default=None, repr=False)  # may hold a password
    pg_schema: str = "seedrag"
    read_only: bool = False
    device: str = "cpu"
    backend: str = "onnx-int8"
    seeds_check: str = "notify"
    model_pass: str = "sentences"
    follow_external_links: bool = False
    reader: str = "full"
    # The three reader_* values are chosen by training/tune.py on the answer model's
    # validation split (rag/reader/weights/MODEL_CARD.md), never on a reporting set.
    reader_min_answer: float = 0.17
    reader_quote_ratio: float = 0.1
    reader_weight: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds_dir", Path(self.seeds_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingsError(
                    f"{name} must be a whole number >= 1. Currently, {name} is {value!r}"
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
        if self.retrieval not in ("hybrid", "dense"):
            raise SettingsError(
                f"retrieval must be 'hybrid' or 'dense'. Currently, it is {self.retrieval!r}"
            )
        if self.device not in DEVICES:
            raise SettingsError(f"device must be 'cpu' or 'cuda'. Currently, it is {self.device!r}")
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"backend must be 'torch', 'onnx' or 'onnx-int8'. Currently, it is {self.backend!r}"
            )
        if self.seeds_check not in SEEDS_CHECKS:
            raise SettingsError(
                f"seeds_check must be 'notify' or 'stat'. Currently, it is {self.seeds_check!r}"
            )
        if self.model_pass not in MODEL_PASSES:
            raise SettingsError(
                "model_pass must be 'sentences', 'chunks' or 'both'. "
                f"Currently, it is {self.model_pass!r}"
            )
        if self.reader not in READER_MODES:
            raise SettingsError(
                "reader must be 'full', 'rerank', 'windows' or 'off'. "
                f"Currently, it is {self.reader!r}"
            )
        for name in ("reader_min_answer", "reader_quote_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise SettingsError(f"{name} must lie in [0, 1]. Currently, it is {value!r}")
        if not isinstance(self.reader_weight, int | float) or self.reader_weight < 0:
            raise SettingsError(
                f"reader_weight must be a number >= 0. Currently, it is {self.reader_weight!r}"
            )
        if self.store not in STORES:
            raise SettingsError(
                f"store must be 'faiss' or 'pgvector'. Currently, it is {self.store!r}"
            )
        if self.store == "pgvector" and not self.pg_url:
            raise SettingsError(
                "store 'pgvector' needs a database: pass --pg-url URL (or set SEEDRAG_PG_URL), "
                "e.g. postgresql://user@localhost/seedrag"
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
        if self.pg_url:
            data["pg_url"] = redact_url(self.pg_url)
        return data
