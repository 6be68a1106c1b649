# The README's two commands: `make up` runs the platform, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FERRY_HOST ?= 127.0.0.1
FERRY_PORT ?= 8000
export FERRY_HOST FERRY_PORT

.PHONY: up test lint typecheck pytest install lock clean images

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Ferry needs Python 3.11 or newer"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
		echo "Could not create a virtual environment: on Debian, apt-get install python3-venv"; \
		exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' -e ./cli
	@touch $(STAMP)

up: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ferry_bootstrap --url http://$(FERRY_HOST):$(FERRY_PORT)
	$(BIN)/honcho start -f Procfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

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
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
