"""The embedding model run by ONNX Runtime (fp32 or int8), exported once from the bundled weights.

Owns the export (torch.onnx, offline, mean pooling and L2 normalisation inside the graph),
the int8 dynamic quantisation, the on-disk cache of both and `OnnxEmbedder`. Answering
with a cached file imports neither torch nor sentence-transformers: only onnxruntime and
tokenizers. It does not choose the backend (`rag.embedding.base.make_embedder` does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import DEFAULT_MODEL
from rag.embedding import pooling
from rag.embedding.base import SentenceTransformerEmbedder, SpanVectors, model_folder, normalise
from rag.errors import ModelLoadError
from rag.types import Vectors

log = logging.getLogger(__name__)

# Bump when the exported graph changes (inputs, pooling, opset, quantisation recipe).
EXPORT_RECIPE = 5
OPSET = 17
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
_KEY_FILES = ("model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json")
_LOCK = threading.Lock()
_SESSIONS: dict[Path, Any] = {}  # one ONNX Runtime session per file, per process


def default_cache_dir() -> Path:
    """Where exported models live: ``$XDG_CACHE_HOME/seedrag/onnx`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "seedrag" / "onnx"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def cache_key(folder: str, quantized: bool) -> str:
    """A name for the exported file: changes when the weights, the recipe or a tool changes.

    The weights are identified by path, size and mtime (a reinstall re-exports), so that
    checking the cache costs a few ``stat`` calls, not hashing 90 MB at every start.
    """
    files = []
    for rel in _KEY_FILES:
        path = Path(folder, rel)
        st = path.stat() if path.exists() else None
        files.append([rel, st.st_size if st else None, st.st_mtime_ns if st else None])
    blob = json.dumps(
        {
            "recipe": EXPORT_RECIPE,
            "folder": str(Path(folder).resolve()),
            "files": files,
            "quantized": quantized,
            "versions": {p: _version(p) for p in ("torch", "onnx", "onnxruntime")},
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    # The folder's own id keeps two models in folders of the same name apart, so that
    # removing stale exports of one (`_remove_stale`) never deletes the other's.
    where = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:8]
    return f"{Path(folder).name}-{where}-{'int8' if quantized else 'fp32'}-{digest}.onnx"


def _write(target: Path, make: Any) -> None:
    """Call ``make(tmp)`` on a temporary file beside ``target``, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        make(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(target: Path) -> None:
    """Delete older exports of the same model and precision beside ``target``.

    Each recipe, weights or tool version change writes a new file (~90 MB fp32, ~59 MB
    int8) under a new key; without this, every upgrade left the old ones behind. A
    process still using a deleted file keeps its open copy (POSIX unlink semantics).
    """
    stem = target.name.rsplit("-", 1)[0]  # "<folder name>-<folder id>-<fp32|int8>"
    name, _, precision = stem.rsplit("-", 2)
    legacy = f"{name}-{precision}"  # before the folder id was part of the name
    for old in target.parent.glob(f"{name}-*.onnx"):
        if old != target and old.name.rsplit("-", 1)[0] in (stem, legacy):
            try:
                old.unlink()
                log.info("removed the stale ONNX export %s", old)
            except OSError as exc:
                log.debug("could not remove the stale export %s: %s", old, exc)


def ensure_exported(folder: str, cache_dir: Path, quantized: bool) -> Path:
    """The cached ONNX file of the model in ``folder``, exported (and quantised) if missing.

    The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x
    tokens) and returns ``sentence_embedding`` (float32, batch x dim, mean-pooled, unit
    length) and ``token_embeddings`` (the last hidden state, batch x tokens x dim). The
    int8 file is made from the fp32 one by ONNX Runtime's dynamic quantisation.
    """
    fp32 = cache_dir / cache_key(folder, quantized=False)
    if not fp32.exists():
        log.warning("exporting %s to ONNX, once (cached as %s)", folder, fp32)
        _write(fp32, lambda tmp: _export_fused(folder, tmp))
        _remove_stale(fp32)
    if not quantized:
        return fp32
    int8 = cache_dir / cache_key(folder, quantized=True)
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.warning("quantising %s to int8, once (cached as %s)", fp32.name, int8)
        # Per-channel int8 weights of the MatMuls and fused Attentions only: per-tensor
        # scales (the default) or quantising the embedding Gather lowered the cosine to the
        # fp32 vectors to ~0.95. Outputs of fused ops have no inferred type: FLOAT is right.
        _write(
            int8,
            lambda tmp: quantize_dynamic(
                fp32,
                tmp,
                op_types_to_quantize=["MatMul", "Attention"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT
            ),
        )
        _remove_stale(int8)
    return int8


def _torch_export(folder: str, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Eager attention traces to the pattern ONNX Runtime's fuser recognises (`_fuse`).
            self.bert = AutoModel.from_pretrained(folder, attn_implementation="eager")

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1), hidden

    model = Pooled().eval()
    example = torch.ones((2, 8), dtype=torch.long)
    mask = example.clone()
    mask[1, 5:] = 0  # padded, so no "mask is all ones" shortcut is traced into the graph
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape checks frozen as constants
        torch.onnx.export(
            model,
            (example, mask, torch.zeros_like(example)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding", "token_embeddings"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "sentence_embedding": {0: "batch"},
                "token_embeddings": axes,
            },
            opset_version=OPSET,
            dynamo=False,
        )


def _export_fused(folder: str, out: Path) -> None:
    _torch_export(folder, out)
    _fuse(folder, out)


def _fuse(folder: str, path: Path) -> None:
    """Rewrite the exported graph at ``path`` with ONNX Runtime's BERT fusions, in place.

    Attention, embedding + LayerNorm, skip + LayerNorm and bias + GELU each become one
    kernel (about 6% fewer CPU-seconds per chunk at int8, measured with benchmarks in the
    commit that added this). A model the fuser does not know keeps its plain graph.
    """
    from onnxruntime.transformers import optimizer

    config = json.loads(Path(folder, "config.json").read_text("utf-8"))
    if config.get("model_type") != "bert":
        log.info("not fusing %s: model_type %r is not bert", folder, config.get("model_type"))
        return
    model = optimizer.optimize_model(
        str(path),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        opt_level=0,  # fusions only; ONNX Runtime applies its own graph optimisations at load
    )
    log.info("fused %s: %s", path.name, model.get_fused_operator_statistics())
    model.save_model_to_file(str(path))


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
    """The bundled model through ONNX Runtime; torch is the fallback when ONNX is unusable.

    ``name`` is the model name plus ``+onnx`` or ``+onnx-int8``, so an index built with
    another backend is rebuilt, never mixed. Reading ``name`` (or embedding) prepares the
    ONNX file: a cached one is used as is; otherwise it is exported (needs torch, once).
    When onnxruntime is missing or the export fails, a warning says why and every call goes
    to `SentenceTransformerEmbedder`, whose plain model name ``name`` then reports.

    Example:
        >>> e = OnnxEmbedder(quantized=True)   # loads nothing yet
        >>> e.embed_query("Why did Musk leave?").shape  # doctest: +SKIP
        (384,)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 32,
        quantized: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.quantized = quantized
        self.backend = "onnx-int8" if quantized else "onnx"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._dimension: int | None = 384 if model == DEFAULT_MODEL else None
        self._fallback: SentenceTransformerEmbedder | None = None
        self._path: Path | None = None
        self._tok: Any = None
        self._prepare_lock = threading.Lock()

    def _prepare(self) -> None:
        with self._prepare_lock:
            if self._path is not None or self._fallback is not None:
                return
            folder = model_folder(self.model)
            try:
                import onnxruntime  # noqa: F401

                path = ensure_exported(folder, self.cache_dir, self.quantized)
                self._tok = pooling.tokenizer(folder, MAX_TOKENS)
                self._path = path
            except Exception as exc:  # onnxruntime missing, export or tokenizer failure
                log.warning(
                    "embedding backend %r is unavailable (%s: %s): using the torch model "
                    "instead; install onnxruntime and onnx, or pass --backend torch",
                    self.backend,
                    type(exc).__name__,
                    exc,
                )
                self._fallback = SentenceTransformerEmbedder(self.model, self.batch_size)

    @property
    def name(self) -> str:
        """``model+backend``, or the plain model name when falling back to torch."""
        self._prepare()
        if self._fallback is not None:
            return self._fallback.name
        return f"{self.model}+{self.backend}"

    @property
    def dimension(self) -> int:
        """Vector size (384 for the bundled model)."""
        self._prepare()
        if self._fallback is not None:
            return self._fallback.dimension
        if self._dimension is None:
            self._dimension = int(self._run(self._tok.encode_batch(["x"])).shape[1])
        return self._dimension

    def _session(self) -> Any:
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
        """Each text's tokens (`pooling.Tokens`; the texts themselves when falling back
        to torch, which tokenises as it embeds): `rag.embedding.base.Tokenizing`."""
        self._prepare()
        if self._fallback is not None:
            return list(texts)
        return [pooling.Tokens(e) for e in self._tok.encode_batch(texts)]

    def embed_tokens(self, tokens: Sequence[Any]) -> Vectors:
        """Embed what `tokenize` returned, in order."""
        self._prepare()
        if self._fallback is not None:
            return self._fallback.embed_documents(list(tokens))
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
        """`embed_documents` plus span vectors pooled from the same pass (`rag.embedding.pooling`)."""
        self._prepare()
        if self._fallback is not None:
            return self._fallback.embed_with_spans(texts, spans)
        if not texts:
            return SpanVectors(np.zeros((0, self.dimension), dtype=np.float32), [], [])
        return pooling.embed_with_spans(self._run_tokens, self._tok, texts, spans, self.batch_size)

    def embed_query(self, text: str) -> Vectors:
        """Embed one question."""
        return np.asarray(self.embed_documents([text])[0], dtype=np.float32)
