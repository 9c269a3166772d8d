# The two commands: `make demo` and `make test`. Everything else is a step of those.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install install-vllm install-crewai lint typecheck test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,adk]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# vLLM's CPU build and the converted model, in their own venv under ~/.cache/crews (once, ~2.5 min).
install-vllm: install
	$(BIN)/python -m inference.local_vllm install

# CrewAI in its own venv (.venv-crewai): the benchmark's baseline (crewai pins an older pydantic/openai).
install-crewai: install
	$(BIN)/python -c "from bench import crewai_env; crewai_env.ensure()"

lint: install
	$(BIN)/ruff check crews roles bus inference tests bench
	$(BIN)/ruff format --check crews roles bus inference tests bench
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: install install-vllm install-crewai
	$(BIN)/pytest $(PYTEST_ARGS)

demo: install install-vllm
	$(BIN)/crews run examples/demo.yaml -i topic="honey bees"

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-crewai .pytest_cache .mypy_cache .ruff_cache
