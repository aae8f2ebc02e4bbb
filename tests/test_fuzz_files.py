"""Fuzzed files: thousands of generated hostile or broken files (random bytes, wrong encodings, giant
lines, deep or truncated JSON, broken HTML, empty and oversized files) go through a real ingest with
the hashing embedder. The ingest never crashes; every file ends up either indexed or skipped with a
one-line reason; the counts add up; and the index stays consistent and answerable afterwards.

Plus hypothesis properties: ``read_bytes`` raises nothing but SkipFile on any bytes, and the chunker's
offsets slice the text exactly, for arbitrary unicode."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rag
from rag.chunking import ChunkSpec, chunk_text
from rag.embedding import HashingEmbedder
from rag.errors import SkipFile
from rag.readers import FEED_EXT, JSON_EXT, SUPPORTED, read_bytes

MAX_BYTES = 64_000
EXTS = [".txt", ".md", ".html", ".htm", ".json", ".jsonl", ".pdf"]
WORDS = ("council budget mayor flood river ceasefire talks drone strike election turnout vaccine "
         "hospital strike port grain harvest Kharkiv Müller déjà naïve 北京 2024 €1.5bn “quoted”").split()


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def sentences(rng: random.Random, n: int) -> str:
    return " ".join(words(rng, rng.randint(3, 15)).capitalize() + "." for _ in range(n))


def nested(depth: int, open_: str, close: str, inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


# each generator returns (file extension, content); several are valid articles, most are not
def g_random_bytes(rng):
    return rng.choice(EXTS + [".bin", ""]), rng.randbytes(rng.randint(1, 4000))


def g_latin1(rng):
    text = sentences(rng, rng.randint(1, 8))
    if rng.random() < 0.7:
        text += " Café crème à la façon de Zürich, señor."
    return rng.choice([".txt", ".md", ".html", ".json"]), text.encode("latin-1", "replace")


def g_utf16(rng):
    text = sentences(rng, rng.randint(1, 8))
    enc = rng.choice(["utf-16-le", "utf-16-be", "utf-16"])  # the first two carry no byte-order mark
    data = text.encode(enc)
    if rng.random() < 0.3:
        data = data[: rng.randint(1, len(data))]  # odd length: truncated mid-character
    return rng.choice([".txt", ".md", ".json"]), data


def g_cp1252_or_mixed(rng):
    good = sentences(rng, 3).encode()
    bad = rng.choice([b"\x93smart quotes\x94", b"\xe9t\xe9", b"\xed\xa0\x80", b"\xc3", b"\xff\xfe\x00"])
    pos = rng.randint(0, len(good))
    return rng.choice([".txt", ".md"]), good[:pos] + bad + good[pos:]


def g_giant_line(rng):
    n = rng.randint(10_000, MAX_BYTES - 100)
    kind = rng.choice(["words", "nospace", "digits", "punct"])
    if kind == "words":
        body = words(rng, n // 7)[:n]
    elif kind == "nospace":
        body = "x" * n
    elif kind == "digits":
        body = "".join(rng.choice("0123456789") for _ in range(n))
    else:
        body = "".join(rng.choice(".!?,;:-") for _ in range(n))
    return rng.choice([".txt", ".md"]), body.encode()


def g_deep_json(rng):
    depth = rng.choice([50, 1000, 5000, 100_000 if rng.random() < 0.1 else 20_000])
    kind = rng.choice(["list", "dict", "body_in_deep"])
    if kind == "list":
        s = nested(depth, "[", "]")
    elif kind == "dict":
        s = nested(depth, '{"a":', "}")
    else:
        s = nested(depth, '{"items":[', "]}", json.dumps({"body": sentences(rng, 2)}))
    return rng.choice([".json", ".jsonl"]), s.encode()


def g_truncated_json(rng):
    recs = [{"title": words(rng, 4), "body": sentences(rng, rng.randint(1, 6)), "date": "2024-02-30"}
            for _ in range(rng.randint(1, 5))]
    s = json.dumps(recs if rng.random() < 0.5 else {"articles": recs})
    return ".json", s[: rng.randint(0, len(s) - 1)].encode() or b"{"


def g_odd_json(rng):
    """Valid JSON of unexpected shapes and values: wrong types, lone surrogates, NULs, huge numbers."""
    body = rng.choice([
        sentences(rng, 3), 42, None, ["a", "list"], {"nested": "dict"}, "", "   ",
        "\ud800 lone surrogate " + sentences(rng, 2), "NUL\x00inside " + sentences(rng, 2),
        "\u202e\u200b\ufeff " + sentences(rng, 1), "\x1b[31m" + sentences(rng, 1),
    ])
    rec = {rng.choice(["body", "text", "content", "maintext", "other"]): body,
           "title": rng.choice([words(rng, 3), None, 7, "\udfff", "T" * 5000, ""]),
           "date": rng.choice(["2024-01-05", "Tue, 10 Jun 2003 04:02:03 GMT", "9999-99-99", 20240105, "", None,
                               "Mon, 99 Foo 2003", "-1"]),
           "source": rng.choice([{"name": "Wire"}, {"name": 3}, "Wire", None, []]),
           "url": rng.choice(["https://example.org/a", 5, None, ""])}
    shape = rng.choice(["rec", "list", "scalar", "envelope", "jsonl"])
    if shape == "rec":
        return ".json", json.dumps(rec).encode()
    if shape == "list":
        return ".json", json.dumps([rec, 1, "x", None, [rec]]).encode()
    if shape == "scalar":
        return ".json", json.dumps(rng.choice([1, "str", None, True, 1e308, [], {}])).encode()
    if shape == "envelope":
        return ".json", json.dumps({"articles": rng.choice([[rec], "notalist", {"a": rec}])}).encode()
    lines = [json.dumps(rec), "{broken", "", json.dumps([rec]), "null", "\x00\x01"]
    rng.shuffle(lines)
    return rng.choice([".jsonl", ".ndjson"]), "\n".join(lines).encode("utf-8", "surrogatepass")


def g_broken_html(rng):
    pieces = ["<html>", "<head><title>" + words(rng, 3), "<body>", "<p>" + sentences(rng, rng.randint(0, 6)),
              "<div><div><span>", "</p></div>", "<script>alert(1)", "<!--", "<![CDATA[", "<table><tr><td>",
              "<p>" + sentences(rng, 2) + "</p>", "&#xD800;&#0;&bogus;", "<" * rng.randint(1, 50), "</html>",
              "<meta charset='utf-16'>", "<?xml version='1.0' encoding='latin-1'?>", "\x00", "<a href=javascript:x>"]
    k = rng.randint(1, 12)
    doc = "".join(rng.choice(pieces) for _ in range(k))
    if rng.random() < 0.2:
        doc = nested(rng.randint(100, 3000), "<div>", "</div>", "<p>" + sentences(rng, 2) + "</p>")
    if rng.random() < 0.2:
        doc = doc[: rng.randint(0, len(doc))]
    return rng.choice([".html", ".htm"]), doc.encode("utf-8", "surrogatepass")


def g_fake_pdf(rng):
    head = b"%PDF-1." + str(rng.randint(0, 7)).encode() + b"\n"
    body = rng.choice([b"", rng.randbytes(rng.randint(1, 2000)), b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
                       b"trailer << /Root 1 0 R >>\n%%EOF", b"xref\n0 1\n0000000000 65535 f \ntrailer<<>>"])
    return ".pdf", head + body


def g_empty_or_blank(rng):
    return rng.choice(EXTS), rng.choice([b"", b" ", b"\n\n\t  \r\n", b"\xef\xbb\xbf", b"\xff\xfe", b"\xef\xbb\xbf  \n",
                                         "\u3000\u00a0".encode()])


def g_oversize(rng):
    return rng.choice(EXTS), (sentences(rng, 5) + "\n").encode() * (MAX_BYTES // 40)


def g_control_chars(rng):
    text = sentences(rng, 4)
    noise = "".join(chr(rng.randint(1, 31)) for _ in range(rng.randint(1, 400)))
    return rng.choice([".txt", ".md"]), (noise + text if rng.random() < 0.5 else text + noise).encode()


def g_markup_debris(rng):
    return rng.choice([".txt", ".md", ".html"]), "".join(rng.choice("<>*#_-=[](){}|\\/ \n") for _ in
                                                           range(rng.randint(1, 300))).encode()


def g_valid_text(rng):
    date = rng.choice(["", "date 2024-05-06\n", "date 2024-13-45\n", "date \n"])
    title = rng.choice(["", "**" + words(rng, 4) + "**\n", "# " + words(rng, 4) + "\n", "**\n", "# \n"])
    nl = rng.choice(["\n", "\r\n", "\r"])
    return rng.choice([".txt", ".md", ".markdown", ".TXT"]), (date + title + sentences(rng, rng.randint(1, 30))).replace(
        "\n", nl).encode()


def g_broken_feed(rng):
    """RSS/Atom pieces in any order, cut anywhere: entity tricks, an external entity, CDATA, bad dates."""
    pieces = ['<?xml version="1.0"?>', '<rss version="2.0">', "<channel>", "<title>" + words(rng, 2) + "</title>",
              "<item>", "<title>" + words(rng, 3) + "</title>", "<pubDate>" + rng.choice(
                  ["Mon, 06 May 2024 09:00:00 +0200", "Mon, 99 Foo 2003", "", "2024-05-06"]) + "</pubDate>",
              "<description>" + sentences(rng, 2) + "</description>", "<content:encoded><![CDATA[<p>" +
              sentences(rng, 3) + "</p>]]></content:encoded>", "</item>", "</channel></rss>",
              '<feed xmlns="http://www.w3.org/2005/Atom">', "<entry>", '<content type="html">&lt;p&gt;' +
              sentences(rng, 2) + "</content>", "</entry></feed>", "&bogus;", "<![CDATA[", "\x00",
              '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
              '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>']
    doc = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 16)))
    if rng.random() < 0.3:
        doc = doc[: rng.randint(0, len(doc))]
    return rng.choice([".xml", ".rss", ".atom"]), doc.encode("utf-8", "surrogatepass")


def g_front_matter(rng):
    """Markdown with YAML front matter, valid or not (unclosed, tags for Python objects, anchors)."""
    meta = rng.choice(["title: " + words(rng, 3), "date: 2024-05-06", "date: 9999-99-99", "title: [unclosed",
                       "!!python/object/apply:os.system ['echo x']", "a: &x [*x]", "title: 7", "- a\n- list",
                       "tags: {a: 1}", ""])
    end = rng.choice(["---", "...", ""])
    return rng.choice([".md", ".txt"]), f"---\n{meta}\n{end}\n{sentences(rng, rng.randint(0, 5))}".encode()


def g_unsupported(rng):
    return rng.choice([".docx", ".exe", ".png", ".csv", ".tar.gz", ".", ".json~"]), sentences(rng, 2).encode()


GENERATORS = [
    (g_random_bytes, 18), (g_latin1, 7), (g_utf16, 7), (g_cp1252_or_mixed, 5), (g_giant_line, 2),
    (g_deep_json, 4), (g_truncated_json, 7), (g_odd_json, 12), (g_broken_html, 8), (g_fake_pdf, 4),
    (g_empty_or_blank, 5), (g_oversize, 2), (g_control_chars, 5), (g_markup_debris, 4), (g_valid_text, 8),
    (g_unsupported, 2), (g_broken_feed, 6), (g_front_matter, 5),
]


def generate(d: Path, n: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    gens = [g for g, w in GENERATORS for _ in range(w)]
    d.mkdir()
    paths = []
    for i in range(n):
        g = rng.choice(gens)
        ext, data = g(rng)
        sub = d / f"d{i % 50:02d}"  # a folder of 10,000 files is itself a test, but not this one's
        sub.mkdir(exist_ok=True)
        p = sub / f"{i:05d}_{g.__name__[2:]}{ext}"
        p.write_bytes(data)
        paths.append(p)
    return paths


def fuzz_ingest(tmp_path: Path, n: int, seed: int) -> None:
    paths = generate(tmp_path / "fuzz", n, seed)
    eng = rag.Engine(settings=rag.Settings(index_dir=tmp_path / "index", seeds_dir=None, progress=False,
                                           llm="extractive", embed_model="hashing-256", max_file_bytes=MAX_BYTES),
                     embedder=HashingEmbedder())
    t0 = time.perf_counter()
    report = eng.ingest([tmp_path / "fuzz"])  # any exception here is a crash
    seconds = time.perf_counter() - t0

    all_paths = {str(p.resolve()) for p in paths}
    indexed = set(eng.manifest.files())
    skipped_paths = {p for p, _ in report.skipped}
    for p, reason in report.skipped:
        assert p in all_paths
        assert reason.strip() and "\n" not in reason and len(reason) <= 300, (p, reason)
        # the generic fallback for a reader bug ("could not read (TypeError: ...)") is not a reason
        assert not reason.startswith("could not read ("), (p, reason)
    assert indexed <= all_paths
    # every file is either indexed or skipped with a reason; a file that is indexed may only appear
    # among the skipped for a part left out (a broken line of a JSONL feed, an RSS item without text)
    assert indexed | skipped_paths == all_paths
    for p, reason in report.skipped:
        if p in indexed:
            ext = Path(p).suffix
            partial = "skipped, the other lines" if ext in JSON_EXT else "skipped; the other items" if ext in FEED_EXT else "\0"
            assert partial in reason, (p, reason)
    n_skipped_files = len(skipped_paths - indexed)
    assert report.added == len(indexed) and report.added + n_skipped_files == n
    assert report.updated == report.removed == report.unchanged == 0
    # the index is consistent and answers
    s = eng.stats()
    assert s.files == len(indexed) and s.articles > 0
    assert eng.store.all_ids() == eng.manifest.chunk_ids()
    hits = eng.retrieve("flood river council budget", top_k=5)
    assert hits
    for h in hits:
        assert eng.article(h.doc_id).text[h.start:h.end] == h.text
    # a second run changes nothing and skips the same files for the same reasons
    again = eng.ingest([tmp_path / "fuzz"])
    assert (again.added, again.updated, again.removed, again.chunks_embedded) == (0, 0, 0, 0)
    assert again.unchanged == len(indexed)
    # (notes about parts of indexed files are not repeated: those files are unchanged, not re-read)
    assert sorted(again.skipped) == sorted((p, r) for p, r in report.skipped if p not in indexed)
    kinds: dict[str, list[int]] = {}
    for p in paths:
        k = p.name.split("_", 1)[1].split(".", 1)[0]
        kinds.setdefault(k, [0, 0])[str(p.resolve()) in indexed] += 1
    print(f"\n{n} fuzzed files: {len(indexed)} indexed ({s.articles} articles, {s.chunks} chunks), "
          f"{n_skipped_files} skipped, ingest {seconds:.1f} s; [skipped, indexed] by kind: {kinds}")


def test_ten_thousand_fuzzed_files(tmp_path):
    fuzz_ingest(tmp_path, 10_000, seed=4)


@pytest.mark.slow
def test_thirty_thousand_fuzzed_files(tmp_path):
    fuzz_ingest(tmp_path, 30_000, seed=44)


# --- hypothesis: the reader and the chunker on arbitrary input ---------------------------------

SOME_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)


@st.composite
def file_bytes(draw):
    kind = draw(st.sampled_from(["bytes", "utf8", "utf16", "json", "html"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    text = draw(SOME_TEXT)
    if kind == "utf8":
        return text.encode()
    if kind == "utf16":
        return text.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"])))
    if kind == "json":
        value = draw(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | SOME_TEXT,
                                  lambda c: st.lists(c, max_size=4) | st.dictionaries(
                                      st.sampled_from(["body", "text", "content", "title", "date", "source", "url",
                                                       "articles", "items", "x"]), c, max_size=5), max_leaves=20))
        return json.dumps(value).encode()
    return ("<html><body><p>" + text + "</p>" + draw(st.sampled_from(["", "</body></html>", "<div", "&#0;"]))).encode()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=file_bytes(), ext=st.sampled_from(sorted(SUPPORTED) + [".JSON", ".Txt"]))
def test_read_bytes_raises_only_skipfile(data, ext):
    try:
        articles = read_bytes(data, ext=ext, source=f"f{ext}")
    except SkipFile as e:
        assert e.reason.strip() and "\n" not in e.reason
        return
    assert articles
    for a in articles:
        assert any(ch.isalnum() for ch in a.text), "an article without words"
        for v in vars(a).values():  # the embedder, SQLite and Chroma all need valid UTF-8
            assert v is None or v.encode("utf-8")
        assert isinstance(a.title, str) and a.title.strip()
        assert a.date is None or (len(a.date) == 10 and a.date[4] == a.date[7] == "-")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=3000) | st.lists(st.sampled_from(WORDS + [".", "\n\n", "x" * 300, "!", " "]),
                                              max_size=800).map(" ".join),
       overlap=st.sampled_from([0, 8, 32]))
def test_chunk_offsets_round_trip_on_arbitrary_text(text, overlap):
    """Citations slice ``article.text[start:end]``: that must be the chunk, for any text."""
    tok = HashingEmbedder().tokenizer
    spec = ChunkSpec(max_tokens=64, overlap_tokens=overlap)
    chunks = chunk_text(text, "doc", tok, spec)
    if not text.strip():
        assert not chunks
        return
    assert chunks
    covered = bytearray(len(text))
    for i, c in enumerate(chunks):
        assert c.index == i and c.id == f"doc:{i}"
        assert 0 <= c.start < c.end <= len(text) and text[c.start:c.end] == c.text and c.text.strip()
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    assert all(a.start <= b.start for a, b in zip(chunks, chunks[1:]))
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace()), "text left out of every chunk"


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_utf16_without_byte_order_mark_is_read(enc):
    """Some exporters write UTF-16 with no BOM: it is text, not a 'binary file'."""
    text = "**Flood in Kharkiv**\nThe river rose two metres. Café owners were evacuated."
    [a] = read_bytes(text.encode(enc), ext=".txt", source="f.txt")
    assert a.title == "Flood in Kharkiv" and a.text.endswith("Café owners were evacuated.")
    with pytest.raises(SkipFile):  # truncated mid-character: still not guessed into garbage
        read_bytes(text.encode(enc)[:-1], ext=".txt", source="f.txt")
