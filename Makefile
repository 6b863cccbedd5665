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
# Debian packages the tests use, each as package:file-it-installs: busybox is the nix runner
# image's wget/timeout (setup.sh's fallback); Playwright drives Debian's chromium in the dashboard's
# browser tests (never `playwright install`), and a font makes its screenshots show text.
SYSTEM_TOOLS := .tools/.system-tools
SYSTEM_PACKAGES := busybox:/bin/busybox chromium:/usr/bin/chromium \
	fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

.PHONY: setup synth test lint typecheck pytest bench bench-dashboard snapshots-update schema components \
	clean docs dist

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

# Installs only what is missing (CI runs as root); re-checked whenever this file changes.
$(SYSTEM_TOOLS): Makefile
	missing=$$(for entry in $(SYSTEM_PACKAGES); do \
		[ -e "$${entry#*:}" ] || echo "$${entry%%:*}"; done); \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; fi
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
	$(VENV)/bin/pytest -n 0 tests/stacks/test_snapshots.py --snapshot-update

schema: $(VENV)/.installed
	$(VENV)/bin/attic-iac schema > config/organization.schema.json

# Regenerate templates/*/template.yml (the CI/CD components) from iac_tools/ci_*.py.
components: $(VENV)/.installed
	$(PY) -m iac_tools.ci_components --write

bench: $(VENV)/.installed $(NODE)
	$(PY) -m tests.bench

# The dashboard's web tier with 500 SSE viewers on loopback (tests/bench_dashboard.py says what
# it measures; BENCH_* variables change the load). About a minute and a half.
bench-dashboard: $(VENV)/.installed
	$(PY) -m tests.bench_dashboard

# Re-fetch the dashboard's vendored htmx/htmx-ext-sse/uPlot with the machine's npm and check
# them against dashboard/static/vendor/MANIFEST.json (tests/tools/vendor_js.py; --update moves a pin).
.PHONY: vendor-js
vendor-js: $(VENV)/.installed
	$(PY) -m tests.tools.vendor_js

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
