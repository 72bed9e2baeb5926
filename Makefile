# SpareCycles: `make run` starts the app, `make test` installs what the suite needs and runs it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run venv install test lint docs bench clean contracts bundle translations

run: install
	$(BIN)/sparecycles

# The virtual environment with the package installed non-editably (mypy and import-linter need a
# real `sparecycles` in site-packages; see ../shared/design/MACHINE.md).
venv:
	@bash tests/infra/venv.sh "$(PYTHON)" "$(VENV)"

install: venv

lint: venv
	bash tests/infra/lint.sh "$(VENV)"

test:
	bash tests/infra/run-tests.sh

# The one-folder desktop bundle in dist/sparecycles/ (GUI, agent and CLI in one executable; PyInstaller).
bundle:
	bash installer/pyinstaller/build.sh

# Compile agent/chain/contracts/*.sol with the pinned solc-js into agent/chain/contracts/build/*.json
# (committed: users and CI need no compiler). Running it twice gives identical files.
contracts:
	bash tests/infra/node-deps.sh agent/chain/contracts
	node agent/chain/contracts/build.mjs

# ui/translations/: refresh the template of every visible string (sparecycles.ts) and compile each
# translation (sparecycles_<language>.ts) into the .qm file the app loads for that language.
translations: venv
	$(BIN)/pyside6-lupdate -no-obsolete -locations none $$(find ui -name '*.py' | sort) -ts ui/translations/sparecycles.ts
	for ts in ui/translations/sparecycles_*.ts; do [ -e "$$ts" ] || continue; \
	  $(BIN)/pyside6-lupdate -no-obsolete -locations none $$(find ui -name '*.py' | sort) -ts "$$ts"; \
	  $(BIN)/pyside6-lrelease "$$ts" -qm "$${ts%.ts}.qm"; done

docs: venv
	$(BIN)/python docs/generate.py

# The figures go to docs/benchmarks.md with the machine they ran on (about 20 minutes).
bench: venv
	cd bench && ../$(BIN)/python agent_startup.py --write ../docs/benchmarks.md
	cd bench && ../$(BIN)/python input_latency.py --trials 60 --write ../docs/benchmarks.md
	cd bench && ../$(BIN)/python sampling_overhead.py --seconds 60 --write ../docs/benchmarks.md
	cd bench && ../$(BIN)/python job_latency.py --trials 30 --write ../docs/benchmarks.md  # needs dockerd
	cd bench && ../$(BIN)/python market_load.py --write ../docs/benchmarks.md  # PostgreSQL modes need SPARECYCLES_BENCH_POSTGRES or the local test cluster
	cd bench && ../$(BIN)/python ledger_summary.py --write ../docs/benchmarks.md  # fills a year of samples first (about 10 minutes)

clean:
	rm -rf $(VENV) .venv-bundle .bundle-work dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache
