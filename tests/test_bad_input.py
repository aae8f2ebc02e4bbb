"""Bad input gets a clear one-line reason and nothing else is lost."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rag

GOOD = {
    "good.txt": "date 2024-02-01 The harbour reopened on Monday after storm repairs. Ships queued at dawn.",
    "good.md": "# Tram line opens\n\nThe new tram line opened on Tuesday. Riders cheered the first car.",
    "good.json": json.dumps({"title": "Council budget", "body": "The council passed its budget on Wednesday.",
                             "date": "2024-02-03"}),
    "good.html": "<html><head><title>Museum reopens</title></head><body><article><p>The city museum "
                 "reopened on Thursday after a two-year renovation that cost more than planned.</p><p>Visitors "
                 "queued for hours to see the new gallery of local history.</p></article></body></html>",
}

# name -> (content, pattern the one-line reason must match)
BAD: dict[str, tuple[bytes, str]] = {
    "empty.txt": (b"", r"^empty file$"),
    "blank.md": (b" \n\t\n  \n", r"^empty file \(whitespace only\)$"),
    "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01" * 20, r"binary file"),
    "latin1.txt": ("Café au lait à Genève, déjà vu.".encode("latin-1"), r"not valid UTF-8 .*re-save the file as UTF-8"),
    "big.txt": (b"The story goes on. " * 200, r"too large \(3,800 bytes > limit 2,000; raise RAG_MAX_FILE_BYTES\)"),
    "broken.json": (b'{"title": "Cut off", "body": "The file ends in the mid', r"^malformed JSON: "),
    "broken.jsonl": (b'{"title": "a", "body": "x"\n{"title": "b"\n', r"^malformed JSON on line 1: .*and 1 more"),
    "nobody.json": (b'{"title": "Only a title", "url": "https://x.example"}', r"no news records"),
    "notmarkup.html": (b"Just some words in a file that says it is HTML.", r"^malformed HTML: no HTML markup"),
    "garbage.htm": (b"<html><<<<>>>><</html>", r"malformed HTML|no article text"),
    "broken.pdf": (b"%PDF-1.4\nthis is not really a pdf\n%%EOF", r"unreadable PDF|no extractable text"),
    "report.docx": (b"PK\x03\x04 zipped word document", r"^unsupported file type \.docx$"),
    "README": (b"no extension at all", r"^unsupported file type \(no extension\)$"),
}


@pytest.fixture()
def mixed(tmp_path) -> Path:
    d = tmp_path / "mixed"
    d.mkdir()
    for name, text in GOOD.items():
        (d / name).write_text(text, encoding="utf-8")
    for name, (data, _) in BAD.items():
        (d / name).write_bytes(data)
    return d


def test_each_bad_file_skipped_with_one_line_reason_rest_ingested(make_engine, counting_embedder, mixed):
    eng = make_engine(max_file_bytes=2000)
    r = eng.ingest([mixed])
    reasons = dict(r.skipped)
    assert len(reasons) == len(r.skipped), "each file reported once"
    assert set(reasons) == {str(mixed / n) for n in BAD}
    for name, (_, pattern) in BAD.items():
        reason = reasons[str(mixed / name)]
        assert "\n" not in reason and 0 < len(reason) <= 200, reason
        assert re.search(pattern, reason), f"{name}: {reason!r}"
    # everything readable is in, and searchable
    assert r.added == len(GOOD)
    assert sorted(eng.article(d).title for d in eng.manifest.doc_ids()) == [
        "Council budget", "Museum reopens", "The harbour reopened on Monday after storm repairs.", "Tram line opens"]
    assert eng.stats().files == len(GOOD)
    assert eng.store.count() == eng.stats().chunks == sum(counting_embedder.history)
    hits = eng.retrieve("When did the museum reopen?", top_k=2)
    assert hits and hits[0].title == "Museum reopens"
    # the bad files are reported again next time (they are not remembered as indexed)
    r2 = eng.ingest([mixed])
    assert set(dict(r2.skipped)) == set(reasons) and r2.unchanged == len(GOOD) and r2.added == 0


def test_size_limit_is_configurable_from_env(make_engine, tmp_path):
    s = rag.Settings.from_env({"RAG_MAX_FILE_BYTES": "50"})
    assert s.max_file_bytes == 50
    d = tmp_path / "d"
    d.mkdir()
    (d / "long.txt").write_text("A sentence about the port. " * 4)  # 108 bytes
    (d / "short.txt").write_text("Short news item.")
    eng = make_engine(max_file_bytes=s.max_file_bytes)
    r = eng.ingest([d])
    assert r.added == 1 and [Path(p).name for p, _ in r.skipped] == ["long.txt"]
    assert make_engine(index_dir=tmp_path / "i2").ingest([d]).added == 2  # default limit: 20 MB


def test_utf16_with_bom_is_read(make_engine, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "win.txt").write_bytes("date 2024-04-04 Saved by Notepad as UTF-16. It still reads.".encode("utf-16"))
    eng = make_engine()
    r = eng.ingest([d])
    assert (r.added, r.skipped) == (1, [])
    (did,) = eng.manifest.doc_ids()
    assert eng.article(did).text == "Saved by Notepad as UTF-16. It still reads." and eng.article(did).date == "2024-04-04"


def test_one_broken_jsonl_line_does_not_cost_the_feed(make_engine, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    lines = [json.dumps({"title": f"Item {i}", "text": f"Feed item number {i} is about topic {i}."}) for i in range(4)]
    lines.insert(2, '{"title": "broken", "text": "no closing brace"')
    (d / "feed.jsonl").write_text("\n".join(lines))
    eng = make_engine()
    r = eng.ingest([d])
    assert r.added == 1
    assert len(r.skipped) == 1 and r.skipped[0][0] == str(d / "feed.jsonl")
    assert re.search(r"line 3: .*other lines were ingested", r.skipped[0][1])
    assert sorted(eng.article(x).title for x in eng.manifest.doc_ids()) == [f"Item {i}" for i in range(4)]


def test_absurd_title_does_not_break_the_ingest(make_engine, counting_embedder, tmp_path, embedder):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.json").write_text(json.dumps({"title": "Breaking news " * 300, "body": "A short body. Two sentences."}))
    (d / "b.txt").write_text("An ordinary story follows. It is fine.")
    eng = make_engine()
    r = eng.ingest([d])
    assert (r.added, r.skipped) == (2, [])
    assert sum(counting_embedder.history) == eng.store.count() == 2


def test_file_that_turns_bad_leaves_the_index(make_engine, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("The bridge closed for repairs. Traffic was diverted.")
    (d / "b.txt").write_text("The school strike ended on Friday. Classes resume Monday.")
    eng = make_engine()
    eng.ingest([d])
    (d / "a.txt").write_bytes(b"")
    r = eng.ingest([d])
    assert r.skipped == [(str(d / "a.txt"), "empty file")]
    assert r.removed == 1
    assert [eng.article(x).title for x in eng.manifest.doc_ids()] == ["The school strike ended on Friday."]
    assert eng.store.count() == eng.stats().chunks == 1


def test_a_link_to_nothing_is_reported_and_a_file_whose_link_breaks_leaves_the_index(make_engine, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    target = tmp_path / "elsewhere.txt"
    target.write_text("The ferry resumed service on Sunday. Queues were short.")
    (d / "ferry.txt").symlink_to(target)
    (d / "gone.txt").symlink_to(tmp_path / "moved-away.txt")
    (d / "b.txt").write_text("The school strike ended on Friday. Classes resume Monday.")
    eng = make_engine()
    r = eng.ingest([d])
    assert r.added == 2 and r.skipped == [(str(d / "gone.txt"), f"broken link to {tmp_path / 'moved-away.txt'}")]
    target.unlink()
    r = eng.ingest([d])
    assert r.removed == 1 and dict(r.skipped)[str(d / "ferry.txt")].startswith("broken link to ")
    assert [eng.article(x).title for x in eng.manifest.doc_ids()] == ["The school strike ended on Friday."]
    eng.close()
