# Two commands a newcomer needs (see README.md):
#   make demo   run the example study into a scratch repository
#   make test   run the whole test suite (installs what it needs first)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench bench-quick

# The demo needs only labbook and scikit-learn; the tests need the rest (MLflow, Playwright, pyarrow…).
$(VENV)/.venv-made:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.demo-installed: pyproject.toml $(VENV)/.venv-made
	$(PY) -m pip install --quiet -e '.[examples]'
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.venv-made
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.demo-installed
	$(PY) examples/demo.py

test: $(VENV)/.installed
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m ruff check labbook tests examples benchmarks
	$(PY) -m pytest -q

# Every benchmark, then benchmarks/results/summary.md (see benchmarks/README.md).
bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py

bench-quick: $(VENV)/.installed
	$(PY) benchmarks/run_all.py --quick
