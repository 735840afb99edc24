"""Train the answer model from the bundled all-MiniLM-L6-v2 weights, then ship it.

One command rebuilds the shipped files from scratch with a fixed seed:

    .venv/bin/python -m training.train --data ../shared/eval/squadshifts_wiki

It trains on SQuADShifts Wikipedia (a validation split of whole articles held out; ``--extra``
adds a SQuAD-format file's articles to training, but for a share that tuning asks of its
own register, ``--extra-validation-share``),
calibrates the two probabilities on that split, exports ONNX, quantises as far as the
validation rankings survive (`training.export`) and writes ``rag/reader/weights/``:
``model.onnx``, ``tokenizer.json``, ``reader.json`` (calibration, limits, the file's
sha256) and ``metrics.json`` (what the model card quotes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.reader.inputs import Encoded, encode_pairs, load_tokenizer, pad, pool_sentences
from training.data import (
    Example,
    add_split_options,
    examples,
    held_out,
    load,
    load_squad,
    merge,
    split,
)
from training.loop import Checkpoint, fit

log = logging.getLogger("training")

MAX_TOKENS = 256


def encode(tokenizer: Any, batch: Sequence[Example], max_tokens: int) -> list[Encoded]:
    return [
        encode_pairs(tokenizer, e.question, [(e.passage.text, e.passage.sentences)], max_tokens)[0]
        for e in batch
    ]


def batches(items: list[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Batches of similar passage length (less padding), in random order. The examples of
    one question (one ``group``) stay in one batch, which then may hold a few more than
    ``size``."""
    units: dict[object, list[Example]] = {}
    for i, e in enumerate(items):
        units.setdefault(e.group if e.group >= 0 else ("alone", i), []).append(e)
    ordered = list(units.values())
    out = []
    for lo in range(0, len(ordered), size * 16):
        block = sorted(
            ordered[lo : lo + size * 16], key=lambda u: max(len(e.passage.text) for e in u)
        )
        batch: list[Example] = []
        for unit in block:
            batch.extend(unit)
            if len(batch) >= size:
                out.append(batch)
                batch = []
        if batch:
            out.append(batch)
    rng.shuffle(out)
    return out


def losses(
    model: Any, tokenizer: Any, batch: Sequence[Example], max_tokens: int, bf16: bool = False
) -> Any:
    """The training loss of one batch. With ``bf16`` the encoder runs under bfloat16
    autocast (the weights stay fp32); the heads' outputs are cast back to fp32 before
    sentences are pooled and the losses summed, so only the matrix products lose precision."""
    import torch

    from training.model import sentence_logits

    device = next(model.parameters()).device
    ids, mask, types, sentence = (
        torch.from_numpy(a).to(device) for a in pad(encode(tokenizer, batch, max_tokens))
    )
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        answer, tokens = model(ids, mask, types)
    answer, tokens = answer.float(), tokens.float()
    counts = [len(e.labels) for e in batch]
    sent = sentence_logits(tokens, sentence, counts)
    labels = torch.tensor([x for e in batch for x in e.labels], dtype=sent.dtype, device=device)
    seen = torch.isfinite(sent)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    answers = torch.tensor([e.answerable for e in batch], dtype=answer.dtype, device=device)
    loss_answer = bce(answer, answers)
    loss_sentence = bce(sent[seen], labels[seen])
    # Listwise: within a passage that answers, the answering sentences against the rest.
    listwise, n, at = sent.new_zeros(()), 0, 0
    for e, c in zip(batch, counts, strict=True):
        s, y = sent[at : at + c], labels[at : at + c]
        at += c
        if e.answerable and bool((y[torch.isfinite(s)] > 0).any()):
            ok = torch.isfinite(s)
            listwise = listwise + torch.logsumexp(s[ok], 0) - torch.logsumexp(s[ok & (y > 0)], 0)
            n += 1
    # Across the passages of one question (a group): the answering passage against its
    # rivals, and its answering sentences against every sentence the group holds, so that
    # probabilities compare across the chunks one question retrieves.
    rivals, sentences, groups = sent.new_zeros(()), sent.new_zeros(()), 0
    starts = [0, *itertools.accumulate(counts)]
    members: dict[int, list[int]] = {}
    for i, e in enumerate(batch):
        if e.group >= 0:
            members.setdefault(e.group, []).append(i)
    for rows in members.values():
        positive = [i for i in rows if batch[i].answerable]
        if not positive or len(rows) < 2:
            continue
        rivals = rivals + torch.logsumexp(answer[rows], 0) - torch.logsumexp(answer[positive], 0)
        every = torch.cat([sent[starts[i] : starts[i + 1]] for i in rows])
        wanted = torch.cat([labels[starts[i] : starts[i + 1]] for i in rows]) > 0
        ok = torch.isfinite(every)
        if bool((ok & wanted).any()):
            sentences = sentences + torch.logsumexp(every[ok], 0)
            sentences = sentences - torch.logsumexp(every[ok & wanted], 0)
        groups += 1
    grouped = (rivals + sentences) / max(1, groups)
    return loss_answer + loss_sentence + listwise / max(1, n) + grouped


def predict(
    run: Any, tokenizer: Any, items: Sequence[Example], max_tokens: int, size: int = 32
) -> list[tuple[float, np.ndarray]]:
    """``(answer logit, sentence logits)`` per example; ``run(ids, mask, types)`` gives the
    model's two outputs as numpy arrays."""
    out: list[tuple[float, np.ndarray]] = [(0.0, np.zeros(0))] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(items[i].passage.text))
    for lo in range(0, len(order), size):
        part = order[lo : lo + size]
        enc = encode(tokenizer, [items[i] for i in part], max_tokens)
        ids, mask, types, sentence = pad(enc)
        answer, tokens = run(ids, mask, types)
        for row, i in enumerate(part):
            pooled = pool_sentences(tokens[row], sentence[row], len(items[i].labels))
            out[i] = (float(answer[row]), pooled)
    return out


def platt(logits: np.ndarray, labels: np.ndarray, steps: int = 200) -> tuple[float, float]:
    """``(a, b)`` so that sigmoid(a * logit + b) is calibrated on these labels (Newton)."""
    a, b = 1.0, 0.0
    x, y = logits.astype(np.float64), labels.astype(np.float64)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a * x + b)))
        g = np.array([np.sum((p - y) * x), np.sum(p - y)])
        w = p * (1 - p) + 1e-9
        h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        step = np.linalg.solve(h + 1e-6 * np.eye(2), g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


def scores(items: Sequence[Example], preds: list[tuple[float, np.ndarray]]) -> dict[str, float]:
    """Validation numbers: top sentence right within answering passages; answer logit AUC."""
    right, n = 0, 0
    pos: list[float] = []
    neg: list[float] = []
    for e, (answer, sent) in zip(items, preds, strict=True):
        (pos if e.answerable else neg).append(answer)
        if e.answerable and len(sent) and np.isfinite(sent).any():
            n += 1
            right += int(e.labels[int(np.argmax(sent))] > 0)
    p, q = np.asarray(pos), np.asarray(neg)
    auc = float((p[:, None] > q[None, :]).mean() + 0.5 * (p[:, None] == q[None, :]).mean())
    return {"sentence_hit_at_1": right / max(1, n), "answer_auc": auc, "examples": len(items)}


def options() -> argparse.ArgumentParser:
    """The command line of `main`; ``python -m training`` reads it too, to run tuning and
    the card on the same data, split and folders."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/eval/squadshifts_wiki"))
    parser.add_argument("--out", type=Path, default=Path("rag/reader/weights"))
    parser.add_argument("--work", type=Path, default=Path("training/work"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=[],
        help="a SQuAD-format file whose every article is added to training (never to "
        "validation, which stays the --data articles held out); repeatable",
    )
    add_split_options(parser)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: cuda when a GPU is usable)"
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: train under bfloat16 autocast, faster on CPUs with bf16 instructions "
        "(AVX-512 BF16, AMX) and on GPUs; the weights, validation and export stay fp32",
    )
    parser.add_argument(
        "--attention-dropout",
        type=float,
        metavar="P",
        help="dropout on the attention probabilities while training (default: the base "
        "model's, 0.1); 0 spares a CPU the random masks over every attention map",
    )
    parser.add_argument("--limit", type=int, default=0, help="examples per epoch (0: all)")
    parser.add_argument("--hard", type=int, default=2, help="hard negatives per question and epoch")
    parser.add_argument(
        "--mined",
        type=int,
        default=6,
        help="draw hard negatives from the top N chunks seedrag retrieves (0: BM25 only)",
    )
    parser.add_argument(
        "--stop-after",
        type=float,
        default=0,
        metavar="MINUTES",
        help="save a checkpoint and stop after this long (0: train to the end); the same "
        "command then continues from work/checkpoint.pt",
    )
    parser.add_argument(
        "--weights", type=Path, help="skip training: export these saved weights (work/reader.pt)"
    )
    return parser


# Options that change neither the examples nor the steps: a run may resume under others.
UNSHAPING = {"out", "work", "threads", "device", "stop_after", "weights"}


def resumable(args: argparse.Namespace) -> dict[str, Any]:
    """The options a resumed run must share with the run that saved the checkpoint."""
    return {
        k: [str(x) for x in v] if isinstance(v, list) else str(v) if isinstance(v, Path) else v
        for k, v in vars(args).items()
        if k not in UNSHAPING
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = options().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    import torch
    from transformers import AutoModel

    from rag.embedding.base import model_folder
    from training.export import ship
    from training.model import Reader

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    folder = model_folder("all-MiniLM-L6-v2")
    tokenizer = load_tokenizer(str(Path(folder) / "tokenizer.json"))
    corpus = load(args.data)
    train_titles, val_titles = split(corpus, args.validation_share, args.seed)
    extra_titles: set[str] = set()
    extra_val: set[str] = set()
    if args.extra:
        more = [load_squad(path, f"extra{i}") for i, path in enumerate(args.extra)]
        corpus = merge(corpus, *more)
        extra_val = held_out(more, args.extra_validation_share, args.seed)
        extra_titles = {title for c in more for title in c.titles.values()} - extra_val
    train_titles |= extra_titles
    rng = random.Random(args.seed)
    val = examples(corpus, val_titles, random.Random(args.seed + 1))
    log.info("articles: %d train, %d validation", len(train_titles), len(val_titles))
    mined = None
    if args.mined:
        from training.mining import retrieved

        mined = retrieved(corpus, train_titles, args.mined)
    epochs = [
        examples(corpus, train_titles, rng, hard_per_question=args.hard, mined=mined)
        for _ in range(args.epochs)
    ]
    if args.limit:
        epochs = [e[: args.limit] for e in epochs]
    log.info("examples per epoch: %d; validation: %d", len(epochs[0]), len(val))

    dropout = {}
    if args.attention_dropout is not None:
        dropout["attention_probs_dropout_prob"] = args.attention_dropout
    encoder = AutoModel.from_pretrained(folder, attn_implementation="eager", **dropout)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = Reader(encoder).to(device)
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location=device))
        epochs = []
    checkpoint = Checkpoint(args.work / "checkpoint.pt", resumable(args))
    sitting = time.time()
    outcome = fit(
        model,
        lambda batch: losses(model, tokenizer, batch, args.max_tokens, args.precision == "bf16"),
        epochs,
        lambda items, order: batches(items, args.batch, order),
        rng,
        args.lr,
        # Counted as if batches were exactly --batch long, as the shipped model was trained:
        # keeping a question's examples together makes fewer, so the rate ends above zero.
        sum(math.ceil(len(e) / args.batch) for e in epochs),
        None if args.weights else checkpoint,
        lambda step: bool(args.stop_after) and time.time() - sitting >= args.stop_after * 60,
    )
    if not outcome.done:
        raise SystemExit(
            f"stopped at step {outcome.step} of {outcome.steps} (--stop-after {args.stop_after}): "
            f"run the same command again to continue from {checkpoint.path}"
        )
    train_seconds = outcome.seconds
    model.eval().cpu()  # export and validation run on the CPU, as answering does
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.weights:
        torch.save(model.state_dict(), args.work / "reader.pt")

    def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[Any, Any]:
        with torch.no_grad():
            a, t = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
        return a.numpy(), t.numpy()

    preds = predict(run, tokenizer, val, args.max_tokens)
    metrics: dict[str, Any] = {"torch_fp32": scores(val, preds)}
    log.info("validation (torch): %s", metrics["torch_fp32"])
    answer_ab = platt(np.array([a for a, _ in preds]), np.array([e.answerable for e in val]))
    sent_x = np.concatenate([s[np.isfinite(s)] for _, s in preds])
    sent_y = np.concatenate(
        [np.asarray(e.labels)[np.isfinite(s)] for e, (_, s) in zip(val, preds, strict=True)]
    )
    sentence_ab = platt(sent_x, sent_y)
    run_file = args.work / "training.json"
    if args.weights:
        metrics.update(json.loads(run_file.read_text("utf-8")))
    else:
        trained = {
            "train_examples_per_epoch": len(epochs[0]),
            "epochs": args.epochs,
            "hard_negatives": args.hard,
            "mined_from_top": args.mined,
            "batch": args.batch,
            "lr": args.lr,
            "train_seconds": round(train_seconds),
            "threads": args.threads,
            "device": device,
            "precision": args.precision,
            "attention_dropout": args.attention_dropout,
            "seed": args.seed,
            "train_articles": len(train_titles - extra_titles),
            "extra_articles": len(extra_titles),
            "validation_articles": sorted(val_titles),
            "extra_validation_articles": len(extra_val),
            "extra_validation_share": args.extra_validation_share,
            "extra_training_data": [path.name for path in args.extra],
        }
        run_file.write_text(json.dumps(trained, indent=2), "utf-8")
        metrics.update(trained)
    ship(
        model,
        folder,
        tokenizer,
        val,
        preds,
        args,
        {"answer": answer_ab, "sentence": sentence_ab},
        metrics,
    )


if __name__ == "__main__":
    main()
