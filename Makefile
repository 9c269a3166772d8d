# The two commands: `make demo` and `make test`. Everything else is a step of those.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What the venv holds: a change to pyproject.toml redoes it.
STAMP := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# `make test` runs the tests in this many processes (most tests wait on processes and servers, so 2 on
# 2 cores is ~1.6x faster); files marked with one xdist_group (the local vLLM, the images) share one.
TEST_WORKERS ?= 2

.PHONY: install install-vllm install-crewai install-image-tools install-chromium image lint typecheck test demo bench bench-vllm chaos clean

# Every install step below survives Ctrl-C (redone on the next run), runs once when started twice,
# and fails with one paragraph: what failed, the log's tail, what to do (inference/local/install.py).
install:
	@$(PY) -m inference.local.install venv $(VENV) --stamp $(STAMP) -- -e '.[dev,adk]'

# vLLM's CPU build and the converted model, in their own venv under ~/.cache/crews (once, ~2.5 min).
install-vllm: install
	@$(BIN)/python -m inference.local.vllm install

# crews with CrewAI in its own venv under ~/.cache/crews (crewai pins an older pydantic/openai): the
# crewai engine's workers and the CrewAI baseline run from it.
install-crewai: install
	@$(BIN)/python -m crews.local.crewai_env >/dev/null

# buildah (builds and runs images without a daemon) and debootstrap (a local Debian base when no
# registry is reachable), from apt, only when missing. Needs root, as apt-get does.
install-image-tools:
	@command -v buildah >/dev/null && command -v debootstrap >/dev/null || \
	  { echo "[install] buildah and debootstrap from apt (about a minute)" >&2; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null; }

# Both images (crews, crews-crewai) from wheels built on this host: see images/build.py, docs/helm.md.
image: install install-image-tools
	@$(BIN)/python -m images.build

lint: install
	$(BIN)/ruff check crews roles bus inference tests bench images helm/crews/files .ci
	$(BIN)/ruff format --check crews roles bus inference tests bench images helm/crews/files .ci
	$(BIN)/lint-imports
	$(BIN)/python .ci/import_cycles.py

typecheck: install
	$(BIN)/mypy

# Debian's Chromium for the browser tests (tests/browser/; Playwright drives /usr/bin/chromium, no download).
install-chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: install install-vllm install-crewai install-image-tools install-chromium
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

demo: install install-vllm
	$(BIN)/crews run examples/demo.yaml -i topic="honey bees"

bench: install
	$(BIN)/python -m bench $(ARGS)

# `make bench` plus the batching run on the local vLLM (make install-vllm first): python -m bench --vllm
bench-vllm: install
	$(BIN)/python -m bench --vllm $(ARGS)

# The long chaos run (tests/chaos): ledger jobs with side effects while workers, coordinators, nats-server
# and Redis are SIGKILLed (seeded); prints its figures and fails when a job was lost or stuck, a step had
# two results, a side effect was applied twice or is missing, or a deadline was missed.
CHAOS_ARGS ?= --jobs 200 --kills 30 --seed 7 --duration 900
chaos: install
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
