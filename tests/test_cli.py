"""The `rag` command: output shapes and exit codes (fake embedder, in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.api import Index
from rag.cli import main
from rag.embedding.fake import HashingEmbedder
from rag.types import Answer, Citation


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rag.api.make_embedder", lambda settings: HashingEmbedder())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_index_json_report(seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "index", "--seeds", str(seeds), "--index", str(tmp_path / "i"), "--json"
    )
    report = json.loads(out)
    assert code == 0
    assert report["added"] == report["documents"] == 2
    assert report["chunks_total"] == report["chunks_embedded"] > 0
    assert {"updated", "unchanged", "deleted", "seconds"} <= set(report)
    code, out, _ = run(capsys, "index", "--seeds", str(seeds), "--index", str(tmp_path / "i"))
    assert code == 0 and "2 documents" in out and "2 unchanged" in out


def test_ask_json_is_verbatim(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "ask",
        "Where does the Falcon booster land?",
        "--seeds",
        str(seeds),
        "--index",
        str(tmp_path / "i"),
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and set(data) == {"question", "text", "citations"}
    for c in data["citations"]:
        text = (seeds / c["source"]).read_bytes().decode()
        assert text[c["start"] : c["end"]] == c["quote"]
        assert set(c) == {"source", "start", "end", "quote", "score", "page", "page_label"}
        assert c["page"] is None and c["page_label"] is None
    assert "drone ship" in data["citations"][0]["quote"]


def test_ask_text_lists_citations(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "ask",
        "Falcon booster drone ship",
        "--seeds",
        str(seeds),
        "--index",
        str(tmp_path / "i"),
    )
    assert code == 0 and "[1] rockets.txt:" in out


def test_ask_shows_a_pdf_page_label(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cites = (
        Citation("book.pdf", 10, 14, "Pears", 0.5, page=5, page_label="iv"),
        Citation("notes.txt", 0, 5, "Pears", 0.4),
    )
    monkeypatch.setattr(Index, "answer", lambda self, q: Answer(q, "\u201cPears\u201d [1]", cites))
    folders = ("--seeds", str(seeds), "--index", str(tmp_path / "i"))
    code, out, _ = run(capsys, "ask", "Pears?", *folders)
    assert code == 0 and "[1] book.pdf:10-14 p. iv (score 0.500)" in out
    assert "[2] notes.txt:0-5 (score 0.400)" in out
    code, out, _ = run(capsys, "ask", "Pears?", *folders, "--json")
    first, second = json.loads(out)["citations"]
    assert (first["page"], first["page_label"], second["page_label"]) == (5, "iv", None)


def test_runtime_errors_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "ask", "q", "--seeds", str(tmp_path / "none"), "--index", str(tmp_path / "i")
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("rag: error:") and "--seeds" in err
    code, _, err = run(capsys, "ask", " ", "--seeds", str(tmp_path))
    assert code == 1 and "empty" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["ask"])
    assert exc.value.code == 2


def test_each_subcommand_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("index", "ask", "eval", "serve", "mcp"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_eval_prints_a_table_or_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.txt").write_text("The Falcon booster lands on a drone ship.")
    questions = tmp_path / "seed_questions.jsonl"
    rows = [
        {
            "question": "Where does the Falcon booster land?",
            "answerable": True,
            "doc": "a.txt",
            "answer_keys": ["drone ship"],
        },
        {"question": "zzz qqq", "answerable": False},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows))
    code, out, _ = run(capsys, "eval", str(questions), "--seeds", str(tmp_path / "seeds"), "--json")
    report = json.loads(out)
    assert code == 0 and report["verbatim_rate"] == 1.0 and report["questions"] == 2
    code, out, _ = run(capsys, "eval", str(questions), "--seeds", str(tmp_path / "seeds"))
    assert code == 0 and "| hit@3 |" in out
    code, _, err = run(capsys, "eval", str(tmp_path / "missing"))
    assert code == 1 and err.startswith("rag: error:")


def test_bm25_does_not_log_debug_lines(index: Index) -> None:
    """bm25s sets its logger to DEBUG on import; every `rag ask` printed a line of it."""
    import logging

    index.answer("What do engines burn?")  # builds the BM25 index, importing bm25s
    assert logging.getLogger("bm25s").getEffectiveLevel() >= logging.WARNING


def test_model_pass_is_chosen_on_index_ask_and_serve(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folders = ("--seeds", str(seeds), "--index", str(tmp_path / "i"))
    code, out, _ = run(capsys, "index", *folders, "--model-pass", "both", "--json")
    assert code == 0 and json.loads(out)["full_rebuild_reason"] is None
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert manifest["model_pass"] == "both"
    code, out, _ = run(capsys, "ask", "Why did Musk leave?", *folders, "--model-pass", "both")
    assert code == 0
    after = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert after["files"] == manifest["files"]  # the same generation: nothing rebuilt
    code, _, _ = run(capsys, "ask", "Why did Musk leave?", *folders)  # left open: as built
    assert code == 0
    assert json.loads((tmp_path / "i" / "manifest.json").read_text())["files"] == manifest["files"]
    code, _, _ = run(capsys, "ask", "Why did Musk leave?", *folders, "--model-pass", "sentences")
    assert json.loads((tmp_path / "i" / "manifest.json").read_text())["model_pass"] == "sentences"
    with pytest.raises(SystemExit):
        main(["serve", *folders, "--model-pass", "words"])


def test_links_outside_the_seeds_are_indexed_only_with_the_flag(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "private.txt"
    outside.write_text("The vault code is kept in the private file.\n")
    (seeds / "link.txt").symlink_to(outside)
    where = ["--seeds", str(seeds), "--index", str(tmp_path / "i"), "--json"]
    code, out, _ = run(capsys, "index", *where)
    assert code == 0 and "link.txt" in json.loads(out)["skipped"]
    code, out, _ = run(capsys, "index", *where, "--follow-external-links")
    assert code == 0 and json.loads(out)["added"] == 1 and json.loads(out)["skipped"] == []


def test_a_database_url_is_for_the_pgvector_store_only(
    seeds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = ("--seeds", str(seeds), "--index", str(tmp_path / "i"))
    monkeypatch.setenv("SEEDRAG_PG_URL", "postgresql://app@db.invalid/rag")
    code, _, _ = run(capsys, "index", *folders)  # the environment's URL: not for the folder
    assert code == 0
    code, _, err = run(capsys, "index", *folders, "--pg-url", "postgresql://app@db.invalid/rag")
    assert code == 1 and "--store pgvector" in err and "Traceback" not in err


def test_bidi_controls_in_names_and_quotes_are_isolated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "notes\u202etxt.md").write_text("The comet \u202ereturns every 76 years.\n")
    folders = ("--seeds", str(seeds), "--index", str(tmp_path / "i"))
    code, out, _ = run(capsys, "ask", "When does the comet return?", *folders)
    assert code == 0
    assert "\u2068The comet \u202ereturns every 76 years.\u2069" in out  # the quote, isolated
    assert "[1] notes\\u202etxt.md:" in out  # the name, escaped
