"""Keras reference for `seqlab bench`: the book's models (Deep Learning with
Python, 1st ed., ch. 6.3-6.4) written as the book writes them, in Keras 3 on
TensorFlow CPU, timed the way benches/torch_reference.py times PyTorch:
median ms per `train_on_batch` and per `test_on_batch` on one random batch,
after a warm-up, with the optimizer and loss of each experiment file.

The models and shapes are those of experiments/jena_*.toml (batch 128,
lookback 1440 / step 6 -> 240 steps x 14 features; jena_conv_gru: lookback
720 / step 3 -> 240 steps) and experiments/imdb_*.toml (reviews cut to 500
words of a 10,000-word vocabulary). imdb_conv1d's last Dense(1) has no
sigmoid, as in the book; like seqlab, its output is taken as logits.

It runs in a TensorFlow venv of its own (`make bench` installs it under
~/.cache/seqlab/keras-<version>), so seqlab's ratio to Keras is always
measured in the same session, never copied.

Usage: python benches/keras_reference.py [--steps 50] [--repeat 3] [--threads 2] [--only NAME[,NAME…]] [--append] [--out benches/keras_reference.csv]
"""
import argparse
import os
import statistics
import time

import numpy as np

JENA = (240, 14)
IMDB_MAXLEN, IMDB_WORDS = 500, 10000
BATCH = 128


def models(keras):
    """(name, input shape, model, optimizer, loss, metrics) of each experiment file."""
    from keras import layers

    def seq(shape, *stack, dtype="float32"):
        return keras.Sequential([keras.Input(shape=shape, dtype=dtype), *stack])

    def jena(name, *stack):
        return name, JENA, seq(JENA, *stack), keras.optimizers.RMSprop(learning_rate=1e-3), "mae", []

    def imdb(name, lr, loss, *stack):
        model = seq((IMDB_MAXLEN,), *stack, dtype="int32")
        return name, (IMDB_MAXLEN,), model, keras.optimizers.RMSprop(learning_rate=lr), loss, ["accuracy"]

    yield jena("jena_dense", layers.Flatten(), layers.Dense(32, activation="relu"), layers.Dense(1))
    yield jena("jena_gru", layers.GRU(32), layers.Dense(1))
    yield jena("jena_gru_dropout", layers.GRU(32, dropout=0.2, recurrent_dropout=0.2), layers.Dense(1))
    yield jena(
        "jena_stacked_gru",
        layers.GRU(32, dropout=0.1, recurrent_dropout=0.5, return_sequences=True),
        layers.GRU(64, activation="relu", dropout=0.1, recurrent_dropout=0.5),
        layers.Dense(1),
    )
    yield jena("jena_bidirectional_gru", layers.Bidirectional(layers.GRU(32)), layers.Dense(1))
    yield jena(
        "jena_conv1d",
        layers.Conv1D(32, 5, activation="relu"),
        layers.MaxPooling1D(3),
        layers.Conv1D(32, 5, activation="relu"),
        layers.MaxPooling1D(3),
        layers.Conv1D(32, 5, activation="relu"),
        layers.GlobalMaxPooling1D(),
        layers.Dense(1),
    )
    yield jena(
        "jena_conv_gru",
        layers.Conv1D(32, 5, activation="relu"),
        layers.MaxPooling1D(3),
        layers.Conv1D(32, 5, activation="relu"),
        layers.GRU(32, dropout=0.1, recurrent_dropout=0.5),
        layers.Dense(1),
    )
    yield imdb(
        "imdb_conv1d",
        1e-4,
        keras.losses.BinaryCrossentropy(from_logits=True),
        layers.Embedding(IMDB_WORDS, 128),
        layers.Conv1D(32, 7, activation="relu"),
        layers.MaxPooling1D(5),
        layers.Conv1D(32, 7, activation="relu"),
        layers.GlobalMaxPooling1D(),
        layers.Dense(1),
    )
    yield imdb(
        "imdb_lstm",
        1e-3,
        "binary_crossentropy",
        layers.Embedding(IMDB_WORDS, 32),
        layers.LSTM(32),
        layers.Dense(1, activation="sigmoid"),
    )
    yield imdb(
        "imdb_bidirectional_lstm",
        1e-3,
        "binary_crossentropy",
        layers.Embedding(IMDB_WORDS, 32),
        layers.Bidirectional(layers.LSTM(32)),
        layers.Dense(1, activation="sigmoid"),
    )


def time_steps(fn, steps):
    out = []
    for _ in range(steps):
        s = time.perf_counter()
        fn()
        out.append((time.perf_counter() - s) * 1000)
    return statistics.median(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="", help="time only these models (names, comma-separated)")
    p.add_argument("--append", action="store_true", help="add rows to --out instead of replacing it")
    p.add_argument("--out", default="benches/keras_reference.csv")
    a = p.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    # Before the first op: TensorFlow fixes its thread pools once.
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    rows = []
    print(
        f"{'model':<26} {'train ms':>10} {'val ms':>10}   "
        f"(Keras {keras.__version__} / TensorFlow {tf.__version__} CPU, {a.threads} threads, batch {BATCH})"
    )
    for name, shape, model, optimizer, loss, metrics in models(keras):
        if a.only and name not in a.only.split(","):
            continue
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        if name.startswith("imdb"):
            x = tf.constant(rng.integers(0, IMDB_WORDS, (BATCH, *shape)), dtype=tf.int32)
            y = tf.constant(rng.integers(0, 2, (BATCH, 1)), dtype=tf.float32)
        else:
            x = tf.constant(rng.standard_normal((BATCH, *shape)), dtype=tf.float32)
            y = tf.constant(rng.standard_normal((BATCH, 1)), dtype=tf.float32)

        # train_on_batch / test_on_batch return Python floats: each call waits for its step.
        def train():
            model.train_on_batch(x, y)

        def val():
            model.test_on_batch(x, y)

        for _ in range(5):  # traces the train and test functions, warms the caches
            train()
            val()
        tr = statistics.median(time_steps(train, a.steps) for _ in range(a.repeat))
        va = statistics.median(time_steps(val, max(1, a.steps * 3 // 5)) for _ in range(a.repeat))
        print(f"{name:<26} {tr:>10.2f} {va:>10.2f}", flush=True)
        rows.append(f"{name},{tr:.3f},{va:.3f}")
        keras.backend.clear_session()
    header = not (a.append and os.path.exists(a.out))
    with open(a.out, "a" if a.append else "w") as fh:
        fh.write(("experiment,keras_train_ms,keras_val_ms\n" if header else "") + "\n".join(rows) + "\n")
    if rows:
        print(f"jit_compile: {model.jit_compile} (Keras' default on a CPU-only machine); written: {a.out}")


if __name__ == "__main__":
    main()
