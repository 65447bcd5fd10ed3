PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Where the links in the demo's emails point.
BASE_URL ?= http://$(HOST):$(PORT)
# The demo's server: daphne, or SERVER=uvicorn (wsproto; docs/deployment.md, "Which server").
SERVER ?= daphne
SERVE_daphne = $(BIN)/daphne -b $(HOST) -p $(PORT) project.asgi:application
SERVE_uvicorn = $(BIN)/uvicorn --host $(HOST) --port $(PORT) --ws wsproto --lifespan off \
	--ws-per-message-deflate false --ws-max-size 1048576 --timeout-graceful-shutdown 10 \
	project.asgi:application

.PHONY: demo test install lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed (set PYTHON=...)") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# The email task worker runs in the background, where sh ignores Ctrl-C for it: it is stopped
# when the server ends (Ctrl-C), its output beside the server's.
demo: install
	$(if $(SERVE_$(SERVER)),,$(error SERVER must be daphne or uvicorn, not "$(SERVER)"))
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --url http://$(HOST):$(PORT)/
	@echo "Serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop), with the email task worker beside it"
	@export BASE_URL=$(BASE_URL); \
	$(BIN)/python manage.py db_worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
	trap 'exit 130' INT TERM; \
	$(SERVE_$(SERVER))

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.polling $(BENCH_ARGS)
	$(BIN)/python -m bench.websocket $(WS_BENCH_ARGS)
	$(BIN)/python -m bench.peers $(PEERS_ARGS)
	$(BIN)/python -m bench.digests $(DIGESTS_BENCH_ARGS)
	$(BIN)/python -m bench.push $(PUSH_BENCH_ARGS)
	$(BIN)/python -m bench.following $(FOLLOWING_BENCH_ARGS)
	$(BIN)/python -m bench.notify_path $(NOTIFY_BENCH_ARGS)
	$(BIN)/python -m bench.notify_path --postgres $(NOTIFY_BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) db.sqlite3 test_db.sqlite3 .pytest_cache sent-emails

# Quality gates (CI runs them too: .ci/run).
.PHONY: typecheck coverage coverage-run coverage-report dist install-test

typecheck: install
	$(BIN)/mypy

# The suite under coverage, daphne subprocesses included ([tool.coverage.*] in pyproject.toml);
# fails below fail_under. CI adds up several runs: coverage-run (each database), coverage-report.
coverage: install
	$(BIN)/coverage erase
	$(MAKE) coverage-run coverage-report

coverage-run: install
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)

coverage-report: install
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# The built wheel's and sdist's file lists, then docs/install.md followed in a fresh virtualenv.
install-test: dist
	NOTIFICATIONS_DIST=dist $(BIN)/python -m pytest -m install tests/test_packaging.py tests/test_install.py $(PYTEST_ARGS)
