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

.PHONY: all quick replicates figures data synthetic-jena ett test test-slurm bench bench-cuda build clean help venv

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

# A Jena-format CSV to use instead of the downloaded record, e.g. the synthetic
# one of `make synthetic-jena` on a machine without internet. It is recorded in
# every run's config (data.path), so its results never pass for the real data's.
JENA_CSV ?=
JENA_SET = $(if $(JENA_CSV),--set data.path=$(abspath $(JENA_CSV)))
QUICK_SET = --set train.epochs=2 --set train.steps_per_epoch=20 --set train.val_steps=10 --set train.test_steps=10

data: build ## download the book's datasets into $(SEQLAB_DATA) if missing
	$(BIN) data fetch $(if $(JENA_CSV),--skip-jena)

synthetic-jena: build ## write a full-size synthetic Jena CSV to $(SEQLAB_DATA)/jena_synthetic.csv
	$(BIN) data synth-jena --out $(SEQLAB_DATA)/jena_synthetic.csv

# Jena and IMDB run as two plans so that JENA_CSV reaches only the Jena files;
# a failed cell does not stop the rest, and the exit status reports it.
define run_book
	@status=0; \
	$(BIN) run experiments/jena_*.toml $(JENA_SET) $(2) --results $(1) --no-report $(if $(JOBS),--jobs $(JOBS)) || status=$$?; \
	$(BIN) run experiments/imdb_*.toml $(2) --results $(1) --no-report $(if $(JOBS),--jobs $(JOBS)) || status=$$?; \
	$(BIN) report $(1) && exit $$status
endef

all: build data ## reproduce every experiment and figure of chapter 6.3-6.4 into results/
	$(call run_book,$(RESULTS),)

quick: build data ## every experiment with 2 short epochs (overrides, not new files), into results-quick/
	$(call run_book,results-quick,$(QUICK_SET))

# ETTh1 (Zhou et al., AAAI 2021; CC BY-ND 4.0): put ETTh1.csv into the data
# directory, or name it with ETTH1=path/to/ETTh1.csv.
ETTH1 ?= $(SEQLAB_DATA)/ETTh1.csv

ett: build ## long-horizon forecasting: 6 models x 4 horizons on ETTh1 into $(RESULTS)/ett/, summary.md beside the published table
	@test -f $(ETTH1) || { echo "seqlab: $(ETTH1) is missing: put ETTh1.csv (github.com/zhouhaoyi/ETDataset, ETT-small/) there or pass ETTH1=path"; exit 1; }
	@status=0; \
	$(BIN) run experiments/ett/*.toml --set data.path=$(abspath $(ETTH1)) --results $(RESULTS)/ett --no-report $(if $(JOBS),--jobs $(JOBS)) || status=$$?; \
	$(BIN) report $(RESULTS)/ett --reference experiments/ett/published.csv && exit $$status

# The book's protocol is one run per experiment (`make all`); this runs every
# experiment REPEATS times (seeds train.seed … train.seed + REPEATS - 1), so
# the report and `seqlab diff` can tell a change from seed noise.
REPEATS ?= 5

replicates: build data ## every experiment with $(REPEATS) replicates (seeds), into results-replicates/
	$(call run_book,results-replicates,--set train.repeats=$(REPEATS))

figures: build ## redraw figures and the report from existing results
	$(BIN) report $(RESULTS)

test: $(VENV_OK) ## build, run every test, rustfmt and clippy
	cargo build --release
	cargo test --release
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings

test-slurm: build ## integration test against a real single-node Slurm (needs root)
	bash tests/slurm/run.sh

# The Keras reference of `make bench` (benches/keras_reference.py) runs in a
# TensorFlow venv of its own, installed here only (never by all or test).
TF_VERSION := 2.21.0
KERAS_VERSION := 3.15.1
KERAS_VENV ?= $(HOME)/.cache/seqlab/keras-$(TF_VERSION)
KERAS_OK := $(KERAS_VENV)/.seqlab-ready

$(KERAS_OK):
	@echo "seqlab: setting up tensorflow-cpu $(TF_VERSION) / keras $(KERAS_VERSION) in $(KERAS_VENV) (benchmarks only)"
	$(PYTHON) -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check tensorflow-cpu==$(TF_VERSION) keras==$(KERAS_VERSION)
	touch $@

bench: build $(KERAS_OK) ## throughput benchmarks against Keras and PyTorch references (see benches/README.md)
	KERAS_PY=$(KERAS_VENV)/bin/python bash benches/run.sh

bench-cuda: build ## on a machine with an NVIDIA GPU: every model's step on the GPU beside PyTorch's, one epoch of the book where auto places it (target/cuda/)
	$(BIN) data fetch --skip-jena
	BIN=$(BIN) PY=$(TORCH_VENV)/bin/python bash benches/cuda.sh target/cuda

clean: ## remove build outputs (keeps the shared venv, data and results)
	cargo clean
