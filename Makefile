# Two commands on a fresh machine: `make demo` (main job) and `make test`. Both install into .venv.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.13.0 resolves to the CPU wheel on these machines; see README for elsewhere.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nextk demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	cd benchmarks && ../$(PY) run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check nextk tests benchmarks

# What CI runs (.ci/run): lint, then `make test`, then `make test-slow`.
ci:
	.ci/run

.PHONY: install demo test test-slow bench lint ci
