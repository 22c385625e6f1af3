# Every target works on a fresh machine with only python3 and make: the first one that needs
# the environment creates .venv and installs the package with its dev tools.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install codegen codegen-check lint test test-stdlib demo bench clean

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

# The dev extra installs orjson, so `make test` runs with it; this runs the tests of everything
# that parses or writes JSON again with the standard library's json forced.
STDLIB_TESTS := tests/test_json_backends.py tests/test_fast_decoder.py tests/test_convert.py \
	tests/test_tolerance.py tests/test_hostile.py tests/test_export.py tests/test_bulk.py \
	tests/test_bulk_identity.py tests/test_session.py tests/test_retries.py tests/test_fake_server.py
test-stdlib: $(STAMP)
	FLIREO_JSON=stdlib $(PY) -m pytest $(STDLIB_TESTS)

demo: $(STAMP)
	$(VENV)/bin/flireo demo

bench: $(STAMP)
	$(PY) bench/decode.py
	$(PY) bench/overhead.py
	$(PY) bench/export.py
	$(PY) bench/bulk.py
	$(PY) bench/fleet.py
	$(PY) bench/peers.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
