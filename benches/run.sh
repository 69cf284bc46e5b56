#!/usr/bin/env bash
# Runs the throughput benchmarks (see benches/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TORCH_VENV:-$HOME/.cache/seqlab/torch-2.13.0}/bin/python"
"$PY" benches/jena_numpy_generator.py
imdb="${SEQLAB_DATA:-data}/aclImdb_v1.tar.gz"
cargo run --release --quiet --example data_bench -- target/data-bench $( [ -f "$imdb" ] && echo "$imdb" )
