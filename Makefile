# Two commands for a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	RAPPORTNOTES_ENV=development $(BIN)/rapportnotes db upgrade
	RAPPORTNOTES_ENV=development $(BIN)/rapportnotes seed-demo --if-empty
	@echo "Serving on http://127.0.0.1:5000 (API under /api/v1, docs at http://127.0.0.1:5000/docs)"
	RAPPORTNOTES_ENV=development $(BIN)/gunicorn --bind 127.0.0.1:5000 --workers 1 --threads 4 \
		--access-logfile /dev/null 'wsgi:app'

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
