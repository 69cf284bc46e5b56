#!/usr/bin/env bash
# The cost of a checkpoint: seconds and bytes of one end-of-epoch checkpoint
# (columns checkpoint_seconds and checkpoint_bytes of timing.csv) against one
# epoch's seconds, for the book's stacked GRU (its epoch: 500 training steps
# and a validation pass of 769 batches, extrapolated from 10 + 10 measured)
# and the IMDB 1D convnet (one whole epoch; its embedding of 1.28 M
# parameters is the book's largest tensor).
#
#   bash benches/checkpoint.sh [JENA_CSV] [DATA_DIR]
#
# JENA_CSV defaults to data/jena_synthetic.csv; DATA_DIR (holding
# aclImdb_v1.tar.gz) to data/. Writes into a temporary folder only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/seqlab
JENA=$(realpath "${1:-data/jena_synthetic.csv}")
DATA=$(realpath "${2:-data}")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
THREADS=${THREADS:-2}

# The mean of a timing.csv column over all epochs but the first (warm-up).
col() { awk -F, -v c="$2" -v f="${3:-%.4f}" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
    NR > 2 { s += $k; n++ } END { printf f, s / n }' "$1"; }

"$BIN" run experiments/jena_stacked_gru.toml --set data.path="$JENA" --set train.epochs=3 \
    --set train.steps_per_epoch=10 --set train.val_steps=10 --set train.test_steps=1 \
    --results "$OUT" --jobs 1 --threads "$THREADS" --no-report >/dev/null 2>&1
T="$OUT/jena_stacked_gru/default/timing.csv"
epoch=$(awk -v t="$(col "$T" train_seconds)" -v v="$(col "$T" val_seconds)" 'BEGIN { printf "%.2f", t / 10 * 500 + v / 10 * 769 }')
echo "jena_stacked_gru: checkpoint $(col "$T" checkpoint_seconds) s, $(col "$T" checkpoint_bytes %.0f) bytes; one epoch (500 + 769 steps) ~ $epoch s"

# IMDB: the archive (and seqlab's token cache, when there) through links.
mkdir -p "$OUT/data/.cache"
ln -s "$DATA/aclImdb_v1.tar.gz" "$OUT/data/"
for f in "$DATA"/.cache/imdb-*; do [[ -e $f ]] && ln -s "$f" "$OUT/data/.cache/"; done
SEQLAB_DATA="$OUT/data" "$BIN" run experiments/imdb_conv1d.toml --set train.epochs=3 \
    --results "$OUT" --jobs 1 --threads "$THREADS" --no-report >/dev/null 2>&1
T="$OUT/imdb_conv1d/default/timing.csv"
epoch=$(awk -v t="$(col "$T" train_seconds)" -v v="$(col "$T" val_seconds)" 'BEGIN { printf "%.2f", t + v }')
echo "imdb_conv1d: checkpoint $(col "$T" checkpoint_seconds) s, $(col "$T" checkpoint_bytes %.0f) bytes; one epoch ~ $epoch s"
