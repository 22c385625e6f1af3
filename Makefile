# Every target works on a fresh machine with only python3 and make: the first one that needs
# the environment creates .venv and installs the package with its dev tools.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The demo needs only the package and its cli extra: its own small venv, made on the first run.
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-stamp

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

$(DEMO_STAMP): pyproject.toml constraints-test.txt
	@echo "make demo: installing flireo-async[cli] into $(DEMO_VENV) (first run only, about a minute)..."
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-test.txt -e '.[cli]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/flireo demo

bench: $(STAMP)
	$(PY) bench/overhead.py
	$(PY) bench/export.py
	$(PY) bench/bulk.py
	$(PY) bench/fleet.py
	$(PY) bench/report.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
