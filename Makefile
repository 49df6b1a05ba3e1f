# The README quotes these targets; keep them working on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded SQLite default (./trustledger.db): the HTTP API
# at http://127.0.0.1:8000 (docs at /docs), filled with the demo story, with
# one development key per role printed at start.
run: install
	$(BIN)/trustledger serve --dev --demo

test: install
	$(BIN)/pytest

# The unit tests of the rules, on the in-memory store only: the edit-test loop.
test-fast: install
	$(BIN)/pytest tests/unit --backend memory

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) trustledger.db .pytest_cache .mypy_cache .ruff_cache
