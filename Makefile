# The two commands the README documents. Both bootstrap .venv on first use.
#   make e2e   -- the suites: on a kind + Cilium cluster when Docker and the tools are there,
#                 otherwise the offline checks (policies validated and checked against the model)
#   make test  -- flowcheck's own checks: ruff, mypy, import contracts, pytest tests/
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: e2e test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest tests/

e2e: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/e2e

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
