# `make serve` and `make test` work on a fresh machine: each creates .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test os-tools bench bench-server clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

serve: $(VENV)/.installed
	$(BIN)/fakeregistry serve --host 127.0.0.1 --port 5000

# OS tools the real-client and browser tests use; without them those tests skip.
os-tools:
	@command -v skopeo >/dev/null || { \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq skopeo; \
	} || echo "warning: skopeo could not be installed; the skopeo tests will skip"
	@command -v chromium >/dev/null || { \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; \
	} || echo "warning: chromium could not be installed; the page's browser tests will skip"

test: $(VENV)/.installed-test os-tools
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_core.py

# Which HTTP server serves the socket: werkzeug, cheroot, waitress and fakeregistry's own, side by side.
bench-server: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet waitress  # a candidate it compares, not a dependency
	$(BIN)/python benchmarks/bench_server.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
