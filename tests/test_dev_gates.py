"""CI gates on the dev sets of ../shared/data (real weekly news, SQuAD 2.0 with unanswerable
questions): a little below what the offline answerer scores today, so a regression fails the build.
They skip with a reason where ../shared is absent (a user's clone).

Today's figures are in the README's Quality section; the answerer's weights were fitted on these
sets (python -m rag.fit prints the cross-validated figures, which are lower and the honest ones).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.eval import main

from conftest import shared_data

pytestmark = pytest.mark.slow


def _index(corpus, index, embedder):
    from rag import Engine, Settings

    eng = Engine(settings=Settings(index_dir=index, seeds_dir=None, progress=False), embedder=embedder)
    report = eng.ingest([corpus])
    eng.close()
    return report


def _run(args: list[str], out, embedder) -> dict:
    code = main([*args, "--quiet", "--llm", "extractive", "--json", str(out)], embedder=embedder)
    data = json.loads(out.read_text())
    assert code == 0, data["failures"]
    return data["runs"][0]


def test_squad2_cct_answers_and_refuses(tmp_path, embedder):
    d = shared_data("squad2-cct")
    assert _index(d / "articles", tmp_path / "index", embedder).added == 48
    # 0.77: the same commit answers 0.807 with AVX-512 VNNI and 0.782 on an AVX2-only CPU (onnxruntime's
    # int8 kernels differ by instruction set), so 0.78 was one question from failing on the CPU alone
    run = _run(["--qa", str(d / "qa.jsonl"), "--index", str(tmp_path / "index"),
                "--min-answer-acc", "0.77", "--max-false-refusal", "0.05", "--min-refusal-recall", "0.61",
                "--min-citation-exact", "1.0", "--max-answer-words", "45"], tmp_path / "squad.json", embedder)
    assert run["summary"]["answerable"] == 197 and run["summary"]["unanswerable"] == 221


@pytest.fixture(scope="module")
def rtqa_index(tmp_path_factory, embedder):
    """The whole rtqa-dev corpus (1,330 articles) in one index: about 12 minutes on 2 cores, once."""
    d = shared_data("rtqa-dev")
    index = tmp_path_factory.mktemp("rtqa") / "index"
    return index, _index(d / "articles", index, embedder)


# the first test to use the index builds it: about 12 minutes on 2 cores with nothing cached, more on a
# busy machine, past the suite's 600 s per test
@pytest.mark.timeout(1800)
def test_rtqa_dev_real_weekly_news_with_as_of(rtqa_index, tmp_path, embedder):
    """Each question asked with its quiz date as ``as_of``."""
    d = shared_data("rtqa-dev")
    index, report = rtqa_index
    assert report.added == 1330 and report.undated == 0  # every YYYY/MM/DD date is read
    run = _run(["--qa", str(d / "qa.jsonl"), "--index", str(index),
                "--min-hit-rate", "0.57", "--min-answer-acc", "0.35", "--min-citation-exact", "1.0",
                "--max-answer-words", "50"], tmp_path / "rtqa.json", embedder)
    assert all(r["as_of"] for r in run["results"])
    assert {"which", "how many", "what"} <= set(run["by_kind"])


@pytest.mark.timeout(1800)
def test_rtqa_open_questions_get_overviews_with_their_facts(rtqa_index, tmp_path, embedder):
    """Our open questions over the same articles (benchmarks/data/rtqa_open_qa.jsonl: the questions
    and the facts a good answer holds, written by us; the articles stay in ../shared/data)."""
    qa = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "rtqa_open_qa.jsonl"
    run = _run(["--qa", str(qa), "--index", str(rtqa_index[0]), "--min-nugget-recall", "0.55",
                "--min-citation-exact", "1.0", "--max-answer-words", "150"], tmp_path / "open.json", embedder)
    assert all(r["answer_kind"] == "overview" for r in run["results"])


@pytest.mark.timeout(1800)
def test_rtqa_open_questions_about_missing_stories_are_refused(rtqa_index, tmp_path, embedder):
    """Open questions about stories the articles lack (benchmarks/data/rtqa_open_unanswerable.jsonl):
    refused, not answered with an overview of other stories that share their words (0.80 today)."""
    qa = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "rtqa_open_unanswerable.jsonl"
    run = _run(["--qa", str(qa), "--index", str(rtqa_index[0]), "--min-refusal-recall", "0.75"],
               tmp_path / "open_refused.json", embedder)
    assert run["summary"]["unanswerable"] == 20
