# Two commands do all set-up on a fresh machine with Python 3 and make:
#   make lab    create .venv if missing, install bpkit into it, open JupyterLab on lessons/
#   make test   same bootstrap, then the whole test suite (unit, checkers, notebooks, grader, browser)
# CI (.ci/run) also runs `make test-portable`; `make test-versions` checks the dependency range.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2
UV     := $(VENV)/bin/uv
# Python version:resolution pairs that `make test-versions` builds and tests (see tools/test_versions.py).
VERSIONS ?= 3.11:lowest-direct 3.13:highest

.PHONY: lab test test-fast lint test-portable test-versions browser-deps sandbox-deps release execute bench clean help

help:
	@echo "make lab      open the course in JupyterLab (sets everything up on first run)"
	@echo "make test     run the whole test suite (sets everything up on first run)"
	@echo "make test-portable  the solution notebooks under other floating-point configurations (CI)"
	@echo "make test-versions  lowest dependencies on Python 3.11, newest on 3.13 (uv, .venvs/)"
	@echo "make lint     ruff check and ruff format --check (make test runs it)"
	@echo "make release  regenerate lessons/ from solutions/"
	@echo "make execute NB=solutions/NN_name.ipynb  re-execute a solution notebook in place (then make release)"
	@echo "make bench    run the performance benchmarks"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	@# The distribution was called bpkit before it became backprop-kit: two installs of one package clash.
	@$(PY) -m pip uninstall --quiet --yes bpkit 2>/dev/null || true
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m bpkit setup-lab
	@touch $(STAMP)

# Through `bpkit lab`: it writes the lab settings and adds --allow-root when run as root.
lab: $(STAMP)
	$(PY) -m bpkit lab lessons/

# Install a Debian package when its program is missing: as root with apt-get, else with sudo, else say
# what goes without it. $(call apt_install,PROGRAM,PACKAGE,WHAT FOR,MESSAGE WHEN IMPOSSIBLE)
define apt_install
	@if [ -x $(1) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing $(2) $(3) (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	else echo "$(4)"; fi
endef

# Chromium for the browser tests comes from Debian (playwright cannot download browsers here).
browser-deps:
	$(call apt_install,/usr/bin/chromium,chromium,for the browser tests,No /usr/bin/chromium and no way to install it: the browser tests will be skipped.)

# bubblewrap for the grader's per-kernel sandbox (bpkit grade and its tests); `make lab` does not need it.
sandbox-deps:
	$(call apt_install,/usr/bin/bwrap,bubblewrap,for the grader's sandbox,No /usr/bin/bwrap and no way to install it: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) for bpkit grade.)

# One BLAS thread per process: the suite runs kernels side by side (grader tests, browser tests), and
# on 2 cores oversubscribed OpenBLAS threads made small-matrix training 3-10x slower.
test: export OPENBLAS_NUM_THREADS = 1
test: export OMP_NUM_THREADS = 1
test: $(STAMP) browser-deps sandbox-deps lint
	$(PY) -m pytest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg tests solutions

# The linter and the formatter's check, configured in pyproject.toml ([tool.ruff]).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Everything but the notebooks and the browser.
test-fast: export OPENBLAS_NUM_THREADS = 1
test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not browser and not slow"

# The solution notebooks under nbval in two more floating-point configurations (two BLAS threads;
# NumPy's SIMD dispatch off), as on a machine of another CPU type. The default one is in `make test`.
test-portable: $(STAMP)
	$(PY) tools/float_variants.py

$(UV): | $(PY)
	$(PY) -m pip install --quiet "uv>=0.5"

# Fresh uv environments in .venvs/: fast suite, nbval on every solution, and a full-marks grade.
test-versions: $(UV)
	$(PY) tools/test_versions.py $(VERSIONS)

release: $(STAMP)
	$(PY) -m bpkit release solutions/ lessons/

# Re-execute solution notebooks in place, one BLAS thread as `make test` runs them, so the stored
# outputs are the ones nbval compares: make execute NB=solutions/08_training.ipynb (several: NB="a b").
execute: export OPENBLAS_NUM_THREADS = 1
execute: export OMP_NUM_THREADS = 1
execute: $(STAMP)
	@if [ -z "$(NB)" ]; then echo "usage: make execute NB=solutions/NN_name.ipynb"; exit 2; fi
	$(PY) tools/execute_notebook.py $(NB)

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .venvs .pytest_cache artifacts dist
