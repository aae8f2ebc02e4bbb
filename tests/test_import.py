"""`import rag` is light and offline: scripts, the CLI's --help and the eval tools start fast, and no
library can reach the network on its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["torch", "chromadb", "gradio", "sentence_transformers", "openai", "transformers", "llama_index"]

PROBE = """
import json, os, sys
import rag
s = rag.Settings()                      # public names usable without loading anything heavy
engine = rag.Engine(settings=s)         # constructing an Engine is lazy too
import rag.cli
rag.cli.build_parser()
print(json.dumps({"loaded": sorted(m for m in %r if m in sys.modules),
                  "env": {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "ANONYMIZED_TELEMETRY",
                                                         "GRADIO_ANALYTICS_ENABLED")}}))
""" % (HEAVY,)


def run(code: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "ANONYMIZED_TELEMETRY",
                                                            "GRADIO_ANALYTICS_ENABLED")}
    env.update(PYTHONPATH=str(ROOT), RAG_PROGRESS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_rag_loads_no_heavy_library(tmp_path):
    got = run(PROBE, tmp_path)
    assert got["loaded"] == []
    # the package itself switches off hub downloads and telemetry
    assert got["env"] == {"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "GRADIO_ANALYTICS_ENABLED": "False"}
    assert not (tmp_path / "index").exists(), "constructing an Engine must not create the index"


def test_rag_help_is_fast_and_light(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAG_PROGRESS="0")
    code = ("import sys\nsys.argv=['rag','--help']\ntry:\n    from rag.cli import main; main()\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in %r if m in sys.modules))" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ingest" in out.stdout and "stats" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"
