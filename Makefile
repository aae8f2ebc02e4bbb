# Two commands: `make run` (set up, index seeds/, serve the chat) and `make test` (set up, run the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast browser-deps bench clean

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

test: setup browser-deps
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not browser"

# speed and memory, ours and the llama-index starter side by side (the bench extra); about an hour
bench: setup
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/pip check
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/starter.py
	$(BIN)/python benchmarks/query.py

clean:
	rm -rf $(VENV) index/chroma index/bm25 index/manifest.sqlite*
