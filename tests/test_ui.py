"""The chat window (ui.py): rendering helpers, then the app served in-process and driven through
Debian's Chromium with Playwright (marked ``browser``; skipped when /usr/bin/chromium is missing).

Every browser page records the requests it makes; none may leave the server's origin.
"""
from __future__ import annotations

import html
from dataclasses import replace
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag
from rag.types import Answer, Citation

from chroma_server import free_port
from conftest import seeds_engine

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import ui  # noqa: E402

# gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*no_silent_downcasting", "ignore:The copy keyword")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SEED_QUESTION = "How many people were killed in Belgorod?"
WAIT_MS = 120_000  # answers and uploads on a busy 2-core machine

EVIL = """date 2024-02-02
# Zorblat <script>window.__pwned=1</script> festival <img src=x onerror="window.__pwned=2">

The Zorblat festival in Quuxtown drew 5000 visitors on Saturday <script>window.__pwned=3</script>. \
<img src="http://example.invalid/a.png" onerror="window.__pwned=4"> ![x](http://example.invalid/x.png) \
[click](http://example.invalid/) ${window.__pwned=5} $$\\href{http://example.invalid}{x}$$ `code` **bold**

Organisers of the Zorblat festival said the Quuxtown crowd was the largest ever.
"""


# --- rendering helpers (no browser) --------------------------------------------------------------


def test_esc_neutralises_markup_and_template_delimiters():
    out = ui.esc('<script>x</script> <img onerror="a"> ${x} $$y$$ `z` {{w}} \\')
    assert "<" not in out and ">" not in out and '"' not in out
    assert "$" not in out and "{" not in out and "`" not in out and "\\" not in out
    assert html.unescape(out) == '<script>x</script> <img onerror="a"> ${x} $$y$$ `z` {{w}} \\'


@given(st.text(alphabet=st.characters(blacklist_characters="\r", blacklist_categories=("Cs",))))
def test_answer_and_user_html_round_trip(text):
    assert ui.plain_text(ui.answer_html(text)) == text
    assert ui.plain_text(ui.answer_html(text, refused=True)) == text
    assert ui.plain_text(ui.user_html(text)) == text


def test_answer_html_styles_markers_and_labels_refusals():
    out = ui.answer_html("Twenty-two died [1], <b>110</b> hurt [2].")
    assert '<span class="rag-cite">[1]</span>' in out and "&lt;b&gt;110&lt;/b&gt;" in out
    refused = ui.answer_html("The articles don't say.", refused=True)
    assert "rag-refused" in refused and "Not in the articles" in refused


def test_history_pairs_from_chatbot_messages():
    msgs = [{"role": "user", "content": ui.user_html("Who <won>?")},
            {"role": "assistant", "content": [{"type": "text", "text": ui.answer_html("Alice [1].")}]},
            {"role": "user", "content": ui.user_html("When?")},
            {"role": "assistant", "content": ui.answer_html("No idea.", refused=True)}]
    assert ui.history_pairs(msgs) == [("Who <won>?", "Alice [1]."), ("When?", "No idea.")]
    assert ui.history_pairs(None) == []


def test_passage_html_marks_the_cited_span_in_its_paragraph():
    text = "First paragraph.\n\nAlpha <b>beta</b> gamma. Delta epsilon.\n\nLast one."
    start = text.index("<b>")
    end = text.index("gamma.") + len("gamma.")
    out = ui.passage_html(text, start, end)
    assert out == "Alpha <mark>&lt;b&gt;beta&lt;/b&gt; gamma.</mark> Delta epsilon."
    long = "word " * 200
    out = ui.passage_html(long + "KEY" + long, 1000, 1003, context=50)
    assert out.startswith("…") and out.endswith("…") and "<mark>KEY</mark>" in out and len(out) < 160


def _citation(**kw):
    d = dict(n=1, doc_id="d1", title="<script>t</script>", date=None, source="/x/<img src=y>.md",
             snippet="quoted <i>span</i>", start=6, end=23, score=1.0)
    d.update(kw)
    return Citation(**d)


class _FakeArticles:
    """Just enough engine for sources_html: article(doc_id).text."""

    def __init__(self, text):
        self.text = text

    def article(self, doc_id):
        return SimpleNamespace(text=self.text)


def test_sources_html_escapes_everything_and_labels_closest_passages():
    eng = _FakeArticles("Intro quoted <i>span</i> outro.")
    ans = Answer(text="x [1]", citations=[_citation()], refused=False, backend="extractive", question='q"<')
    out = ui.sources_html(eng, ans)
    assert "<script>" not in out and "<img" not in out and "<i>" not in out
    assert "<mark>quoted &lt;i&gt;span&lt;/i&gt;</mark>" in out and "undated" in out
    assert 'data-question="q&quot;&lt;"' in out
    refused = ui.sources_html(eng, Answer(text="no", citations=[_citation()], refused=True, backend="extractive"))
    assert "Closest passages" in refused and "do not answer" in refused
    # a snippet that no longer matches the article is still shown, escaped
    assert "<mark>quoted &lt;i&gt;span&lt;/i&gt;</mark>" in ui.sources_html(_FakeArticles("changed"), ans)


def test_citations_in_one_paragraph_share_one_passage_with_each_span_numbered():
    """An overview quotes two sentences of one paragraph: the card showed that paragraph twice."""
    text = "Intro.\n\nAlpha beta. Gamma delta. Epsilon.\n\nOther paragraph here."
    def cite(n, quote):
        return _citation(n=n, snippet=quote, start=text.index(quote), end=text.index(quote) + len(quote))
    ans = Answer(text="x [1] y [2] z [3]", backend="extractive", refused=False,
                 citations=[cite(1, "Gamma delta."), cite(2, "Other paragraph here."), cite(3, "Alpha beta.")])
    out = ui.sources_html(_FakeArticles(text), ans)
    passages = re.findall(r'<blockquote class="rag-passage">(.*?)</blockquote>', out)
    assert passages == [
        '<span class="rag-n">[3]</span> <mark>Alpha beta.</mark> <span class="rag-n">[1]</span> '
        '<mark>Gamma delta.</mark> Epsilon.',
        '<span class="rag-n">[2]</span> <mark>Other paragraph here.</mark>']
    # a citation whose span no longer matches the article shows its snippet alone; the others keep
    # their paragraph
    stale = _citation(n=4, snippet="gone from the article", start=0, end=5)
    out = ui.sources_html(_FakeArticles(text), replace(ans, citations=[*ans.citations, stale]))
    passages = re.findall(r'<blockquote class="rag-passage">(.*?)</blockquote>', out)
    assert passages[-1] == '<span class="rag-n">[4]</span> <mark>gone from the article</mark>'
    assert "<mark>Gamma delta.</mark> Epsilon." in passages[0]


def test_backend_label_and_fallback():
    assert "offline extractive" in ui.backend_html("extractive")
    out = ui.backend_html("extractive", "openai:gpt-4o-mini failed: <timeout>")
    assert "rag-fallback" in out and "fallback" in out and "&lt;timeout&gt;" in out
    assert "openai:llama3" in ui.backend_html("openai:llama3")


@pytest.mark.parametrize("name,expected", [("news.md", "news.md"), ("../../etc/passwd", "passwd"),
                                           (".hidden.txt", "hidden.txt"), ("a<b>|c.json", "a_b_c.json"),
                                           ("", "upload"), ("...", "upload")])
def test_safe_name(name, expected):
    assert ui.safe_name(name) == expected


def test_parse_auth():
    assert ui.parse_auth(None) is None
    assert ui.parse_auth("alice:pa:ss") == ("alice", "pa:ss")
    with pytest.raises(rag.UserError):
        ui.parse_auth("alice")


def test_ui_auth_comes_from_settings_env():
    s = rag.Settings.from_env({"RAG_UI_AUTH": "bob:pw"})
    assert s.ui_auth == "bob:pw" and "pw" not in repr(s)


# --- the app in Chromium ------------------------------------------------------------------------


def start(engine, auth=None):
    app = ui.build_app(engine)
    port = free_port()
    ui.launch(app, port=port, block=False, quiet=True, auth=auth)
    return app, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    d = tmp_path_factory.mktemp("ui")
    engine = seeds_engine(d, embedder)
    app, url = start(engine)
    yield SimpleNamespace(url=url, engine=engine, dir=d)
    app.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium, or `make browser-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, served, tmp_path):
    """A fresh page; records every request and fails the test if one leaves the server's origin."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.requests = []
    pg.dialogs = []
    pg.csp_violations = []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("console", lambda m: "Content Security Policy" in m.text and pg.csp_violations.append(m.text))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    pg.screenshot(path=str(tmp_path / "final.png"))
    ctx.close()
    assert_same_origin(pg.requests, served.url)
    assert pg.csp_violations == []  # the app itself lives within its content security policy


def assert_same_origin(urls, origin):
    outside = [u for u in urls if not (u.startswith(origin + "/") or u == origin or u.startswith(("data:", "blob:")))]
    assert not outside, f"the page made requests outside {origin}: {outside}"


def open_app(pg, url):
    pg.goto(url + "/")
    pg.wait_for_selector("#rag-question textarea")


def ask(pg, question, n_answers):
    """Type a question, wait until its answer and its sources panel are shown."""
    pg.fill("#rag-question textarea", question)
    pg.press("#rag-question textarea", "Enter")
    pg.wait_for_function("n => document.querySelectorAll('#rag-chat .rag-answer').length >= n", arg=n_answers)
    pg.locator("#rag-sources-panel .rag-sources").filter(has=pg.locator("h3")).first.wait_for()
    pg.wait_for_function(
        "q => { const s = document.querySelector('#rag-sources-panel .rag-sources');"
        " return s && s.dataset.question === q; }", arg=question)
    return pg.locator("#rag-chat .rag-answer").nth(n_answers - 1).inner_text()


def upload(pg, paths):
    with pg.expect_file_chooser() as fc:
        pg.click("#rag-upload")
    fc.value.set_files([str(p) for p in paths])
    pg.wait_for_selector("#rag-report .rag-report")
    return pg.inner_text("#rag-report")


@pytest.mark.browser
def test_seed_question_shows_answer_with_marker_and_cited_snippet(page, served, tmp_path):
    open_app(page, served.url)
    assert "offline extractive" in page.inner_text("#rag-backend")
    assert "4 articles" in page.inner_text("#rag-stats")
    # what "this week" can reach, and how many articles no date window can
    assert "dated 2024-01-01 to 2024-03-27 (1 undated)" in page.inner_text("#rag-stats")
    answer = ask(page, SEED_QUESTION, 1)
    assert "[1]" in answer
    expected = served.engine.query(SEED_QUESTION)
    panel = page.inner_text("#rag-sources-panel")
    assert not expected.refused and expected.citations
    first = expected.citations[0]
    assert first.snippet in panel and first.title in panel
    assert page.locator("#rag-sources-panel mark").first.inner_text() == first.snippet
    page.screenshot(path=str(tmp_path / "answer.png"))


@pytest.mark.browser
def test_follow_up_uses_history_and_new_chat_clears(page, served):
    open_app(page, served.url)
    ask(page, SEED_QUESTION, 1)
    follow = ask(page, "How many were injured there?", 2)
    assert "[1]" in follow
    assert page.locator("#rag-chat .rag-refused").count() == 0
    assert "Belgorod" in page.inner_text("#rag-sources-panel")  # the condensed question kept the place
    page.click("#rag-new")
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-answer').length === 0")
    assert "Ask a question" in page.inner_text("#rag-sources-panel")


@pytest.mark.browser
def test_refusal_looks_like_one_and_shows_closest_passages(page, served):
    open_app(page, served.url)
    ask(page, "What is the boiling point of liquid nitrogen in Fahrenheit?", 1)
    assert page.locator("#rag-chat .rag-refused").count() == 1
    assert "not in the articles" in page.inner_text("#rag-chat").lower()
    panel = page.inner_text("#rag-sources-panel")
    assert "Closest passages" in panel and "do not answer" in panel
    assert page.locator("#rag-sources-panel .rag-src").count() >= 1


@pytest.mark.browser
def test_date_range_and_passages_controls(page, served):
    open_app(page, served.url)
    page.fill("#rag-since input, #rag-since textarea", "2024-03-01")
    page.fill("#rag-topk input[type=number]", "2")
    page.press("#rag-topk input[type=number]", "Enter")
    ask(page, "What happened in Belgorod?", 1)
    metas = page.locator("#rag-sources-panel .rag-meta").all_inner_texts()
    assert metas and all(m.startswith("2024-03") for m in metas), metas
    assert len(metas) <= 2
    # a malformed date is a warning, not a crash; the question stays in the box
    page.fill("#rag-since input, #rag-since textarea", "March")
    page.fill("#rag-question textarea", "Anything?")
    page.press("#rag-question textarea", "Enter")
    page.wait_for_selector("text=must be a date like")
    assert page.input_value("#rag-question textarea") == "Anything?"


@pytest.mark.browser
def test_upload_then_ask_about_it(page, served, tmp_path):
    new = tmp_path / "harbour.md"
    new.write_text("date 2024-05-05\n# Harbour bridge reopens\n\nThe Velmora harbour bridge reopened on Monday "
                   "after a repair that cost 48 million euros, the city engineer Ilse Brandt said.\n",
                   encoding="utf-8")
    bad = tmp_path / "notes.xyz"
    bad.write_text("not an article", encoding="utf-8")
    open_app(page, served.url)
    report = upload(page, [new, bad])
    assert "1 added" in report
    assert "notes.xyz" in report and "unsupported" in report
    assert "5 articles" in page.inner_text("#rag-stats")
    assert (served.engine.index_dir / "uploads" / "harbour.md").exists()
    answer = ask(page, "How much did the Velmora harbour bridge repair cost?", 1)
    assert "[1]" in answer
    panel = page.inner_text("#rag-sources-panel")
    assert "harbour.md" in panel and "48 million euros" in panel


@pytest.mark.browser
def test_untrusted_article_renders_inert(page, served):
    planted = served.dir / "planted"
    planted.mkdir(exist_ok=True)
    (planted / "zorblat.md").write_text(EVIL, encoding="utf-8")
    served.engine.ingest([planted], progress=False)
    open_app(page, served.url)
    answer = ask(page, "How many visitors did the Zorblat festival draw?", 1)
    page.wait_for_timeout(1000)  # give any injected handler or image a chance to fire
    panel = page.inner_text("#rag-sources-panel")
    # the markup is shown as text ...
    assert "<script>window.__pwned=3</script>" in answer + panel
    for literal in ("<script>window.__pwned=1</script>", 'onerror="window.__pwned=4"',
                    "![x](http://example.invalid/x.png)", "${window.__pwned=5}"):
        assert literal in panel, literal
    # ... and never becomes elements, runs, or fetches
    ask(page, "Who said the Quuxtown crowd was the largest ever?", 2)
    page.wait_for_timeout(1000)
    injected = page.evaluate(
        "Array.from(document.querySelectorAll('#rag-chat *, #rag-sources-panel *'))"
        ".filter(e => ['SCRIPT', 'IMG', 'A', 'IFRAME', 'OBJECT', 'EMBED'].includes(e.tagName)"
        " || Array.from(e.attributes).some(a => a.name.startsWith('on')))"
        ".map(e => e.outerHTML.slice(0, 120))")
    assert injected == []
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert not any("example.invalid" in u for u in page.requests)


@pytest.mark.browser
def test_content_security_policy_blocks_other_origins(browser, served):
    """Defence in depth: even markup that slipped through could not make the page fetch elsewhere."""
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(served.url + "/")
    pg.wait_for_selector("#rag-question textarea")
    assert pg.locator('meta[http-equiv="Content-Security-Policy"]').count() == 1
    verdict = pg.evaluate("""() => new Promise(done => {
        document.addEventListener('securitypolicyviolation', e => done('blocked ' + e.blockedURI));
        const img = document.createElement('img');
        img.src = 'http://example.invalid/x.png';
        document.body.appendChild(img);
        setTimeout(() => done('not blocked'), 5000);
    })""")
    ctx.close()
    assert verdict == "blocked http://example.invalid/x.png"


@pytest.mark.browser
def test_login_when_auth_is_set(browser, served, tmp_path):
    app, url = start(served.engine, auth=("alice", "pa:ss"))
    try:
        ctx = browser.new_context()
        pg = ctx.new_page()
        pg.set_default_timeout(WAIT_MS)
        requests = []
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(url + "/")
        pg.wait_for_selector("input[type=password]")
        assert pg.locator("#rag-question").count() == 0
        pg.fill("input[data-testid=textbox]", "alice")
        pg.fill("input[type=password]", "wrong")
        pg.click("button:has-text('Login')")
        pg.wait_for_selector("text=Incorrect")
        pg.fill("input[data-testid=textbox]", "alice")
        pg.fill("input[type=password]", "pa:ss")
        pg.click("button:has-text('Login')")
        pg.wait_for_selector("#rag-question textarea")
        assert "[1]" in ask(pg, SEED_QUESTION, 1)
        pg.screenshot(path=str(tmp_path / "logged-in.png"))
        ctx.close()
        assert_same_origin(requests, url)
    finally:
        app.close()
