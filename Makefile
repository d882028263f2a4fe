# Two commands matter: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi:app

.PHONY: run test lint setup dev-setup migrate seed openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed

dev-setup: $(VENV)/.installed-dev

migrate: setup
	$(BIN)/flask db upgrade

seed: migrate
	$(BIN)/flask demo seed

run: seed
	@echo "API docs: http://127.0.0.1:8000/docs"
	@echo "Pages:    http://127.0.0.1:8000/login (residents), http://127.0.0.1:8000/till/login (merchants)"
	$(BIN)/gunicorn --config gunicorn.conf.py --bind 127.0.0.1:8000 wsgi:app

test: dev-setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: dev-setup
	$(BIN)/ruff check .

openapi: setup
	$(BIN)/flask openapi write docs/openapi.json

clean:
	rm -rf $(VENV) instance/*.db
