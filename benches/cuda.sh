#!/usr/bin/env bash
# CUDA figures (README, Benchmarks, "On a GPU"), for a machine with an NVIDIA
# GPU: `seqlab bench` for every book and ETTh1 model on the GPU beside the
# PyTorch eager reference on the same GPU (train.device = "cuda" forced);
# then every book experiment for one full epoch, the cells at once as
# `make all` runs them, each where `auto` places it (a GRU with recurrent
# dropout stays on the CPU, see src/model/placement.rs); each cell's
# timing.csv gives that epoch's train and validation seconds, from which the
# chapter's wall time is estimated; then `make ett`'s 24 cells in full, as
# far as the deadline allows. Figures, not tests.
#
# Usage: bash benches/cuda.sh OUTDIR
#   BIN=target/release/seqlab  PY=python3 (with torch)  SEQLAB_DATA=data
#   (aclImdb_v1.tar.gz, ETTh1.csv; the synthetic Jena table is generated)
#   THREADS=8 (libtorch CPU threads for both benchmarks)  DEADLINE=480 (s)
#   DEVICE=cuda (the benchmarks')  EXTRA= (more --set words for the runs,
#   e.g. shorter epochs to try the script on a CPU)  SKIP_BENCH=1 (the runs only)
#   SKIP_ETT=1
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/cuda}"
mkdir -p "$out"
BIN="${BIN:-target/release/seqlab}"
PY="${PY:-python3}"
DATA="${SEQLAB_DATA:-data}"
THREADS="${THREADS:-8}"
DEADLINE="${DEADLINE:-480}"
STEPS="${STEPS:-30}"
DEVICE="${DEVICE:-cuda}"
DSET=(--set "train.device=\"$DEVICE\"")
# shellcheck disable=SC2206
EXTRA=(${EXTRA:-})
start=$(date +%s)
left() { echo $((DEADLINE - ($(date +%s) - start))); }
say() { echo "== $(date -u +%T) (+$(($(date +%s) - start)) s) $*"; }
results="$out/work"
rm -rf "$results"

say "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc; "$BIN" --version; } | tee "$out/machine.txt"

jena="$DATA/jena_synthetic.csv"
[ -f "$jena" ] || { say "synthetic Jena table"; "$BIN" data synth-jena --out "$jena" || exit 1; }
JSET=(--set "data.path=$PWD/$jena")
etth1="$DATA/ETTh1.csv"
h96() { local key; echo --sweep data.horizon=96; for key in $(grep -o '^"layers\.[0-9]*\.units"' "$1" | tr -d '"'); do echo --sweep "$key=96"; done; }

if [ -z "${SKIP_BENCH:-}" ]; then
say "smoke: one GRU step on the GPU"
"$BIN" bench experiments/jena_gru.toml "${JSET[@]}" "${DSET[@]}" --steps 2 --repeat 1 --out /tmp/seqlab_smoke.csv || exit 1

say "seqlab bench on the GPU ($STEPS steps x 3)"
bench="$out/seqlab_cuda.csv"
rm -f "$bench"
"$BIN" bench experiments/jena_{dense,gru,gru_dropout,stacked_gru,bidirectional_gru,conv1d,conv_gru}.toml "${JSET[@]}" \
  "${DSET[@]}" --steps "$STEPS" --threads "$THREADS" --out "$bench"
"$BIN" bench experiments/imdb_{conv1d,lstm,bidirectional_lstm}.toml "${DSET[@]}" \
  --steps "$STEPS" --threads "$THREADS" --out "$bench" | tail -n +2
for m in ett_dlinear ett_nlinear ett_gru ett_segrnn ett_patch_transformer; do
  "$BIN" bench "experiments/ett/$m.toml" --set "data.path=$PWD/$etth1" "${DSET[@]}" $(h96 "experiments/ett/$m.toml") \
    --steps "$STEPS" --threads "$THREADS" --out "$bench" | tail -n +2
done

say "PyTorch eager on the GPU"
timeout "$(left)" "$PY" benches/torch_reference.py --device "$DEVICE" --steps "$STEPS" --threads "$THREADS" --out "$out/torch_cuda.csv"
fi

say "the book, one epoch per cell, cells at once (make all's two plans)"
t0=$(date +%s)
timeout "$(left)" "$BIN" run experiments/jena_*.toml "${JSET[@]}" "${EXTRA[@]}" --set train.epochs=1 \
  --results "$results/book" --no-report
t1=$(date +%s)
timeout "$(left)" "$BIN" run experiments/imdb_*.toml "${EXTRA[@]}" --set train.epochs=1 \
  --results "$results/book" --no-report
t2=$(date +%s)
echo "jena plan $((t1 - t0)) s, imdb plan $((t2 - t1)) s (one epoch each)" | tee "$out/book_epoch.txt"
for f in "$results"/book/*/*/timing.csv; do echo "$f: $(tail -n 1 "$f")"; done | tee -a "$out/book_epoch.txt"

if [ -f "$etth1" ] && [ -z "${SKIP_ETT:-}" ] && [ "$(left)" -gt 30 ]; then
  say "make ett's cells in full (deadline in $(left) s)"
  t0=$(date +%s)
  timeout "$(left)" "$BIN" run experiments/ett/*.toml --set "data.path=$PWD/$etth1" \
    "${EXTRA[@]}" --results "$results/ett" --no-report
  echo "ett: status $?, $(($(date +%s) - t0)) s" | tee "$out/ett.txt"
fi
say "packing"
tar czf "$out/results.tar.gz" --exclude='*.safetensors' --exclude='.*checkpoint*' -C "$results" . 2>/dev/null
rm -rf "$results"
say "done"
