"""Readers: turn one file into zero or more Articles, or raise SkipFile with a one-line reason.

Formats: ``.txt``/``.md`` in the seeds' format, ``.html``/``.htm`` through trafilatura,
``.json``/``.jsonl`` news records (one article per record), RSS and Atom feeds (``.xml``/``.rss``/
``.atom``, one article per item, through feedparser), ``.pdf`` through pypdf.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from .dates import date_from_url
from .errors import SkipFile
from .types import Article

TEXT_EXT = {".txt", ".md", ".markdown"}
HTML_EXT = {".html", ".htm"}
JSON_EXT = {".json", ".jsonl", ".ndjson"}
PDF_EXT = {".pdf"}
FEED_EXT = {".xml", ".rss", ".atom"}
SUPPORTED = TEXT_EXT | HTML_EXT | JSON_EXT | PDF_EXT | FEED_EXT

_DATE_LINE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*")
# any other format (``date March 24, 2026``) only as a line of its own: the seeds go on with the
# text on the date's line, so a partial date there must not eat words
_DATE_OWN_LINE = re.compile(r"^\s*date[ \t]+([^\n]*?\S)[ \t]*(?=\n|$)")
_BOLD_TITLE = re.compile(r"^\s*\*\*(.+?)\*\*\s*$")
_HASH_TITLE = re.compile(r"^\s*#\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")

TITLE_MAX_CHARS = 120
# Raise when a change makes the readers give other text, titles or dates for the same file: the
# next ingest reads every indexed file again (rag/sync.py). 2: Title:/Date: header blocks.
READERS_VERSION = "2"


def read_file(path: Path, *, max_bytes: int = 20_000_000, problems: list[str] | None = None) -> list[Article]:
    """Read ``path`` into Articles. Raises SkipFile for anything we cannot or should not ingest.
    ``problems`` collects one-line notes about parts that were left out of a file that was otherwise
    read (a malformed line in a JSONL feed)."""
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        raise SkipFile(f"unsupported file type {ext or '(no extension)'}")
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty file")
    if size > max_bytes:
        raise SkipFile(f"too large ({size:,} bytes > limit {max_bytes:,}; raise RAG_MAX_FILE_BYTES)")
    data = path.read_bytes()
    return read_bytes(data, ext=ext, source=str(path), problems=problems)


def read_bytes(data: bytes, *, ext: str, source: str, problems: list[str] | None = None) -> list[Article]:
    ext = ext.lower()
    reader = _READERS.get(ext)
    if reader is None:
        raise SkipFile(f"unsupported file type {ext}")
    if ext in PDF_EXT:
        articles = reader(data, source)
    elif ext in FEED_EXT:
        articles = reader(data, source, problems if problems is not None else [])
    elif ext in JSON_EXT:
        articles = reader(_decode(data), source, problems if problems is not None else [])
    else:
        articles = reader(_decode(data), source)
    articles = [_no_surrogates(a) for a in articles if _has_words(a.text)]
    if not articles:
        raise SkipFile("malformed HTML: no article text found" if ext in HTML_EXT else "no article text found")
    return articles


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(a: Article) -> Article:
    """JSON escapes such as ``"\\ud800"`` decode to lone surrogates, which no UTF-8 consumer accepts
    (the embedder, SQLite, Chroma raise UnicodeEncodeError and the whole ingest stopped). Replace them
    with U+FFFD, as a UTF-8 decoder does with invalid bytes."""
    fields = {k: _SURROGATE.sub("\ufffd", v) for k, v in vars(a).items() if isinstance(v, str) and _SURROGATE.search(v)}
    return replace(a, **fields) if fields else a


def _utf16_without_bom(data: bytes) -> bytes | None:
    """Text saved as UTF-16 without a byte-order mark (some exporters do this) has a NUL in the
    high byte of nearly every character of Latin text: even positions for big-endian, odd for
    little-endian. Returns it re-encoded as UTF-8, or None when the data does not look like that."""
    head = data[:8192]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    for enc, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.01 * len(other):
            try:
                return data.decode(enc).encode("utf-8")
            except (UnicodeDecodeError, UnicodeEncodeError):  # odd length, or lone surrogates
                return None
    return None


def _has_words(text: str) -> bool:
    """Some letters or digits: markup debris such as ``<<>>`` is not an article."""
    return any(ch.isalnum() for ch in text)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark (Windows editors)
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise SkipFile("not valid UTF-16 despite its byte-order mark; re-save the file as UTF-8") from None
        if not text.strip():
            raise SkipFile("empty file (whitespace only)")
        return text
    if b"\x00" in data[:8192]:
        bom_less = _utf16_without_bom(data)
        if bom_less is None:
            raise SkipFile("binary file (NUL bytes), not text")
        data = bom_less
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SkipFile(f"not valid UTF-8 (byte {e.start}); re-save the file as UTF-8") from None
    bad = sum(1 for ch in text[:20000] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if bad > max(8, len(text[:20000]) // 100):
        raise SkipFile("binary file (control characters), not text")
    if not text.strip():
        raise SkipFile("empty file (whitespace only)")
    return text


# --- plain text / markdown -------------------------------------------------------------------


def parse_text(raw: str, source: str) -> Article:
    """Seeds' format: optional leading ``date YYYY-MM-DD`` (or ``date <any format parse_date reads>``
    alone on its line; not part of the text), optional
    ``**Title**`` or ``# Title`` first line; otherwise the title is the first sentence. A Markdown
    file's YAML front matter (Jekyll, Hugo, Obsidian, pandoc) gives its title, date, author and URL
    and is not part of the text."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    meta, text = _front_matter(text)
    if not meta:
        meta, text = _header_block(text)
    if meta:
        a = parse_text(text, source)
        title, date, url, author, site = record_fields(meta, default_title=a.title)
        return Article(text=a.text, title=title, date=date or a.date, source=url or source, url=url,
                       author=author, site=site)
    date = None
    m = _DATE_LINE.match(text)
    if m:
        date = _valid_date(m.group(1))
        text = text[m.end():]
    elif (m := _DATE_OWN_LINE.match(text)) and (date := _valid_date(m.group(1))):
        text = text[m.end():]
    title = None
    stripped = text.lstrip()
    first_line, _, rest = stripped.partition("\n")
    tm = _BOLD_TITLE.match(first_line) or _HASH_TITLE.match(first_line)
    if tm:
        title = tm.group(1).strip()
    text = text.strip()
    if title is None:
        title = title_from_text(text)
    return Article(text=text, title=title, date=date, source=source)


_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)
_FIELD = re.compile(r"[A-Za-z_][\w-]*")


def _front_matter(text: str) -> tuple[dict, str]:
    """(the YAML front matter's fields, the text after it), or ({}, text) when the text does not open
    with one: a ``---`` line, a YAML mapping of field names, a ``---`` or ``...`` line."""
    if not text.startswith("---\n"):
        return {}, text
    end = _FRONT_MATTER_END.search(text, 4)
    if end is None:
        return {}, text
    import yaml

    try:  # BaseLoader: every value a string (a bad date such as 9999-99-99 is ours to reject), no tags
        meta = yaml.load(text[4:end.start()], Loader=yaml.BaseLoader)
    except yaml.YAMLError:
        return {}, text
    # keys are field names ("title", "pubDate"), never prose ("Some rule, then prose: here.")
    if not isinstance(meta, dict) or not meta or not all(isinstance(k, str) and _FIELD.fullmatch(k) for k in meta):
        return {}, text
    return {k.lower(): v for k, v in meta.items()} | meta, text[end.end():]


# "Title: …" / "Date: …" / "URL: …" lines over a blank line, the way scrapers and news exports
# write plain text. Only news field names count, so "Update: the road is open" stays text.
_HEADER_LINE = re.compile(r"([A-Za-z][A-Za-z _-]{0,24}?)[ \t]*:[ \t]*(\S[^\n]*?)[ \t]*")
_HEADER_KEYS = frozenset({"title", "headline", "url", "link", "source", "author", "byline", "by"})


def _header_key(name: str) -> str:
    return re.sub(r"[ -]+", "_", name.strip().lower())


def _header_block(text: str) -> tuple[dict, str]:
    """(the fields of a header block, the text after it), or ({}, text) when the text does not open
    with one: lines of ``Field: value`` with news field names only, then a blank line."""
    head, sep, rest = text.lstrip("\n").partition("\n\n")
    if not sep or not rest.strip():
        return {}, text
    known = _HEADER_KEYS | {_header_key(k) for k in _DATE_KEYS}
    meta: dict[str, str] = {}
    for line in head.split("\n"):
        m = _HEADER_LINE.fullmatch(line.strip())
        if not m or _header_key(m.group(1)) not in known:
            return {}, text
        meta[_header_key(m.group(1))] = m.group(2)
    for k in _DATE_KEYS:  # record_fields looks dates up by their JSON spelling ("publishedAt")
        if _header_key(k) in meta:
            meta.setdefault(k, meta[_header_key(k)])
    if "byline" in meta or "by" in meta:
        meta.setdefault("author", meta.get("byline") or meta["by"])
    return meta, rest


def title_from_text(text: str) -> str:
    first = next((line for line in text.strip().split("\n") if _has_words(line)), "")
    m = _SENTENCE_END.search(first)
    sentence = first[: m.start()] if m else first
    sentence = sentence.strip()
    if len(sentence) > TITLE_MAX_CHARS:
        cut = sentence[:TITLE_MAX_CHARS].rsplit(" ", 1)[0]
        sentence = cut + "…"
    return sentence or "(untitled)"


def _read_text(raw: str, source: str) -> list[Article]:
    return [parse_text(raw, source)]


# --- HTML ------------------------------------------------------------------------------------


# htmldate reads the page's own metadata (article:published_time, JSON-LD datePublished, <time>,
# the canonical URL). Its extensive search, trafilatura's default, guesses from free text instead:
# "© 2021" became 2021-01-01 and a date quoted in the body became the article's. An undated page
# must stay undated, never get a guess.
_HTML_DATE_PARAMS = {"extensive_search": False, "original_date": True}


def _read_html(raw: str, source: str) -> list[Article]:
    import trafilatura

    low = raw[:4096].lower()
    if "<" not in raw or not any(t in low for t in ("<html", "<body", "<p", "<div", "<article", "<!doctype", "<head", "<title")):
        raise SkipFile("malformed HTML: no HTML markup found")
    try:
        doc = trafilatura.bare_extraction(
            raw, with_metadata=True, include_comments=False, include_tables=True,
            favor_recall=True, url=None, date_extraction_params=_HTML_DATE_PARAMS,
        )
    except Exception as e:  # trafilatura/lxml raise many kinds on broken markup
        raise SkipFile(f"malformed HTML ({type(e).__name__})") from None
    if doc is None:
        raise SkipFile("malformed HTML: no article text found")
    get = doc.get if isinstance(doc, dict) else (lambda k, d=None: getattr(doc, k, d))
    text = _blocks_as_paragraphs(get("text") or "")
    if not text:
        raise SkipFile("HTML page has no article text")
    title = (get("title") or "").strip() or title_from_text(text)
    date = _valid_date(get("date")) or date_from_url(get("url"))
    return [Article(text=text, title=title, date=date, source=get("url") or source,
                    url=get("url"), author=get("author"), site=get("sitename") or get("hostname"))]


# --- JSON / JSONL ----------------------------------------------------------------------------

_BODY_KEYS = ("body", "text", "content", "article", "maintext")
_DATE_KEYS = ("published_at", "publishedAt", "date", "published", "publish_date", "publishDate", "date_publish", "pubDate",
              "datePublished", "created_at")


def _read_json(raw: str, source: str, problems: list[str]) -> list[Article]:
    stripped = raw.strip()
    records: list = []
    if source.lower().endswith((".jsonl", ".ndjson")) or ("\n" in stripped and stripped.startswith("{") and not _is_single_json(stripped)):
        bad: list[str] = []
        for lineno, line in enumerate(stripped.split("\n"), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as e:
                bad.append(f"line {lineno}: {_json_msg(e)}")
        if bad and not records:
            raise SkipFile(f"malformed JSON on {bad[0]}" + (f" (and {len(bad) - 1} more lines)" if len(bad) > 1 else ""))
        if bad:  # one broken line must not cost the rest of the feed
            problems.append(f"malformed JSON on {bad[0]}" + (f" and {len(bad) - 1} more lines" if len(bad) > 1 else "")
                            + "; skipped, the other lines were ingested")
    else:
        try:
            obj = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError) as e:
            raise SkipFile(f"malformed JSON: {_json_msg(e)}") from None
        if isinstance(obj, dict) and not any(k in obj for k in _BODY_KEYS):
            for key in ("articles", "items", "data", "results"):
                if isinstance(obj.get(key), list):
                    obj = obj[key]
                    break
        records = obj if isinstance(obj, list) else [obj]
    articles = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            continue
        a = article_from_record(rec, f"{source}#{i}" if len(records) > 1 else source)
        if a is not None:
            articles.append(a)
    if not articles:
        raise SkipFile("JSON has no news records (need a 'body', 'text' or 'content' field)")
    return articles


def _is_single_json(s: str) -> bool:
    try:
        json.loads(s)
        return True
    except (json.JSONDecodeError, RecursionError):
        return False


def _json_msg(e: Exception) -> str:
    return e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"


def article_from_record(rec: dict, source: str) -> Article | None:
    body = next((rec[k] for k in _BODY_KEYS if isinstance(rec.get(k), str) and rec[k].strip()), None)
    if body is None:
        return None
    text = body.replace("\r\n", "\n").strip()
    title, date, url, author, site = record_fields(rec, default_title=title_from_text(text))
    return Article(text=text, title=title, date=date, source=url or source, url=url, author=author, site=site)


def record_fields(rec: dict, *, default_title: str) -> tuple[str, str | None, str | None, str | None, str | None]:
    """(title, date, url, author, site) of a news record or a front matter."""
    title = _str(rec.get("title")) or _str(rec.get("headline")) or default_title
    url = _str(rec.get("url")) or _str(rec.get("link"))
    date = next((d for k in _DATE_KEYS if rec.get(k) is not None and (d := _valid_date(rec.get(k)))), None) \
        or date_from_url(url)
    src = rec.get("source")
    if isinstance(src, dict):  # NewsAPI shape: {"source": {"id":..., "name":...}}
        src = src.get("name")
    return title, date, url, _str(rec.get("author")), _str(src)


def _str(v) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


# --- RSS / Atom ------------------------------------------------------------------------------


def _read_feed(data: bytes, source: str, problems: list[str]) -> list[Article]:
    """One article per item: its full content where the feed carries it (``content:encoded``, Atom
    ``content``), else its summary; title, date (RFC 2822 or ISO), link and author from the item."""
    import io

    import feedparser

    # a file object, never a string: feedparser fetches a string that looks like a URL
    feed = feedparser.parse(io.BytesIO(data))
    if not feed.entries:
        if feed.get("version"):
            raise SkipFile("feed has no items")
        raise SkipFile("not an RSS or Atom feed" + (f" ({type(feed.bozo_exception).__name__})" if feed.get("bozo") else ""))
    site = _str(feed.feed.get("title"))
    articles = []
    for i, entry in enumerate(feed.entries):
        parts = sorted(entry.get("content") or [], key=lambda c: -len(c.get("value") or ""))
        body = parts[0] if parts else entry.get("summary_detail") or {"value": entry.get("summary") or ""}
        text = _feed_text(body.get("value") or "", body.get("type") or "text/html")
        if not text:
            continue
        rec = {"text": text, "title": entry.get("title"), "url": entry.get("link"), "author": entry.get("author"),
               # dict.get: feedparser's own get("updated") maps to "published" with a DeprecationWarning
               "published": dict.get(entry, "published") or dict.get(entry, "updated"), "source": site}
        a = article_from_record(rec, f"{source}#{i}" if len(feed.entries) > 1 else source)
        if a is not None:
            articles.append(a)
    if not articles:
        raise SkipFile("feed items have no text")
    if len(articles) < len(feed.entries):
        empty = len(feed.entries) - len(articles)
        problems.append(f"{empty} feed item{'s' if empty > 1 else ''} without text skipped; the other items were ingested")
    return articles


def _feed_text(value: str, mime: str) -> str:
    """An item's text: its HTML as trafilatura reads a page (a block a paragraph), plain text as is."""
    if "html" not in mime:
        return value.strip()
    import logging

    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.ERROR)  # "discarding data: None" for a short item
    page = f"<html><body><article>{value}</article></body></html>"
    return _blocks_as_paragraphs(trafilatura.extract(page, favor_recall=True, include_comments=False)
                                 or trafilatura.html2txt(page) or "")


def _blocks_as_paragraphs(text: str) -> str:
    """trafilatura puts each block (heading, paragraph, caption, list item) on a line of its own; a
    blank line between them keeps a heading out of the sentence after it, however short the page."""
    return "\n\n".join(line.strip() for line in text.split("\n") if line.strip())


# --- PDF -------------------------------------------------------------------------------------


def _read_pdf(data: bytes, source: str) -> list[Article]:
    import io
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [p.extract_text() or "" for p in reader.pages]
        meta = reader.metadata or {}
    except Exception as e:  # pypdf raises many kinds on damaged files
        raise SkipFile(f"unreadable PDF ({type(e).__name__})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise SkipFile("PDF has no extractable text (scanned image?)")
    title = _str(_pdf_meta(meta, "title")) or title_from_text(text)
    created = _pdf_meta(meta, "creation_date")
    date = _valid_date(created.strftime("%Y-%m-%d")) if hasattr(created, "strftime") else None
    return [Article(text=text, title=title, date=date, source=source, author=_str(_pdf_meta(meta, "author")))]


def _pdf_meta(meta, name: str):
    """One Info field; a damaged field (e.g. an unparseable CreationDate) is treated as absent."""
    try:
        return getattr(meta, name, None)
    except Exception:
        return None


def _valid_date(value) -> str | None:
    """ISO YYYY-MM-DD from whatever a record or page gives (rag/dates.py), or None when it is not a
    real date."""
    from .dates import parse_date

    return parse_date(value)


_READERS: dict[str, Callable[..., list[Article]]] = {
    **{e: _read_text for e in TEXT_EXT},
    **{e: _read_html for e in HTML_EXT},
    **{e: _read_json for e in JSON_EXT},
    **{e: _read_pdf for e in PDF_EXT},
    **{e: _read_feed for e in FEED_EXT},
}


def iter_files(roots: Iterable[Path]) -> Iterable[tuple[Path, Path]]:
    """Yield (root, file) for every file under each root (a file root yields itself), sorted,
    skipping hidden files and folders; a link to nothing is yielded for the caller to report."""
    for root in roots:
        if root.is_file():
            yield root.parent, root
            continue
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root)
            if any(part.startswith(".") for part in rel.parts):
                continue
            if p.is_file() or (p.is_symlink() and not p.exists()):
                yield root, p  # a broken link too, so the ingest report names it
