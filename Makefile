# The two commands of the README: `make demo` runs the main job, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test unit bench deps venv run clean

demo: deps venv  ## daemon + simulated partners on the embedded defaults (SQLite, local RabbitMQ)
	$(BIN)/cdgi demo

test: deps venv  ## unit, integration (SQLite and PostgreSQL) and end-to-end tests
	$(BIN)/pytest

unit: venv
	$(BIN)/pytest tests/unit

bench: deps venv
	$(BIN)/python bench/throughput.py

run: venv
	$(BIN)/cdgi run --migrate

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# SoftHSM2 is the dev IC card, xmlsec1 the independent XML-DSig check; Debian packages.
deps:
	@command -v softhsm2-util >/dev/null && command -v xmlsec1 >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 xmlsec1 >/dev/null; \
	  else echo "install softhsm2 and xmlsec1: sudo apt-get install softhsm2 xmlsec1"; exit 1; fi; }

clean:
	rm -rf var .pytest_cache
