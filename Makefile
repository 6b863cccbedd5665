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

.PHONY: setup synth test lint typecheck pytest bench snapshots-update schema components clean

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(NODE) $(SYSTEM_TOOLS)

$(VENV)/.installed: requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
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

# Re-fetch the dashboard's vendored htmx/htmx-ext-sse/uPlot with the machine's npm and check
# them against dashboard/static/vendor/MANIFEST.json (tests/tools/vendor_js.py; --update moves a pin).
.PHONY: vendor-js
vendor-js: $(VENV)/.installed
	$(PY) -m tests.tools.vendor_js

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .tools cdktf.out .mypy_cache .pytest_cache .ruff_cache
