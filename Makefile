# facevlm: two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
export FACEVLM_HOME ?= $(HOME)/.cache/facevlm
VENV := .venv
FACEVLM := $(VENV)/bin/facevlm
# Runs one set-up step and prints its time; `make demo` ends its set-up with a summary of them.
STEP := scripts/step.sh
PYTEST_ARGS ?=

DATASETS := $(FACEVLM_HOME)/datasets
MODEL := $(FACEVLM_HOME)/models/facevlm-clip-small/open_clip_model.safetensors
VLM_ALIGN := $(FACEVLM_HOME)/models/facevlm-chat-small-align/facevlm_vlm.json
VLM := $(FACEVLM_HOME)/models/facevlm-chat-small/facevlm_vlm.json
COMPETENCE := $(FACEVLM_HOME)/models/facevlm-chat-small/competence.json
DEMO_SYNTH := $(DATASETS)/demo-synth/dataset_info.json
DEMO_GALLERY := $(FACEVLM_HOME)/galleries/demo

.PHONY: help setup setup-main setup-engine assets lint test test-models demo demo-start demo-sheet demo-gallery models competence freeze clean-envs

help:
	@echo "make demo    set up everything, then run the demo"
	@echo "make test    set up everything, run the linters, then the test suite"
	@echo "make lint    import-layer contracts (import-linter) + ruff lint and format check"
	@echo "make setup   build .venv (main) and .venv-engine (vLLM), idempotent"
	@echo "make assets  fetch + convert pretrained parts into \$$FACEVLM_HOME/assets"
	@echo "make models  build the training sets and train the default FaceCLIP (about 7 min on 2 cores) and FaceVLM (about 15 min)"
	@echo "make competence  score FaceVLM vs the majority guess on the real dev split (about 1 min): the chat"
	@echo "             answers an attribute only where it wins (competence.json beside the model)"

setup: setup-main setup-engine

setup-main:
	@$(STEP) scripts/setup-env.sh main

setup-engine:
	@$(STEP) scripts/setup-env.sh engine

assets: setup-main
	@$(STEP) $(FACEVLM) assets fetch

# Layer contracts and cycles ([tool.importlinter] in pyproject.toml, see docs/architecture.md), then ruff.
lint: setup-main
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup assets lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The acceptance tests on the trained default models (deselected from `make test`, which does not train).
test-models: setup assets models
	$(VENV)/bin/python -m pytest -m models $(PYTEST_ARGS)

# The demo: contact sheet of the sample photos, a gallery of the real samples + 300 synthetic faces
# embedded by the trained FaceCLIP, then the gateway on 127.0.0.1:8000 (Ctrl-C stops it).
demo: demo-start setup assets models $(COMPETENCE) demo-sheet demo-gallery
	@$(STEP) --summary
	@scripts/demo-examples.sh
	$(FACEVLM) serve serve/cpu.yaml

demo-start:
	@$(STEP) --reset

demo-sheet: setup assets
	@$(STEP) $(FACEVLM) demo

demo-gallery: setup assets models $(DEMO_SYNTH)
	@$(STEP) $(FACEVLM) index add demo $(FACEVLM_HOME)/assets/samples
	@$(STEP) $(FACEVLM) index add demo --dataset $(DATASETS)/demo-synth --no-detect
	$(FACEVLM) index stats demo

$(DEMO_SYNTH): | setup-main
	@$(STEP) $(FACEVLM) data synth --n-identities 60 --per-identity 5 --seed 7 --out $(DATASETS)/demo-synth

# Which attributes the chat may answer: FaceVLM vs the majority guess on the real dev split (paired CIs),
# written to competence.json beside the model; without it the chat says it is unsure about every attribute.
competence: setup assets models $(COMPETENCE)

$(COMPETENCE): $(VLM) $(DATASETS)/real/recipe.json
	@$(STEP) $(FACEVLM) eval run eval/real.yaml --tasks vqa --models facevlm-chat,majority --out $(FACEVLM_HOME)/eval/real-vqa
	@$(STEP) $(FACEVLM) eval competence $(FACEVLM_HOME)/eval/real-vqa

# The default FaceCLIP and FaceVLM, trained once and cached under $FACEVLM_HOME/models.
models: setup assets $(MODEL) $(VLM)

$(DATASETS)/synthetic/recipe.json: data/synthetic.yaml | setup-main
	@$(STEP) $(FACEVLM) data build data/synthetic.yaml

$(DATASETS)/samples/recipe.json: data/samples.yaml | setup-main
	@$(STEP) $(FACEVLM) data build data/samples.yaml

$(DATASETS)/real/recipe.json: data/real.yaml data/real/labels.jsonl | setup-main
	@$(STEP) $(FACEVLM) data build data/real.yaml

# Trained on synthetic + real-train, then calibrated on real-train (calibration.json beside the weights).
$(MODEL): finetune/clip-small.yaml $(DATASETS)/synthetic/recipe.json $(DATASETS)/real/recipe.json
	@$(STEP) $(FACEVLM) finetune finetune/clip-small.yaml
	@$(STEP) $(FACEVLM) eval calibrate facevlm-clip-small --data real --split train

# FaceVLM: stage (a) aligns the connector on captions, stage (b) tunes a LoRA on face QA (fixed step
# counts, about 15 min together on 2 cores; their time limits only cap a loaded machine).
$(VLM_ALIGN): finetune/vlm-align-small.yaml $(DATASETS)/synthetic/recipe.json $(DATASETS)/real/recipe.json
	@$(STEP) $(FACEVLM) finetune finetune/vlm-align-small.yaml

$(VLM): finetune/vlm-lora-small.yaml $(VLM_ALIGN)
	@$(STEP) $(FACEVLM) finetune finetune/vlm-lora-small.yaml

# Re-resolve the full pins after changing requirements/*.in (run on a CPU host).
freeze:
	(echo "# Resolved pins for the main environment (.venv). Regenerate: make freeze"; \
	 $(VENV)/bin/pip freeze --exclude-editable | grep -v '^facevlm') > requirements/main.txt
	(echo "# Resolved pins for the engine environment (.venv-engine) on CPU hosts. Regenerate: make freeze"; \
	 .venv-engine/bin/pip freeze | grep -vE '^(facevlm|torchvision|torchaudio|torchcodec)==') > requirements/engine.txt

clean-envs:
	rm -rf $(VENV) .venv-engine
