"""`rag.as_langchain_retriever`: verbatim quotes as LangChain documents, inside an LCEL chain."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

import rag
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from tests.conftest import fresh_schema


def quotes(docs: list[Document]) -> str:
    return "\n".join(
        f"[{d.metadata['source']}:{d.metadata['start']}] {d.page_content}" for d in docs
    )


@pytest.fixture(params=["faiss", "pgvector"])
def retriever(request: pytest.FixtureRequest, settings: Settings) -> BaseRetriever:
    options = {}
    if request.param == "pgvector":
        options = {"pg_url": request.getfixturevalue("pg_url"), "pg_schema": fresh_schema()}
    return rag.as_langchain_retriever(
        settings.seeds_dir,
        settings.index_dir,
        settings=settings,
        embedder=HashingEmbedder(),
        **options,
    )


def test_documents_are_verbatim_quotes(retriever: BaseRetriever, settings: Settings) -> None:
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("What do engines burn?")
    assert docs
    for d in docs:
        raw = (settings.seeds_dir / d.metadata["source"]).read_bytes().decode("utf-8")
        assert raw[d.metadata["start"] : d.metadata["end"]] == d.page_content
        assert set(d.metadata) >= {"source", "start", "end", "score"}
    assert "Engines burn methane and oxygen." in [d.page_content for d in docs]


def test_in_a_minimal_lcel_chain(retriever: BaseRetriever) -> None:
    prompt = ChatPromptTemplate.from_template(
        "Answer only from these quotes:\n{context}\n\nQuestion: {question}"
    )
    chain = (
        {"context": retriever | RunnableLambda(quotes), "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(lambda value: value.to_string())  # stands in for a chat model
    )
    text = chain.invoke("How much sun do tomatoes need?")
    assert "Question: How much sun do tomatoes need?" in text
    assert "[garden/tomatoes.md:" in text and "Tomatoes need six hours of sun a day." in text
    batch = chain.batch(["What do engines burn?", "Where does the Falcon booster land?"])
    assert "methane" in batch[0] and "drone ship" in batch[1]


def test_async_and_abstention(retriever: BaseRetriever) -> None:
    docs = asyncio.run(retriever.ainvoke("What do engines burn?"))
    assert docs and all(isinstance(d, Document) for d in docs)
    assert retriever.invoke("zzz qqq xylophone") == []


def test_pdf_quotes_carry_page_and_page_label(
    index: rag.Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.integrations.langchain import SeedragRetriever

    cites = (
        rag.Citation("a.pdf", 0, 3, "abc", 0.5, page=4, page_label="iv"),
        rag.Citation("b.txt", 0, 3, "abc", 0.4),
    )
    monkeypatch.setattr(index, "answer", lambda q: rag.Answer(q, "t", cites))
    pdf, txt = SeedragRetriever(index=index).invoke("q")
    assert (pdf.metadata["page"], pdf.metadata["page_label"]) == (4, "iv")
    assert "page" not in txt.metadata and "page_label" not in txt.metadata
