# `make run` and `make test` do every set-up step themselves: the virtualenv,
# the package, the Kafka jars (Maven Central) and the embedded broker.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test unit integration browser browser-deps chaos soak cluster-test lint bench \
        compose-test kafka-start kafka-stop clean

# The console's browser tests drive Debian's chromium (never a downloaded browser) and
# check accessibility with axe-core from npm; both are installed here when missing.
AXE_VERSION := 4.14.1
AXE         := .cache/npm/node_modules/axe-core/axe.min.js
SUDO        := $(shell test "$$(id -u)" = 0 || echo sudo)

$(STAMP): pyproject.toml
	@echo "eventguard: installing into $(VENV) (log: $(VENV)/install.log)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@( $(BIN)/python -m pip install --upgrade pip \
	   && $(BIN)/python -m pip install -e '.[dev]' ) > $(VENV)/install.log 2>&1 \
	   || { tail -n 30 $(VENV)/install.log; echo "eventguard: install failed; see $(VENV)/install.log"; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	@$(BIN)/eventguard kafka provision
	@$(BIN)/eventguard run --config configs/eventguard.yaml

browser-deps:
	@mkdir -p .cache
	@test "$$(dpkg-query -W -f='$${Status}' chromium 2>/dev/null)" = "install ok installed" || { \
	  echo "eventguard: installing Debian's chromium for the browser tests (log: .cache/chromium-install.log)..."; \
	  ( $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium ) \
	    > .cache/chromium-install.log 2>&1 || { tail -n 20 .cache/chromium-install.log; exit 1; }; }
	@test -f $(AXE) || npm install --silent --no-audit --no-fund --prefix .cache/npm axe-core@$(AXE_VERSION)

# Unit, integration, browser and chaos tests; -s shows the chaos suite's figures.
test: $(STAMP) browser-deps
	@$(BIN)/eventguard kafka provision
	$(BIN)/python -m pytest tests -s --durations=8 --ignore=tests/soak --ignore=tests/compose

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	@$(BIN)/eventguard kafka provision
	$(BIN)/python -m pytest tests/integration

# The console in a real Chromium, on the real broker.
browser: $(STAMP) browser-deps
	@$(BIN)/eventguard kafka provision
	$(BIN)/python -m pytest tests/browser -s

# Kills workers and the ingest under load and fuzzes both inputs; prints its figures.
chaos: $(STAMP)
	@$(BIN)/eventguard kafka provision
	$(BIN)/python -m pytest tests/chaos -s --durations=0

# 100 membership changes of 3-4 workers while keys change 60 times a second (~20 min);
# judges every decision by the key table's changelog and prints its figures.
soak: $(STAMP)
	@$(BIN)/eventguard kafka provision
	$(BIN)/python -m pytest tests/soak -s --timeout 0 --durations=0

# 3-node clusters of their own: one loses a broker under load, one runs with SASL/TLS
# and ACLs (both are in `make test` too); prints their figures.
cluster-test: $(STAMP)
	@$(BIN)/eventguard kafka provision
	$(BIN)/python -m pytest tests/chaos tests/integration -m cluster -s --durations=0

# docker-compose.yml for real, on a Docker engine of its own: installs docker.io,
# mmdebstrap and prometheus when missing, builds Compose from the Go module proxy and the
# images no registry serves here (deploy/local-images/), then runs tests/compose.
compose-test: $(STAMP)
	@$(BIN)/eventguard kafka provision
	$(BIN)/python -m pytest tests/compose -s --timeout 3000 -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check workers tests
	$(BIN)/mypy

bench: $(STAMP)
	@$(BIN)/eventguard kafka start
	@$(BIN)/eventguard topics apply >/dev/null
	$(BIN)/eventguard bench pipeline
	$(BIN)/eventguard bench propagation
	$(BIN)/eventguard bench ingest
	$(BIN)/eventguard bench latency --rate 2000 --seconds 30

kafka-start: $(STAMP)
	@$(BIN)/eventguard kafka start

kafka-stop: $(STAMP)
	@$(BIN)/eventguard kafka stop

clean:
	-@test -x $(BIN)/eventguard && $(BIN)/eventguard kafka stop
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
