"""Exporting the bundled model to ONNX (fp32, then int8), once, into a cache folder.

Owns the export (torch.onnx, offline, mean pooling and L2 normalisation inside the
graph), ONNX Runtime's BERT fusions, the int8 dynamic quantisation, the cache's file
names (they change with the weights, the recipe and the tools) and removing stale
exports. Needs torch and onnx; `rag.embedding.onnx` runs the result without them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from rag.errors import ModelLoadError

log = logging.getLogger(__name__)

# Bump when the exported graph changes (inputs, pooling, opset, quantisation recipe).
EXPORT_RECIPE = 5
OPSET = 17
_KEY_FILES = ("model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json")


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

    Each recipe, weights or tool version change writes a new file (tens of MB) under a
    new key; without this, every upgrade would leave the old ones behind. A
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


def ensure_exported(
    folder: str, cache_dir: Path, quantized: bool, *, allow_export: bool = True
) -> Path:
    """The cached ONNX file of the model in ``folder``, exported (and quantised) if missing;
    with ``allow_export`` False a missing file is a `ModelLoadError` instead.

    The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x
    tokens) and returns ``sentence_embedding`` (float32, batch x dim, mean-pooled, unit
    length) and ``token_embeddings`` (the last hidden state, batch x tokens x dim). The
    int8 file is made from the fp32 one by ONNX Runtime's dynamic quantisation.
    """
    fp32 = cache_dir / cache_key(folder, quantized=False)
    int8 = cache_dir / cache_key(folder, quantized=True)
    wanted = int8 if quantized else fp32
    if not allow_export and not wanted.exists():
        raise ModelLoadError(
            f"the ONNX model is not in the cache ({wanted}), and an index opened for reading "
            "never exports one: run `rag index` once with this cache folder "
            "(Settings.onnx_cache_dir) to export it, or build the index with --runtime torch"
        )
    if not fp32.exists():
        log.warning("exporting %s to ONNX, once (cached as %s)", folder, fp32)
        _write(fp32, lambda tmp: _export_fused(folder, tmp))
        _remove_stale(fp32)
    if not quantized:
        return fp32
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.warning("quantising %s to int8, once (cached as %s)", fp32.name, int8)
        # Per-channel int8 weights of the MatMuls and fused Attentions only: per-tensor
        # scales (the default) or quantising the embedding Gather pulled the vectors
        # visibly away from fp32's (benchmarks/backends.py). Outputs of fused ops have no
        # inferred type: FLOAT is right.
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
            # Eager attention traces to the pattern ONNX Runtime's fuser recognises (`fuse_bert`).
            self.bert = AutoModel.from_pretrained(folder, attn_implementation="eager")

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1), hidden

    export_encoder(Pooled().eval(), out, ("sentence_embedding", "token_embeddings"))


def export_encoder(model: Any, out: Path, outputs: tuple[str, str]) -> None:
    """Trace ``model`` to ONNX at ``out``: (input_ids, attention_mask, token_type_ids) in,
    ``outputs`` out (one value per example, then one per token), batch size and length
    free. The answer model's training exports through it too."""
    import torch

    example = torch.ones((2, 8), dtype=torch.long)
    mask = example.clone()
    mask[1, 5:] = 0  # padded, so no "mask is all ones" shortcut is traced into the graph
    axes = {0: "batch", 1: "tokens"}
    per_example, per_token = outputs
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape checks frozen as constants
        torch.onnx.export(
            model,
            (example, mask, torch.zeros_like(example)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=[per_example, per_token],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                per_example: {0: "batch"},
                per_token: axes,
            },
            opset_version=OPSET,
            dynamo=False,
        )


def _export_fused(folder: str, out: Path) -> None:
    _torch_export(folder, out)
    fuse_bert(folder, out)


def fuse_bert(folder: str, path: Path, *, embedding: bool = True) -> None:
    """Rewrite the exported graph at ``path`` with ONNX Runtime's BERT fusions, in place.

    Attention, embedding + LayerNorm (unless ``embedding`` is False), skip + LayerNorm and
    bias + GELU each become one kernel, which saves CPU time per chunk
    (benchmarks/backends.py). A model the fuser does not know keeps its plain graph.
    """
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    config = json.loads(Path(folder, "config.json").read_text("utf-8"))
    if config.get("model_type") != "bert":
        log.info("not fusing %s: model_type %r is not bert", folder, config.get("model_type"))
        return
    options = FusionOptions("bert")
    options.enable_embed_layer_norm = embedding
    model = optimizer.optimize_model(
        str(path),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        optimization_options=options,
        opt_level=0,  # fusions only; ONNX Runtime applies its own graph optimisations at load
    )
    log.info("fused %s: %s", path.name, model.get_fused_operator_statistics())
    model.save_model_to_file(str(path))
