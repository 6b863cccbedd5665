# Two commands matter: `make synth` and `make test`. Both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := synth

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
# Node 24 LTS from the npm registry (the package ships the binary); see README "Node.js".
NODE_VERSION := 24.21.0
NODE_ARCH := $(shell uname -m | sed -e 's/x86_64/x64/' -e 's/aarch64/arm64/')
NODE := .tools/node/bin/node
# Debian tools the tests run: busybox is the nix runner image's wget/timeout (setup.sh's fallback).
SYSTEM_TOOLS := .tools/.system-tools

.PHONY: setup synth test lint typecheck pytest bench snapshots-update schema components clean docs dist

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(NODE) $(SYSTEM_TOOLS)

$(VENV)/.installed: requirements/dev.lock pyproject.toml library/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e library -e .
	touch $@

# checkov pins libraries (e.g. packaging) that clash with pytest, so it lives in its own venv.
$(CHECKOV_VENV)/.installed: requirements/checkov.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.lock
	touch $@

$(NODE):
	npm install --prefix .tools/npm --no-save --no-audit --no-fund --loglevel=error \
		node-linux-$(NODE_ARCH)@$(NODE_VERSION)
	mkdir -p $(dir $(NODE))
	ln -sf ../../npm/node_modules/node-linux-$(NODE_ARCH)/bin/node $(NODE)
	$(NODE) --version

$(SYSTEM_TOOLS):
	command -v busybox >/dev/null || { apt-get update -qq && apt-get install -y -qq busybox; }
	mkdir -p $(dir $@) && touch $@

synth: $(VENV)/.installed $(NODE)
	$(PY) main.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest

test: lint typecheck pytest

# Accept intended changes to stack snapshots (review the diff before committing).
snapshots-update: setup
	$(VENV)/bin/pytest tests/stacks/test_snapshots.py --snapshot-update

schema: $(VENV)/.installed
	$(VENV)/bin/attic-iac schema > config/organization.schema.json

# Regenerate templates/*/template.yml (the CI/CD components) from iac_tools/ci_*.py.
components: $(VENV)/.installed
	$(PY) -m iac_tools.ci_components --write

bench: $(VENV)/.installed $(NODE)
	$(PY) -m tests.bench

# The construct library's API reference (pdoc) in build/reference; fails while a public name
# is undocumented (README "Using the constructs as a library").
docs: $(VENV)/.installed $(NODE)
	$(PY) -m tests.reference build/reference

# Both distributions into dist/, reproducibly (SOURCE_DATE_EPOCH: the last commit's time), then
# twine's metadata check. The release job in .gitlab-ci.yml uploads what this builds.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 315532800)
dist: $(VENV)/.installed
	rm -rf dist
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(PY) -m build --no-isolation --outdir dist library
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(PY) -m build --no-isolation --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .tools cdktf.out .mypy_cache .pytest_cache .ruff_cache build dist
