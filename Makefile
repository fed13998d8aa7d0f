# herald: `make run` runs the demo pipeline end to end; `make test` sets up and passes the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: run test setup system lint typecheck docs unit faults bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# RabbitMQ for the local node, PostgreSQL's server for the tests' throwaway cluster (installed on
# demand by tooling/local/rabbitmq.py and tooling/local/postgres.py too, when root); one apt-get update.
# `make test` adds Chromium and its driver (the preference page's browser test): BROWSER=1.
system:
	@missing=""; \
	  { command -v rabbitmq-server >/dev/null 2>&1 || test -x /usr/sbin/rabbitmq-server; } || missing=" rabbitmq-server"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  if [ -n "$(BROWSER)" ]; then test -x /usr/bin/chromium || missing="$$missing chromium"; \
	    test -x /usr/bin/chromedriver || missing="$$missing chromium-driver"; fi; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else echo "install$$missing (or set HERALD_AMQP_URL, HERALD_TEST_DATABASE_URL)"; fi; fi

run: setup system
	$(BIN)/herald demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# pytest exits 5 when it collected no tests: said out loud, and a failure like any other.
test: BROWSER = 1
test: setup system lint typecheck docs
	@$(BIN)/pytest --durations=25 tests/unit tests/integration tests/fuzz tests/e2e tests/faults; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# The docs site, strict: a broken link, a missing page or a setting the hook cannot find fails it.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -f mkdocs.yml

unit: setup
	$(BIN)/pytest tests/unit

faults: setup system
	$(BIN)/pytest tests/faults

bench: setup system
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .herald .mypy_cache .ruff_cache .pytest_cache
