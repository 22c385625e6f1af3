# Every target works on a fresh machine with only python3 and make: the first one that needs
# the environment creates .venv and installs the package with its dev tools.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install codegen codegen-check lint test demo bench clean

$(STAMP): pyproject.toml constraints-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-test.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

codegen: $(STAMP)
	$(PY) -m codegen

codegen-check: $(STAMP)
	$(PY) -m codegen --check

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/flireo demo

bench: $(STAMP)
	$(PY) bench/overhead.py
	$(PY) bench/export.py
	$(PY) bench/bulk.py
	$(PY) bench/fleet.py
	$(PY) bench/webhooks.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
