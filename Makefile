# Behörighet – every set-up step lives here; nothing is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
FKUI_CSS := app/static/vendor/fkui.min.css
CATALOGS := $(patsubst %.po,%.mo,$(wildcard app/translations/*/LC_MESSAGES/messages.po devtools/translations/*/LC_MESSAGES/messages.po))

.PHONY: demo test lint imports install assets debian-packages services format clean bench

demo: install
	$(BIN)/behorighet demo

# The quick tests in two processes, then the slow and browser tests in one (their timings
# want the machine to themselves); both always run, and either failing fails the target.
test: install debian-packages services imports
	@status=0; \
	$(BIN)/pytest -m "not slow and not e2e" --durations=10 || status=1; \
	$(BIN)/pytest -m "slow or e2e" --durations=25 || status=1; \
	exit $$status

# Every benchmark in bench/ (minutes; PostgreSQL for some): not part of `make test`.
bench: install debian-packages services
	@status=0; for script in bench/bench_*.py; do \
		echo "== $$script"; $(BIN)/python $$script || status=1; \
	done; exit $$status

lint: install imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The layering (import-linter contracts in pyproject.toml) and no import cycle.

imports: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check-import-cycles.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

install: $(INSTALLED) $(FKUI_CSS) $(CATALOGS)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Försäkringskassan's design system, from npm, built into app/static (not committed).
$(FKUI_CSS): package.json
	npm install --no-audit --no-fund --no-package-lock --silent
	mkdir -p $(dir $@)
	cp node_modules/@fkui/design/lib/fkui.min.css node_modules/@fkui/design/lib/fonts.min.css \
	   node_modules/@fkui/theme-default/dist/fkui-css-variables.css $(dir $@)
	mkdir -p $(dir $@)swagger-ui
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
	   $(dir $@)swagger-ui/

%.mo: %.po $(INSTALLED)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ >/dev/null

debian-packages:
	scripts/ensure-debian-packages.sh

services:
	scripts/ensure-services.sh

clean:
	rm -rf $(VENV) node_modules app/static/vendor instance
	find app devtools -name '*.mo' -delete
