#!/usr/bin/env bash
# `make bench`: every throughput benchmark, side by side with references
# measured in the same session (see benches/README.md). Figures, not tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TORCH_VENV:-$HOME/.cache/seqlab/torch-2.13.0}/bin/python"
# The Keras reference's own venv (`make bench` installs it and sets this);
# unset or missing: the Keras columns stay empty.
KERAS_PY="${KERAS_PY:-}"
BIN=target/release/seqlab
STEPS="${STEPS:-50}"
# One thread count for seqlab and both references, so the ratios compare like with like.
THREADS="${THREADS:-2}"
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

etth1="${SEQLAB_DATA:-data}/ETTh1.csv"
# An ETT file's [grid] zips the horizons with its head's units; --sweep with
# one value for each of its keys picks horizon 96 alone.
h96() { local key; echo --sweep data.horizon=96; for key in $(grep -o '^"layers\.[0-9]*\.units"' "$1" | tr -d '"'); do echo --sweep "$key=96"; done; }
ETT_MODELS=(ett_dlinear ett_nlinear ett_gru ett_segrnn ett_patch_transformer)

echo "== model steps: seqlab (appended to benches/results.csv, figure benches/step_time.png), each model"
echo "   followed at once by its Keras and PyTorch references (benches/keras_reference.csv, benches/torch_reference.csv)"
# Each model is timed in seqlab and then at once in Keras and PyTorch: a
# ratio compares measurements seconds apart, not minutes apart (this
# machine's speed drifts by a third over minutes).
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
keras_ok=""
if [ -n "$KERAS_PY" ] && [ -x "$KERAS_PY" ]; then keras_ok=1; else
  echo "(no Keras reference: KERAS_PY unset; \`make bench\` installs it)"
fi
rm -f benches/keras_reference.csv benches/torch_reference.csv
# One model: seqlab's row (without the table header after the first), then the references'.
time_model() {
  local name="$1"; shift
  "$BIN" bench "$@" --steps "$STEPS" --threads "$THREADS" --out benches/results.csv \
    | { [ "$first" = 1 ] && cat || tail -n +2; } | grep -v '^figure:' || true
  first=0
  if [ -n "$keras_ok" ] && [ "${name#ett}" = "$name" ]; then
    "$KERAS_PY" benches/keras_reference.py --only "$name" --steps "$STEPS" --threads "$THREADS" --append 2>/dev/null \
      | sed -n 2p | sed 's/^/  Keras   /'
  fi
  "$PY" benches/torch_reference.py --only "$name" --steps "$STEPS" --threads "$THREADS" --append | sed -n 2p | sed 's/^/  PyTorch /'
}
first=1
for m in jena_{dense,gru,gru_dropout,stacked_gru,bidirectional_gru,conv1d,conv_gru}; do
  time_model "$m" "experiments/$m.toml" "${JSET[@]}"
done
if [ -f "$imdb" ]; then
  for m in imdb_{conv1d,lstm,bidirectional_lstm}; do time_model "$m" "experiments/$m.toml"; done
fi
if [ -f "$etth1" ]; then
  for m in "${ETT_MODELS[@]}"; do
    time_model "$m" "experiments/ett/$m.toml" --set "data.path=$PWD/$etth1" $(h96 "experiments/ett/$m.toml")
  done
else
  echo "($etth1 is missing: no seqlab ETTh1 figures; see \`make ett\`)"
fi
echo "== model steps: side by side (this run's rows)"
"$PY" benches/ratios.py --since "$since"

echo "== scaling: GRU(32) train step against sequence length, batch size and units; a channel-independent"
echo "   ETTh1 model against the number of series (benches/scaling.csv, figure benches/scaling.png)"
rm -f benches/scaling.csv
for lookback in 360 720 1440 2880; do
  "$BIN" bench experiments/jena_gru.toml "${JSET[@]}" --set "data.lookback=$lookback" --steps 20 --repeat 1 --threads "$THREADS" --out benches/scaling.csv >/dev/null
done
for batch in 32 64 128 256 512; do
  "$BIN" bench experiments/jena_gru.toml "${JSET[@]}" --set "data.batch_size=$batch" --steps 20 --repeat 1 --threads "$THREADS" --out benches/scaling.csv >/dev/null
done
for units in 16 32 64 128; do
  "$BIN" bench experiments/jena_gru.toml "${JSET[@]}" --set "layers.0.units=$units" --steps 20 --repeat 1 --threads "$THREADS" --out benches/scaling.csv >/dev/null
done
# Series: ett_patch_transformer (horizon 96, batch 32) on tables of n columns,
# ETTh1's 7 repeated in turn (a synthetic hourly table when ETTh1 is missing);
# one file per n that extends the experiment (data.path, features, targets).
series_model=ett_patch_transformer
for n in 1 2 4 7 14 28; do
  table="$work/ett_series_$n.csv"
  [ -f "$table" ] || "$PY" - "$etth1" "$table" "$n" <<'PYTHON'
import csv, math, os, random, sys
from datetime import datetime, timedelta
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if os.path.exists(src):
    with open(src, newline="") as fh:
        rows = [(r[0], r[1:]) for r in list(csv.reader(fh))[1:]]
else:  # 17,420 hourly rows of 7 noisy daily cycles
    rnd, t0 = random.Random(0), datetime(2016, 7, 1)
    rows = [((t0 + timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S"),
             [f"{math.sin(2 * math.pi * (i / 24 + c / 7)) + rnd.gauss(0, 0.3):.4f}" for c in range(7)])
            for i in range(17420)]
with open(out, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["date"] + [f"s{k}" for k in range(n)])
    for date, values in rows:
        w.writerow([date] + [values[k % len(values)] for k in range(n)])
PYTHON
  cols=$(for ((k = 0; k < n; k++)); do printf '"s%d",' "$k"; done)
  cat > "$work/${series_model}_series_$n.toml" <<TOML
extends = "$PWD/experiments/ett/$series_model.toml"
[experiment]
name = "${series_model}_series_$n"
[data]
path = "$PWD/$table"
features = [${cols%,}]
targets = [${cols%,}]
TOML
  "$BIN" bench "$work/${series_model}_series_$n.toml" $(h96 "experiments/ett/$series_model.toml") \
    --steps 20 --repeat 1 --threads "$THREADS" --out benches/scaling.csv >/dev/null
done
cat benches/scaling.csv
"$PY" benches/slopes.py benches/scaling.csv

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
