# OpenSlot — two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_NODE := devtenant/playground/node_modules/.installed
JS_NODE := tests/js/node_modules/.installed

.PHONY: install node browser run test check lint typecheck imports package bench sample clean load screenshots

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

node: $(PG_NODE) $(JS_NODE)

$(PG_NODE): devtenant/playground/package.json devtenant/playground/package-lock.json
	npm ci --prefix devtenant/playground --no-audit --no-fund --loglevel=error
	touch $@

$(JS_NODE): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium from Debian for the browser tests (Playwright drives it; it never downloads one).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

run: install $(PG_NODE)
	$(PY) -m devtenant.stack

test: install node browser
	$(PY) -m pytest -q

# Candidate page states (desktop and 390 px) as PNGs under docs/candidate/screenshots (axe-checked),
# and the bot's main cards as rendered in the Agents Playground under docs/bot/screenshots.
screenshots: install node browser
	OPENSLOT_SCREENSHOTS_DIR=docs/candidate/screenshots OPENSLOT_BOT_SCREENSHOTS_DIR=docs/bot/screenshots \
		$(PY) -m pytest -q -p no:randomly \
		tests/candidate/test_candidate_a11y.py tests/e2e/test_bot_screenshots.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# The import contracts of pyproject.toml [tool.importlinter] (layers, the pure slot engine, the bot's
# client-side-only use of the Calendar Service).
imports: install
	$(VENV)/bin/lint-imports --no-cache

# What CI runs: lint + formatting, mypy strict, import contracts, then every test.
check: lint typecheck imports test

# Standard library only: the venv's Python when there is one, else python3; installs nothing.
# Settings: OPENSLOT_BOT_APP_ID, OPENSLOT_PUBLIC_BASE_URL (https), optional OPENSLOT_APP_VERSION,
# OPENSLOT_TEAMS_APP_ID, OPENSLOT_PRIVACY_URL, OPENSLOT_TERMS_URL (appManifest/README.md).
package:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) appManifest/build.py

bench: install
	$(PY) -m bench

# Long-form load test (100 concurrent conversations, 150 ms Graph latency); short form runs in `make test`.
load: install
	$(PY) -m bench.load

sample: install
	$(PY) -m devtenant.make_sample

clean:
	rm -rf .data build
