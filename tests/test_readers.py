"""Readers on files the tests write: each format gives the text, title, date and news metadata a
user sees in citations."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import SkipFile
from rag.readers import iter_files, read_file

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def only(articles):
    assert len(articles) == 1
    return articles[0]


# --- text / markdown -------------------------------------------------------------------------


def test_txt_date_prefix_gives_date_and_is_not_text(tmp_path):
    p = write(tmp_path / "a.txt", " date 2024-01-01 The mayor of Kharkiv was re-elected. Turnout was high.\n\n"
                                  "A second paragraph.\n")
    a = only(read_file(p))
    assert a.date == "2024-01-01"
    assert a.text == "The mayor of Kharkiv was re-elected. Turnout was high.\n\nA second paragraph."
    assert "date" not in a.text
    assert a.title == "The mayor of Kharkiv was re-elected."
    assert a.source == str(p)


def test_txt_bold_title_first_line(tmp_path):
    p = write(tmp_path / "b.txt", "**Kharkiv Votes Again**\n\nThe mayor was re-elected on Sunday. More later.\n")
    a = only(read_file(p))
    assert a.title == "Kharkiv Votes Again"
    assert a.date is None
    assert a.text.startswith("**Kharkiv Votes Again**")
    assert a.text.endswith("More later.")


@pytest.mark.parametrize("front, title, date, author, url", [
    ('title: "Flood hits Valencia"\ndate: 2024-10-30\nauthor: Ana Garcia', "Flood hits Valencia", "2024-10-30",
     "Ana Garcia", None),
    ("Title: Flood hits Valencia\npublishDate: 2024-10-30T08:00:00+01:00\ntags: [spain, floods]\n"
     "link: https://example.org/floods", "Flood hits Valencia", "2024-10-30", None, "https://example.org/floods"),
    ("layout: post\ndraft: false", "Floods in Valencia", None, None, None),  # no title: the # heading
])
def test_markdown_front_matter_gives_the_news_fields_and_is_not_text(tmp_path, front, title, date, author, url):
    body = "# Floods in Valencia\n\nFlash floods killed at least 95 people on Tuesday."
    a = only(read_file(write(tmp_path / "post.md", f"---\n{front}\n---\n{body}\n")))
    assert (a.title, a.date, a.author, a.url) == (title, date, author, url)
    assert a.text == body


@pytest.mark.parametrize("text", [
    "---\n\nA rule, then prose: it goes on.\n\n---\nMore prose.",  # prose, not field names
    "---\ntitle: [unclosed\n---\nBody text.",  # broken YAML
])
def test_text_between_rules_that_is_no_front_matter_is_kept(tmp_path, text):
    a = only(read_file(write(tmp_path / "note.md", text)))
    assert a.text == text
    assert a.title != "---"


@pytest.mark.parametrize("head, title, date, author, url", [
    ("Title: Flood hits Valencia\nDate: March 24, 2026\nAuthor: Ana Garcia", "Flood hits Valencia", "2026-03-24",
     "Ana Garcia", None),
    ("Headline: Flood hits Valencia\nPublished At: 2026/03/24 10:00\nURL: https://example.org/floods",
     "Flood hits Valencia", "2026-03-24", None, "https://example.org/floods"),
    ("title: Flood hits Valencia\nlink: https://example.org/2026/03/24/floods", "Flood hits Valencia",
     "2026-03-24", None, "https://example.org/2026/03/24/floods"),  # the date from the URL
    ("Title: Flood hits Valencia\nDate: not yet", "Flood hits Valencia", None, None, None),
])
def test_txt_header_lines_give_the_news_fields_and_are_not_text(tmp_path, head, title, date, author, url):
    body = "Flash floods killed at least 95 people on Tuesday.\n\nRescuers searched through the night."
    a = only(read_file(write(tmp_path / "scraped.txt", f"{head}\n\n{body}\n")))
    assert (a.title, a.date, a.author, a.url) == (title, date, author, url)
    assert a.text == body


@pytest.mark.parametrize("text", [
    "Update: the road to Valencia is open again.\n\nTraffic is slow.",  # no news field name
    "WASHINGTON: The Senate voted on Tuesday.\n\nMore later.",  # a dateline
    "Title: Floods in Valencia\nFlash floods killed at least 95 people.\n\nMore later.",  # prose in the block
    "Title: Floods in Valencia\n",  # a header and no text
])
def test_text_that_only_looks_like_header_lines_is_kept(tmp_path, text):
    a = only(read_file(write(tmp_path / "note.txt", text)))
    assert a.text == text.strip()


def test_md_hash_title_after_date_line(tmp_path):
    p = write(tmp_path / "c.md", "date 2024-03-27\n# Drone strikes on Belgorod\n\nUkraine launched drones. Officials said so.\n")
    a = only(read_file(p))
    assert a.title == "Drone strikes on Belgorod"
    assert a.date == "2024-03-27"
    assert a.text.startswith("# Drone strikes on Belgorod")


def test_title_from_first_sentence_is_capped(tmp_path):
    long_sentence = "Officials " + "said that the talks continued " * 20 + "today."
    p = write(tmp_path / "d.txt", long_sentence + " Another sentence.")
    a = only(read_file(p))
    assert len(a.title) <= 121
    assert a.title.endswith("…")
    assert long_sentence.startswith(a.title[:-1])


def test_invalid_date_is_none_not_garbage(tmp_path):
    p = write(tmp_path / "e.txt", "date 2024-13-45 Something happened in the city. Then more.")
    a = only(read_file(p))
    assert a.date is None
    assert a.text == "Something happened in the city. Then more."


def test_crlf_and_bom_are_normalised(tmp_path):
    p = write(tmp_path / "f.txt", b"\xef\xbb\xbfdate 2024-02-02 First line here.\r\n\r\nSecond paragraph.\r\n")
    a = only(read_file(p))
    assert a.date == "2024-02-02"
    assert a.text == "First line here.\n\nSecond paragraph."


def test_seed_files_read_as_articles():
    by_name = {p.name: only(read_file(p)) for p in sorted(SEEDS.glob("*.txt"))}
    assert len(by_name) == 4
    dated = [a for a in by_name.values() if a.date]
    assert {a.date for a in dated} >= {"2024-01-01", "2024-03-27"}
    for a in by_name.values():
        assert not a.text.lstrip().startswith("date ")
        assert a.title and len(a.title) <= 121
    bold = [a for a in by_name.values() if a.text.startswith("**")]
    assert len(bold) == 1
    assert bold[0].title.startswith("The Never-Ending Conflict Between Russia and Ukraine")


# --- HTML ------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Mayor re-elected in Kharkiv | City News</title>
<meta name="author" content="Jane Doe">
<meta property="og:title" content="Mayor re-elected in Kharkiv">
<meta property="og:site_name" content="City News">
<meta property="article:published_time" content="2024-02-03T08:00:00Z">
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Mayor re-elected in Kharkiv</h1>
<p>The mayor of Kharkiv, Ihor Terekhov, was re-elected on Sunday after a long campaign marked by shelling
and power cuts in the city.</p>
<p>Turnout was high despite the war, officials said, and the count finished late at night.</p>
</article>
<footer>Copyright City News</footer>
</body></html>"""


def test_html_through_trafilatura(tmp_path):
    p = write(tmp_path / "page.html", HTML)
    a = only(read_file(p))
    assert a.title == "Mayor re-elected in Kharkiv"
    assert a.date == "2024-02-03"
    assert a.author == "Jane Doe"
    assert a.site == "City News"
    assert "Ihor Terekhov, was re-elected on Sunday" in a.text
    assert "Turnout was high" in a.text
    assert "Copyright" not in a.text and "Home" not in a.text
    assert a.source == str(p)


def test_html_headings_and_captions_stay_out_of_the_next_sentence(tmp_path):
    """trafilatura gives each block a line; a heading or caption with no full stop glued itself to
    the sentence after it ("Floods\nThe death toll rose…" quoted as one sentence)."""
    from rag.textutil import split_sentences

    toll = "The death toll from the floods in Valencia rose to 158 on Thursday, according to the regional government."
    search = "Soldiers joined the search on Wednesday as roads stayed closed and thousands of homes had no power"
    page = ("<html><head><title>Floods</title></head><body><article><h1>Floods</h1>"
            f"<p>{toll}</p><h2>Rescue</h2><figure><figcaption>A car in the mud</figcaption></figure><p>{search}</p>"
            "<ul><li>Valencia: 155 dead</li></ul><p>Spanish Prime Minister Pedro Sanchez declared three days of "
            "national mourning and promised help for the towns that were hit hardest.</p></article></body></html>")
    a = only(read_file(write(tmp_path / "floods.html", page)))
    sentences = [a.text[s:e] for s, e in split_sentences(a.text)]
    assert toll in sentences and search in sentences
    assert all("\n" not in s for s in sentences)


def test_htm_without_date_has_no_date(tmp_path):
    body = "".join(f"<p>Paragraph {i} says the council met again and discussed the budget for the year.</p>"
                   for i in range(4))
    p = write(tmp_path / "page.htm", f"<html><head><title>Council meets</title></head><body>{body}</body></html>")
    a = only(read_file(p))
    assert a.title == "Council meets"
    assert a.date is None
    assert "Paragraph 3 says the council met again" in a.text


# --- RSS / Atom ------------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Harbour Times</title><link>https://example.org</link>
<item><title>Port reopens after storm</title><link>https://example.org/2024/05/06/port</link>
<pubDate>Mon, 06 May 2024 09:00:00 +0200</pubDate><dc:creator>A. Writer</dc:creator>
<description>The port reopened.</description>
<content:encoded><![CDATA[<p>The port of Valencia reopened on Monday after the storm, the harbour authority said.</p>
<h2>Ships queue</h2><p>Dozens of ships queued outside the harbour overnight</p>]]></content:encoded></item>
<item><title>Council meets</title><link>https://example.org/council</link><pubDate>Tue, 07 May 2024 10:00:00 GMT</pubDate>
<description>The council met on &lt;b&gt;Tuesday&lt;/b&gt; and approved the budget.</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Wire</title>
<entry><title>Quake hits coast</title><link href="https://wire.example/quake"/><updated>2024-03-24T10:00:00Z</updated>
<author><name>B. Reporter</name></author>
<content type="html">&lt;p&gt;A 6.1 quake struck the coast on Sunday, officials said.&lt;/p&gt;</content></entry></feed>"""


def test_rss_feed_gives_one_article_per_item_with_its_full_content(tmp_path):
    port, council = read_file(write(tmp_path / "harbour.rss", RSS))
    assert (port.title, port.date, port.url, port.author, port.site) == (
        "Port reopens after storm", "2024-05-06", "https://example.org/2024/05/06/port", "A. Writer", "Harbour Times")
    # content:encoded, not the one-line description; its heading is a paragraph of its own
    assert port.text == ("The port of Valencia reopened on Monday after the storm, the harbour authority said.\n\n"
                         "Ships queue\n\nDozens of ships queued outside the harbour overnight")
    assert (council.title, council.date, council.text) == (
        "Council meets", "2024-05-07", "The council met on Tuesday and approved the budget.")


def test_feed_items_without_text_are_counted_not_lost(tmp_path):
    feed = RSS.replace("</channel>", "<item><title>Link only</title><link>https://example.org/x</link></item></channel>")
    problems: list[str] = []
    assert len(read_file(write(tmp_path / "harbour.xml", feed), problems=problems)) == 2
    assert problems == ["1 feed item without text skipped; the other items were ingested"]


def test_atom_feed_entry(tmp_path):
    a = only(read_file(write(tmp_path / "wire.xml", ATOM)))
    assert (a.title, a.date, a.author, a.site, a.source) == (
        "Quake hits coast", "2024-03-24", "B. Reporter", "Wire", "https://wire.example/quake")
    assert a.text == "A 6.1 quake struck the coast on Sunday, officials said."


@pytest.mark.parametrize("name, content, why", [
    ("config.xml", '<?xml version="1.0"?><config><a>1</a></config>', "not an RSS or Atom feed"),
    ("empty.rss", '<rss version="2.0"><channel><title>x</title></channel></rss>', "feed has no items"),
    ("broken.xml", "<rss><channel><item><title>unclosed", "feed items have no text"),
])
def test_xml_that_is_no_feed_is_skipped_with_a_reason(tmp_path, name, content, why):
    with pytest.raises(SkipFile, match=why):
        read_file(write(tmp_path / name, content))


# --- JSON / JSONL ----------------------------------------------------------------------------


def test_json_single_record(tmp_path):
    rec = {"title": "Port reopens", "body": "The port reopened on Monday. Ships queued.",
           "published_at": "2024-05-06T09:00:00+02:00", "source": "Harbour Times",
           "url": "https://example.org/port", "author": "A. Writer"}
    a = only(read_file(write(tmp_path / "one.json", json.dumps(rec))))
    assert (a.title, a.date, a.site, a.url, a.author) == (
        "Port reopens", "2024-05-06", "Harbour Times", "https://example.org/port", "A. Writer")
    assert a.text == "The port reopened on Monday. Ships queued."
    assert a.source == "https://example.org/port"


def test_json_array_of_records_with_text_and_content_keys(tmp_path):
    recs = [{"title": "One", "text": "First story text.", "date": "2024-01-02"},
            {"title": "Two", "content": "Second story text.", "date": "not a date"},
            {"title": "No body here"}]
    p = write(tmp_path / "many.json", json.dumps(recs, indent=2))
    arts = read_file(p)
    assert [a.title for a in arts] == ["One", "Two"]
    assert [a.text for a in arts] == ["First story text.", "Second story text."]
    assert [a.date for a in arts] == ["2024-01-02", None]
    assert len({a.source for a in arts}) == 2  # each record its own source (path#i)
    assert all(a.source.startswith(str(p)) for a in arts)


def test_newsapi_envelope(tmp_path):
    doc = {"status": "ok", "totalResults": 2, "articles": [
        {"source": {"id": "bbc-news", "name": "BBC News"}, "author": "BBC", "title": "Storm hits coast",
         "description": "A storm.", "url": "https://bbc.example/storm", "urlToImage": None,
         "publishedAt": "2024-02-10T06:30:00Z", "content": "A storm hit the coast overnight. Roads closed."},
        {"source": {"id": None, "name": "Reuters"}, "author": None, "title": "Markets calm",
         "description": "Calm.", "url": "https://reuters.example/markets", "publishedAt": "2024-02-11T12:00:00Z",
         "content": "Markets were calm on Tuesday."},
    ]}
    arts = read_file(write(tmp_path / "newsapi.json", json.dumps(doc)))
    assert [a.title for a in arts] == ["Storm hits coast", "Markets calm"]
    assert [a.date for a in arts] == ["2024-02-10", "2024-02-11"]
    assert [a.site for a in arts] == ["BBC News", "Reuters"]
    assert [a.source for a in arts] == ["https://bbc.example/storm", "https://reuters.example/markets"]
    assert arts[1].author is None


def test_jsonl_one_article_per_line(tmp_path):
    lines = [json.dumps({"headline": f"Story {i}", "text": f"Story number {i} happened today.",
                         "pubDate": "Sat, 03 Feb 2024 10:00:00 GMT"}) for i in range(3)]
    p = write(tmp_path / "feed.jsonl", "\n".join(lines) + "\n\n")
    arts = read_file(p)
    assert [a.title for a in arts] == ["Story 0", "Story 1", "Story 2"]
    assert [a.date for a in arts] == ["2024-02-03"] * 3  # RSS-style dates too
    assert arts[2].source == f"{p}#2"


def test_jsonl_title_from_text_when_missing(tmp_path):
    p = write(tmp_path / "x.jsonl", json.dumps({"body": "Floods closed the bridge. Repairs start soon."}))
    a = only(read_file(p))
    assert a.title == "Floods closed the bridge."


# --- PDF -------------------------------------------------------------------------------------


def make_pdf(lines: list[str], *, title: str | None = None, author: str | None = None,
             created: str | None = None) -> bytes:
    """A minimal real PDF: one page of Helvetica text and an optional Info dictionary."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"] + [f"({esc(ln)}) Tj T*" for ln in lines] + ["ET"]
    stream = "\n".join(ops).encode("latin-1")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    info = [f"/Title ({esc(title)})" if title else "", f"/Author ({esc(author)})" if author else "",
            f"/CreationDate ({created})" if created else ""]
    has_info = any(info)
    if has_info:
        objs.append(("<< " + " ".join(i for i in info if i) + " >>").encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objs) + 1) + (b" /Info %d 0 R" % len(objs) if has_info else b"")
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_pdf_text_and_metadata(tmp_path):
    p = write(tmp_path / "r.pdf", make_pdf(["Kharkiv mayor wins the vote.", "Turnout was high despite shelling."],
                                            title="Kharkiv vote", author="Jane Doe", created="D:20240203101500Z"))
    a = only(read_file(p))
    assert "Kharkiv mayor wins the vote." in a.text and "Turnout was high despite shelling." in a.text
    assert (a.title, a.author, a.date) == ("Kharkiv vote", "Jane Doe", "2024-02-03")


def test_pdf_without_metadata_titles_from_text(tmp_path):
    a = only(read_file(write(tmp_path / "s.pdf", make_pdf(["Bridge closed after floods. Repairs soon."]))))
    assert a.title == "Bridge closed after floods."
    assert a.date is None and a.author is None


def test_pdf_with_broken_creation_date_is_still_read(tmp_path):
    """A garbage date in the Info dictionary must not cost the article."""
    a = only(read_file(write(tmp_path / "t.pdf", make_pdf(["Text survives. Yes."], created="D:garbage"))))
    assert a.text.startswith("Text survives.")
    assert a.date is None


# --- what is not read ------------------------------------------------------------------------


def test_unsupported_extension_is_skipped_with_reason(tmp_path):
    p = write(tmp_path / "photo.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(SkipFile, match=r"unsupported file type \.jpg"):
        read_file(p)


def test_iter_files_sorted_and_skips_hidden(tmp_path):
    write(tmp_path / "b.txt", "b")
    write(tmp_path / "a" / "c.txt", "c")
    write(tmp_path / ".git" / "x.txt", "x")
    write(tmp_path / ".hidden.txt", "h")
    single = write(tmp_path / "other" / "one.txt", "1")
    got = [(r, p.relative_to(tmp_path).as_posix()) for r, p in iter_files([tmp_path])]
    assert [p for _, p in got] == ["a/c.txt", "b.txt", "other/one.txt"]
    assert {r for r, _ in got} == {tmp_path}
    assert list(iter_files([single])) == [(single.parent, single)]
