"""Publication dates as news records and pages give them: every common format is read to the exact
ISO day, through parse_date and through every reader; what is not a date stays None (never a guess).
The ingest report counts undated articles, and a date filter's refusal says how many it left out."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from rag.dates import date_from_url, parse_date
from rag.readers import read_bytes

DAY = "2026-03-24"
EPOCH = 1774346400  # 2026-03-24 10:00 UTC

FORMATS = [
    "2026-03-24",
    "2026-03-24T10:00:00",
    "2026-03-24T10:00:00Z",
    "2026-03-24T10:00:00.123+02:00",
    "2026-03-24T23:30:00-05:00",  # the day where it was published, not UTC's 25th
    "2026-03-24T00:30:00+09:00",  # nor UTC's 23rd
    "2026-03-24 10:00",
    "20260324",
    "2026/03/24",
    "24.03.2026",
    "March 24, 2026",
    "March 24th, 2026",
    "24 March 2026",
    "24 Mar 2026 10:00 GMT",
    "24 Mar 2026 10:00 EST",  # a zone name dateutil does not know: no warning, same day
    "Tue, 24 Mar 2026 10:00:00 +0000",  # RFC 2822, as in RSS
    "Tue, 24 Mar 2026 10:00:00 GMT",
    "  2026-03-24  ",
    EPOCH,
    str(EPOCH),
    EPOCH * 1000,
    str(EPOCH * 1000),
    EPOCH + 0.5,
    dt.date(2026, 3, 24),
    dt.datetime(2026, 3, 24, 23, 59),
]

NOT_DATES = [
    "yesterday", "today", "12", "0", "2026", "2026-03", "March 2026", "24 March", "Tuesday", "10:00",
    "hello", "2026-02-30", "2026-13-01", "2026-03-24T25:00", "Published on March 24, 2026 in Kyiv",
    "", "   ", True, False, None, 0, 12, -5, 10**400, float("nan"), float("inf"), [], {},
    "x" * 200,
]


@pytest.mark.parametrize("value", FORMATS, ids=repr)
def test_parse_date_reads_every_common_format(value):
    assert parse_date(value) == DAY


def test_day_first_only_for_dotted_dates():
    assert parse_date("03.04.2026") == "2026-04-03"  # European: 3 April
    assert parse_date("2026/04/03") == "2026-04-03"


@pytest.mark.parametrize("value", NOT_DATES, ids=lambda v: repr(v)[:30])
def test_what_is_not_a_date_is_none(value):
    assert parse_date(value) is None


@pytest.mark.parametrize("url,want", [
    ("https://news.example.com/2026/03/24/council-budget", DAY),
    ("https://news.example.com/2026/3/24/council-budget", DAY),
    ("https://news.example.com/world/2026-03-24-council-budget.html", DAY),
    ("https://news.example.com/2026/03/24", DAY),
    ("https://news.example.com/2026/02/30/no-such-day", None),
    ("https://news.example.com/2026/03/council-budget", None),  # no day
    ("https://news.example.com/id/12026/03/24/", None),
    ("https://news.example.com/story", None),
    (None, None),
    ("", None),
])
def test_date_from_url(url, want):
    assert date_from_url(url) == want


# --- through the readers ----------------------------------------------------------------------

BODY = "The city council of Springfield approved a new budget for public transport after a long debate."


def one(data: str, ext: str, source: str = "feed"):
    (a,) = read_bytes(data.encode("utf-8"), ext=ext, source=source + ext)
    return a


@pytest.mark.parametrize("value", FORMATS[:-2], ids=repr)  # JSON has no date objects
def test_json_record_date_in_every_format(value):
    assert one(json.dumps({"title": "Budget", "body": BODY, "published_at": value}), ".json").date == DAY


@pytest.mark.parametrize("key", ["published_at", "publishedAt", "date", "published", "pubDate", "datePublished"])
def test_json_record_date_keys(key):
    assert one(json.dumps({"text": BODY, key: "March 24, 2026"}), ".json").date == DAY


@pytest.mark.parametrize("value", ["yesterday", "12", "March 2026", "2026-02-30", True, None, ""])
def test_json_record_without_a_real_date_is_undated(value):
    assert one(json.dumps({"body": BODY, "date": value}), ".json").date is None


def test_json_record_skips_a_bad_date_key_for_a_good_one():
    rec = {"body": BODY, "published_at": "unknown", "date": "24.03.2026"}
    assert one(json.dumps(rec), ".json").date == DAY


def test_json_record_falls_back_to_the_url_date():
    rec = {"body": BODY, "url": "https://news.example.com/2026/03/24/council-budget"}
    assert one(json.dumps(rec), ".json").date == DAY
    rec["date"] = "2026-03-20"  # the record's own date wins over the URL's
    assert one(json.dumps(rec), ".json").date == "2026-03-20"
    rec["date"] = "soon"  # a non-date is no date: the URL's is used
    assert one(json.dumps(rec), ".json").date == DAY


def test_jsonl_dates_per_line():
    lines = [{"body": BODY, "published_at": EPOCH * 1000},
             {"body": BODY, "pubDate": "Tue, 24 Mar 2026 10:00:00 GMT"},
             {"body": BODY, "url": "https://news.example.com/2026/03/25/follow-up"},
             {"body": BODY}]
    arts = read_bytes("\n".join(json.dumps(r) for r in lines).encode(), ext=".jsonl", source="feed.jsonl")
    assert [a.date for a in arts] == [DAY, DAY, "2026-03-25", None]


def page(head: str = "", before_body: str = "") -> str:
    paragraphs = "".join(f"<p>{BODY} Paragraph {i} adds a detail about the tram lines.</p>" for i in range(4))
    return (f"<!doctype html><html><head><title>Budget approved</title>{head}</head><body><article>"
            f"<h1>Budget approved</h1>{before_body}{paragraphs}</article></body></html>")


@pytest.mark.parametrize("head,want", [
    ('<meta property="article:published_time" content="2026-03-24T10:00:00Z">', DAY),
    ('<meta property="article:published_time" content="2026-03-24T23:30:00-05:00">', DAY),
    ('<meta name="pubdate" content="Tue, 24 Mar 2026 10:00:00 GMT">', DAY),
    ('<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", '
     '"headline": "Budget approved", "datePublished": "2026-03-24T10:00:00+01:00"}</script>', DAY),
    # published and modified: the publication day
    ('<meta property="article:published_time" content="2026-03-24T10:00:00Z">'
     '<meta property="article:modified_time" content="2026-03-27T10:00:00Z">', DAY),
    ('<link rel="canonical" href="https://news.example.com/2026/03/24/budget-approved">', DAY),
    ("", None),
], ids=["meta", "meta-offset", "meta-rfc2822", "json-ld", "published-not-modified", "url", "none"])
def test_html_date_from_the_pages_metadata(head, want):
    assert one(page(head), ".html", "page").date == want


@pytest.mark.parametrize("text", [
    "<footer>© 2021 Example News</footer>",  # a year is not a date
    "<p>The previous budget was passed on 3 March 2025 by the council.</p>",  # nor a date in the story
    "<p>See https://news.example.com/2024/01/02/older-story for the background.</p>",
])
def test_html_without_metadata_is_not_dated_by_a_guess(text):
    assert one(page(before_body=text), ".html", "page").date is None


@pytest.mark.parametrize("line", [
    "date 2026-03-24", "date March 24, 2026", "date 24 Mar 2026 10:00 GMT", "date 24.03.2026",
    "date 2026/03/24", "date 2026-03-24T10:00:00Z", "  date  Tue, 24 Mar 2026 10:00:00 +0000  ",
])
@pytest.mark.parametrize("ext", [".txt", ".md"])
def test_text_date_line_in_any_format(line, ext):
    a = one(f"{line}\n# Budget approved\n\n{BODY}", ext)
    assert (a.date, a.title, a.text) == (DAY, "Budget approved", f"# Budget approved\n\n{BODY}")


@pytest.mark.parametrize("raw,date,text", [
    # the seeds' shape: the text goes on after an ISO date on the same line
    (f"date 2026-03-24 {BODY}", DAY, BODY),
    # another format is a date only on a line of its own: words on its line are kept as text
    (f"date March 24, 2026 {BODY}", None, f"date March 24, 2026 {BODY}"),
    (f"date palms grow here.\n{BODY}", None, f"date palms grow here.\n{BODY}"),
    (f"date 12\n{BODY}", None, f"date 12\n{BODY}"),
    (f"date March 2026\n{BODY}", None, f"date March 2026\n{BODY}"),
    (f"date 2026-02-30 {BODY}", None, BODY),  # as before: an impossible ISO day is dropped, undated
])
def test_text_date_line_never_eats_words(raw, date, text):
    a = one(raw, ".txt")
    assert (a.date, a.text) == (date, text)


# --- the index: undated articles are counted and reported -------------------------------------


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "news"
    d.mkdir()
    (d / "dated1.txt").write_text(f"date 2024-02-01 The harbour reopened after the storm. {BODY}", encoding="utf-8")
    (d / "dated2.json").write_text(json.dumps({"title": "Bridge", "body": "The bridge closed for repairs on Monday.",
                                               "published_at": "Feb 2, 2024"}), encoding="utf-8")
    (d / "undated1.txt").write_text("The school strike entered its third day.", encoding="utf-8")
    (d / "undated2.json").write_text(json.dumps({"body": "The ferry timetable changes in spring.",
                                                 "source": "Harbour Gazette", "url": "https://gazette.example/ferry"}),
                                     encoding="utf-8")
    return d


@pytest.fixture()
def engine(make_engine):
    from rag.embedding import HashingEmbedder

    return make_engine(embed_model="hashing-256", embedder=HashingEmbedder())


def test_ingest_report_counts_undated_articles(engine, folder):
    dry = engine.ingest([folder], dry_run=True)
    assert dry.undated == 0 and "no date" not in dry.summary()  # nothing written, nothing counted
    r = engine.ingest([folder])
    assert r.undated == 2 and engine.manifest.undated_count() == 2
    assert r.summary().endswith("; 2 articles have no date")
    (folder / "undated1.txt").unlink()
    r = engine.ingest([folder])  # counts the whole index, not only this run's changes
    assert r.undated == 1 and r.summary().endswith("; 1 article has no date")
    (folder / "undated2.json").unlink()
    r = engine.ingest([folder])
    assert r.undated == 0 and "no date" not in r.summary()


def test_undated_count_by_source(engine, folder):
    engine.ingest([folder])
    assert engine.manifest.undated_count("gazette") == 1
    assert engine.manifest.undated_count("nowhere") == 0


NO_MATCH = "The articles don't say. No article matched."


@pytest.mark.parametrize("filters,tail", [
    (dict(since="2030-01-01"), " 2 undated articles were left out by the date filter."),
    (dict(until="2000-01-01"), " 2 undated articles were left out by the date filter."),
    (dict(since="2030-01-01", source="gazette"), " 1 undated article was left out by the date filter."),
    (dict(source="no-such-source"), ""),  # no date filter: nothing was left out for want of a date
])
def test_date_filter_refusal_says_how_many_undated_articles_it_left_out(engine, folder, filters, tail):
    engine.ingest([folder])
    ans = engine.query("When does the ferry timetable change?", **filters)
    assert ans.refused and ans.text == NO_MATCH + tail


def test_no_undated_note_when_every_article_is_dated(engine, folder):
    (folder / "undated1.txt").unlink()
    (folder / "undated2.json").unlink()
    engine.ingest([folder])
    ans = engine.query("When does the ferry timetable change?", since="2030-01-01")
    assert ans.refused and ans.text == NO_MATCH


def test_no_undated_note_on_an_answer(engine, folder):
    engine.ingest([folder])
    ans = engine.query("When did the bridge close for repairs?", since="2024-01-01")
    assert not ans.refused and "undated" not in ans.text
    assert ans.citations and all(c.date for c in ans.citations)


def test_llm_refusal_under_a_date_filter_says_it_too(make_engine, folder):
    """The LLM path refuses before it calls the server when the filter leaves no article."""
    from rag.embedding import HashingEmbedder

    eng = make_engine(embed_model="hashing-256", embedder=HashingEmbedder(), llm="openai",
                      llm_base_url="http://127.0.0.1:9/v1", llm_api_key="test")
    eng.ingest([folder])
    ans = eng.query("When does the ferry timetable change?", since="2030-01-01")
    assert ans.refused and ans.text.endswith(" 2 undated articles were left out by the date filter.")
