"""QA sets for evaluation: our JSONL format, the RGB benchmark format, and the shipped seeds set.

One JSON object per line::

    {"id": "mayor", "question": "Who is the mayor of Kharkiv?", "answers": [["Ihor Terekhov", "Terekhov"]],
     "article": "000_6af0dd8ed78656d3.txt"}
    {"id": "two", "question": "...", "answers": ["22", "11"], "article": ["002_....txt", "003_....txt"]}
    {"id": "odesa", "question": "Who is the mayor of Odesa?", "unanswerable": true}
    {"id": "gov", "turns": [{"question": "Who is the governor of Belgorod?", "answers": ["Gladkov"]},
                            {"question": "Where did he post about the damage?", "answers": ["Telegram"]}]}

``answers`` (RGB's convention): a string, or a list whose every element is required; an element
that is itself a list is matched by any one of its alternatives. So ``["Kyiv", "Kharkiv"]`` needs
both cities, ``[["Zelensky", "Zelenskiy"]]`` needs one of two spellings.

Optional per question (or per turn): ``unanswerable`` (true: the articles do not say; a refusal is
the right answer), ``article`` (gold article(s): file name, source path/URL or doc id — retrieval
then counts passages from these articles instead of passages containing the answer), ``evidence``
(verbatim quotes of the gold passages, for citation support), ``since`` / ``until`` (YYYY-MM-DD
filters passed to the query), ``as_of`` (YYYY-MM-DD: the "now" that "this week", "latest"
refer to; default today), ``id``. A ``turns`` list makes a dialogue: each turn is asked with
the previous questions and the system's own previous answers as history.

Open questions ("What happened in Belgorod?") carry ``nuggets``: the facts a good overview
contains, each a list of alternative spellings — ``"nuggets": [["22"], ["110"], ["missiles",
"rockets"]]``. They are scored by nugget recall (the share of nuggets found in the answer); without
``answers`` the nuggets also serve as the gold for answer accuracy (all of them) and retrieval.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import UserError

SEEDS_QA = Path(__file__).resolve().parent / "data" / "seeds_qa.jsonl"
SEEDS_OPEN_QA = Path(__file__).resolve().parent / "data" / "seeds_open_qa.jsonl"  # open questions with nuggets


@dataclass(frozen=True)
class Turn:
    question: str
    answers: tuple[tuple[str, ...], ...]  # groups: every group required, any alternative in a group
    unanswerable: bool = False
    articles: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    as_of: str | None = None  # the "now" of "this week" / "latest" (a quiz's date); None: today
    nuggets: tuple[tuple[str, ...], ...] = ()  # open questions: facts a good answer contains (any alternative)
    # RealTime QA: the answer occurs in the articles the web search returned for this very question
    # (not only in another question's); rag eval reports accuracy on each side of it
    in_own_results: bool | None = None


@dataclass(frozen=True)
class QAItem:
    id: str
    turns: tuple[Turn, ...]

    @property
    def is_dialogue(self) -> bool:
        return len(self.turns) > 1


@dataclass
class QASet:
    name: str
    items: list[QAItem]
    source: str = ""
    passages: list[str] = field(default_factory=list)  # RGB: the corpus to index

    @property
    def n_questions(self) -> int:
        return sum(len(i.turns) for i in self.items)


def answer_groups(value: Any, where: str = "answers") -> tuple[tuple[str, ...], ...]:
    """RGB-style gold answer -> groups: ``"x"`` -> ``(("x",),)``; ``["x", ["y", "z"]]`` ->
    ``(("x",), ("y", "z"))``."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise UserError(f"{where}: 'answers' must be a string or a list of strings / lists of strings")
    groups = []
    for el in value:
        alts = [el] if isinstance(el, str) else el
        if not isinstance(alts, list) or not alts or not all(isinstance(a, str) and a.strip() for a in alts):
            raise UserError(f"{where}: each answer must be a non-empty string or a list of alternative strings, "
                            f"got {json.dumps(el)[:60]}")
        groups.append(tuple(a.strip() for a in alts))
    return tuple(groups)


def _nuggets(value: Any, where: str) -> tuple[tuple[str, ...], ...]:
    """``nuggets``: a list of facts, each a list of alternative spellings (a bare string is one)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: 'nuggets' must be a non-empty list of facts, each a list of alternative strings")
    return answer_groups(value, f"{where} (nuggets)")


def _strs(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UserError(f"{where}: '{key}' must be a string or a list of strings")


def _date(value: Any, key: str, where: str) -> str | None:
    import datetime as dt

    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise UserError(f"{where}: '{key}' must be a date like 2024-01-31, got {value!r}") from None


def parse_turn(obj: Any, where: str, defaults: dict | None = None) -> Turn:
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a JSON object with a 'question'")
    d = {**(defaults or {}), **obj}
    q = d.get("question")
    if not isinstance(q, str) or not q.strip():
        raise UserError(f"{where}: 'question' is missing or empty")
    unans = d.get("unanswerable", False)
    if not isinstance(unans, bool):
        raise UserError(f"{where}: 'unanswerable' must be true or false")
    groups = answer_groups(d.get("answers", d.get("answer")), where)
    nuggets = _nuggets(d.get("nuggets"), where)
    if unans and (groups or nuggets):
        raise UserError(f"{where}: a question cannot be unanswerable and have answers; drop one of them")
    if not unans and not groups and not nuggets:
        raise UserError(f"{where}: give 'answers' or set \"unanswerable\": true (open questions: 'nuggets')")
    return Turn(question=q.strip(), answers=groups, unanswerable=unans, nuggets=nuggets,
                articles=_strs(d.get("article", d.get("articles")), "article", where),
                evidence=_strs(d.get("evidence"), "evidence", where),
                since=_date(d.get("since"), "since", where), until=_date(d.get("until"), "until", where),
                as_of=_date(d.get("as_of"), "as_of", where), in_own_results=_flag(d, "in_own_results", where))


def _flag(d: dict, key: str, where: str) -> bool | None:
    v = d.get(key)
    if v is not None and not isinstance(v, bool):
        raise UserError(f"{where}: {key!r} must be true or false")
    return v


def parse_item(obj: Any, where: str, default_id: str) -> QAItem:
    if not isinstance(obj, dict):
        raise UserError(f"{where}: each line must be a JSON object")
    item_id = str(obj.get("id", default_id))
    if "turns" in obj:
        turns = obj["turns"]
        if not isinstance(turns, list) or not turns:
            raise UserError(f"{where}: 'turns' must be a non-empty list of {{question, answers}} objects")
        shared = {k: obj[k] for k in ("since", "until", "as_of") if k in obj}
        return QAItem(item_id, tuple(parse_turn(t, f"{where} turn {i}", shared) for i, t in enumerate(turns, 1)))
    return QAItem(item_id, (parse_turn(obj, where),))


def _read_lines(path: Path) -> list[tuple[int, Any]]:
    if not path.is_file():
        raise UserError(f"QA file {path} not found; give an existing JSONL file")
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; save it as UTF-8 JSONL") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as e:
            raise UserError(f"{path.name} line {lineno}: not valid JSON ({e.msg}); one object per line") from None
    if not out:
        raise UserError(f"{path} has no questions; write one JSON object per line")
    return out


def load_qa(path: str | Path) -> QASet:
    """Our JSONL format (see the module docstring)."""
    path = Path(path)
    items, seen = [], set()
    for lineno, obj in _read_lines(path):
        item = parse_item(obj, f"{path.name} line {lineno}", f"q{lineno}")
        if item.id in seen:
            raise UserError(f"{path.name} line {lineno}: duplicate id {item.id!r}; ids must be unique")
        seen.add(item.id)
        items.append(item)
    return QASet(name=path.stem, items=items, source=str(path))


def load_seeds_qa() -> QASet:
    s = load_qa(SEEDS_QA)
    s.name = "seeds"
    return s


def load_seeds_open_qa() -> QASet:
    s = load_qa(SEEDS_OPEN_QA)
    s.name = "seeds-open"
    return s


def load_rgb(path: str | Path) -> QASet:
    """The RGB benchmark format: ``{id, query, answer, positive[], negative[]}`` per line.

    Every passage (positive and negative, duplicates once) becomes one article of the corpus; the
    positive passages are the gold evidence; retrieval counts passages containing the answer.
    """
    path = Path(path)
    items, passages, seen_passages, seen_ids = [], [], set(), set()
    for lineno, rec in _read_lines(path):
        where = f"{path.name} line {lineno}"
        if not isinstance(rec, dict) or not isinstance(rec.get("query"), str) or "answer" not in rec:
            raise UserError(f"{where}: not an RGB record (needs 'query', 'answer', 'positive', 'negative')")
        pos, neg = rec.get("positive") or [], rec.get("negative") or []
        if not isinstance(pos, list) or not isinstance(neg, list):
            raise UserError(f"{where}: 'positive' and 'negative' must be lists of passages")
        for p in [*pos, *neg]:
            if isinstance(p, str) and p.strip() and p.strip() not in seen_passages:
                seen_passages.add(p.strip())
                passages.append(p.strip())
        rid = f"rgb-{rec.get('id', lineno)}"
        if rid in seen_ids:
            raise UserError(f"{where}: duplicate id {rid!r}")
        seen_ids.add(rid)
        turn = Turn(question=rec["query"].strip(), answers=answer_groups(rec["answer"], where),
                    evidence=tuple(p.strip() for p in pos if isinstance(p, str) and p.strip()))
        if not turn.answers:
            raise UserError(f"{where}: empty 'answer'")
        items.append(QAItem(rid, (turn,)))
    if not passages:
        raise UserError(f"{path} has no passages to build a corpus from")
    return QASet(name=path.stem, items=items, source=str(path), passages=passages)


def rgb_rejection(qa: QASet) -> QASet:
    """RGB's negative-rejection test: a corpus of only the passages that hold no question's gold
    answer (as the scorer matches it), every question unanswerable — the articles are about each
    question's topic but do not answer it, and the answer must say so. A passage giving the answer
    in another form ("Tampa Bay, Florida" for "Tampa, Florida") stays: read its misses."""
    from .metrics import contains

    golds = [alt for it in qa.items for t in it.turns for group in t.answers for alt in group]
    passages = [p for p in qa.passages if not any(contains(p, g) for g in golds)]
    if not passages:
        raise UserError(f"{qa.source}: every passage holds a gold answer; nothing is left for a rejection test")
    items = [QAItem(it.id, tuple(replace(t, answers=(), evidence=(), unanswerable=True) for t in it.turns))
             for it in qa.items]
    return QASet(name=f"{qa.name}-rejection", items=items, source=qa.source, passages=passages)


def write_corpus(passages: list[str], folder: Path) -> Path:
    """Write passages as one JSONL file of news records (one article per passage) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "passages.jsonl"
    data = "".join(json.dumps({"text": p}, ensure_ascii=False) + "\n" for p in passages)
    if not out.exists() or out.read_text(encoding="utf-8") != data:
        out.write_text(data, encoding="utf-8")
    return out


def corpus_hash(passages: list[str]) -> str:
    h = hashlib.sha256()
    for p in passages:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:16]
