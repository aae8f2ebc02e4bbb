"""`rag eval`: the QA format and loaders, the shipped seeds QA set, and the CLI end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import metrics as M
from rag.errors import UserError
from rag.eval import Config, check_thresholds, main, parse_compare
from rag.qa import answer_groups, load_qa, load_rgb, load_seeds_qa, rgb_rejection, SEEDS_QA
from rag.readers import read_file

from conftest import SEEDS, shared_data

# CI gate on the seeds set: a little below what the offline extractive answerer scores today
# (see the README's Evaluation section); raise them as the answerer improves.
# Measured with hybrid k=8: hit 0.976, MRR 0.948, answer accuracy 0.952, refusal recall 0.9,
# false refusals 0.024, citation exactness 1.0.
SEEDS_GATE = ["--min-hit-rate", "0.9", "--min-mrr", "0.85", "--min-answer-acc", "0.9", "--max-false-refusal", "0.1",
              "--min-refusal-recall", "0.85", "--min-citation-support", "0.6", "--min-citation-exact", "1.0"]


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- QA format ---------------------------------------------------------------------------------


def test_answer_groups_follow_the_rgb_convention():
    assert answer_groups("Tampa, Florida") == (("Tampa, Florida",),)
    assert answer_groups(["Kyiv", "Kharkiv"]) == (("Kyiv",), ("Kharkiv",))
    assert answer_groups([["Dec 1, 2017", "December 1, 2017"]]) == (("Dec 1, 2017", "December 1, 2017"),)
    with pytest.raises(UserError):
        answer_groups([["ok", 3]])
    with pytest.raises(UserError):
        answer_groups({"a": 1})


def test_load_qa_reads_questions_dialogues_and_filters(tmp_path):
    f = _write(tmp_path / "qa.jsonl", [
        {"id": "a", "question": "Who is the mayor of Kharkiv?", "answers": [["Ihor Terekhov", "Terekhov"]],
         "article": "000.txt", "until": "2024-01-31"},
        {"question": "Who is the mayor of Odesa?", "unanswerable": True},
        {"id": "d", "since": "2024-03-01", "turns": [
            {"question": "Who is the governor of Belgorod?", "answers": ["Gladkov"]},
            {"question": "Where did he post?", "answers": ["Telegram"]}]},
    ])
    qa = load_qa(f)
    assert [i.id for i in qa.items] == ["a", "q2", "d"]
    assert qa.n_questions == 4
    a = qa.items[0].turns[0]
    assert a.answers == (("Ihor Terekhov", "Terekhov"),) and a.articles == ("000.txt",) and a.until == "2024-01-31"
    assert qa.items[1].turns[0].unanswerable and qa.items[1].turns[0].answers == ()
    d = qa.items[2]
    assert d.is_dialogue and [t.since for t in d.turns] == ["2024-03-01", "2024-03-01"]


@pytest.mark.parametrize("record,message", [
    ({"question": "Q?"}, "give 'answers' or set"),
    ({"question": "Q?", "answers": ["x"], "unanswerable": True}, "cannot be unanswerable and have answers"),
    ({"answers": ["x"]}, "'question' is missing"),
    ({"question": "Q?", "answers": ["x"], "since": "March 2024"}, "date like 2024-01-31"),
    ({"turns": []}, "'turns' must be a non-empty list"),
])
def test_load_qa_rejects_bad_records_with_the_line_number(tmp_path, record, message):
    f = _write(tmp_path / "bad.jsonl", [{"question": "ok?", "answers": ["ok"]}, record])
    with pytest.raises(UserError, match=message) as e:
        load_qa(f)
    assert "bad.jsonl line 2" in str(e.value)


def test_load_qa_reports_broken_json_and_missing_file(tmp_path):
    f = tmp_path / "qa.jsonl"
    f.write_text('{"question": "ok?", "answers": ["ok"]}\n{"question": \n', encoding="utf-8")
    with pytest.raises(UserError, match="line 2: not valid JSON"):
        load_qa(f)
    with pytest.raises(UserError, match="not found"):
        load_qa(tmp_path / "nope.jsonl")


def test_rgb_loader_builds_one_article_per_passage(tmp_path):
    f = _write(tmp_path / "rgb.jsonl", [
        {"id": 0, "query": "Super Bowl 2021 location", "answer": "Tampa, Florida",
         "positive": ["It was played in Tampa, Florida.", "Raymond James Stadium, Tampa, Florida."],
         "negative": ["Las Vegas hosts LVIII.", "It was played in Tampa, Florida."]},
        {"id": 2, "query": "When was OpenAI founded?", "answer": [["December 2015", "Dec 2015"]],
         "positive": ["OpenAI was founded in December 2015."], "negative": ["  ", "Las Vegas hosts LVIII."]},
    ])
    qa = load_rgb(f)
    assert [i.id for i in qa.items] == ["rgb-0", "rgb-2"]
    # positive and negative passages, each once, blank ones dropped
    assert qa.passages == ["It was played in Tampa, Florida.", "Raymond James Stadium, Tampa, Florida.",
                           "Las Vegas hosts LVIII.", "OpenAI was founded in December 2015."]
    t0, t1 = qa.items[0].turns[0], qa.items[1].turns[0]
    assert t0.answers == (("Tampa, Florida",),) and t0.evidence[0] == "It was played in Tampa, Florida."
    assert t1.answers == (("December 2015", "Dec 2015"),)
    assert M.answer_correct("It was founded in Dec 2015 [1].", t1.answers)
    with pytest.raises(UserError, match="not an RGB record"):
        load_rgb(_write(tmp_path / "x.jsonl", [{"question": "q", "answers": ["a"]}]))


def test_rgb_rejection_keeps_only_passages_without_a_gold_answer(tmp_path):
    f = _write(tmp_path / "rgb.jsonl", [
        {"id": 0, "query": "Super Bowl 2021 location", "answer": "Tampa, Florida",
         "positive": ["It was played in Tampa, Florida."], "negative": ["Las Vegas hosts LVIII.", "TAMPA, FLORIDA!"]},
        {"id": 2, "query": "When was OpenAI founded?", "answer": [["December 2015", "Dec 2015"]],
         "positive": ["OpenAI was founded in Dec. 2015."], "negative": ["OpenAI grew fast after 2019."]},
    ])
    qa = rgb_rejection(load_rgb(f))
    # "Dec. 2015" is "dec 2015" to the scorer: a gold answer, so that passage goes too
    assert qa.passages == ["Las Vegas hosts LVIII.", "OpenAI grew fast after 2019."]
    turns = [t for i in qa.items for t in i.turns]
    assert [t.question for t in turns] == ["Super Bowl 2021 location", "When was OpenAI founded?"]
    assert all(t.unanswerable and not t.answers and not t.evidence for t in turns)
    with pytest.raises(UserError, match="every passage holds a gold answer"):
        rgb_rejection(load_rgb(_write(tmp_path / "all.jsonl", [
            {"id": 0, "query": "q", "answer": "Tampa", "positive": ["Tampa."], "negative": []}])))


def test_parse_compare_grid_and_defaults():
    base = Config("hybrid", 5, "extractive")
    assert parse_compare([], base) == [Config("dense", 5, "extractive"), Config("bm25", 5, "extractive"),
                                       Config("hybrid", 5, "extractive")]
    grid = parse_compare(["mode=dense/bm25,k=3/10"], base)
    assert grid == [Config("dense", 3, "extractive"), Config("dense", 10, "extractive"),
                    Config("bm25", 3, "extractive"), Config("bm25", 10, "extractive")]
    assert parse_compare(["k=3", "k=3", "llm=openai"], base) == [Config("hybrid", 3, "extractive"),
                                                                 Config("hybrid", 5, "openai")]
    for bad in ("mode=fast", "k=0", "colour=red", "mode"):
        with pytest.raises(UserError):
            parse_compare([bad], base)


def test_check_thresholds_min_max_and_undefined():
    runs = [{"name": "a", "summary": {"answer_acc": 0.85, "false_refusal": 0.05, "refusal_recall": None}},
            {"name": "b", "summary": {"answer_acc": 0.95, "false_refusal": 0.20, "refusal_recall": 0.5}}]
    assert check_thresholds(runs, {"answer_acc": ("min", 0.8), "false_refusal": ("max", 0.2)}) == []
    missed = check_thresholds(runs, {"answer_acc": ("min", 0.9), "false_refusal": ("max", 0.1),
                                     "refusal_recall": ("min", 0.4)})
    assert len(missed) == 3
    assert missed[0].startswith("a: answer_acc 0.850 < 0.9")
    assert "undefined" in missed[1] and "--min-refusal-recall" in missed[1]
    assert missed[2].startswith("b: false_refusal 0.200 > 0.1")


def test_python_dash_m_rag_eval_and_rag_eval_share_the_help():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "rag.eval", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--min-answer-acc" in r.stdout and "--compare" in r.stdout
    r = subprocess.run([sys.executable, "-m", "rag.cli", "eval", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "--max-false-refusal" in r.stdout


# --- the shipped seeds QA set ------------------------------------------------------------------


def _seed_articles():
    out = {}
    for p in sorted(SEEDS.iterdir()):
        (a,) = read_file(p)
        out[p.name] = a
    return out


def test_seeds_qa_set_covers_what_the_issue_asks_for():
    qa = load_seeds_qa()
    singles = [i.turns[0] for i in qa.items if not i.is_dialogue]
    answerable = [t for t in singles if not t.unanswerable]
    assert len(answerable) >= 25
    assert len([t for t in singles if t.unanswerable]) >= 8
    assert len([i for i in qa.items if i.is_dialogue]) >= 3
    assert len([t for t in answerable if len(t.articles) >= 2]) >= 2          # need two articles
    assert len([t for t in answerable if t.since or t.until]) >= 2            # need a date filter
    assert len({i.id for i in qa.items}) == len(qa.items)
    assert SEEDS_QA.parent.name == "data" and SEEDS_QA.parent.parent.name == "rag"   # shipped as package data


def test_every_seeds_answer_is_in_its_gold_articles_and_passes_their_date_filter():
    arts = _seed_articles()
    for item in load_seeds_qa().items:
        for t in item.turns:
            if t.unanswerable:
                continue
            assert t.articles, f"{item.id}: name the gold article"
            for name in t.articles:
                a = arts[name]  # KeyError = a gold article that is not in seeds/
                if t.since or t.until:
                    assert a.date is not None, f"{item.id}: {name} is undated, a date filter excludes it"
                    assert (t.since or a.date) <= a.date <= (t.until or a.date), f"{item.id}: {name} filtered out"
            text = " ".join(arts[n].text for n in t.articles)
            assert M.answer_correct(text, t.answers), f"{item.id}: gold answer not in {t.articles}"
            for g in t.answers:   # each required part is in at least one of the gold articles
                assert any(M.group_matched(arts[n].text, g) for n in t.articles)


def test_seeds_unanswerables_name_nothing_the_articles_contain():
    corpus = " ".join(a.text for a in _seed_articles().values())
    absent = {"odesa-mayor": "Odesa", "belgorod-population": "population", "patriot-donor": "Patriot",
              "invasion-date": "full-scale", "army-chief": "commander"}
    ids = {i.id for i in load_seeds_qa().items}
    for qid, word in absent.items():
        assert qid in ids
        assert not M.contains(corpus, word), f"{qid}: '{word}' is in the seeds after all"


# --- the CLI end to end -----------------------------------------------------------------------


def _small_qa(tmp_path):
    return _write(tmp_path / "small.jsonl", [
        {"id": "mayor", "question": "Who is the mayor of Kharkiv?", "answers": [["Ihor Terekhov", "Terekhov"]]},
        # a gold answer no article contains: this can never be answered correctly from the seeds
        {"id": "impossible", "question": "How many people died in the Pokrovsk attack?", "answers": ["Zaporizhzhia"]},
        {"id": "odesa", "question": "Who is the mayor of Odesa?", "unanswerable": True},
    ])


def test_missed_threshold_exits_non_zero_and_met_thresholds_exit_zero(tmp_path, seeds_index, embedder, capsys):
    qa = _small_qa(tmp_path)
    common = ["--qa", str(qa), "--index", str(seeds_index.index_dir), "--quiet", "--llm", "extractive"]
    out = tmp_path / "r.json"
    assert main([*common, "--json", str(out), "--min-answer-acc", "0.9"], embedder=embedder) == 1
    err = capsys.readouterr().err
    assert "threshold missed" in err and "answer_acc" in err and "--min-answer-acc" in err
    data = json.loads(out.read_text())
    (run,) = data["runs"]
    assert run["summary"]["answer_acc"] <= 0.5          # the impossible question is wrong whatever happens
    assert data["failures"] and data["thresholds"] == {"answer_acc": {"direction": "min", "limit": 0.9}}
    # the same results against thresholds they meet: exit 0
    assert main([*common, "--min-citation-exact", "1.0", "--max-answer-words", "200"], embedder=embedder) == 0
    assert "all 2 thresholds met" in capsys.readouterr().err


def test_compare_runs_configurations_side_by_side(tmp_path, seeds_index, embedder, capsys):
    qa = _small_qa(tmp_path)
    out = tmp_path / "cmp.json"
    code = main(["--qa", str(qa), "--index", str(seeds_index.index_dir), "--quiet", "--llm", "extractive",
                 "--compare", "mode=bm25/dense,k=2", "--json", str(out)], embedder=embedder)
    assert code == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("| metric"))
    assert "bm25 k=2 extractive" in header and "dense k=2 extractive" in header
    runs = json.loads(out.read_text())["runs"]
    assert [r["config"] for r in runs] == [{"mode": "bm25", "top_k": 2, "llm": "extractive"},
                                          {"mode": "dense", "top_k": 2, "llm": "extractive"}]
    for r in runs:
        assert [x["id"] for x in r["results"]] == ["mayor", "impossible", "odesa"]
        assert all(len(x["retrieved"]) <= 2 for x in r["results"])
        assert r["results"][1]["correct"] is False


def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--qa", str(tmp_path / "missing.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not found" in err and "\n" not in err
    assert main(["--compare", "mode=fast", "--quiet", "--cache", str(tmp_path)]) == 2


def test_seeds_set_will_not_mix_seeds_into_an_index_of_other_articles(tmp_path, make_engine, capsys):
    news = tmp_path / "news"
    news.mkdir()
    (news / "a.txt").write_text("date 2024-05-01 The council of Lviv approved a new tram line on Monday.\n")
    eng = make_engine()
    eng.ingest([news])
    assert main(["--index", str(eng.index_dir), "--quiet", "--llm", "extractive"], embedder=eng.embedder) == 2
    err = capsys.readouterr().err
    assert "holds other articles" in err and "--index" in err
    assert eng.stats().articles == 1            # nothing was added to it


def test_rgb_end_to_end_is_cached_and_deterministic(tmp_path, counting_embedder, capsys):
    rgb = _write(tmp_path / "rgb.jsonl", [
        {"id": 0, "query": "Where was Super Bowl 2021 played?", "answer": "Tampa, Florida",
         "positive": ["Super Bowl LV was played on February 7, 2021, at Raymond James Stadium in Tampa, Florida."],
         "negative": ["Super Bowl LVIII will be played in Las Vegas, Nevada, at Allegiant Stadium."]},
        {"id": 2, "query": "Who acquired Instagram?", "answer": "Facebook",
         "positive": ["Facebook acquired the photo-sharing app Instagram in 2012 for about $1 billion."],
         "negative": ["Twitter was bought by Elon Musk in 2022 for $44 billion."]},
    ])
    cache = tmp_path / "cache"
    runs = []
    for n in range(2):
        out = tmp_path / f"rgb{n}.json"
        before = sum(counting_embedder.history)
        assert main(["--rgb", str(rgb), "--cache", str(cache), "--quiet", "--llm", "extractive",
                     "--json", str(out)], embedder=counting_embedder) == 0
        runs.append((json.loads(out.read_text()), sum(counting_embedder.history) - before))
    (first, embedded1), (second, embedded2) = runs
    assert "4 articles" in capsys.readouterr().out
    import rag

    eng = rag.Engine(settings=rag.Settings(index_dir=Path(first["index"]), seeds_dir=None, progress=False),
                     embedder=counting_embedder)
    st = eng.stats()
    assert st.articles == 4
    assert Path(first["index"]).is_relative_to(cache)
    # the rerun reuses the index: it embedded exactly the index's chunks fewer texts
    assert embedded1 - embedded2 == st.chunks
    strip = lambda d: [{k: v for k, v in r.items() if k != "latency_ms"} for r in d["runs"][0]["results"]]
    assert strip(first) == strip(second)
    s = first["runs"][0]["summary"]
    assert s["questions"] == 2 and s["unanswerable"] == 0 and s["citation_exact"] == 1.0
    assert s["hit_rate"] == 1.0          # each answer is in one of only four short passages


@pytest.mark.slow
def test_seeds_eval_meets_the_ci_thresholds(tmp_path, embedder, capsys):
    out = tmp_path / "seeds.json"
    code = main(["--cache", str(tmp_path / "cache"), "--quiet", "--llm", "extractive", "--json", str(out),
                 *SEEDS_GATE], embedder=embedder)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(out.read_text())
    n = load_seeds_qa().n_questions
    assert data["qa"]["questions"] == n and len(data["runs"][0]["results"]) == n
    assert "| answer accuracy |" in captured.out


@pytest.mark.slow
def test_rgb_dev_set_runs_end_to_end(tmp_path, embedder):
    out = tmp_path / "rgb.json"
    code = main(["--rgb", str(shared_data("rgb-en-dev.jsonl")), "--cache", str(tmp_path / "cache"), "--quiet",
                 # 0.70: the fitted answerer scores 0.74 here (cross-validated 0.74); the hand-set rules
                 # it replaced scored 0.84 because they had been tuned on these very 50 questions
                 "--llm", "extractive", "--json", str(out), "--min-hit-rate", "0.95", "--min-answer-acc", "0.70",
                 "--max-false-refusal", "0.05"],
                embedder=embedder)
    assert code == 0
    s = json.loads(out.read_text())["runs"][0]["summary"]
    assert s["questions"] == 50


@pytest.mark.parametrize("question, kind", [
    ("NFL player Damar Hamlin suffered a medical emergency this week. He is a member of which team?", "which"),
    ("How much have egg prices increased over the past year?", "how many"),
    ("Whose novel won the prize?", "who"),
    ("True or false: the White House ruled out aliens.", "other"),
    ("When did Phish first perform in Delaware?", "when"),
])
def test_questions_are_grouped_by_kind_from_their_last_sentence(question, kind):
    from rag.eval import question_kind

    assert question_kind(question) == kind


def test_accuracy_by_kind_counts_only_answerable_questions():
    from rag.eval import by_kind

    rows = [{"unanswerable": False, "kind": "who", "correct": True},
            {"unanswerable": False, "kind": "who", "correct": False},
            {"unanswerable": True, "kind": "who", "correct": True},
            {"unanswerable": False, "kind": "when", "correct": True}]
    assert by_kind(rows) == {"who": {"n": 2, "answer_acc": 0.5}, "when": {"n": 1, "answer_acc": 1.0}}


def test_accuracy_is_split_by_whether_the_answer_is_in_the_questions_own_results(tmp_path):
    """RealTime QA marks questions whose answer is in their own search results; eval scores each side."""
    from rag.eval import by_own_results
    from rag.qa import load_qa

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answers": ["A"], "in_own_results": true}\n'
                  '{"question": "Where?", "answers": ["B"], "in_own_results": false}\n'
                  '{"question": "When?", "answers": ["C"]}\n')
    assert [i.turns[0].in_own_results for i in load_qa(qa).items] == [True, False, None]
    rows = [{"unanswerable": False, "correct": True, "hit": 1.0, "in_own_results": True},
            {"unanswerable": False, "correct": False, "hit": 1.0, "in_own_results": True},
            {"unanswerable": False, "correct": False, "hit": 0.0, "in_own_results": False},
            {"unanswerable": False, "correct": True, "hit": 1.0, "in_own_results": None}]
    assert by_own_results(rows) == {"in own results": {"n": 2, "answer_acc": 0.5, "hit_rate": 1.0},
                                    "not in own results": {"n": 1, "answer_acc": 0.0, "hit_rate": 0.0}}
    assert by_own_results(rows[3:]) == {}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Who?", "answers": ["A"], "in_own_results": "yes"}\n')
    with pytest.raises(UserError, match="in_own_results"):
        load_qa(bad)


def test_wrong_answers_say_whether_retrieval_the_pick_or_a_refusal_missed(tmp_path, seeds_index, embedder, capsys):
    """`rag eval` tells, per wrong factoid answer, where it went wrong, and counts each stage."""
    from rag.answering import factoid_reading
    from rag.textutil import words

    q = "Who is the mayor of Kharkiv?"
    ans = seeds_index.query(q)
    read = " ".join(h.text for h in factoid_reading(seeds_index, seeds_index.retrieve(q, 8)))
    # a gold answer the passages hold but the quoted sentences do not: the pick missed it
    unpicked = next(w for w in words(read) if len(w) > 6 and w.isalpha() and not M.contains(ans.text, w))
    refused_q = "Who is the mayor of Odesa?"
    assert seeds_index.query(refused_q).refused
    qa = _write(tmp_path / "qa.jsonl", [
        {"id": "right", "question": q, "answers": [["Ihor Terekhov", "Terekhov"]]},
        {"id": "pick", "question": q, "answers": [unpicked]},
        {"id": "retrieval", "question": "How many people died in the Pokrovsk attack?", "answers": ["Zaporizhzhia"]},
        {"id": "refusal", "question": refused_q, "answers": ["Ukraine"]},
        {"id": "odesa", "question": refused_q, "unanswerable": True},
    ])
    out = tmp_path / "r.json"
    main(["--qa", str(qa), "--index", str(seeds_index.index_dir), "--llm", "extractive", "-v", "--json", str(out)],
         embedder=embedder)
    (run,) = json.loads(out.read_text())["runs"]
    assert {r["id"]: r["miss"] for r in run["results"]} == {
        "right": None, "pick": "not_picked", "retrieval": "not_read", "refusal": "refused", "odesa": None}
    assert (run["summary"]["miss_not_read"], run["summary"]["miss_not_picked"], run["summary"]["miss_refused"]) == (1, 1, 1)
    printed = capsys.readouterr().out
    assert "1 not in the passages read · 1 in them, another sentence quoted · 1 in them, but refused" in printed
    assert "- retrieval (how many) [not in the passages read]:" in printed
