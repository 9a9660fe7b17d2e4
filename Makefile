# Two commands do all set-up on a fresh machine with Python 3 and make:
#   make lab    create .venv if missing, install bpkit into it, open JupyterLab on lessons/
#   make test   same bootstrap, then the whole test suite (unit, checkers, notebooks, grader, browser)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: lab test test-fast browser-deps release bench clean help

help:
	@echo "make lab      open the course in JupyterLab (sets everything up on first run)"
	@echo "make test     run the whole test suite (sets everything up on first run)"
	@echo "make release  regenerate lessons/ from solutions/"
	@echo "make bench    run the performance benchmarks"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m bpkit setup-lab
	@touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab lessons/

# Chromium for the browser tests comes from Debian (playwright cannot download browsers here).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "No /usr/bin/chromium and no way to install it: the browser tests will be skipped."; fi

# One BLAS thread per process: the suite runs kernels side by side (grader tests, browser tests), and
# on 2 cores oversubscribed OpenBLAS threads made small-matrix training 3-10x slower.
test: export OPENBLAS_NUM_THREADS = 1
test: export OMP_NUM_THREADS = 1
test: $(STAMP) browser-deps
	$(PY) -m pytest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg tests solutions

# Everything but the notebooks and the browser.
test-fast: export OPENBLAS_NUM_THREADS = 1
test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not browser and not slow"

release: $(STAMP)
	$(PY) -m bpkit release solutions/ lessons/

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache artifacts
