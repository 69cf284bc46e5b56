"""Log-log slopes of `make bench`'s "scaling" section: for each axis of
benches/scaling.csv (written by `seqlab bench --out benches/scaling.csv`), the
least-squares fit of log(step ms) against log(x), i.e. step time ∝ x^slope
(1: linear, below 1: fixed costs still matter, above 1: worse than linear).

Axes: rows whose settings say `data.lookback=`, `data.batch_size=` or
`layers.0.units=` (the book's GRU(32) with one key changed), and experiments
named `<model>_series_<n>` (one channel-independent ETTh1 model on a table of
n columns). Python standard library only.

Usage: python benches/slopes.py [benches/scaling.csv]
"""
import csv
import math
import re
import sys

# results.csv layout (see benches/ratios.py): 4 fields, the cell (may hold
# commas), then these 11.
TAIL = 11
AXES = [
    ("data.lookback", "lookback (rows; GRU(32), batch 128)"),
    ("data.batch_size", "batch size (GRU(32), lookback 1440)"),
    ("layers.0.units", "GRU units (lookback 1440, batch 128)"),
]
SERIES = re.compile(r"^(?P<model>.+)_series_(?P<n>\d+)$")


def slope(points):
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else float("nan")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "benches/scaling.csv"
    axes = {}  # label -> {x: (train ms, val ms)}; a later row for the same x wins
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        for f in rows:
            if len(f) < 5 + TAIL:
                continue
            experiment, tail = f[3], f[len(f) - TAIL :]
            train, val, settings = float(tail[0]), float(tail[3]), tail[-1]
            label, x = None, None
            for key, name in AXES:
                m = re.search(re.escape(key) + r"=(\d+)", settings)
                if m:
                    label, x = name, int(m.group(1))
            m = SERIES.match(experiment)
            if m:
                label, x = f"series (columns; {m.group('model')}, batch 32)", int(m.group("n"))
            if label:
                axes.setdefault(label, {})[x] = (train, val)
    print("| axis | x: train ms | slope train | slope val |")
    print("|---|---|---:|---:|")
    for label, pts in axes.items():
        xs = sorted(pts)
        if len(xs) < 2:
            continue
        st = slope([(x, pts[x][0]) for x in xs])
        sv = slope([(x, pts[x][1]) for x in xs])
        shown = ", ".join(f"{x}: {pts[x][0]:.1f}" for x in xs)
        print(f"| {label} | {shown} | {st:.2f} | {sv:.2f} |")


if __name__ == "__main__":
    main()
