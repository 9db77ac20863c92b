# Duygu — the two commands of the quick start, and a few more.
#   make run   set up what is missing, then start the app (simulated EPOC+, demo stimuli)
#   make test  the same set-up, then the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.duygu-installed
NODE_TOOLS := .tools
BIDS_VALIDATOR := $(NODE_TOOLS)/node_modules/.bin/bids-validator
PYTEST_ARGS ?=

.PHONY: run test setup system lint screenshots bench demo clean

run: setup
	@$(VENV)/bin/duygu gui || { code=$$?; [ $$code -eq 3 ] || exit $$code; }

test: setup
	$(PY) -m pytest -n 4 --dist loadgroup --durations=15 $(PYTEST_ARGS)

setup: system $(STAMP) $(BIDS_VALIDATOR)

# Debian packages: PortAudio for sounddevice, PulseAudio for a null sink without a sound
# card, and the libraries offscreen Qt needs. Installed only when one is missing.
system:
	@bash .ci/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,deep]'
	@echo "compiling librosa's numba kernels once (cached in the venv)"
	$(PY) -c "import librosa.beat, librosa.feature, librosa.onset"
	@touch $(STAMP)

$(BIDS_VALIDATOR):
	npm install --silent --no-audit --no-fund --prefix $(NODE_TOOLS) bids-validator@1.15.0

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

screenshots: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m app.screenshots docs/screenshots

bench: setup
	$(VENV)/bin/duygu bench --json docs/benchmarks.json --markdown docs/BENCHMARKS.md --force

demo: setup
	$(VENV)/bin/duygu demo --headless

clean:
	rm -rf $(VENV) $(NODE_TOOLS) .pytest_cache .mypy_cache .ruff_cache
