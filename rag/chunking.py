"""Sentence-aware chunking bounded by the embedding model's own tokenizer.

Every chunk keeps ``start``/``end`` so ``text[start:end] == chunk.text``; every embedded input
(header + chunk) fits the model's token limit, checked with an exact count, so nothing is silently
truncated by the encoder. Sentences come from NLTK's Punkt (bundled with llama-index-core);
a sentence longer than the budget is cut at token boundaries (the tokenizer's offset mapping).
"""
from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from .types import Chunk

_PARA = re.compile(r"\n\s*\n")
# A text with a line longer than this is not hard-wrapped: each of its line breaks ends a block (a
# heading, a caption, a list item, a paragraph of news-please's ``maintext``), so no sentence runs
# across one. In hard-wrapped text (e-mail, some .txt and PDF text, 72-80 columns) a break is a space.
_WRAP_WIDTH = 100


@dataclass(frozen=True)
class ChunkSpec:
    max_tokens: int  # the model's limit, special tokens included
    overlap_tokens: int = 32
    special_tokens: int = 2  # [CLS] ... [SEP]


_PUNKT_LOCK = threading.Lock()  # the first two chat messages may arrive together


@lru_cache(maxsize=1)
def _punkt():
    """NLTK's Punkt with the data llama-index-core ships (never downloaded)."""
    import importlib.util

    # find llama-index-core's folder without importing it (seconds of imports for one data path)
    spec = importlib.util.find_spec("llama_index.core")
    base = list(spec.submodule_search_locations or [])[0] if spec else ""
    nltk_dir = os.path.join(base, "_static", "nltk_cache")
    with _PUNKT_LOCK, _bare_nltk():
        import nltk.data
        from nltk.tokenize.punkt import PunktTokenizer

        if nltk_dir not in nltk.data.path:
            nltk.data.path.append(nltk_dir)
        tok = PunktTokenizer("english")
        tok._params.abbrev_types.update(NEWS_ABBREVIATIONS)
        return tok


# Titles news put before names that Punkt's English model lacks: without them "New York Gov." ended a
# sentence (689 times in the 1,330 rtqa-dev articles) and the governor's name began the next.
NEWS_ABBREVIATIONS = {"gov", "govs", "sgt", "capt", "cmdr", "cpl", "pvt", "supt", "det", "atty", "msgr", "mt",
                      "sens", "reps", "brig", "insp"}
# "No. 1" (587 splits there): a sentence that ends in "No." before a number goes on
_NUMBER_SIGN = re.compile(r"\bNos?\.$")


@contextmanager
def _bare_nltk():
    """Import Punkt's few modules without running ``nltk/__init__``, which imports all of NLTK (scipy
    included: most of a cold `rag ask`). Empty package shells stand in for ``nltk`` and
    ``nltk.tokenize`` while they load; after, every module loaded this way leaves ``sys.modules`` (the
    tokenizer built keeps its own), so a later ``import nltk`` runs the real, whole import."""
    import importlib.util
    import sys
    import types

    shells = []
    if "nltk" not in sys.modules:
        root = list(importlib.util.find_spec("nltk").submodule_search_locations)[0]
        for name, path in (("nltk", root), ("nltk.tokenize", os.path.join(root, "tokenize"))):
            shell = types.ModuleType(name)
            shell.__path__ = [path]
            sys.modules[name] = shell
            shells.append(name)
    try:
        yield
    finally:
        if shells:
            for name in [m for m in sys.modules if m == "nltk" or m.startswith("nltk.")]:
                del sys.modules[name]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; paragraphs never merge; whitespace between sentences is left out."""
    spans: list[tuple[int, int]] = []
    punkt = _punkt()
    blocks = bool(text) and any(len(line) > _WRAP_WIDTH for line in text.split("\n"))
    pos = 0
    for para in _PARA.split(text) if text else []:
        p_start = text.index(para, pos)
        pos = p_start + len(para)
        if not para.strip():
            continue
        if punkt is not None:
            inner = []
            for s, e in punkt.span_tokenize(para):
                if inner and _NUMBER_SIGN.search(para[inner[-1][0]:inner[-1][1]]) and para[s:s + 1].isdigit():
                    inner[-1] = (inner[-1][0], e)
                else:
                    inner.append((s, e))
        else:  # fallback: split after . ! ? followed by whitespace
            inner, s = [], 0
            for m in re.finditer(r"(?<=[.!?])\s+", para):
                inner.append((s, m.start()))
                s = m.end()
            inner.append((s, len(para)))
        if blocks:
            inner = [piece for s, e in inner for piece in _at_line_breaks(para, s, e)]
        for s, e in inner:
            seg = para[s:e]
            ls = len(seg) - len(seg.lstrip())
            rs = len(seg.rstrip())
            if rs > ls:
                spans.append((p_start + s + ls, p_start + s + rs))
    return spans


def _at_line_breaks(para: str, s: int, e: int) -> list[tuple[int, int]]:
    out, at = [], s
    for m in re.finditer(r"\n", para[s:e]):
        out.append((at, s + m.start()))
        at = s + m.end()
    out.append((at, e))
    return out


def token_counts(tokenizer, texts: Sequence[str]) -> list[int]:
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, truncation=False, return_attention_mask=False,
                    return_token_type_ids=False)
    return [len(ids) for ids in enc["input_ids"]]


def _split_long(tokenizer, text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence into pieces of at most ``budget`` tokens at token boundaries."""
    enc = tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    offsets = enc["offset_mapping"]
    pieces = []
    for i in range(0, len(offsets), budget):
        # the first piece starts at the sentence start: characters the tokenizer drops (control
        # characters, zero-width marks) before the first token must still be covered
        s = start if i == 0 else start + offsets[i][0]
        e = start + (offsets[i + budget][0] if i + budget < len(offsets) else end - start)
        # strip trailing whitespace inside the piece so the span stays tidy
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            pieces.append((s, e))
    return pieces


def chunk_text(
    text: str,
    doc_id: str,
    tokenizer,
    spec: ChunkSpec,
    header: str = "",
) -> list[Chunk]:
    """Pack sentences greedily up to the token budget, with ``overlap_tokens`` of trailing sentences
    carried into the next chunk. The header (prepended at embedding time) counts against the budget."""
    header_tokens = token_counts(tokenizer, [header])[0] if header else 0
    budget = spec.max_tokens - spec.special_tokens - header_tokens
    if budget < 16:
        raise ValueError(f"header leaves only {budget} tokens of the model's {spec.max_tokens}")
    spans = sentence_spans(text)
    counts = token_counts(tokenizer, [text[s:e] for s, e in spans])
    units: list[tuple[int, int, int]] = []
    for (s, e), n in zip(spans, counts):
        if n <= budget:
            units.append((s, e, n))
        else:
            pieces = _split_long(tokenizer, text, s, e, budget)
            for (ps, pe), pn in zip(pieces, token_counts(tokenizer, [text[a:b] for a, b in pieces])):
                units.append((ps, pe, pn))
    groups = _pack(units, budget, spec.overlap_tokens)
    chunks = _verify(text, groups, units, tokenizer, header, spec.max_tokens - spec.special_tokens)
    return [Chunk(doc_id=doc_id, index=i, start=s, end=e, text=text[s:e]) for i, (s, e) in enumerate(chunks)]


def _pack(units: list[tuple[int, int, int]], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of unit indexes into [first, last] groups (inclusive)."""
    groups: list[tuple[int, int]] = []
    i = 0
    n = len(units)
    while i < n:
        total = 0
        j = i
        while j < n and total + units[j][2] + (1 if j > i else 0) <= budget:
            total += units[j][2]
            j += 1
        j = max(j, i + 1)  # a unit always fits on its own (long ones were split)
        groups.append((i, j - 1))
        if j >= n:
            break
        # overlap: step back over trailing units worth at most `overlap` tokens, but always advance
        k, carried = j, 0
        while k - 1 > i and carried + units[k - 1][2] <= overlap:
            k -= 1
            carried += units[k][2]
        i = k
    return groups


def _verify(text, groups, units, tokenizer, header, limit) -> list[tuple[int, int]]:
    """Exact token count of every embedded input; a group that is over (token counts are not always
    additive across sentence joins) is split in two until it fits."""
    out: list[tuple[int, int]] = []
    pending = list(groups)
    header_tokens = token_counts(tokenizer, [header])[0] if header else 0
    while pending:
        spans = [(units[a][0], units[b][1]) for a, b in pending]
        counts = token_counts(tokenizer, [header + text[s:e] for s, e in spans])
        nxt = []
        for (a, b), (s, e), c in zip(pending, spans, counts):
            if c <= limit:
                out.append((s, e))
            elif a < b:
                mid = (a + b) // 2
                nxt += [(a, mid), (mid + 1, b)]
            else:  # one unit over by a join effect: cut it by tokens with a safety margin
                out.extend(_split_long(tokenizer, text, s, e, limit - header_tokens - 8))
        pending = nxt
    out.sort()
    return out


def fit_header(header: str, tokenizer, spec: ChunkSpec) -> str:
    """Cut a header (an over-long title) to a quarter of the model's budget, at a token boundary,
    so the chunk text always has room."""
    if not header:
        return header
    cap = spec.max_tokens // 4
    body = header.rstrip("\n")
    enc = tokenizer(body, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    offsets = enc["offset_mapping"]
    if len(offsets) <= cap:
        return header
    cut = body[: offsets[cap - 1][1]].rstrip()
    return cut + "…\n" if cut else ""


def embed_input(header: str, chunk_text_: str) -> str:
    return header + chunk_text_


def make_header(title: str, text: str) -> str:
    """Title as context for the encoder, unless the text already starts with it."""
    t = title.strip().rstrip("…")
    if not t or text.lstrip("*# ").startswith(t[:60]):
        return ""
    return t + "\n"
