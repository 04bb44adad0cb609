# voxtral-deploy: `make demo` and `make test` work on a fresh machine with Python 3.10+.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SYSDEPS_STAMP := $(VENV)/.sysdeps-stamp
TORCH_PIN := torch==2.13.0
export HF_HUB_DISABLE_TELEMETRY := 1
export NO_MKDOCS_2_WARNING := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: setup sysdeps demo test check-export check-readme nbtest pytest bench docs docs-serve readme clean-nbs clean

setup: $(STAMP)

# torch first: a pinned CPU build lies on these machines' disks; an unpinned torch would pull a CUDA build.
$(STAMP): settings.ini setup.py pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[dev,quant,lora,docs,eval]"
	@touch $(STAMP)

# Browser (+ its webdriver), the Space sandbox and speech for the end-to-end tests (Debian packages); installed only when missing.
sysdeps: $(SYSDEPS_STAMP)
$(SYSDEPS_STAMP):
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v bwrap >/dev/null || ! command -v espeak-ng >/dev/null || ! command -v ffmpeg >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver bubblewrap espeak-ng ffmpeg >/dev/null; \
	  else echo "warning: chromium, chromium-driver, bubblewrap, espeak-ng or ffmpeg missing and cannot apt-get install them; the tests that need them will be skipped"; fi; \
	fi
	@mkdir -p $(VENV) && touch $(SYSDEPS_STAMP)

demo: setup
	$(BIN)/voxtral-deploy quickstart --workdir demo-workdir

test: setup sysdeps check-export check-readme nbtest pytest

# The package must be what the notebooks export (notebooks are the source).
check-export: setup
	@rm -rf .export-check && cp -r voxtral_deploy .export-check
	@$(BIN)/nbdev_export
	@if ! diff -rq -x __pycache__ .export-check voxtral_deploy; then \
	  rm -rf .export-check; echo "error: voxtral_deploy/ did not match the notebooks; nbdev_export has updated it: commit the result"; exit 1; fi
	@rm -rf .export-check; echo "package matches the notebooks"

# README.md is generated from nbs/index.ipynb: `make readme` writes it, `check-readme` fails when they drift.
readme: setup
	$(BIN)/python docs/nbdocs.py readme

check-readme: setup
	@$(BIN)/python docs/nbdocs.py readme --check

# The docs site, from the notebooks' saved outputs (mkdocs-material + mkdocs-jupyter; quarto is not needed).
docs: setup
	$(BIN)/python docs/nbdocs.py site

docs-serve: docs
	cd _proc && $(abspath $(BIN))/mkdocs serve -f mkdocs.yml

nbtest: setup
	$(BIN)/nbdev_test --n_workers 2

pytest: setup
	$(BIN)/python -m pytest tests -q -ra --timeout=900

bench: setup sysdeps
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-nbs: setup
	$(BIN)/nbdev_clean

clean:
	rm -rf build dist *.egg-info .pytest_cache demo-workdir _proc _docs
