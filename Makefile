# VideoFoundry: `make demo` runs the platform, `make test` runs the checks and the suite.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.videofoundry-setup
APT_PACKAGES := ffmpeg tesseract-ocr chromium opencv-data opencv-doc mate-backgrounds postgresql
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: setup demo test lint typecheck up clean

setup: $(STAMP)

# Idempotent: re-runs only when the lock or pyproject changes.
$(STAMP): requirements/lock.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh "$(PY)" "$(VENV)" "$(APT_PACKAGES)"
	touch $(STAMP)

demo: setup
	$(BIN)/videofoundry demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy orchestration assets media curation model training evaluation serving ui

test: lint typecheck
	$(BIN)/pytest -q

up: setup
	$(BIN)/videofoundry up --profile demo

clean:
	rm -rf .videofoundry
