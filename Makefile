# plant2edge: Azure ML pipelines from plant time-series data to Siemens AI Inference Server.
# Every target sets up what it needs; run `make help` for the list.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= https://github.com/siemens/simatic-ai-launcher/raw/master/datasets/state-identifier/si-sample.parquet
PIPELINE ?= training
ARGS ?=

export PATH := $(CURDIR)/.tools/node_modules/.bin:$(PATH)

.PHONY: help venv tools wheels test demo validate register submit bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

venv: $(VENV)/.installed ## create .venv with the pinned requirements

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==26.3
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

tools: .tools/.installed ## install Mosquitto and Azurite for the local stack

.tools/.installed: scripts/install-tools.sh
	bash scripts/install-tools.sh .tools
	touch $@

wheels: venv ## download the edge package's wheels once, for offline packaging
	$(BIN)/python scripts/fetch-wheels.py

test: venv tools ## run the test suite offline
	$(BIN)/python -m pytest $(ARGS)

demo: venv tools wheels ## run every pipeline locally on DATA (a URL or a local file)
	$(BIN)/plant2edge demo --data "$(DATA)" $(ARGS)

validate: venv ## check every component and pipeline YAML offline
	$(BIN)/plant2edge validate

register: venv ## create or update environments and components in the workspace
	$(BIN)/plant2edge workspace register $(ARGS)

submit: venv ## submit pipelines/$(PIPELINE).yaml; overrides go in ARGS="--set inputs.x=v"
	$(BIN)/plant2edge workspace submit --pipeline $(PIPELINE) $(ARGS)

bench: venv tools wheels ## run the benchmarks whose figures docs/benchmarks.md records
	$(BIN)/python benchmarks/pipelines.py
	$(BIN)/python benchmarks/edge_inference.py
	$(BIN)/python benchmarks/edge_packaging.py --warm-only
	$(BIN)/python benchmarks/delivery.py

lint: venv ## check style with ruff
	$(BIN)/ruff check src tests components benchmarks

clean: ## remove the local registry, data assets and runs (keeps .venv and downloads)
	find .plant2edge -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} + 2>/dev/null || true
