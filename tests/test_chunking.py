"""Chunk offsets and token limits, property-tested with hypothesis on the real model's tokenizer:
citations depend on ``article.text[start:end] == chunk.text`` and on nothing being truncated by the
encoder."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import ChunkSpec, chunk_text, fit_header, make_header, sentence_spans

WORDS = ("the mayor of Kharkiv said on Sunday that drones hit power stations across region while officials "
         "in Kyiv reported casualties ceasefire talks Belgorod missile strike was re-elected 2024 €1.5bn "
         "Zelensky's déjà-vu naïve Müller 北京 上海 internationalisation antidisestablishmentarianism "
         "U.S. Dr. e.g. 3.14 — “quoted” (aside) [note]").split()


@st.composite
def sentences(draw):
    n = draw(st.integers(1, 40))
    words = draw(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n))
    end = draw(st.sampled_from([".", "!", "?", "", "...", '."']))
    return " ".join(words) + end


@st.composite
def articles(draw):
    """Paragraphs of sentences, with occasional pathological pieces: a sentence far over the token
    budget, a word longer than the tokenizer's word limit, arbitrary unicode, odd whitespace."""
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["para", "para", "para", "run_on", "long_word", "unicode", "numbers"]))
        if kind == "para":
            parts.append(" ".join(draw(st.lists(sentences(), min_size=1, max_size=12))))
        elif kind == "run_on":  # one 'sentence' of 300-700 words, no punctuation
            parts.append(" ".join(draw(st.lists(st.sampled_from(WORDS), min_size=300, max_size=700))))
        elif kind == "long_word":
            parts.append("x" * draw(st.integers(90, 400)) + " ends here.")
        elif kind == "numbers":
            parts.append(" ".join(str(i) * 7 for i in range(draw(st.integers(50, 300)))))
        else:
            parts.append(draw(st.text(min_size=1, max_size=400)))
    seps = draw(st.lists(st.sampled_from(["\n\n", "\n", " ", "\n \n\t\n", "  "]), min_size=len(parts),
                         max_size=len(parts)))
    lead = draw(st.sampled_from(["", " ", "\n\n"]))
    return lead + "".join(p + s for p, s in zip(parts, seps))


HEADERS = st.sampled_from(["", "Kharkiv mayor re-elected\n", "A rather long headline " * 8 + "\n"])


@pytest.fixture(scope="module")
def tok(embedder):
    return embedder.tokenizer


@pytest.fixture(scope="module")
def spec(embedder):
    return ChunkSpec(max_tokens=embedder.max_tokens, overlap_tokens=32)


def n_tokens_embedded(tok, text: str) -> int:
    """What the encoder sees: special tokens included, no truncation."""
    return len(tok(text, add_special_tokens=True, truncation=False)["input_ids"])


def test_default_model_limit_is_256(embedder):
    assert embedder.max_tokens == 256


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(text=articles(), header=HEADERS)
def test_chunk_properties(text, header, tok, spec):
    if not text.strip():
        return
    chunks = chunk_text(text, "doc", tok, spec, header)
    assert chunks, "non-blank text must give at least one chunk"
    # offsets are exact: citations slice the article text
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.text.strip(), "no blank chunks"
    # every embedded input fits the model, counted with the model's own tokenizer
    for c in chunks:
        assert n_tokens_embedded(tok, header + c.text) <= spec.max_tokens
    # ordered, stable ids
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.id for c in chunks] == [f"doc:{i}" for i in range(len(chunks))]
    assert all(a.start <= b.start for a, b in zip(chunks, chunks[1:]))
    # nothing is lost: every non-whitespace character is inside some chunk
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"uncovered characters at {missing[:10]}: {[text[i] for i in missing[:10]]}"
    # deterministic: same input, same chunks
    assert chunk_text(text, "doc", tok, spec, header) == chunks


def test_long_article_is_split_with_overlap(tok, spec):
    sents = [f"Sentence number {i} reports that the council met again to discuss the budget." for i in range(120)]
    text = " ".join(sents)
    chunks = chunk_text(text, "d", tok, spec)
    assert len(chunks) > 4
    # consecutive chunks overlap (the trailing sentences are carried over) but always advance
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "expected overlap between consecutive chunks"
        assert b.start > a.start and b.end > a.end
    # chunks are cut at sentence ends, not mid-sentence
    for c in chunks:
        assert c.text.endswith("budget.")
        assert c.text.startswith("Sentence number")
    # and they are reasonably full: packing uses most of the budget
    sizes = [n_tokens_embedded(tok, c.text) for c in chunks[:-1]]
    assert min(sizes) > spec.max_tokens * 0.6


def test_short_article_is_one_chunk(tok, spec):
    text = "The mayor was re-elected. Turnout was high."
    chunks = chunk_text(text, "d", tok, spec, "Kharkiv vote\n")
    assert [(c.start, c.end, c.text) for c in chunks] == [(0, len(text), text)]


def test_sentence_spans_trim_whitespace_and_respect_paragraphs():
    text = "  First one. Second one!\n\nThird\nline continues.  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", "Third\nline continues."]


def test_line_breaks_end_sentences_unless_the_text_is_hard_wrapped():
    """A feed's body with a paragraph per line (news-please's maintext) or a page's text puts a
    heading or caption on its own line without a full stop: it is a sentence of its own, not the
    start of the next one. Hard-wrapped text (no line over 100 characters) keeps its sentences whole."""
    para = ("Soldiers joined the search on Wednesday as roads stayed closed and thousands of homes had no power "
            "or running water")
    text = f"Rescue efforts\n{para}\nSpanish officials declared three days of mourning. Dozens remain missing."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Rescue efforts", para, "Spanish officials declared three days of mourning.", "Dozens remain missing."]
    wrapped = ("Soldiers joined the search on Wednesday as roads stayed\nclosed and thousands of homes had no\n"
               "power. Officials declared three days of mourning.")
    assert [wrapped[s:e] for s, e in sentence_spans(wrapped)] == [
        "Soldiers joined the search on Wednesday as roads stayed\nclosed and thousands of homes had no\npower.",
        "Officials declared three days of mourning."]


def test_titles_and_number_signs_do_not_end_sentences():
    """News abbreviations Punkt's English model lacks ("Gov.", "Sgt.", "No. 1") kept cutting a
    sentence before the name or number it introduces."""
    text = ("In a news conference, New York Gov. Kathy Hochul said roads stay closed. The team is ranked No. 1 in "
            "the state. First Sgt. Christopher Knox told CNN. The answer was no. Then he left.")
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "In a news conference, New York Gov. Kathy Hochul said roads stay closed.",
        "The team is ranked No. 1 in the state.", "First Sgt. Christopher Knox told CNN.", "The answer was no.",
        "Then he left."]


def test_make_header_skips_title_already_in_text():
    assert make_header("Kharkiv vote", "Kharkiv vote\n\nThe mayor...") == ""
    assert make_header("Kharkiv vote", "**Kharkiv vote**\n\nThe mayor...") == ""
    assert make_header("Kharkiv vote", "The mayor was re-elected.") == "Kharkiv vote\n"


def test_huge_title_header_is_cut_to_leave_room(tok, spec):
    """A record with an absurd title must still be chunked, not crash the ingest."""
    header = make_header("Breaking " * 400, "The text of the story. It is short.")
    fitted = fit_header(header, tok, spec)
    assert fitted.endswith("…\n") and header.startswith(fitted[:-2])
    assert n_tokens_embedded(tok, fitted) <= spec.max_tokens // 4 + 3  # + the ellipsis + [CLS]/[SEP]
    chunks = chunk_text("The text of the story. It is short.", "d", tok, spec, fitted)
    assert len(chunks) == 1
    # a normal header is left alone
    assert fit_header("Kharkiv vote\n", tok, spec) == "Kharkiv vote\n"
    assert fit_header("", tok, spec) == ""
