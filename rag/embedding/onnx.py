"""The embedding model run by ONNX Runtime (fp32 or int8) from its cached export.

Owns `OnnxEmbedder` and one ONNX Runtime session per file per process. Answering with a
cached file imports neither torch nor sentence-transformers: only onnxruntime and
tokenizers. The export is `rag.embedding.onnx_export`; the choice of runtime, and what to
do when ONNX is unusable, is `rag.embedding.factory`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import DEFAULT_MODEL
from rag.embedding import pooling
from rag.embedding.base import SpanVectors, model_folder, normalise
from rag.embedding.onnx_export import default_cache_dir, ensure_exported
from rag.errors import ModelLoadError
from rag.types import Vectors

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
_LOCK = threading.Lock()
_SESSIONS: dict[Path, Any] = {}  # one ONNX Runtime session per file, per process


def _session(path: Path) -> Any:
    import onnxruntime as ort

    with _LOCK:
        if path not in _SESSIONS:
            opts = ort.SessionOptions()
            # Spinning worker threads made single queries far slower on a busy machine
            # (the same effect as OMP_WAIT_POLICY=PASSIVE for torch).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3
            _SESSIONS[path] = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        return _SESSIONS[path]


class OnnxEmbedder:
    """The bundled model through ONNX Runtime.

    ``name`` is the model name plus ``+onnx`` or ``+onnx-int8``, so an index built with
    another runtime is never mixed with this one's vectors. `prepare` (called on first
    use) finds the cached ONNX file, or exports it when ``allow_export`` (needs torch,
    once); it raises `ModelLoadError` when onnxruntime or the file is unusable.

    Usage (not a doctest: it needs a built index, a model or a server)::

        e = OnnxEmbedder(quantized=True)   # loads nothing yet
        e.name
        # -> 'all-MiniLM-L6-v2+onnx-int8'
        e.embed_query("Why did Musk leave?").shape
        # -> (384,)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        quantized: bool = True,
        cache_dir: Path | None = None,
        *,
        allow_export: bool = True,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.quantized = quantized
        self.runtime = "onnx-int8" if quantized else "onnx"
        self.name = f"{model}+{self.runtime}"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.allow_export = allow_export
        self._dimension: int | None = 384 if model == DEFAULT_MODEL else None
        self._path: Path | None = None
        self._tok: Any = None
        self._prepare_lock = threading.Lock()

    def prepare(self) -> None:
        """Find (or export) the ONNX file and load the tokenizer; `ModelLoadError` when
        this runtime cannot run here."""
        with self._prepare_lock:
            if self._path is not None:
                return
            folder = model_folder(self.model)
            try:
                import onnxruntime  # noqa: F401
            except ImportError as exc:
                raise ModelLoadError(
                    f"runtime {self.runtime!r} needs onnxruntime: pip install onnxruntime "
                    "onnx, or pass --runtime torch"
                ) from exc
            try:
                path = ensure_exported(
                    folder, self.cache_dir, self.quantized, allow_export=self.allow_export
                )
                self._tok = pooling.tokenizer(folder, MAX_TOKENS)
            except ModelLoadError:
                raise
            except Exception as exc:  # export or tokenizer failure
                raise ModelLoadError(
                    f"could not prepare the {self.runtime} model from {folder} "
                    f"({type(exc).__name__}: {exc}); pass --runtime torch to use torch"
                ) from exc
            self._path = path

    @property
    def dimension(self) -> int:
        """Vector size (384 for the bundled model)."""
        if self._dimension is None:
            self.prepare()
            self._dimension = int(self._run(self._tok.encode_batch(["x"])).shape[1])
        return self._dimension

    def _session(self) -> Any:
        self.prepare()
        assert self._path is not None
        try:
            return _session(self._path)
        except Exception as exc:
            raise ModelLoadError(
                f"could not load the ONNX model {self._path} ({exc}): delete it to re-export"
            ) from exc

    @staticmethod
    def _feed(inputs: pooling.Inputs) -> dict[str, Any]:
        return dict(zip(("input_ids", "attention_mask", "token_type_ids"), inputs, strict=True))

    def _run(self, encodings: list[Any]) -> Vectors:
        inputs = pooling.model_inputs(encodings)  # no offsets: not pooling
        out = self._session().run(["sentence_embedding"], self._feed(inputs))[0]
        return normalise(out)

    def _run_tokens(self, batch: pooling.Batch) -> tuple[Vectors, Vectors]:
        pooled, tokens = self._session().run(
            ["sentence_embedding", "token_embeddings"],
            self._feed((batch.ids, batch.mask, batch.types)),
        )
        return pooled, tokens

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Embed passages in input order, tokenised once, in batches of similar token
        counts (little padding)."""
        return self.embed_tokens(self.tokenize(texts))

    def tokenize(self, texts: list[str]) -> list[Any]:
        """Each text's tokens (`pooling.Tokens`): `rag.embedding.base.Tokenizing`."""
        self.prepare()
        return [pooling.Tokens(e) for e in self._tok.encode_batch(texts)]

    def embed_tokens(self, tokens: Sequence[Any]) -> Vectors:
        """Embed what `tokenize` returned, in order."""
        if not tokens:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out: Vectors | None = None
        for rows in pooling.by_length(tokens, self.batch_size):
            vecs = self._run([tokens[i] for i in rows])
            if out is None:
                out = np.zeros((len(tokens), vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
        assert out is not None
        return out

    def embed_with_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> SpanVectors:
        """`embed_documents` plus span vectors pooled from the same pass (`pooling`)."""
        if not texts:
            return SpanVectors(np.zeros((0, self.dimension), dtype=np.float32), [], [])
        self.prepare()
        return pooling.embed_with_spans(self._run_tokens, self._tok, texts, spans, self.batch_size)

    def embed_query(self, text: str) -> Vectors:
        """Embed one question."""
        return np.asarray(self.embed_documents([text])[0], dtype=np.float32)
