"""PyTorch-eager reference for `seqlab bench`: the book's models written the
plain PyTorch way, timed the same way (median ms per train and validation
step, batch 128, after a warm-up), so seqlab's figures always come with a
side-by-side ratio measured on the same machine in the same session.

Recurrent dropout has no fused kernel in PyTorch: those models run a Python
loop over GRUCell with per-sequence masks, as a PyTorch user would write it.

Usage: python benches/torch_reference.py [--steps 50] [--repeat 3] [--threads 2] [--out benches/torch_reference.csv]
"""
import argparse
import statistics
import time

import torch
from torch import nn


class LoopGRU(nn.Module):
    """GRU with Keras-style dropout masks (one per sequence), unrolled in Python."""

    def __init__(self, inputs, units, dropout, recurrent_dropout, relu=False, return_sequences=False):
        super().__init__()
        self.cell = nn.GRUCell(inputs, units)
        self.units, self.dropout, self.rdrop = units, dropout, recurrent_dropout
        self.relu, self.seq = relu, return_sequences

    def forward(self, x):
        b, t, f = x.shape
        h = x.new_zeros(b, self.units)
        if self.training:
            x = x * torch.bernoulli(x.new_full((b, 1, f), 1 - self.dropout)) / (1 - self.dropout)
            rmask = torch.bernoulli(x.new_full((b, self.units), 1 - self.rdrop)) / (1 - self.rdrop)
        outs = []
        for xt in x.unbind(1):
            hm = h * rmask if self.training else h
            gi = nn.functional.linear(xt, self.cell.weight_ih, self.cell.bias_ih)
            gh = nn.functional.linear(hm, self.cell.weight_hh, self.cell.bias_hh)
            ir, iz, inn = gi.chunk(3, 1)
            hr, hz, hn = gh.chunk(3, 1)
            r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
            n = inn + r * hn
            n = torch.relu(n) if self.relu else torch.tanh(n)
            h = n + z * (h - n)
            if self.seq:
                outs.append(h)
        return torch.stack(outs, 1) if self.seq else h


class Last(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


class Conv(nn.Module):
    """Conv1d on (batch, time, channels) like Keras."""

    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k)

    def forward(self, x):
        return torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)


class Pool(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return nn.functional.max_pool1d(x.transpose(1, 2), self.k).transpose(1, 2)


class GlobalMax(nn.Module):
    def forward(self, x):
        return x.amax(1)


def models():
    f = 14
    yield "jena_dense", (240, f), nn.Sequential(nn.Flatten(), nn.Linear(240 * f, 32), nn.ReLU(), nn.Linear(32, 1))
    yield "jena_gru", (240, f), nn.Sequential(Last(nn.GRU(f, 32, batch_first=True)), nn.Linear(32, 1))
    yield "jena_gru_dropout", (240, f), nn.Sequential(LoopGRU(f, 32, 0.2, 0.2), nn.Linear(32, 1))
    yield "jena_stacked_gru", (240, f), nn.Sequential(LoopGRU(f, 32, 0.1, 0.5, return_sequences=True), LoopGRU(32, 64, 0.1, 0.5, relu=True), nn.Linear(64, 1))
    yield "jena_bidirectional_gru", (240, f), nn.Sequential(Last(nn.GRU(f, 32, batch_first=True, bidirectional=True)), nn.Linear(64, 1))
    yield "jena_conv1d", (240, f), nn.Sequential(Conv(f, 32, 5), Pool(3), Conv(32, 32, 5), Pool(3), Conv(32, 32, 5), GlobalMax(), nn.Linear(32, 1))
    yield "jena_conv_gru", (240, f), nn.Sequential(Conv(f, 32, 5), Pool(3), Conv(32, 32, 5), LoopGRU(32, 32, 0.1, 0.5), nn.Linear(32, 1))
    yield "imdb_conv1d", (500,), nn.Sequential(nn.Embedding(10000, 128), Conv(128, 32, 7), Pool(5), Conv(32, 32, 7), GlobalMax(), nn.Linear(32, 1))


def time_steps(fn, steps):
    out = []
    for _ in range(steps):
        s = time.perf_counter()
        fn()
        out.append((time.perf_counter() - s) * 1000)
    return statistics.median(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="")
    p.add_argument("--out", default="benches/torch_reference.csv")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    print(f"{'model':<26} {'train ms':>10} {'val ms':>10}   (PyTorch {torch.__version__} eager, {a.threads} threads)")
    for name, shape, model in models():
        if a.only and a.only not in name:
            continue
        lookback = 720 // 3 if name == "jena_conv_gru" else shape[0]
        if name.startswith("imdb"):
            x = torch.randint(0, 10000, (128, shape[0]))
            y = torch.randint(0, 2, (128, 1)).float()
            loss = nn.BCEWithLogitsLoss()
        else:
            x = torch.randn(128, lookback, shape[1])
            y = torch.randn(128, 1)
            loss = nn.L1Loss()
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)

        def train():
            model.train()
            opt.zero_grad()
            loss(model(x), y).backward()
            opt.step()

        def val():
            model.eval()
            with torch.no_grad():
                loss(model(x), y).item()

        for _ in range(5):
            train()
        tr = statistics.median(time_steps(train, a.steps) for _ in range(a.repeat))
        va = statistics.median(time_steps(val, max(1, a.steps * 3 // 5)) for _ in range(a.repeat))
        print(f"{name:<26} {tr:>10.2f} {va:>10.2f}", flush=True)
        rows.append(f"{name},{tr:.3f},{va:.3f}")
    with open(a.out, "w") as fh:
        fh.write("experiment,torch_train_ms,torch_val_ms\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
