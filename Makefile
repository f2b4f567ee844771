# Two entry points: `make demo` and `make test`. Everything else is a step they use.
# uv is taken from PATH, or installed into .tools/ on first use (needs python3 >= 3.11 and pip).

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck imports pytest serve bench clean

demo: $(VENV)/.synced
	$(BIN)/zhkh db upgrade
	$(BIN)/zhkh demo

test: $(VENV)/.synced lint typecheck imports pytest

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.synced
	$(BIN)/mypy

imports: $(VENV)/.synced
	$(BIN)/lint-imports

pytest: $(VENV)/.synced
	$(BIN)/pytest

serve: $(VENV)/.synced
	$(BIN)/zhkh serve

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python python3
	@touch $@

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
