# Set-up and checks. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Debian packages of the reference tools the tests and benchmarks compare
# against, and of groff, which renders the man pages for their tests, as
# command:package.
PEER_TOOLS := md5sum:coreutils xxhsum:xxhash rhash:rhash hashdeep:hashdeep \
              b3sum:b3sum jdupes:jdupes rdfind:rdfind /usr/bin/time:time groff:groff-base

# What `make run` hashes: the project's own files, those git tracks; in an
# unpacked sdist, the tree without what `pip install .` wrote into it.
SET_UP_FILES := --exclude .venv/ --exclude build/ --exclude '*.egg-info/'

.PHONY: run test lint bench man peers venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/python

run: venv
	$(BIN)/pip install --quiet .
	@if git rev-parse --git-dir >/dev/null 2>&1; then set -x; \
	  git ls-files -z | $(BIN)/parhash scan --files0-from - --algo sha256; \
	else set -x; \
	  $(BIN)/parhash scan . --algo sha256 $(SET_UP_FILES); \
	fi

# Installs the peer tools that are missing (apt-get, as root or with sudo).
peers:
	@missing=""; for pair in $(PEER_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing$$missing"; \
	  $$sudo apt-get update && $$sudo apt-get install -y $$missing; \
	fi

test: venv peers
	$(BIN)/pip install --quiet '.[test,lint,dask]'
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/pip install --quiet '.[lint]'
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv peers
	$(BIN)/pip install --quiet '.[bench,dask]' || $(BIN)/pip install --quiet .
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Writes man/*.1 from the commands' help; run it after changing any help text.
# The pages carry the CHANGELOG's date, not SOURCE_DATE_EPOCH's: they are committed.
man: venv
	$(BIN)/pip install --quiet .
	env -u SOURCE_DATE_EPOCH $(BIN)/python -m parhash.manpage man

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
