"""After any sequence of add / edit / delete / rename, every citation checks out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.api import Index
from rag.config import Settings
from rag.embedding.fake import HashingEmbedder
from tests.conftest import fresh_schema

NAMES = st.sampled_from(["a.txt", "b.md", "sub/c.txt", "sub/deeper/d.txt"])
TEXTS = st.one_of(
    st.lists(
        st.sampled_from(
            [
                "Launch fuel valve.",
                "The launch slipped a day.",
                "Fuel “curly” café 🚀.",
                "Same line.",
                "Same line.",
                "\r\n",
                "",
            ]
        ),
        min_size=1,
        max_size=8,
    ).map(" ".join),
    st.text(max_size=300),
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), NAMES, TEXTS),
        st.tuples(st.just("delete"), NAMES, st.just("")),
        st.tuples(st.just("rename"), NAMES, NAMES),
    ),
    min_size=1,
    max_size=8,
)


def apply(seeds: Path, op: tuple[str, str, str]) -> None:
    kind, name, arg = op
    path = seeds / name
    if kind == "write":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(arg.encode("utf-8", "surrogatepass"))
    elif kind == "delete":
        path.unlink(missing_ok=True)
    elif path.exists():
        target = seeds / arg
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)


@pytest.mark.parametrize("store", ["faiss", "pgvector"])
@given(ops=OPS)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_citations_stay_verbatim_through_any_change(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    store: str,
    ops: list[tuple[str, str, str]],
) -> None:
    root = tmp_path_factory.mktemp("ops")
    seeds = root / "seeds"
    seeds.mkdir()
    (seeds / "anchor.txt").write_text("Anchor text about the launch and its fuel.")
    options = (
        {"store": store, "pg_url": request.getfixturevalue("pg_url"), "pg_schema": fresh_schema()}
        if store == "pgvector"
        else {}
    )
    idx = Index(
        Settings(seeds_dir=seeds, index_dir=root / "index", min_score=-1.0, **options),
        HashingEmbedder(),
    )
    idx.current()
    for op in ops:
        apply(seeds, op)
        result = idx.answer("launch fuel")
        for c in result.citations:
            raw = (seeds / c.source).read_bytes().decode("utf-8")
            assert raw[c.start : c.end] == c.quote
        stored = idx.current()
        indexed = set(stored.sources)
        on_disk = {p.relative_to(seeds).as_posix() for p in seeds.rglob("*") if p.is_file()}
        assert indexed <= on_disk
        assert {c.source for c in stored.chunks} <= indexed
        assert len({c.id for c in stored.chunks}) == len(stored.chunks)  # never a duplicate
