"""The `rag` command: ingest, ask, chat, eval, ui, stats. Every command takes --index DIR.

Errors the user can act on print one line and exit 1; RAG_DEBUG=1 re-raises them with a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from .config import Settings, apply_offline_env
from .errors import RagError
from .types import Stats


def date_coverage(st: Stats) -> str:
    """The stats line of the dates covered (Stats.date_span), or why there is none."""
    return st.date_span or ("no article has a date" if st.articles else "none")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR", help="index folder (default ./index, or RAG_INDEX)")


def _query_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top-k", type=int, default=None, help=f"passages to retrieve (default: RAG_TOP_K or {Settings.top_k})")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only articles dated on or after this day")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="only articles dated on or before this day")
    p.add_argument("--source", help="only articles whose source/site/URL contains this text")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", dest="as_of",
                   help='the "now" that "this week", "latest", "yesterday" refer to (default today)')
    p.add_argument("--llm", choices=["auto", "extractive", "openai"], help="answerer (default: RAG_LLM or auto)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rag", description="Ask questions about a folder of news articles; "
                                 "every answer cites verbatim snippets.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ingest", help="add/update/remove articles so the index mirrors PATH...")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--dry-run", action="store_true", help="print the plan without writing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p = sub.add_parser("ask", help="answer one question")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    _common(p)
    _query_opts(p)
    p = sub.add_parser("chat", help="a conversation in the terminal (follow-ups use the history)")
    _common(p)
    _query_opts(p)
    p = sub.add_parser("stats", help="articles, chunks, model, size on disk, dates covered, last ingest")
    p.add_argument("--json", action="store_true")
    _common(p)
    p = sub.add_parser("ui", help="serve the chat window (Gradio) on 127.0.0.1:7860")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    _common(p)
    sub.add_parser("eval", help="score a QA set (see `rag eval --help`)", add_help=False)
    return ap


def _settings(args) -> Settings:
    return Settings.from_env(index_dir=Path(args.index) if getattr(args, "index", None) else None,
                             llm=getattr(args, "llm", None))


def format_answer(ans, width: int = 100) -> str:
    lines = [ans.text]
    label = ans.backend + (" · overview" if getattr(ans, "kind", "factoid") == "overview" else "") + \
        (f" — fallback: {ans.fallback_reason}" if ans.fallback_reason else "")
    if ans.citations and getattr(ans, "kind", "factoid") == "overview" and not ans.refused:
        # the answer already quotes every sentence: list each cited article once, in answer order
        lines.append("")
        lines.append("Sources:")
        by_doc: dict[str, list] = {}
        for c in ans.citations:
            by_doc.setdefault(c.doc_id, []).append(c)
        for cites in by_doc.values():
            c = cites[0]
            lines.append(f"{''.join(f'[{x.n}]' for x in cites)} {c.title} ({c.date or 'undated'})")
            lines.append(f"     {c.source}")
    elif ans.citations:
        lines.append("")
        lines.append("Closest passages:" if ans.refused else "Sources:")
        for c in ans.citations:
            snippet = c.snippet if len(c.snippet) <= 240 else c.snippet[:237].rstrip() + "…"
            lines.append(f"[{c.n}] {c.title} ({c.date or 'undated'}) — \"{snippet}\"")
            lines.append(f"     {c.source}")
    lines.append(f"({label})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    apply_offline_env()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "eval":
        from .eval import main as eval_main

        return eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    return guarded(lambda: _run(args, settings), debug=settings.debug)


def guarded(run, *, debug: bool, error_code: int = 1) -> int:
    """Run a command: a RagError becomes one line on stderr and ``error_code`` (re-raised under
    RAG_DEBUG=1); Ctrl-C exits 130; a closed pipe (``| head``) ends quietly."""
    try:
        code = run()
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except RagError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return error_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`rag ask … | head`): that is not an error of ours. Point stdout at
        # /dev/null so the interpreter's own flush at exit does not raise again (Python's signal docs)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args, settings: Settings) -> int:
    from .engine import Engine

    if args.cmd == "ui":
        from .config import apply_offline_env as _a

        _a()
        import importlib.util

        root = Path(__file__).resolve().parent.parent / "ui.py"
        spec = importlib.util.spec_from_file_location("rag_ui", root)
        if spec is None or not root.exists():
            raise RagError("ui.py not found next to the rag package; run `python ui.py` from the project folder")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.serve(settings, host=args.host, port=args.port) or 0
    engine = Engine(settings=settings)
    if args.cmd == "ingest":
        report = engine.ingest(args.paths, dry_run=args.dry_run, progress=not args.quiet and settings.progress)
        for path, reason in report.skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        print(report.summary())
        return 0
    if args.cmd == "stats":
        st = engine.stats()
        if args.json:
            print(json.dumps(st.__dict__, indent=2))
        else:
            print(f"index:        {st.index_dir} ({st.chroma})\narticles:     {st.articles}\nchunks:       {st.chunks}\n"
                  f"files:        {st.files}\nmodel:        {st.model}\non disk:      {st.bytes_on_disk / 1e6:.1f} MB\n"
                  f"dates:        {date_coverage(st)}\nlast ingest:  {st.last_ingest or 'never'}")
        return 0
    if args.cmd == "ask":
        ans = engine.query(args.question, top_k=args.top_k, since=args.since, until=args.until, source=args.source,
                           as_of=args.as_of)
        if args.json:
            print(json.dumps(ans.to_dict(), indent=2, ensure_ascii=False))
        else:
            print(format_answer(ans))
        return 0
    if args.cmd == "chat":
        return _chat(engine, args)
    raise RagError(f"unknown command {args.cmd}")


class _StatusLine:
    """While an LLM reads the sources, say so after "rag> ": rewritten in place on a terminal (with
    the seconds waited), printed once per stage otherwise; erased before the answer."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.stage: str | None = None
        self.shown = False

    def show(self, status) -> None:
        if self.tty:
            self.out.write(f"\r\033[Krag> ({status.message})")
        elif status.stage != self.stage:
            self.out.write(f"({status.message})\n     ")
        self.stage, self.shown = status.stage, True
        self.out.flush()

    def clear(self) -> None:
        if self.shown and self.tty:
            self.out.write("\r\033[Krag> ")
        self.shown = False


def _chat(engine, args) -> int:
    from .types import Answer, Status

    history: list[tuple[str, str]] = []
    print("Ask about the articles. Empty line or Ctrl-D to quit; /new starts over.")
    while True:
        try:
            q = input("you> ").strip()
        except EOFError:
            print()
            return 0
        if not q:
            return 0
        if q == "/new":
            history.clear()
            continue
        try:
            final = None
            sys.stdout.write("rag> ")
            sys.stdout.flush()
            line = _StatusLine()
            for piece in engine.stream(q, history=history, top_k=args.top_k, since=args.since, until=args.until,
                                       source=args.source, as_of=args.as_of, status=True):
                if isinstance(piece, Answer):
                    final = piece
                elif isinstance(piece, Status):
                    line.show(piece)
            line.clear()
            print(textwrap.indent(format_answer(final), "     ").lstrip())
            history.append((q, final.text))
        except RagError as e:
            print(f"error: {e}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
