# Two commands matter: `make run` (server on embedded defaults with demo data) and `make test` (everything).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean i18n

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ccserver db upgrade
	$(BIN)/ccserver demo-data --if-empty --kpi-days 14
	$(BIN)/ccserver run

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --strict routing

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Page texts: extract every message of the templates and the web code, then update both catalogues (zh_CN, en).
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k T --no-location --sort-output --project ccserver -o agents_ui/locale/messages.pot .
	$(BIN)/pybabel update -i agents_ui/locale/messages.pot -d agents_ui/locale -D messages --no-fuzzy-matching
