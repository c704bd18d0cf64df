# facevlm: two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
export FACEVLM_HOME ?= $(HOME)/.cache/facevlm
VENV := .venv
FACEVLM := $(VENV)/bin/facevlm
PYTEST_ARGS ?=

.PHONY: help setup setup-main setup-engine assets test demo models freeze clean-envs

help:
	@echo "make demo    set up everything, then run the demo"
	@echo "make test    set up everything, then run the test suite"
	@echo "make setup   build .venv (main) and .venv-engine (vLLM), idempotent"
	@echo "make assets  fetch + convert pretrained parts into \$$FACEVLM_HOME/assets"
	@echo "make models  train the default FaceCLIP checkpoint (about 10 min on 2 cores)"

setup: setup-main setup-engine

setup-main:
	@scripts/setup-env.sh main

setup-engine:
	@scripts/setup-env.sh engine

assets: setup-main
	$(FACEVLM) assets fetch

test: setup assets
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

demo: setup assets
	$(FACEVLM) demo

models: setup assets
	$(FACEVLM) data build data/synthetic.yaml
	$(FACEVLM) data build data/samples.yaml
	$(FACEVLM) finetune finetune/clip-small.yaml

# Re-resolve the full pins after changing requirements/*.in (run on a CPU host).
freeze:
	(echo "# Resolved pins for the main environment (.venv). Regenerate: make freeze"; \
	 $(VENV)/bin/pip freeze --exclude-editable | grep -v '^facevlm') > requirements/main.txt
	(echo "# Resolved pins for the engine environment (.venv-engine) on CPU hosts. Regenerate: make freeze"; \
	 .venv-engine/bin/pip freeze | grep -vE '^(facevlm|torchvision|torchaudio|torchcodec)==') > requirements/engine.txt

clean-envs:
	rm -rf $(VENV) .venv-engine
