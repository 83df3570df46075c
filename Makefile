# The two commands a newcomer needs:
#   make run    install, migrate, load demo data and serve on http://127.0.0.1:8000
#   make test   install and run the whole test suite on PostgreSQL
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | sha1sum | cut -c1-12)
export DATABASE_URL_TEST := $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/revvvs)

.PHONY: run test lint format venv postgres bench clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: venv
	DEBUG=$${DEBUG:-on} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-on} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG:-on} $(BIN)/python manage.py runserver 127.0.0.1:8000

# PostgreSQL must answer on the host of DATABASE_URL; a local cluster is started if it is down.
postgres:
	@bash .ci/ensure-postgres.sh

test: venv postgres
	DATABASE_URL=$(DATABASE_URL_TEST) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv postgres
	DATABASE_URL=$(DATABASE_URL_TEST) $(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
