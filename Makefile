# The two commands: `make demo` and `make test`. Everything else is a step of those.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install lint typecheck test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

lint: install
	$(BIN)/ruff check crews roles bus inference tests bench
	$(BIN)/ruff format --check crews roles bus inference tests bench
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/crews demo

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
