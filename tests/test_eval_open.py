"""Open questions in the QA format (``nuggets``), nugget recall, and `rag eval --open`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import metrics as M
from rag.errors import UserError
from rag.eval import main
from rag.qa import SEEDS_OPEN_QA, load_qa, load_seeds_open_qa
from rag.question_kind import question_kind
from rag.readers import read_file

from conftest import SEEDS

OPEN_GATE = ["--min-nugget-recall", "0.74", "--min-citation-exact", "1.0", "--max-answer-words", "130"]


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_nugget_recall_by_hand():
    nuggets = [["22"], ["110"], ["missiles", "rockets"], ["Security Council"]]
    text = "Rockets killed 22 people [1]; the U.N. Security Council met [2]."
    assert M.nugget_recall(text, nuggets) == 0.75
    assert M.nugget_recall("2022 was hard", [["22"]]) == 0.0  # whole words only
    assert M.nugget_recall(text, nuggets, refused=True) == 0.0
    assert M.nugget_recall(text, []) is None


def test_qa_format_takes_nuggets_and_checks_them(tmp_path):
    f = _write(tmp_path / "open.jsonl", [
        {"id": "b", "question": "What happened in Belgorod?", "nuggets": [["22"], ["missiles", "rockets"], "110"]},
        {"id": "both", "question": "What happened?", "answers": ["22"], "nuggets": [["22"]]},
    ])
    qa = load_qa(f)
    b, both = (i.turns[0] for i in qa.items)
    assert b.nuggets == (("22",), ("missiles", "rockets"), ("110",)) and b.answers == ()
    assert both.answers == (("22",),) and both.nuggets == (("22",),)
    for bad, message in [({"question": "Q?", "nuggets": []}, "'nuggets' must be a non-empty list"),
                         ({"question": "Q?", "nuggets": [["ok"], [""]]}, "nuggets"),
                         ({"question": "Q?", "nuggets": [["x"]], "unanswerable": True}, "cannot be unanswerable")]:
        with pytest.raises(UserError, match=message):
            load_qa(_write(tmp_path / "bad.jsonl", [bad]))


def test_shipped_open_set_is_open_questions_whose_nuggets_are_in_the_seeds():
    qa = load_seeds_open_qa()
    assert SEEDS_OPEN_QA.is_file() and len(qa.items) >= 12
    corpus = " ".join(a.text for p in sorted(SEEDS.iterdir()) for a in read_file(p))
    for item in qa.items:
        (turn,) = item.turns
        assert question_kind(turn.question) == "overview", turn.question
        assert len(turn.nuggets) >= 3
        for group in turn.nuggets:  # a date nugget may be the article's date line, shown in the answer
            assert any(M.contains(corpus, alt) or alt[:4] == "2024" for alt in group), (item.id, group)


def test_rag_eval_open_scores_nugget_recall_and_splits_halves(tmp_path, seeds_index, embedder, capsys):
    out = tmp_path / "open.json"
    code = main(["--open", "--index", str(seeds_index.index_dir), "--quiet", "--llm", "extractive",
                 "--json", str(out), *OPEN_GATE], embedder=embedder)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| nugget recall (open questions) |" in captured.out
    run = json.loads(out.read_text())["runs"][0]
    assert run["summary"]["citation_exact"] == 1.0 and run["summary"]["nugget_recall"] >= 0.74
    assert all(r["answer_kind"] == "overview" and r["nugget_recall"] is not None for r in run["results"])
    n = len(run["results"])
    halves = []
    for half in ("a", "b"):
        main(["--open", "--index", str(seeds_index.index_dir), "--quiet", "--llm", "extractive", "--half", half,
              "--json", str(out)], embedder=embedder)
        halves.append([r["id"] for r in json.loads(out.read_text())["runs"][0]["results"]])
    ids = [r["id"] for r in run["results"]]
    assert halves[0] == ids[0::2] and halves[1] == ids[1::2] and len(halves[0]) + len(halves[1]) == n
