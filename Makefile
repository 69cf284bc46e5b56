# seqlab — the two commands a new user needs are `make all` and `make test`.
# Everything else (the torch venv, the Rust build, the data) is set up here.

SHELL := /bin/bash
TORCH_VERSION := 2.13.0
TORCH_VENV ?= $(HOME)/.cache/seqlab/torch-$(TORCH_VERSION)
PYTHON ?= python3
SEQLAB_DATA ?= data
RESULTS ?= results
JOBS ?=

# tch's build script finds libtorch through the venv's python.
export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(TORCH_VENV)
export PATH := $(TORCH_VENV)/bin:$(PATH)
export SEQLAB_DATA

VENV_OK := $(TORCH_VENV)/.seqlab-ready
BIN := target/release/seqlab

.PHONY: all quick figures data test test-slurm bench build clean help venv

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

venv: $(VENV_OK) ## create the shared torch venv if it is missing

$(VENV_OK):
	@echo "seqlab: setting up torch $(TORCH_VERSION) in $(TORCH_VENV) (shared by every clone; override with TORCH_VENV=)"
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION) numpy
	touch $@

build: $(VENV_OK) ## build target/release/seqlab
	cargo build --release

data: build ## fetch or generate the datasets of the book into $(SEQLAB_DATA)
	$(BIN) data fetch

all: build data ## reproduce every experiment and figure of chapter 6.3-6.4
	$(BIN) run experiments/*.toml --results $(RESULTS) $(if $(JOBS),--jobs $(JOBS))
	$(BIN) report $(RESULTS)

quick: build data ## every experiment with few epochs and steps, into results-quick/
	$(BIN) run experiments/*.toml --results results-quick \
	  --set train.epochs=2 --set train.steps_per_epoch=20 --set train.val_steps=10 --set train.test_steps=10 \
	  $(if $(JOBS),--jobs $(JOBS))
	$(BIN) report results-quick

figures: build ## redraw figures and the report from existing results
	$(BIN) report $(RESULTS)

test: $(VENV_OK) ## build, run every test, rustfmt and clippy
	cargo build --release
	cargo test --release
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings

test-slurm: build ## integration test against a real single-node Slurm (needs root)
	bash tests/slurm/run.sh

bench: build ## throughput benchmarks (see benches/README.md)
	bash benches/run.sh

clean: ## remove build outputs (keeps the shared venv, data and results)
	cargo clean
