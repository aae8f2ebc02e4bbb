"""Open questions through an LLM (the local OpenAI-compatible server in tests/openai_server.py):
the overview prompt and a larger reply budget go out, a scripted multi-sentence reply comes back
with exact citations, and disagreements between the cited sources are recorded."""
from __future__ import annotations

import re

import pytest
from openai_server import FakeOpenAI, openai_server  # noqa: F401 - the fixture is used by name

import rag
from rag.llm import OVERVIEW_PROMPT, SYSTEM_PROMPT

from test_overview import QUAKE_A, QUAKE_B

MODEL = "test-model"


def llm_settings(index_dir, server: FakeOpenAI, **kw) -> rag.Settings:
    return rag.Settings(index_dir=index_dir, seeds_dir=None, llm="openai", llm_base_url=server.url + "/v1",
                        llm_api_key="test", llm_model=MODEL, llm_timeout=3, progress=False, **kw)


@pytest.fixture()
def engine(seeds_index, embedder, openai_server):
    eng = rag.Engine(settings=llm_settings(seeds_index.index_dir, openai_server), embedder=embedder)
    yield eng
    eng.close()


def source_of(hits, needle: str) -> int:
    return next(i for i, h in enumerate(hits, 1) if needle in h.text)


def assert_verified(engine, ans) -> None:
    assert ans.citations and [c.n for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    assert {int(n) for n in re.findall(r"\[(\d+)\]", ans.text)} == {c.n for c in ans.citations}
    for c in ans.citations:
        art = engine.article(c.doc_id)
        assert art.text[c.start:c.end] == c.snippet and (c.title, c.date) == (art.title, art.date)


def test_open_question_gets_the_overview_prompt_and_a_cited_multi_sentence_answer(engine, openai_server):
    q = "What happened in Belgorod?"
    hits = engine.retrieve(q)
    a, b = source_of(hits, "22 lives"), source_of(hits, "at least one injury")
    openai_server.enqueue(
        f"On 1 January missiles and rockets struck Belgorod, killing at least 22 people [{a}]. "
        f"Nearly 110 people were injured [{a}]. "
        f"In March, Ukrainian attacks damaged homes in villages of the region and injured at least one person [{b}].")

    ans = engine.query(q)

    assert ans.backend == f"openai:{MODEL}" and ans.fallback_reason is None and not ans.refused
    assert ans.kind == "overview"
    body = openai_server.requests[-1]
    assert body["messages"][0]["content"] == OVERVIEW_PROMPT and body["max_tokens"] == 512
    assert "Reports differ" in OVERVIEW_PROMPT and "2 to 6 sentences" in OVERVIEW_PROMPT
    assert_verified(engine, ans)
    assert ans.text.count("[1]") == 2 and "[2]" in ans.text
    assert "22 lives" in ans.citations[0].snippet and "one injury" in ans.citations[1].snippet
    assert ans.conflicts == []  # January and March are two events, not two tolls of one


def test_factoid_question_keeps_the_short_prompt_and_budget(engine, openai_server):
    q = "How many people were killed in the missile attack on Belgorod?"
    hits = engine.retrieve(q)
    openai_server.enqueue(f"At least 22 people were killed [{source_of(hits, '22 lives')}].")
    ans = engine.query(q)
    body = openai_server.requests[-1]
    assert body["messages"][0]["content"] == SYSTEM_PROMPT and body["max_tokens"] == 256
    assert ans.kind == "factoid" and not ans.refused
    assert_verified(engine, ans)


def test_reply_budget_comes_from_settings(seeds_index, embedder, openai_server):
    s = rag.Settings.from_env({"RAG_LLM_MAX_TOKENS": "1000"}, index_dir=seeds_index.index_dir, seeds_dir=None,
                              llm="openai", llm_base_url=openai_server.url + "/v1", llm_api_key="test",
                              llm_model=MODEL, llm_timeout=3, progress=False)
    assert s.llm_max_tokens == 1000
    eng = rag.Engine(settings=s, embedder=embedder)
    openai_server.enqueue("The articles don't say.")
    openai_server.enqueue("The articles don't say.")
    eng.query("Summarize the attack on Pokrovsk.")
    eng.query("Who is the mayor of Kharkiv?")
    assert [r["max_tokens"] for r in openai_server.requests] == [1000, 500]
    eng.close()


def test_disagreement_stated_by_the_model_is_recorded_with_both_citations(tmp_path, embedder, openai_server):
    news = tmp_path / "news"
    news.mkdir()
    (news / "quake_a.txt").write_text(QUAKE_A, encoding="utf-8")
    (news / "quake_b.txt").write_text(QUAKE_B, encoding="utf-8")
    offline = rag.Engine(settings=rag.Settings(index_dir=tmp_path / "index", seeds_dir=None, progress=False,
                                               llm="extractive"), embedder=embedder)
    offline.ingest([news], progress=False)
    offline.close()
    eng = rag.Engine(settings=llm_settings(tmp_path / "index", openai_server), embedder=embedder)
    q = "What happened in Melnik?"
    hits = eng.retrieve(q)
    a, b = source_of(hits, "killing 40 people"), source_of(hits, "at least 52")
    openai_server.enqueue(f"An earthquake struck Melnik on Tuesday [{a}]. "
                          f"Reports differ: officials said it killed 40 people [{a}]; "
                          f"the Red Cross counted at least 52 dead [{b}].")
    ans = eng.query(q)
    assert ans.kind == "overview" and not ans.refused
    assert_verified(eng, ans)
    (conflict,) = ans.conflicts
    assert conflict.quantity == "killed" and conflict.subject == "Melnik"
    assert sorted(cl.value for cl in conflict.claims) == ["40", "at least 52"]
    assert {cl.n for cl in conflict.claims} == {1, 2}
    eng.close()


def test_llm_fault_on_an_open_question_falls_back_to_the_offline_overview(engine, openai_server):
    openai_server.enqueue_fault(500)
    ans = engine.query("What happened in Belgorod?")
    assert ans.fallback_reason and ans.backend == "extractive" and ans.kind == "overview"
    assert "22" in ans.text and len(ans.citations) >= 2
