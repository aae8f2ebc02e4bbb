"""The chat window: a Gradio app over rag's public API. The only module that imports gradio.

``python ui.py`` (or ``rag ui``) serves it on http://127.0.0.1:7860 (``--host``, ``--port``,
``--index``), building the index from ``seeds/`` when it is empty. ``build_app(engine)`` returns the
Blocks for tests; ``launch(app, ...)`` starts it with the queue limits, theme and CSS.

Safety with untrusted text: everything that comes from articles, answers or users is HTML-escaped on
the server (plus ``$ { } ` \\`` so no client-side template or LaTeX pass sees markup) and the
chatbot renders it with markdown and LaTeX off, so an article's ``<script>``, ``onerror`` or
``![x](http://...)`` is shown as text and never fetched. The theme uses system fonts, so the page
loads nothing from outside the server it came from; analytics are off (``import rag`` sets
``GRADIO_ANALYTICS_ENABLED=False`` before gradio is imported).

State: the conversation lives in the browser (the chatbot's value); follow-ups rebuild the history
from it, so the server keeps no per-user state.
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import rag  # first: switches off analytics/telemetry before gradio is imported
from rag.config import Settings
from rag.errors import RagError
from rag.types import Answer, IngestReport, Status

import gradio as gr  # noqa: E402  (after rag on purpose)

CHAT_CONCURRENCY = 2  # answers computed at once (CPU-bound); the rest wait in the queue
QUEUE_MAX = 32  # requests waiting beyond this are refused with "queue full"
MAX_PASSAGES = 20
CONTEXT_CHARS = 280  # passage context shown on each side of a cited span

# ----------------------------------------------------------------------------------------------
# Rendering (pure functions: text in, escaped HTML out)
# ----------------------------------------------------------------------------------------------

_EXTRA_ESCAPES = {ord("$"): "&#36;", ord("{"): "&#123;", ord("}"): "&#125;", ord("`"): "&#96;",
                  ord("\\"): "&#92;"}
_MARKER = re.compile(r"\[(\d{1,3})\]")
_LABEL = re.compile(r'<div class="rag-label">.*?</div>', re.S)
_TAG = re.compile(r"<[^>]*>")
_BR = re.compile(r"<br\s*/?>")


def esc(text: str | None) -> str:
    """HTML-escape untrusted text, also neutralising template/LaTeX delimiters."""
    return html.escape(text or "", quote=True).translate(_EXTRA_ESCAPES)


def _lines(escaped: str) -> str:
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


def user_html(question: str) -> str:
    return f'<div class="rag-user">{_lines(esc(question))}</div>'


def answer_html(text: str, *, refused: bool = False) -> str:
    """An answer bubble: escaped text, ``[n]`` markers styled, refusals labelled."""
    body = _MARKER.sub(r'<span class="rag-cite">[\1]</span>', _lines(esc(text)))
    if refused:
        return (f'<div class="rag-answer rag-refused"><div class="rag-label">Not in the articles</div>'
                f'{body}</div>')
    return f'<div class="rag-answer">{body}</div>'


def status_html(status: Status) -> str:
    """A waiting bubble: the model is reading the sources (a local one can take a minute)."""
    return f'<div class="rag-status">{esc(status.message)}</div>'


def plain_text(fragment: str) -> str:
    """Invert user_html/answer_html: the original text back (labels dropped)."""
    return html.unescape(_TAG.sub("", _BR.sub("\n", _LABEL.sub("", fragment or ""))))


def _content_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else getattr(message, "content", "")
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict):
            parts.append(str(block.get("text") or ""))
        elif isinstance(block, str):
            parts.append(block)
        else:
            parts.append(str(getattr(block, "text", "") or ""))
    return "".join(parts)


def history_pairs(messages: list | None) -> list[tuple[str, str]]:
    """(question, answer) pairs from the chatbot's messages, for follow-up questions."""
    pairs: list[tuple[str, str]] = []
    question = None
    for m in messages or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        text = plain_text(_content_text(m))
        if role == "user":
            question = text
        elif role == "assistant" and question is not None:
            pairs.append((question, text))
            question = None
    return pairs


def passage_html(text: str, start: int, end: int, context: int = CONTEXT_CHARS) -> str:
    """The paragraph around ``text[start:end]`` (at most ``context`` chars each side), span marked."""
    a, b = _window(text, start, end, context)
    return _marked(text, a, b, [(start, end, "")])


def _window(text: str, start: int, end: int, context: int) -> tuple[int, int]:
    a = text.rfind("\n\n", 0, start)
    a = 0 if a < 0 else a + 2
    if start - a > context:
        a = start - context
        space = text.find(" ", a, start)
        a = space + 1 if space >= 0 else a
    b = text.find("\n\n", end)
    b = len(text) if b < 0 else b
    if b - end > context:
        b = end + context
        space = text.rfind(" ", end, b)
        b = space if space > end else b
    return a, b


def _marked(text: str, a: int, b: int, spans: list[tuple[int, int, str]]) -> str:
    """``text[a:b]`` escaped with each (start, end, label) span in it marked, its label before it."""
    out = ["…" if a > 0 and text[a - 1] not in "\n" else ""]
    pos = a
    for start, end, label in spans:
        gap = text[pos:start]
        out.append(_lines(esc(gap.lstrip() if pos == a else gap)) + label)
        out.append(f"<mark>{_lines(esc(text[start:end]))}</mark>")
        pos = end
    out.append(_lines(esc(text[pos:b].rstrip())))
    out.append("…" if b < len(text) and text[b] not in "\n" else "")
    return "".join(out)


def passages_html(text: str | None, cites: list, context: int = CONTEXT_CHARS) -> list[str]:
    """One passage per citation of one article, in citation order, except that citations whose
    passages overlap share one, each span marked with its [n]: two sentences of one paragraph showed
    that paragraph twice. A citation whose span no longer matches ``text`` (the article changed, or
    could not be read) shows its snippet alone."""
    label = (lambda n: f'<span class="rag-n">[{n}]</span> ') if len(cites) > 1 else (lambda n: "")
    groups: list[list] = []  # each: [a, b, [(start, end, n), ...]]
    out: list[tuple[int, str]] = []  # (first n, passage)
    for c in sorted(cites, key=lambda c: c.start):
        n = int(c.n)
        if text is None or text[c.start:c.end] != c.snippet:
            out.append((n, f"{label(n)}<mark>{_lines(esc(c.snippet))}</mark>"))
            continue
        a, b = _window(text, c.start, c.end, context)
        last = groups[-1] if groups else None
        if last and a < last[1] and c.start >= last[2][-1][1]:
            last[1] = max(last[1], b)
            last[2].append((c.start, c.end, n))
        else:
            groups.append([a, b, [(c.start, c.end, n)]])
    out += [(min(n for _, _, n in spans), _marked(text, a, b, [(s, e, label(n)) for s, e, n in spans]))
            for a, b, spans in groups]
    return [html for _, html in sorted(out, key=lambda x: x[0])]


def _short_source(source: str) -> str:
    if re.match(r"^[a-z]+://", source or "", re.I):
        return source
    return Path(source).name or source


def sources_html(engine, answer: Answer | None) -> str:
    """The cited articles in answer order, one card each (title, date, source), with every passage
    the answer quotes from it highlighted; where the sources disagree, a note above them."""
    if answer is None:
        return ('<div class="rag-sources"><h3>Sources</h3><p class="rag-muted">Ask a question: the passages '
                'each answer cites appear here, with the quoted span highlighted.</p></div>')
    if not answer.citations:
        return (f'<div class="rag-sources" data-question="{esc(answer.question)}"><h3>Sources</h3>'
                '<p class="rag-muted">No passage in the index matches this question (check the date '
                'range).</p></div>')
    head = ('<h3>Closest passages</h3><p class="rag-muted rag-refused-note">They do not answer the question.</p>'
            if answer.refused else "<h3>Sources</h3>")
    texts: dict[str, str | None] = {}
    by_doc: dict[str, list] = {}
    for c in answer.citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    cards = []
    for doc_id, cites in by_doc.items():
        if doc_id not in texts:
            try:
                texts[doc_id] = engine.article(doc_id).text
            except RagError:
                texts[doc_id] = None
        text = texts[doc_id]
        passages = [f'<blockquote class="rag-passage">{q}</blockquote>' for q in passages_html(text, cites)]
        c = cites[0]
        numbers = "".join(f"[{int(x.n)}]" for x in cites)
        cards.append(
            f'<article class="rag-src" id="rag-src-{int(c.n)}">'
            f'<div class="rag-src-head"><span class="rag-n">{numbers}</span> '
            f'<span class="rag-title">{esc(c.title) or "Untitled"}</span></div>'
            f'<div class="rag-meta">{esc(c.date or "undated")} · '
            f'<span class="rag-source" title="{esc(c.source)}">{esc(_short_source(c.source))}</span></div>'
            f'{"".join(passages)}</article>')
    cls = "rag-sources rag-sources-refused" if answer.refused else "rag-sources"
    return (f'<div class="{cls}" data-question="{esc(answer.question)}">{conflicts_html(answer)}{head}'
            f'{"".join(cards)}</div>')


def conflicts_html(answer: Answer) -> str:
    """Where the cited sources disagree: each value with its [n] and its article's date."""
    conflicts = getattr(answer, "conflicts", None) or []
    if not conflicts:
        return ""
    rows = []
    for d in conflicts:
        what = {"killed": "number killed", "injured": "number injured"}.get(d.quantity, d.quantity)
        subject = f" ({esc(d.subject)})" if d.subject else ""
        values = "; ".join(f'{esc(cl.value)} <span class="rag-n">[{int(cl.n)}]</span>'
                           + (f' <span class="rag-muted">{esc(cl.date)}</span>' if cl.date else "")
                           for cl in d.claims)
        rows.append(f'<p class="rag-conflict"><span class="rag-conflict-what">{esc(what)}</span>{subject}: '
                    f'{values}</p>')
    return f'<div class="rag-conflicts"><h3>Reports differ</h3>{"".join(rows)}</div>'


SEARCHING = '<div class="rag-sources"><h3>Sources</h3><p class="rag-muted">Searching the articles…</p></div>'


def backend_html(backend: str, fallback_reason: str | None = None, kind: str | None = None) -> str:
    label = "offline extractive" if backend == "extractive" else backend
    shape = f' <span class="rag-kind">· {esc(kind)} answer</span>' if kind else ""
    if fallback_reason:
        return (f'<div class="rag-backend rag-fallback">Answerer: <b>{esc(label)}</b>{shape} (fallback: '
                f'{esc(fallback_reason)})</div>')
    return f'<div class="rag-backend">Answerer: <b>{esc(label)}</b>{shape}</div>'


def stats_html(engine) -> str:
    try:
        st = engine.stats()
    except RagError as e:
        return f'<div class="rag-stats">{esc(str(e))}</div>'
    dates = f" · dated {esc(st.date_span)}" if st.date_span else ""
    return (f'<div class="rag-stats">{st.articles} articles · {st.chunks} passages{dates} · '
            f'model {esc(st.model)}</div>')


def report_html(report: IngestReport, names: list[str], folder: Path) -> str:
    parts = [f"{report.added} added", f"{report.updated} updated"]
    if report.removed:
        parts.append(f"{report.removed} removed")
    parts.append(f"{report.unchanged} unchanged")
    out = [f'<div class="rag-report"><div>Uploaded {len(names)} file(s): {", ".join(parts)}; '
           f'{report.chunks_embedded} passage{"" if report.chunks_embedded == 1 else "s"} embedded in '
           f'{report.seconds:.1f}s.</div>']
    if report.skipped:
        items = []
        for path, reason in report.skipped:
            p = Path(path)
            shown = p.name if p.parent == folder else path
            items.append(f"<li><code>{esc(shown)}</code>: {esc(reason)}</li>")
        out.append(f'<div class="rag-skipped">Skipped {len(report.skipped)}:<ul>{"".join(items)}</ul></div>')
    out.append("</div>")
    return "".join(out)


def safe_name(name: str) -> str:
    """A plain file name for the uploads folder (no directories, no leading dots)."""
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", Path(name or "").name).strip(" .")
    return (base or "upload")[-120:]


def _check_date(value: str | None, what: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise rag.UserError(f"{what} must be a date like 2024-01-31, not {value!r}") from None


def _initial_backend(settings: Settings) -> str:
    return "extractive" if settings.answerer == "extractive" else f"openai:{settings.llm_model}"


# ----------------------------------------------------------------------------------------------
# The app
# ----------------------------------------------------------------------------------------------

CSS = """
.gradio-container { max-width: 1400px !important; }
#rag-header h1 { margin: 0; font-size: 1.5rem; }
#rag-header p { margin: 0.15rem 0 0; color: var(--body-text-color-subdued); }
.rag-stats, .rag-backend { font-size: 0.9rem; color: var(--body-text-color-subdued); }
.rag-backend b { color: var(--body-text-color); }
.rag-fallback { color: #a15c00; }
.rag-status { color: var(--body-text-color-subdued); font-style: italic; }
.rag-cite { color: var(--color-accent); font-weight: 600; white-space: nowrap; }
.rag-refused { border-left: 4px solid #d97706; padding-left: 0.6rem; font-style: italic; }
.rag-label { font-style: normal; font-weight: 600; font-size: 0.8rem; text-transform: uppercase;
             letter-spacing: 0.04em; color: #b45309; margin-bottom: 0.2rem; }
.rag-sources h3 { margin: 0 0 0.5rem; font-size: 1.05rem; }
.rag-muted { color: var(--body-text-color-subdued); margin: 0.2rem 0 0.6rem; }
.rag-refused-note { color: #b45309; }
.rag-src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.6rem 0.8rem;
           margin-bottom: 0.6rem; background: var(--background-fill-primary); }
.rag-sources-refused .rag-src { border-style: dashed; }
.rag-src-head { font-weight: 600; }
.rag-n { color: var(--color-accent); }
.rag-meta { font-size: 0.82rem; color: var(--body-text-color-subdued); margin: 0.15rem 0 0.4rem;
            overflow-wrap: anywhere; }
.rag-passage { margin: 0; padding: 0 0 0 0.6rem; border-left: 3px solid var(--border-color-primary);
               font-size: 0.92rem; line-height: 1.45; overflow-wrap: anywhere; }
.rag-passage mark { background: rgba(250, 204, 21, 0.45); color: inherit; padding: 0 1px; border-radius: 2px; }
.rag-passage + .rag-passage { margin-top: 0.4rem; }
.rag-conflicts { border-left: 4px solid #b45309; padding: 0.3rem 0.6rem; margin-bottom: 0.6rem;
                 background: rgba(217, 119, 6, 0.08); border-radius: 4px; }
.rag-conflict { margin: 0.2rem 0; font-size: 0.92rem; }
.rag-conflict-what { font-weight: 600; }
.rag-kind { font-weight: normal; }
.rag-report { font-size: 0.9rem; }
.rag-small { font-size: 0.8rem; margin: 0; }
.rag-skipped { color: #b45309; margin-top: 0.3rem; }
.rag-skipped ul { margin: 0.2rem 0 0 1rem; padding: 0; }
#rag-chat .placeholder { text-align: center; color: var(--body-text-color-subdued); padding: 0 2rem; }
#rag-sources-panel .rag-sources { max-height: 600px; overflow-y: auto; padding-right: 0.3rem; }
"""

# Defence in depth: even if some markup slipped through, the browser may only talk to this server.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
       "frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'")
HEAD = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'

SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]


def make_theme():
    # plain strings = system fonts: nothing is fetched from Google Fonts or any other origin
    return gr.themes.Default(primary_hue="blue", neutral_hue="slate", font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def build_app(engine) -> gr.Blocks:
    """The Blocks for ``engine``. Call :func:`launch` (or ``.queue().launch(...)``) to serve it."""
    settings = engine.settings
    debug = bool(getattr(settings, "debug", False))
    uploads = Path(engine.index_dir) / "uploads"

    def _warn(e: RagError):
        if debug:
            raise e
        gr.Warning(str(e))

    def respond(message, messages, top_k, since, until, as_of=""):
        question = (message or "").strip()
        messages = list(messages or [])
        if not question:
            gr.Warning("Type a question about the articles.")
            yield messages, message, gr.skip(), gr.skip()
            return
        try:
            since_d, until_d = _check_date(since, "Since"), _check_date(until, "Until")
            as_of_d = _check_date(as_of, "As of")
        except RagError as e:
            _warn(e)
            yield messages, message, gr.skip(), gr.skip()
            return
        history = history_pairs(messages)
        messages.append({"role": "user", "content": user_html(question)})
        yield messages, "", SEARCHING, gr.skip()
        text, final = "", None
        try:
            for piece in engine.stream(question, history=history, top_k=int(top_k), since=since_d, until=until_d,
                                       as_of=as_of_d, status=True):
                if isinstance(piece, Answer):
                    final = piece
                elif isinstance(piece, Status):
                    if not text:  # until the first token: who is reading what, and for how long
                        yield messages + [{"role": "assistant", "content": status_html(piece)}], gr.skip(), \
                            gr.skip(), gr.skip()
                elif piece:
                    text += piece
                    yield messages + [{"role": "assistant", "content": answer_html(text)}], gr.skip(), \
                        gr.skip(), gr.skip()
        except RagError as e:
            _warn(e)
            yield messages[:-1], question, sources_html(engine, None), gr.skip()
            return
        assert final is not None, "engine.stream ended without an Answer"
        messages.append({"role": "assistant", "content": answer_html(final.text, refused=final.refused)})
        yield messages, gr.skip(), sources_html(engine, final), backend_html(final.backend, final.fallback_reason,
                                                                             final.kind)

    def new_chat():
        return [], "", sources_html(engine, None)

    def add_files(files, progress=gr.Progress()):
        if not files:
            gr.Warning("Choose one or more files first.")
            return gr.skip(), gr.skip()
        uploads.mkdir(parents=True, exist_ok=True)
        names = []
        for f in files if isinstance(files, list) else [files]:
            src = Path(f if isinstance(f, str) else getattr(f, "name", f))
            dest = uploads / safe_name(src.name)
            shutil.copyfile(src, dest)
            names.append(dest.name)
        progress(0, desc=f"Indexing {len(names)} file(s)…")

        def on_progress(done, total, path):
            progress((done, total), desc=f"Indexing {Path(path).name}", unit="files")

        try:
            report = engine.ingest([uploads], progress=False, on_progress=on_progress)
        except RagError as e:
            _warn(e)
            return f'<div class="rag-report rag-skipped">{esc(str(e))}</div>', gr.skip()
        return report_html(report, names, uploads.resolve()), stats_html(engine)

    def ask(question: str, history: list | None = None, top_k: int = 5, since: str = "",
            until: str = "", as_of: str = "") -> dict:
        """Answer a question from the indexed articles. history: [[question, answer], ...]; as_of
        (YYYY-MM-DD, default today): the "now" that "this week" and "latest" refer to.
        Returns the Answer as JSON: text, refused, backend, fallback_reason, kind ("factoid" or
        "overview"), citations (n, doc_id, title, date, source, snippet, start, end, score) and
        conflicts (quantity, subject, claims: value, n, doc_id, date)."""
        try:
            pairs = [(str(q), str(a)) for q, a in (history or [])]
            ans = engine.query(question, history=pairs, top_k=int(top_k or settings.top_k),
                               since=_check_date(since, "since"), until=_check_date(until, "until"),
                               as_of=_check_date(as_of, "as_of"))
        except RagError as e:
            raise gr.Error(str(e)) from e
        return ans.to_dict()

    with gr.Blocks(title="News Q&A", analytics_enabled=False) as app:
        with gr.Row(elem_id="rag-header"):
            gr.HTML('<h1>News Q&amp;A</h1><p>Answers quoted from your articles, every claim with a '
                    'numbered source.</p>', js_on_load=None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=6, min_width=420):
                chatbot = gr.Chatbot(
                    label="Conversation", show_label=False, elem_id="rag-chat", height=560, render_markdown=False,
                    sanitize_html=True, latex_delimiters=[], allow_tags=False, feedback_options=None,
                    buttons=["copy"], allow_file_downloads=False, autoscroll=True,
                    placeholder="Ask about the news in the index, e.g. <i>How many people were killed in "
                                "Belgorod?</i>")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(show_label=False, placeholder="Ask a question about the articles…",
                                          elem_id="rag-question", scale=8, lines=1, max_lines=4, autofocus=True,
                                          container=False)
                    ask_btn = gr.Button("Ask", variant="primary", elem_id="rag-ask", scale=0, min_width=80)
                    new_btn = gr.Button("New chat", elem_id="rag-new", scale=0, min_width=130)
            with gr.Column(scale=5, min_width=320):
                sources = gr.HTML(sources_html(engine, None), elem_id="rag-sources-panel", js_on_load=None,
                                  padding=True, container=True)
            with gr.Column(scale=2, min_width=250):
                backend = gr.HTML(backend_html(_initial_backend(settings)), elem_id="rag-backend", js_on_load=None)
                stats = gr.HTML(stats_html(engine), elem_id="rag-stats", js_on_load=None)
                top_k = gr.Slider(1, MAX_PASSAGES, value=settings.top_k, step=1, label="Passages",
                                  elem_id="rag-topk")
                since = gr.Textbox(label="Since", placeholder="YYYY-MM-DD", elem_id="rag-since", max_lines=1)
                until = gr.Textbox(label="Until", placeholder="YYYY-MM-DD", elem_id="rag-until", max_lines=1)
                as_of = gr.Textbox(label="As of", placeholder="today", elem_id="rag-as-of", max_lines=1,
                                   info='what "this week" and "latest" refer to')
                upload = gr.UploadButton("Add articles…", file_count="multiple", type="filepath",
                                         elem_id="rag-upload", variant="secondary")
                gr.HTML('<div class="rag-muted rag-small">txt, md, html, json, jsonl, RSS/Atom or pdf; added to '
                        'the index</div>', js_on_load=None)
                report = gr.HTML("", elem_id="rag-report", js_on_load=None)

        chat_io = dict(fn=respond, inputs=[question, chatbot, top_k, since, until, as_of],
                       outputs=[chatbot, question, sources, backend], api_visibility="private",
                       concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat", show_progress="minimal",
                       show_progress_on=[sources])
        question.submit(**chat_io)
        ask_btn.click(**chat_io)
        new_btn.click(new_chat, None, [chatbot, question, sources], queue=False, api_visibility="private")
        chatbot.clear(new_chat, None, [chatbot, question, sources], queue=False, api_visibility="private")
        upload.upload(add_files, [upload], [report, stats], api_visibility="private",
                      concurrency_limit=1, concurrency_id="ingest", show_progress_on=[report])
        gr.api(ask, api_name="ask", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
    return app


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` (the password may contain colons) → (user, password)."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise rag.UserError("RAG_UI_AUTH must look like user:password")
    return user, password


def launch(app: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           block: bool = True, max_file_bytes: int = 20_000_000, quiet: bool = False):
    """Serve ``app`` with the queue limits, theme and CSS. ``block=False`` returns once it is up."""
    app.queue(default_concurrency_limit=CHAT_CONCURRENCY, max_size=QUEUE_MAX)
    return app.launch(
        server_name=host, server_port=port, auth=auth, auth_message="Log in to ask about the articles."
        if auth else None, prevent_thread_lock=not block, share=False, inbrowser=False, quiet=quiet,
        show_error=False, ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
        max_file_size=max_file_bytes, theme=make_theme(), css=CSS, head=HEAD, footer_links=["api"])


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, *, block: bool = True):
    """Open the index (building it from seeds/ when empty) and serve the chat window."""
    engine = rag.Engine(settings=settings)
    print(f"opening the index at {engine.index_dir} (built from seeds/ on first run)…", file=sys.stderr)
    engine.ensure_index()
    app = build_app(engine)
    auth = parse_auth(getattr(settings, "ui_auth", None))
    launch(app, host=host, port=port, auth=auth, block=block, max_file_bytes=settings.max_file_bytes)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python ui.py", description="Serve the news Q&A chat window.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--index", metavar="DIR", help="index folder (default ./index, or RAG_INDEX)")
    args = ap.parse_args(argv)
    settings = Settings.from_env(index_dir=Path(args.index) if args.index else None)
    try:
        return serve(settings, host=args.host, port=args.port) or 0
    except RagError as e:
        if settings.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
