"""Time-aware questions: "this week" / "latest" are read against ``as_of`` and prefer articles of
that window; without time words nothing changes."""
from __future__ import annotations

import json

import pytest

from rag.timeframe import time_window


@pytest.mark.parametrize("question, as_of, since, until", [
    ("Which airport was shut down this week?", "2023-01-05", "2022-12-26", "2023-01-06"),
    ("Who won the game yesterday?", "2023-01-05", "2023-01-02", "2023-01-06"),
    ("What is the latest on the strike?", "2023-03-31", "2023-02-14", "2023-04-01"),
    ("How much has Bitcoin gained so far this year?", "2023-10-27", "2023-01-01", "2023-10-27"),
    ("What happened two weeks ago in Ohio?", "2023-02-17", "2023-01-27", "2023-02-18"),
    ("What did the mayor say today?", "2024-03-10", "2024-03-08", "2024-03-11"),
])
def test_time_words_give_a_window_ending_at_as_of(question, as_of, since, until):
    w = time_window(question, as_of)
    assert (w.since, w.until) == (since, until)


@pytest.mark.parametrize("question", [
    "Who is the mayor of Kharkiv?",
    "Which New York-area airport closed?",  # "New" is a name here, not a time word
    "How many people were killed in Belgorod?",
])
def test_questions_without_time_words_have_no_window(question):
    assert time_window(question, "2023-01-05") is None


def _story(year: int, city: str, day: str) -> dict:
    # the same story in two years: only the date and the city differ
    return {"title": f"Storm closes airport in {city}", "published_at": f"{year}/{day}",
            "text": f"A winter storm shut down the main airport in {city} this week, stranding thousands of "
                    f"travellers. Officials in {city} said flights would resume once the runways were cleared. "
                    f"The storm also cut power to homes across the region."}


def test_this_week_picks_the_story_of_the_as_of_week(tmp_path, make_engine):
    news = tmp_path / "news"
    news.mkdir()
    (news / "a.json").write_text(json.dumps(_story(2021, "Denver", "01/03")))
    (news / "b.json").write_text(json.dumps(_story(2023, "Buffalo", "01/03")))
    for i in range(6):  # unrelated articles, so the two stories are not the whole corpus
        (news / f"other{i}.json").write_text(json.dumps({
            "title": f"Market report {i}", "published_at": "2022/06/0{}".format(i + 1),
            "text": f"Shares rose {i} percent on Tuesday as investors weighed the latest inflation figures. "
                    "Analysts expect the central bank to hold rates steady."}))
    eng = make_engine()
    eng.ingest([news])
    q = "Which city's airport was shut down by a storm this week?"
    for as_of, city, year in (("2023-01-05", "Buffalo", "2023"), ("2021-01-05", "Denver", "2021")):
        hits = eng.retrieve(q, 3, as_of=as_of)
        assert hits[0].date.startswith(year), [(h.title, h.date) for h in hits]
        ans = eng.query(q, as_of=as_of)
        assert not ans.refused and city in ans.text, ans.text
        assert ans.citations[0].date.startswith(year)


def test_without_time_words_as_of_changes_nothing(tmp_path, make_engine):
    news = tmp_path / "news"
    news.mkdir()
    (news / "a.json").write_text(json.dumps(_story(2021, "Denver", "01/03")))
    (news / "b.json").write_text(json.dumps(_story(2023, "Buffalo", "01/03")))
    eng = make_engine()
    eng.ingest([news])
    q = "Which city's airport was shut down by a storm?"
    a = [(h.chunk_id, h.score) for h in eng.retrieve(q, 2, as_of="2021-01-05")]
    b = [(h.chunk_id, h.score) for h in eng.retrieve(q, 2, as_of="2023-01-05")]
    assert a == b == [(h.chunk_id, h.score) for h in eng.retrieve(q, 2)]
