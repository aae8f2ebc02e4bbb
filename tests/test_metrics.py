"""rag.metrics: pure functions, checked on cases computed by hand."""
from __future__ import annotations

import pytest

from rag import metrics as M


def test_normalize_ignores_case_accents_punctuation_and_citation_markers():
    assert M.normalize("Tadej Pogačar [1], U.S.-Open!") == "tadej pogacar u s open"


@pytest.mark.parametrize("text,needle,expected", [
    ("at least 22 lives were lost [1]", "22", True),
    ("in the year 2022", "22", False),           # whole words only
    ("Facebook's deal", "Facebook", True),
    ("The U.N. Security Council met", "UN Security Council", False),  # "u n" is not "un"
    ("The U.N. Security Council met", "Security Council", True),
    ("Mayor Ihor Terekhov said", "ihor  TEREKHOV", True),
    ("anything", "", False),
])
def test_contains_matches_whole_normalised_words(text, needle, expected):
    assert M.contains(text, needle) is expected


def test_answer_correct_follows_rgb_list_rules():
    groups = [["Kyiv"], ["Kharkiv"]]                      # both required
    assert M.answer_correct("Explosions hit Kyiv and Kharkiv [1].", groups)
    assert not M.answer_correct("Explosions hit Kyiv [1].", groups)
    dates = [["December 1, 2017", "Dec 1, 2017", "1 December 2017"]]   # any alternative
    assert M.answer_correct("It came out on 1 December 2017 in Japan.", dates)
    assert not M.answer_correct("It came out in December 2017.", dates)


def test_a_refusal_is_never_a_correct_answer_even_if_it_quotes_the_gold():
    assert not M.answer_correct("The articles don't say. Closest: Terekhov", [["Terekhov"]], refused=True)
    assert not M.answer_correct("Terekhov", [])


def test_token_f1_by_hand():
    # prediction tokens: mayor ihor terekhov said (the article "the" dropped) -> 4; gold: ihor terekhov -> 2
    # common 2: precision 2/4, recall 2/2 -> F1 = 2*0.5*1/1.5 = 2/3
    assert M.token_f1("The mayor Ihor Terekhov said [1]", [["Ihor Terekhov"]]) == pytest.approx(2 / 3)
    assert M.token_f1("Ihor Terekhov", [["Ihor Terekhov"]]) == pytest.approx(1.0)
    assert M.token_f1("nobody knows", [["Ihor Terekhov"]]) == 0.0
    assert M.token_f1("", [["x"]]) == 0.0


def test_token_f1_picks_the_best_alternative_per_group():
    # groups: ("22"), ("11" | "eleven"); prediction "22 and eleven" -> tokens 22 and eleven (3)
    # reference 22 eleven (2); common 2 -> P 2/3, R 1 -> F1 0.8
    assert M.token_f1("22 and eleven", [["22"], ["11", "eleven"]]) == pytest.approx(0.8)


def test_answer_words_does_not_count_citation_markers():
    assert M.answer_words("Ihor Terekhov is the mayor [1] [2].") == 6
    assert M.answer_words("") == 0


def test_relevant_flags_use_answer_strings_and_gold_articles():
    passages = [("no answer here", "d1", "/x/seeds/000.txt"),
                ("the mayor, Ihor Terekhov, said", "d2", "/x/seeds/001.txt"),
                ("Terekhov again", "d3", "/x/seeds/000.txt")]
    groups = [["Ihor Terekhov", "Terekhov"]]
    assert M.relevant_flags(passages, groups) == [False, True, True]
    # with a gold article only passages from it count, and they must still hold the answer
    assert M.relevant_flags(passages, groups, ["000.txt"]) == [False, False, True]
    assert M.relevant_flags(passages, groups, ["d2"]) == [False, True, False]
    # no answer strings (abstractive gold): the article alone decides
    assert M.relevant_flags(passages, [], ["000.txt"]) == [True, False, True]


def test_hit_and_reciprocal_rank():
    assert M.hit_and_rr([False, False, True, True]) == (1.0, pytest.approx(1 / 3))
    assert M.hit_and_rr([True]) == (1.0, 1.0)
    assert M.hit_and_rr([False, False]) == (0.0, 0.0)
    assert M.hit_and_rr([]) == (0.0, 0.0)


def test_gold_article_match_by_file_name_source_or_doc_id():
    assert M.gold_article_match("/data/seeds/002_e47.txt", "abc", ["002_e47.txt"])
    assert M.gold_article_match("https://news.example/a?id=3", "abc", ["https://news.example/a?id=3"])
    assert M.gold_article_match("/data/seeds/002_e47.txt", "abc", ["abc"])
    assert not M.gold_article_match("/data/seeds/1002_e47.txt", "abc", ["002_e47.txt"])


def test_citation_exact_is_the_offset_invariant():
    text = "Kharkiv's mayor is Ihor Terekhov. He spoke."
    assert M.citation_exact("Ihor Terekhov", 19, 32, text)
    assert not M.citation_exact("Ihor Terekhov", 18, 31, text)
    assert not M.citation_exact("Ihor Terekhov", 19, 32, None)   # article missing from the index
    assert not M.citation_exact("x", 40, 99, text)


def test_citation_support_by_answer_or_overlapping_evidence():
    text = "Alpha beta. Gold evidence sentence here. Gamma delta."
    ev = M.evidence_spans(text, ["Gold evidence sentence here."])
    assert ev == [(12, 40)]
    groups = [["Terekhov"]]
    assert M.citation_supported("Terekhov spoke", 0, 14, groups)                  # contains the answer
    assert M.citation_supported(text[35:52], 35, 52, groups, ev)                  # overlaps the evidence
    assert not M.citation_supported(text[41:52], 41, 52, groups, ev)              # next sentence: no
    assert not M.citation_supported(text[0:11], 0, 11, groups, ev)
    assert M.evidence_spans(text, ["not in it", "  "]) == []


def test_refusal_scores_by_hand():
    # 3 unanswerable (2 refused), 5 answerable (1 refused)
    unans = [True, True, True, False, False, False, False, False]
    refused = [True, True, False, True, False, False, False, False]
    s = M.refusal_scores(unans, refused)
    assert s["refusal_precision"] == pytest.approx(2 / 3)
    assert s["refusal_recall"] == pytest.approx(2 / 3)
    assert s["false_refusal"] == pytest.approx(1 / 5)


def test_refusal_scores_are_undefined_without_cases():
    s = M.refusal_scores([False, False], [False, False])
    assert s == {"refusal_precision": None, "refusal_recall": None, "false_refusal": 0.0}


def test_aggregates():
    assert M.mean([1, None, 0, 1]) == pytest.approx(2 / 3)
    assert M.mean([None]) is None
    assert M.median([5, 1, 3, None]) == 3
    assert M.median([4, 1, 3, 2]) == 2.5
    vals = list(range(1, 21))                      # 1..20
    assert M.percentile(vals, 50) == 10
    assert M.percentile(vals, 95) == 19
    assert M.percentile(vals, 100) == 20
    assert M.percentile([7.0], 95) == 7.0
    assert M.percentile([], 50) is None
