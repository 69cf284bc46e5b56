"""The book's Jena `generator` (Deep Learning with Python, listing 6.33) in numpy,
timed on a synthetic full-size normalised array (420,551 x 14): milliseconds per
shuffled batch of 128 x 240 x 14 (lookback 1440, step 6, delay 144), the
reference for seqlab's `data::bench_batches`.

Run: $HOME/.cache/seqlab/torch-2.13.0/bin/python benches/jena_numpy_generator.py [batches]
"""
import sys
import time

import numpy as np


def generator(data, lookback, delay, min_index, max_index, shuffle=False, batch_size=128, step=6):
    if max_index is None:
        max_index = len(data) - delay - 1
    i = min_index + lookback
    while 1:
        if shuffle:
            rows = np.random.randint(min_index + lookback, max_index, size=batch_size)
        else:
            if i + batch_size >= max_index:
                i = min_index + lookback
            rows = np.arange(i, min(i + batch_size, max_index))
            i += len(rows)
        samples = np.zeros((len(rows), lookback // step, data.shape[-1]))
        targets = np.zeros((len(rows),))
        for j, row in enumerate(rows):
            indices = range(rows[j] - lookback, rows[j], step)
            samples[j] = data[indices]
            targets[j] = data[rows[j] + delay][1]
        yield samples, targets


def main():
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rng = np.random.default_rng(0)
    data = rng.uniform(-2.0, 2.0, size=(420551, 14)).astype(np.float32)
    np.random.seed(0)
    gen = generator(data, lookback=1440, delay=144, min_index=0, max_index=200000, shuffle=True, step=6)
    for _ in range(5):
        next(gen)
    start = time.perf_counter()
    for _ in range(batches):
        samples, _ = next(gen)
    elapsed = time.perf_counter() - start
    assert samples.shape == (128, 240, 14)
    print(f"numpy generator (listing 6.33): {elapsed * 1e3 / batches:.3f} ms/batch over {batches} batches")


if __name__ == "__main__":
    main()
