"""Offline proof: `rag ingest`, `rag ask` and the chat window answering one question over its API,
all run inside a fresh network namespace (`unshare -n`) that has only a loopback interface.

Nothing is mocked: the real CLI and ui.py run as subprocesses; the embedding model loads from the
installed package, and any attempt to reach the Hugging Face Hub, Gradio analytics, Chroma telemetry
or a CDN would fail (there is no route) and, for the steps that need it, fail the test.
Skipped, with the reason, where unprivileged or rootless namespaces are not allowed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QUESTION = "How many people were killed in Belgorod?"

# Runs inside the namespace: bring loopback up, prove there is no way out, then the three user steps.
DRIVER = textwrap.dedent('''
    import json, os, socket, subprocess, sys, time
    from pathlib import Path

    work, question, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    bindir = Path(sys.executable).parent
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    result = {}

    # 1. no route to the outside world (a public IP and a DNS name both fail)
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("1.1.1.1", 443))
        result["outside"] = "connected"
    except OSError as e:
        result["outside"] = f"refused: {e}"
    finally:
        s.close()
    try:
        socket.getaddrinfo("huggingface.co", 443)
        result["dns"] = "resolved"
    except OSError as e:
        result["dns"] = f"failed: {e}"

    env = dict(os.environ, RAG_PROGRESS="0", RAG_LLM="extractive")
    index = str(work / "index")
    r = subprocess.run([str(bindir / "rag"), "ingest", str(work / "news"), "--index", index, "--quiet"],
                       env=env, capture_output=True, text=True, timeout=300)
    result["ingest"] = [r.returncode, r.stdout[-2000:], r.stderr[-2000:]]
    r = subprocess.run([str(bindir / "rag"), "ask", question, "--index", index, "--json"],
                       env=env, capture_output=True, text=True, timeout=300)
    result["ask"] = [r.returncode, r.stdout, r.stderr[-2000:]]

    log = open(work / "ui.log", "w")
    ui = subprocess.Popen([sys.executable, "ui.py", "--port", str(port), "--index", index],
                          env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if ui.poll() is not None:
                raise SystemExit("ui.py exited: " + (work / "ui.log").read_text()[-3000:])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("ui.py did not start in 180 s")
                time.sleep(0.3)
        from gradio_client import Client
        out = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False).predict(
            question, api_name="/ask")
        result["ui"] = out
    finally:
        ui.terminate()
        try:
            ui.wait(timeout=20)
        except subprocess.TimeoutExpired:
            ui.kill()
    print("RESULT " + json.dumps(result))
''')


def _netns_available() -> str | None:
    if not shutil.which("unshare"):
        return "`unshare` (util-linux) is not installed"
    if not shutil.which("ip"):
        return "`ip` (iproute2) is not installed"
    for cmd in (["unshare", "-n", "true"], ["unshare", "-rn", "true"]):
        try:
            if subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0:
                return None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return "creating a network namespace is not permitted here (unshare -n / unshare -rn failed)"


@pytest.mark.timeout(420)
def test_ingest_ask_and_ui_answer_with_no_network(tmp_path):
    reason = _netns_available()
    if reason:
        pytest.skip(reason)
    shutil.copytree(SEEDS, tmp_path / "news")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    # as root `unshare -n` is enough; otherwise map ourselves to root in a user namespace too
    flags = "-n" if os.geteuid() == 0 else "-rn"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.run(["unshare", flags, sys.executable, str(driver), str(tmp_path), QUESTION, "7861"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"driver failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    res = json.loads(lines[-1][len("RESULT "):])

    # the namespace really is cut off
    assert res["outside"].startswith("refused"), res["outside"]
    assert res["dns"].startswith("failed"), res["dns"]

    code, out, err = res["ingest"]
    assert code == 0, f"rag ingest failed offline:\n{out}\n{err}"

    code, out, err = res["ask"]
    assert code == 0, f"rag ask failed offline:\n{out}\n{err}"
    ans = json.loads(out)
    assert not ans["refused"] and ans["citations"] and "[1]" in ans["text"]
    assert any("22" in c["snippet"] for c in ans["citations"])

    ui_ans = res["ui"]
    assert not ui_ans["refused"] and ui_ans["backend"] == "extractive" and ui_ans["citations"]
    assert ui_ans["text"] == ans["text"]
