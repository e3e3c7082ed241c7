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

# What `make run` leaves out: what the set-up and the tools write into the
# repository, the same as .gitignore, so that it hashes the project's own files.
OWN_FILES := --exclude .venv/ --exclude .git/ --exclude build/ --exclude dist/ \
             --exclude '*.egg-info/' --exclude __pycache__/ --exclude .hypothesis/ \
             --exclude '.*_cache/'

.PHONY: run test lint bench man peers venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/python

run: venv
	$(BIN)/pip install --quiet .
	$(BIN)/parhash scan . --algo sha256 $(OWN_FILES)

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
	$(BIN)/pip install --quiet '.[bench]' || $(BIN)/pip install --quiet .
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Writes man/*.1 from the commands' help; run it after changing any help text.
# The pages carry the CHANGELOG's date, not SOURCE_DATE_EPOCH's: they are committed.
man: venv
	$(BIN)/pip install --quiet .
	env -u SOURCE_DATE_EPOCH $(BIN)/python -m parhash.manpage man

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
