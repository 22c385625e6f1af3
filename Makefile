# Every target works on a fresh machine with only python3 and make: the first one that needs
# the environment creates .venv and installs the package with its dev tools.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The demo needs only the package and its cli extra: its own small venv, made on the first run.
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-stamp

.PHONY: install docs-install docs codegen codegen-check lint test test-pythons test-stdlib check demo bench clean

$(STAMP): pyproject.toml constraints-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-test.txt -e '.[dev,docs]'
	touch $(STAMP)

install: $(STAMP)

# The docs extra is part of every development environment: the suite tests the docs' hooks.
docs-install: $(STAMP)

# The API reference site in site/; --strict turns a broken reference or link into a failure.
# DOCS_FLAGS=-q prints only warnings and errors (CI).
DOCS_FLAGS ?=
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict $(DOCS_FLAGS)

codegen: $(STAMP)
	$(PY) -m codegen

codegen-check: $(STAMP)
	$(PY) -m codegen --check

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# pytest rewrites the asserts of every module of its plugins' distributions (ours and
# schemathesis: about 500 files) and caches the result as bytecode; PYTHONDONTWRITEBYTECODE, set
# on some machines, would make every run and every worker redo it (about 4 s each).
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest

# The oldest and newest supported Pythons, each in its own environment (.venv-3.10, ...). An
# interpreter is found on PATH, else among pyenv's installed versions. The dev extra installs
# orjson; the run on STDLIB_JSON_PYTHON forces the standard library's json (FLIREO_JSON=stdlib),
# so each JSON backend runs the whole suite.
PYTHONS ?= 3.10 3.13
STDLIB_JSON_PYTHON ?= 3.13

test-pythons:
	@for v in $(PYTHONS); do \
		py=python$$v; \
		$$py -c pass 2>/dev/null || py=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$v.*/bin/python$$v 2>/dev/null | tail -n 1); \
		[ -n "$$py" ] || { echo "Python $$v not found (install it, or set PYTHONS=...)"; exit 1; }; \
		json=auto; [ "$$v" = "$(STDLIB_JSON_PYTHON)" ] && json=stdlib; \
		echo "== pytest on $$($$py --version), JSON backend: $$json"; \
		FLIREO_JSON=$$json $(MAKE) --no-print-directory VENV=.venv-$$v PYTHON=$$py test || exit 1; \
	done

# Exactly what CI runs (.ci/run adds only the system packages).
check: codegen-check lint test-pythons
	$(MAKE) --no-print-directory -s docs DOCS_FLAGS=-q

# The dev extra installs orjson, so `make test` runs with it; this runs the tests of everything
# that parses or writes JSON again with the standard library's json forced.
STDLIB_TESTS := tests/test_json_backends.py tests/test_fast_decoder.py tests/test_convert.py \
	tests/test_tolerance.py tests/test_hostile.py tests/test_export.py tests/test_bulk.py \
	tests/test_bulk_identity.py tests/test_session.py tests/test_retries.py tests/test_fake_server.py
test-stdlib: $(STAMP)
	FLIREO_JSON=stdlib $(PY) -m pytest $(STDLIB_TESTS)

$(DEMO_STAMP): pyproject.toml constraints-test.txt
	@echo "make demo: installing flireo-async[cli] into $(DEMO_VENV) (first run only, about a minute)..."
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-test.txt -e '.[cli]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/flireo demo

bench: $(STAMP)
	$(PY) bench/decode.py
	$(PY) bench/overhead.py
	$(PY) bench/export.py
	$(PY) bench/bulk.py
	$(PY) bench/fleet.py
	$(PY) bench/report.py
	$(PY) bench/webhooks.py
	$(PY) bench/peers.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) .venv-3.* build site *.egg-info .mypy_cache .ruff_cache .pytest_cache
