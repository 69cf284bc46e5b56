#!/usr/bin/env bash
# `make bench`: every throughput benchmark, side by side with references
# measured in the same session (see benches/README.md). Figures, not tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TORCH_VENV:-$HOME/.cache/seqlab/torch-2.13.0}/bin/python"
BIN=target/release/seqlab
STEPS="${STEPS:-50}"
work=target/bench
mkdir -p "$work"
jena="$work/jena_synthetic.csv"
[ -f "$jena" ] || "$BIN" data synth-jena --rows 420551 --out "$jena"
JSET=(--set "data.path=$PWD/$jena")

echo "== data: the book's numpy generator vs seqlab's batcher (128 x 240 x 14, shuffled)"
"$PY" benches/jena_numpy_generator.py
imdb="${SEQLAB_DATA:-data}/aclImdb_v1.tar.gz"
cargo run --release --quiet --example data_bench -- "$work/data-bench" $( [ -f "$imdb" ] && echo "$imdb" )

echo "== tables: reading a generated 10,000,000-row table (a timestamp + 20 numbers a row) as CSV and as Parquet"
cargo run --release --quiet --example table_bench -- write "$work" 10000000 20
for ext in csv parquet; do
  /usr/bin/time -f "  %e s wall, %M KiB peak" target/release/examples/table_bench read "$work/table_10000000x20.$ext"
done

echo "== model steps: seqlab (appended to benches/results.csv, figure benches/step_time.png)"
"$BIN" bench experiments/jena_{dense,gru,gru_dropout,stacked_gru,bidirectional_gru,conv1d,conv_gru}.toml "${JSET[@]}" --steps "$STEPS"
if [ -f "$imdb" ]; then "$BIN" bench experiments/imdb_{conv1d,lstm,bidirectional_lstm}.toml --steps "$STEPS" --out benches/results.csv; fi
echo "== model steps: PyTorch eager reference, same machine, same session"
"$PY" benches/torch_reference.py --steps "$STEPS"

echo "== scaling: GRU(32) train step against sequence length and batch size (benches/scaling.csv)"
rm -f benches/scaling.csv
for lookback in 360 720 1440 2880; do
  "$BIN" bench experiments/jena_gru.toml "${JSET[@]}" --set "data.lookback=$lookback" --steps 20 --repeat 1 --out benches/scaling.csv >/dev/null
done
for batch in 32 64 128 256 512; do
  "$BIN" bench experiments/jena_gru.toml "${JSET[@]}" --set "data.batch_size=$batch" --steps 20 --repeat 1 --out benches/scaling.csv >/dev/null
done
cat benches/scaling.csv

echo "== scheduler: 8 small GRU cells, --jobs 1 vs --jobs 2"
grid="$work/grid8.toml"
cat > "$grid" <<TOML
extends = "$PWD/experiments/base/jena.toml"
[experiment]
name = "bench_grid"
[data]
path = "$PWD/$jena"
lookback = 720
[train]
epochs = 2
steps_per_epoch = 40
val_steps = 20
test_steps = 0
evaluate_test = false
[[layers]]
type = "gru"
units = 16
[[layers]]
type = "dense"
units = 1
[grid]
"train.seed" = [1, 2, 3, 4, 5, 6, 7, 8]
TOML
for jobs in 1 2; do
  start=$(date +%s.%N)
  "$BIN" run "$grid" --results "$work/grid-$jobs" --jobs "$jobs" --force --no-report >/dev/null 2>&1
  end=$(date +%s.%N)
  awk -v j="$jobs" -v s="$start" -v e="$end" 'BEGIN { printf "jobs %d: %.1f s, %.2f cells/min\n", j, e - s, 8 * 60 / (e - s) }'
done

echo "== predict: trained cells used from a cold process (medians of 5; see benches/README.md)"
pw="$work/predict"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
cold() { "$@" >/dev/null; for _ in 1 2 3 4 5; do /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; done | median; }
"$BIN" run experiments/jena_gru.toml "${JSET[@]}" --set train.epochs=1 --set train.steps_per_epoch=20 \
  --set train.val_steps=5 --set train.test_steps=5 --results "$pw" --no-report >/dev/null 2>&1
echo "process + libtorch start-up (seqlab --version): $(cold "$BIN" --version) s"
echo "book GRU, one-window forecast from the 420,551-row table: $(cold "$BIN" predict "$pw/jena_gru/default" --data "$jena") s"
etth1="${SEQLAB_DATA:-data}/ETTh1.csv"
if [ -f "$etth1" ]; then
  "$BIN" run experiments/ett/ett_gru.toml --set "data.path=$PWD/$etth1" --set train.epochs=1 \
    --only "horizon=96," --results "$pw" --no-report >/dev/null 2>&1
  echo "ETTh1 H=96 GRU, backtest of the 2,785 test windows: $(cold "$BIN" predict "$pw/ett_gru/horizon=96,units=96" --data "$etth1" \
    --from "2017-10-24 00:00:00" --to "2018-02-17 01:00:00" --out "$work/backtest.csv") s"
fi
if [ -f "$imdb" ]; then
  "$BIN" run experiments/imdb_conv1d.toml --set train.epochs=1 --set train.steps_per_epoch=20 \
    --set train.val_steps=5 --set train.test_steps=5 --results "$pw" --no-report >/dev/null 2>&1
  reviews="$work/imdb_test_reviews.txt"
  [ -f "$reviews" ] || "$PY" - "$imdb" "$reviews" <<'PYTHON'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t, open(sys.argv[2], "w", encoding="utf-8") as out:
    for m in t:
        parts = m.name.split("/")
        if m.isfile() and len(parts) == 4 and parts[1] == "test" and parts[2] in ("pos", "neg"):
            out.write(t.extractfile(m).read().decode("utf-8", "replace").replace("\n", " ") + "\n")
PYTHON
  echo "IMDB convnet, classifying $(wc -l < "$reviews") reviews: $(cold "$BIN" predict "$pw/imdb_conv1d/default" --input "$reviews" --out "$work/labels.csv") s"
fi
