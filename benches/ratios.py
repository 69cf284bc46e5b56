"""Side-by-side step times of `make bench`'s "model steps" section: seqlab
(the newest row of each experiment in benches/results.csv, from this run when
--since is given), Keras (benches/keras_reference.csv) and PyTorch eager
(benches/torch_reference.csv), as markdown tables with seqlab's ratio to each
(seqlab ms / reference ms: below 1 means seqlab is faster). For the ETTh1
models a second table compares a training epoch (train ms per step x 265).

Python standard library only.

Usage: python benches/ratios.py [--since 2026-12-04T14:00:00Z] [--results benches/results.csv]
       [--keras benches/keras_reference.csv] [--torch benches/torch_reference.csv]
"""
import argparse
import csv
import os

# seqlab's results.csv: the columns after `cell`. A grid cell's name holds
# commas (e.g. "horizon=96,1.units=96") and is written unquoted, so a row is
# read from both ends: 4 fields before the cell, these 11 after it.
TAIL = [
    "train_ms_median", "train_ms_min", "train_ms_max", "val_ms_median", "val_ms_min", "val_ms_max",
    "batch_ms_median", "samples_per_second", "peak_mib", "recurrent_path", "settings",
]
# ETTh1 train steps per epoch: 8,449 windows at lookback 96 / horizon 96, batches of 32.
ETT_TRAIN_STEPS = 265


def seqlab_rows(path, since):
    """experiment -> (train ms, val ms, cell) of its newest row since `since` (horizon 96 for a grid)."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        for f in rows:
            if len(f) < 4 + 1 + len(TAIL):
                continue
            date, experiment = f[0], f[3]
            cell = ",".join(f[4 : len(f) - len(TAIL)])
            tail = dict(zip(TAIL, f[len(f) - len(TAIL) :]))
            if since and date < since:
                continue
            if tail["settings"]:  # a --set variant (scaling runs), not the experiment as written
                continue
            if cell.startswith("horizon=") and not cell.startswith("horizon=96,") and cell != "horizon=96":
                continue
            try:
                out[experiment] = (float(tail["train_ms_median"]), float(tail["val_ms_median"]), cell)
            except ValueError:
                continue
    return out


def reference(path, prefix):
    """experiment -> (train ms, val ms) of a reference CSV (missing file: empty)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as fh:
        return {
            r["experiment"]: (float(r[f"{prefix}_train_ms"]), float(r[f"{prefix}_val_ms"]))
            for r in csv.DictReader(fh)
        }


def ms(v):
    return "–" if v is None else f"{v:.2f}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--since", default="", help="only seqlab rows dated at or after this ISO time (UTC, as in results.csv)")
    p.add_argument("--results", default="benches/results.csv")
    p.add_argument("--keras", default="benches/keras_reference.csv")
    p.add_argument("--torch", default="benches/torch_reference.csv")
    a = p.parse_args()
    seq = seqlab_rows(a.results, a.since)
    keras = reference(a.keras, "keras")
    torch = reference(a.torch, "torch")
    names = list(dict.fromkeys([*seq, *keras, *torch]))
    if not names:
        print("no step times found")
        return
    print("Median ms per step (seqlab ÷ reference: below 1, seqlab is faster)\n")
    print("| model | seqlab train | seqlab val | Keras train | Keras val | PyTorch train | PyTorch val "
          "| seqlab÷Keras train | seqlab÷Keras val | seqlab÷PyTorch train | seqlab÷PyTorch val |")
    print("|---|" + "---:|" * 10)
    for n in names:
        s, k, t = seq.get(n, (None, None, "")), keras.get(n, (None, None)), torch.get(n, (None, None))
        print(f"| {n} | {ms(s[0])} | {ms(s[1])} | {ms(k[0])} | {ms(k[1])} | {ms(t[0])} | {ms(t[1])} "
              f"| {ratio(s[0], k[0])} | {ratio(s[1], k[1])} | {ratio(s[0], t[0])} | {ratio(s[1], t[1])} |")
    ett = [n for n in names if n.startswith("ett_")]
    if ett:
        print(f"\nETTh1 training epoch, horizon 96 (train ms per step × {ETT_TRAIN_STEPS} steps; "
              "PyTorch ÷ seqlab: how many times faster seqlab trains, the goal is ≥ 2)\n")
        print("| model | seqlab s | PyTorch s | PyTorch ÷ seqlab |")
        print("|---|---:|---:|---:|")
        for n in ett:
            s, t = seq.get(n, (None,))[0], torch.get(n, (None,))[0]
            se = None if s is None else s * ETT_TRAIN_STEPS / 1000
            te = None if t is None else t * ETT_TRAIN_STEPS / 1000
            print(f"| {n} | {ms(se)} | {ms(te)} | {ratio(te, se)} |")


if __name__ == "__main__":
    main()
