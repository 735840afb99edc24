"""Choose the answer path's reader settings on the answer model's validation split.

`Settings.reader_evidence` (how the model's reading and retrieval's evidence make a chunk's
probability of answering, `training.evidence`), `Settings.reader_min_answer` (abstain under
it), `Settings.reader_weight` (the model's share of a quote's score: the smallest whose
hit@1 is within one standard error of the paired difference to the best) and
`Settings.reader_quote_ratio` (a later quote's chunk must reach this share of the first
quote's probability of answering) are chosen here, on the SQuADShifts articles held out of
training, never on a reporting set. Each validation article in turn is left out of the
index: its questions are then foreign (the documents cannot answer them), and the other
articles' questions are the answerable ones (`training.asking`). With ``--foreign``,
questions of another register (the files ``training.train --extra`` trained on, Amazon
reviews say) are foreign too: each is asked of one of those indexes, so that the evidence
weights also learn to refuse questions unlike the validation articles' own. The articles of
those files that training held out (``--extra-validation-share``) are asked the same way as
the validation articles, of indexes of their own register, so that the weights and the
threshold also see answerable questions of that register.

    .venv/bin/python -m training.tune --data ../shared/eval/squadshifts_wiki \
        --foreign ../shared/eval/squadshifts/amazon_reviews_v1.0.json

Writes ``training/work/tuning.json`` and prints the chosen values; the model card and
`Settings` quote them.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.api import Index
from rag.config import MODEL_ALONE, Settings
from rag.embedding.factory import make_embedder
from rag.evaluation.metrics import hit_at_k
from rag.query.reading import believe, drop_padding
from rag.reader.model import load_reader
from rag.types import Citation
from training.asking import EXTRA, Asked, ask, deal, other_register
from training.data import add_split_options, held_out, load, load_squad, merge, split
from training.evidence import fit

log = logging.getLogger("training")

MAX_WRONG_REFUSALS = 0.02  # of answerable validation questions
RATIOS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
CURVE = (0.01, 0.02, 0.03, 0.04, *(t / 20 for t in range(1, 20)))  # thresholds tabled
# A later-quote ratio may cost no validation hit@3 against citing three: with the previous
# model a ratio that cost 0.3 point here went with a 1.3-point fall on XQuAD.
MAX_HIT3_LOSS = 0.0


class CachedReader:
    """``reader`` with each reading kept: the sweeps ask every question of the same chunks
    once per value, and what the model reads does not depend on the settings swept."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._seen: dict[tuple[Any, ...], Any] = {}

    def read(self, question: str, passages: Sequence[tuple[str, Sequence[tuple[int, int]]]]) -> Any:
        key = (question, tuple((text, tuple(spans)) for text, spans in passages))
        if key not in self._seen:
            self._seen[key] = self._reader.read(question, passages)
        return self._seen[key]


def hit_flags(
    answered: list[tuple[Any, ...]], cited: Sequence[Sequence[Citation]], k: int
) -> list[bool]:
    """Per question of ``answered``, whether its citations ``cited`` hit within the first ``k``."""
    return [
        hit_at_k(cites, doc, q.gold, k) for (q, _, doc), cites in zip(answered, cited, strict=True)
    ]


def summary(
    name: str, value: float, answered: list[tuple[Any, ...]], cited: Sequence[Sequence[Citation]]
) -> dict[str, float]:
    """hit@1, hit@3, quotes and characters per answer of the citations ``cited`` for each
    question of ``answered``, with the setting ``name`` at ``value``."""
    n = max(1, len(answered))
    row = {
        name: value,
        "hit_at_1": sum(hit_flags(answered, cited, 1)) / n,
        "hit_at_3": sum(hit_flags(answered, cited, 3)) / n,
        "quotes_per_answer": sum(len(c) for c in cited) / n,
        "chars_per_answer": sum(len(x.quote) for c in cited for x in c) / n,
    }
    log.info("%s", row)
    return row


def cite_each(
    answered: list[tuple[Any, ...]], reader: Any, name: str, values: Sequence[float], **fixed: Any
) -> list[list[tuple[Citation, ...]]]:
    """Per value of the setting ``name``, the citations of each question answered anew."""
    out = []
    for value in values:
        made: dict[Path, Index] = {}
        cited = []
        for q, idx, _ in answered:
            key = idx.settings.seeds_dir
            if key not in made:
                changed = idx.settings.with_(**{name: value, **fixed})
                made[key] = Index(changed, idx.embedder, reader)
            cited.append(made[key].answer(q.text).citations)
        out.append(cited)
    return out


def paired_error(a: Sequence[bool], b: Sequence[bool], groups: Sequence[str]) -> float:
    """The standard error of the mean difference ``a - b`` of two settings' hits on the
    same answers, the answers of one group (a question asked of several indexes) averaged
    first, so that the error is over distinct questions; 0 for fewer than two groups."""
    per: dict[str, list[int]] = {}
    for x, y, g in zip(a, b, groups, strict=True):
        per.setdefault(g, []).append(int(x) - int(y))
    d = np.array([sum(v) / len(v) for v in per.values()], dtype=np.float64)
    return float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0


def behind_best(
    values: Sequence[float], flags: Sequence[Sequence[bool]], groups: Sequence[str]
) -> list[tuple[float, float]]:
    """Per value, how far its hit rate (``flags``, per answer) falls short of the best
    value's (the smallest value on a tie), and the `paired_error` of the two."""
    rates = [sum(f) / max(1, len(f)) for f in flags]
    best = max(range(len(values)), key=lambda i: (rates[i], -values[i]))
    return [
        (rates[best] - r, paired_error(flags[best], f, groups))
        for f, r in zip(flags, rates, strict=True)
    ]


def least_within_error(values: Sequence[float], margins: Sequence[tuple[float, float]]) -> float:
    """The smallest of ``values`` whose shortfall from the best is within one paired
    standard error (``margins``, `behind_best`): a larger value must win by more than the
    questions can tell apart."""
    return min(v for v, (gap, error) in zip(values, margins, strict=True) if gap <= error + 1e-12)


def ratio_sweep(
    answered: list[tuple[Any, ...]],
    every: Sequence[Sequence[Citation]],
    ratios: Sequence[float],
) -> list[dict[str, float]]:
    """`summary` of each `Settings.reader_quote_ratio`, applied to ``every``: each
    question's citations answered with every quote kept (ratio 0).

    The ratio only decides which of the chosen quotes are cited
    (`rag.query.reading.drop_padding`), so one answer per question serves every ratio:
    exactly, but for the answers that read further (`Settings.reader_widen`), where the
    answer path at a ratio may give a place the sweep empties to a quote it left out.
    """
    return [
        summary(
            "reader_quote_ratio",
            ratio,
            answered,
            [drop_padding(cites, ratio) for cites in every],
        )
        for ratio in ratios
    ]


def highest_threshold(own: list[float]) -> float:
    """The highest threshold (in thousandths, from 0.001 to 0.95) that refuses at most
    `MAX_WRONG_REFUSALS` of the answerable questions' confidences ``own``. Thousandths,
    because near the low thresholds the answer path uses, one hundredth moves more than a
    point of the answerable questions."""
    allowed = math.floor(MAX_WRONG_REFUSALS * len(own))
    ranked = sorted(own)
    # Refusing at most `allowed` questions: the threshold may reach the next confidence.
    ceiling = ranked[allowed] if allowed < len(ranked) else 1.0
    steps = [t for t in range(1, 951) if t / 1000 <= ceiling]
    return max(steps, default=1) / 1000


def per_register(confidence: list[float], kinds: list[str]) -> float:
    """`highest_threshold` of each register's answerable questions (the validation
    articles', and the --extra files' held-out ones where asked), the lowest of them: no
    register has more than `MAX_WRONG_REFUSALS` of its questions refused."""
    registers = [kind for kind in ("own", "own" + EXTRA) if kind in kinds]
    return min(highest_threshold(_of(confidence, kinds, kind)) for kind in registers)


def _of(confidence: list[float], kinds: list[str], kind: str) -> list[float]:
    """The confidences of the questions of ``kind``."""
    return [c for c, k in zip(confidence, kinds, strict=True) if k == kind]


def _share(confidence: list[float], kinds: list[str], kind: str, threshold: float) -> float:
    """The share of the questions of ``kind`` whose confidence reaches ``threshold``."""
    picked = _of(confidence, kinds, kind)
    return sum(c >= threshold for c in picked) / max(1, len(picked))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/eval/squadshifts_wiki"))
    p.add_argument("--work", type=Path, default=Path("training/work"))
    p.add_argument(
        "--foreign",
        type=Path,
        action="append",
        default=[],
        help="a SQuAD-format file of another register (training.train --extra's files, in "
        "the same order): each of its answerable questions is asked of one validation index, "
        "which cannot answer it, but for the articles training held out "
        "(--extra-validation-share), which are asked of leave-one-out indexes of their own; "
        "repeatable",
    )
    add_split_options(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    corpus = load(args.data)
    _, val_titles = split(corpus, args.validation_share, args.seed)
    reader = load_reader()
    extras = [load_squad(path, f"extra{i}") for i, path in enumerate(args.foreign)]
    held = held_out(extras, args.extra_validation_share, args.seed)
    asked = Asked()
    embedder = make_embedder(Settings())
    with tempfile.TemporaryDirectory(prefix="rag-tune-") as tmp:
        groups = [{title} for title in sorted(val_titles)]
        others = other_register(extras, held, len(groups), args.seed)
        ask(asked, corpus, groups, reader, embedder, Path(tmp), others=others)
        if held:
            extra_groups = deal(held, len(groups), args.seed)
            ask(asked, merge(*extras), extra_groups, reader, embedder, Path(tmp), suffix=EXTRA)
        features, kinds, answered = asked.features, asked.kinds, asked.answered
        # Rounded as `Settings` quotes them, so that the sweeps below use the defaults' values.
        fitted = fit(np.concatenate(features), np.concatenate(asked.labels))
        weights_of_evidence = tuple(round(w, 4) for w in fitted)
        beliefs = [float(believe(f, weights_of_evidence).max(initial=0.0)) for f in features]
        own = _of(beliefs, kinds, "own")
        threshold = per_register(beliefs, kinds)
        # The sweeps answer as the default path will (`Settings`, with its bridge and wider
        # read): quoting only from chunks that reach the threshold just chosen.
        fixed = {"reader_min_answer": threshold, "reader_evidence": weights_of_evidence}
        cached = CachedReader(reader)
        cited = cite_each(
            answered, cached, "reader_weight", WEIGHTS, reader_quote_ratio=0.0, **fixed
        )
        # The smallest weight (the least reliance on the sentence head) whose hit@1 is
        # within one standard error of the best: both are asked the same questions, so the
        # error is that of their paired difference.
        qids = [q.qid for q, _, _ in answered]
        margins = behind_best(WEIGHTS, [hit_flags(answered, c, 1) for c in cited], qids)
        weight = least_within_error(WEIGHTS, margins)
        weights = [
            {
                **summary("reader_weight", w, answered, c),
                "hit_at_1_behind_best": gap,
                "paired_error": error,
            }
            for w, c, (gap, error) in zip(WEIGHTS, cited, margins, strict=True)
        ]
        distinct = len(set(qids))  # each is asked of several indexes
        # The chosen weight's citations were answered with every later quote kept.
        ratios = ratio_sweep(answered, cited[WEIGHTS.index(weight)], RATIOS)
    alone = [float(believe(f, MODEL_ALONE).max(initial=0.0)) for f in features]
    # What the same rule chooses for the model alone: the baseline benchmarks/quality.py
    # runs beside the default.
    threshold_alone = per_register(alone, kinds)
    curve = [
        {
            "threshold": t,
            "answered_own": _share(beliefs, kinds, "own", t),
            "refused_foreign": 1 - _share(beliefs, kinds, "foreign", t),
            "answered_own_model_alone": _share(alone, kinds, "own", t),
            "refused_foreign_model_alone": 1 - _share(alone, kinds, "foreign", t),
            **(
                {
                    "answered_own_extra": _share(beliefs, kinds, "own" + EXTRA, t),
                    "refused_foreign_extra": 1 - _share(beliefs, kinds, "foreign" + EXTRA, t),
                    "answered_own_extra_model_alone": _share(alone, kinds, "own" + EXTRA, t),
                }
                if held
                else {}
            ),
            **(
                {
                    "refused_other": 1 - _share(beliefs, kinds, "other", t),
                    "refused_other_model_alone": 1 - _share(alone, kinds, "other", t),
                }
                if "other" in kinds
                else {}
            ),
        }
        for t in sorted({*CURVE, threshold})
    ]
    best3 = max(r["hit_at_3"] for r in ratios)
    ratio = max(
        r["reader_quote_ratio"] for r in ratios if r["hit_at_3"] >= best3 - MAX_HIT3_LOSS - 1e-12
    )
    out = {
        "validation_articles": sorted(val_titles),
        "answerable_questions": len(own),
        "foreign_questions": kinds.count("foreign"),
        "other_register_questions": kinds.count("other"),
        "other_register_files": [path.name for path in args.foreign],
        "extra_validation_articles": len(held),
        "extra_answerable_questions": kinds.count("own" + EXTRA),
        "extra_foreign_questions": kinds.count("foreign" + EXTRA),
        "reader_evidence": list(weights_of_evidence),
        "reader_min_answer": threshold,
        "reader_min_answer_model_alone": threshold_alone,
        "abstention_curve": curve,
        "reader_weight": weight,
        "weight_sweep": weights,
        "reader_quote_ratio": ratio,
        "ratio_sweep": ratios,
        "sweep_questions": distinct,
        "sweep_answers": len(answered),
    }
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "tuning.json").write_text(json.dumps(out, indent=2) + "\n", "utf-8")
    chosen = ("reader_evidence", "reader_min_answer", "reader_weight", "reader_quote_ratio")
    print(json.dumps({k: out[k] for k in chosen}))


if __name__ == "__main__":
    main()
