# The README's two commands: `make up` runs the platform, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FERRY_HOST ?= 127.0.0.1
FERRY_PORT ?= 8000
export FERRY_HOST FERRY_PORT
# The browser UI (frontend/): npm installs it from its lock file; Vite builds it into
# frontend/dist, which Django serves. Rebuilt when a source file is newer than the build.
NPM ?= npm
UI := frontend
UI_STAMP := $(UI)/node_modules/.installed
UI_BUILD := $(UI)/dist/index.html
UI_SOURCES := $(shell find $(UI)/src $(UI)/public -type f 2>/dev/null) \
	$(UI)/index.html $(UI)/vite.config.ts $(UI)/tsconfig.json $(UI)/tsconfig.app.json

.PHONY: up test lint typecheck pytest uitest ui install lock clean images screenshots

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Ferry needs Python 3.11 or newer"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
		echo "Could not create a virtual environment: on Debian, apt-get install python3-venv"; \
		exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' -e ./cli
	@touch $(STAMP)

$(UI_STAMP): $(UI)/package.json $(UI)/package-lock.json
	@command -v $(NPM) >/dev/null || { \
		echo "The browser UI needs Node.js 20 and npm: on Debian, apt-get install nodejs npm"; \
		exit 1; }
	cd $(UI) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $(UI_STAMP)

ui: $(UI_BUILD)

$(UI_BUILD): $(UI_STAMP) $(UI_SOURCES)
	cd $(UI) && $(NPM) run --silent build

up: $(STAMP) $(UI_BUILD)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ferry_bootstrap --url http://$(FERRY_HOST):$(FERRY_PORT)
	$(BIN)/honcho start -f Procfile

lint: $(STAMP) $(UI_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd $(UI) && $(NPM) run --silent lint

typecheck: $(STAMP) $(UI_STAMP)
	$(BIN)/mypy .
	cd $(UI) && $(NPM) run --silent typecheck

# The UI's component tests (Vitest, in jsdom).
uitest: $(UI_STAMP)
	cd $(UI) && $(NPM) run --silent test

# The end-to-end tests drive the built UI in Chromium. PYTEST_WORKERS=2 runs the suite on two
# processes (pytest-xdist; each has its own test database and Redis database, and tests that
# share a fixed resource stay on one worker by an xdist_group mark): about half the time, but
# floyd-local's fixed port 8080 was once found taken during such a run, so one process is
# the default until that is understood.
PYTEST_WORKERS ?= 0
pytest: $(STAMP) $(UI_BUILD)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test: lint typecheck uitest pytest

# The UI's pictures in docs/screenshots/, taken in Chromium over made-up data (a throw-away
# database, as the tests use); re-running replaces them.
screenshots: $(STAMP) $(UI_BUILD)
	$(BIN)/pytest -q -s --timeout 600 -p no:cacheprovider tests/e2e/ui/screenshots.py

# The environments' images (platform/images/); IMAGES="python-3.11" picks some, GPU=1 adds the
# -cuda ones, NO_TORCH_INDEX=1 skips those needing PyTorch's wheel index, WHEELHOUSE=1 has this
# machine's pip fetch the packages for the build (see build.sh --help).
images:
	platform/images/build.sh $(IMAGES)

lock: $(STAMP)
	@{ echo "# Exact versions of every package in .venv, so that installs are repeatable."; \
	   echo "# Regenerate with 'make lock' after changing pyproject.toml's dependencies."; \
	   $(BIN)/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache $(UI)/node_modules $(UI)/dist
