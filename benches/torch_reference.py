"""PyTorch-eager reference for `seqlab bench`: the book's models written the
plain PyTorch way, timed the same way (median ms per train and validation
step, batch 128, after a warm-up), so seqlab's figures always come with a
side-by-side ratio measured on the same machine in the same session.

Recurrent dropout has no fused kernel in PyTorch: those models run a Python
loop over GRUCell with per-sequence masks, as a PyTorch user would write it.

The long-horizon models of experiments/ett/ (ETTh1, lookback 96, horizon 96,
7 columns, batch 32, MSE, Adam at each file's learning rate) are written the
way their papers' PyTorch code writes them: every column its own series
(channel-independent), the window's last value (NLinear, GRU, SegRNN) or
mean and std (RevIN, patch transformer) taken off the input and put back on
the forecast. For these the CSV also gets an epoch figure: train ms per step
x the 265 train steps of an ETTh1 epoch (8,449 windows, batches of 32).

On a GPU (`--device cuda`, as benches/cuda.sh runs it) every step ends
with a synchronisation, so a step's time is the GPU's work and not the time
to queue it; seqlab's steps read their loss back, which synchronises too.

Usage: python benches/torch_reference.py [--steps 50] [--repeat 3] [--threads 2] [--only NAME[,NAME…]] [--skip PREFIX] [--append] [--device cpu] [--out benches/torch_reference.csv]
"""
import argparse
import os
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


class DLinear(nn.Module):
    """DLinear (Zeng et al., AAAI 2023): moving average of 25 (replicate padding)
    -> trend and seasonal parts, one Linear over time each, shared by the columns."""

    def __init__(self, lookback, horizon, kernel=25):
        super().__init__()
        self.kernel = kernel
        self.trend = nn.Linear(lookback, horizon)
        self.seasonal = nn.Linear(lookback, horizon)

    def forward(self, x):  # (b, L, C) -> (b, H, C)
        front = x[:, :1].repeat(1, (self.kernel - 1) // 2, 1)
        back = x[:, -1:].repeat(1, self.kernel // 2, 1)
        padded = torch.cat([front, x, back], 1)
        trend = nn.functional.avg_pool1d(padded.transpose(1, 2), self.kernel, stride=1)
        seasonal = x.transpose(1, 2) - trend
        return (self.trend(trend) + self.seasonal(seasonal)).transpose(1, 2)


class NLinear(nn.Module):
    """NLinear (Zeng et al., AAAI 2023): last value off, one Linear over time, last value back."""

    def __init__(self, lookback, horizon):
        super().__init__()
        self.linear = nn.Linear(lookback, horizon)

    def forward(self, x):
        last = x[:, -1:]
        return self.linear((x - last).transpose(1, 2)).transpose(1, 2) + last


class PerSeries(nn.Module):
    """Channel independence with last-value normalisation around a model of one
    series: (b, L, C) -> (b*C, L, 1) -> model -> (b*C, H) -> (b, H, C)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        b, l, c = x.shape
        last = x[:, -1:]
        z = (x - last).transpose(1, 2).reshape(b * c, l, 1)
        return self.model(z).reshape(b, c, -1).transpose(1, 2) + last


class GRUForecaster(nn.Module):
    """ett_gru: GRU(64) over the series, Dense(H) on its last state."""

    def __init__(self, horizon, units=64):
        super().__init__()
        self.gru = nn.GRU(1, units, batch_first=True)
        self.head = nn.Linear(units, horizon)

    def forward(self, x):  # (n, L, 1) -> (n, H)
        return self.head(self.gru(x)[1][-1])


class SegRNN(nn.Module):
    """ett_segrnn: 4 segments of 24 steps, Dense(64)+ReLU each, GRU(64) over them, Dense(H)."""

    def __init__(self, horizon, segment=24, units=64):
        super().__init__()
        self.segment = segment
        self.embed = nn.Sequential(nn.Linear(segment, units), nn.ReLU())
        self.gru = nn.GRU(units, units, batch_first=True)
        self.head = nn.Linear(units, horizon)

    def forward(self, x):  # (n, L, 1) -> (n, H)
        segments = self.embed(x.reshape(x.shape[0], -1, self.segment))
        return self.head(self.gru(segments)[1][-1])


class PostNormBlock(nn.Module):
    """Attention (dropout on the weights), residual, LayerNorm; ReLU feed-forward, residual, LayerNorm."""

    def __init__(self, width=32, heads=4, hidden=64, dropout=0.1):
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(width, eps=1e-3)
        self.ff = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))
        self.norm2 = nn.LayerNorm(width, eps=1e-3)

    def forward(self, x):
        x = self.norm1(x + self.attention(x, x, x, need_weights=False)[0])
        return self.norm2(x + self.ff(x))


class PatchTransformer(nn.Module):
    """ett_patch_transformer: RevIN (no affine), each series cut into 6 patches of 16,
    Dense(32) + learned positions, 2 post-norm blocks, flatten, Dense(H)."""

    def __init__(self, lookback, horizon, patch=16, width=32, blocks=2):
        super().__init__()
        self.patch, self.patches = patch, lookback // patch
        self.embed = nn.Linear(patch, width)
        self.position = nn.Parameter(torch.empty(self.patches, width).uniform_(-0.05, 0.05))
        self.blocks = nn.Sequential(*[PostNormBlock(width) for _ in range(blocks)])
        self.head = nn.Linear(self.patches * width, horizon)

    def forward(self, x):  # (b, L, C) -> (b, H, C)
        b, l, c = x.shape
        mean = x.mean(1, keepdim=True)
        std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5)
        z = ((x - mean) / std).transpose(1, 2).reshape(b * c, self.patches, self.patch)
        z = self.blocks(self.embed(z) + self.position)
        y = self.head(z.flatten(1)).reshape(b, c, -1).transpose(1, 2)
        return y * std + mean


# ETTh1 (experiments/base/ett.toml): 7 columns, lookback 96, batch 32; train rows
# [0, 8640) hold 8640 - 96 - 96 + 1 = 8,449 windows at horizon 96 -> 265 steps.
ETT_COLUMNS, ETT_LOOKBACK, ETT_HORIZON, ETT_BATCH = 7, 96, 96, 32
ETT_TRAIN_STEPS = -(-(8640 - ETT_LOOKBACK - ETT_HORIZON + 1) // ETT_BATCH)
# Each file's learning rate (the optimizer is Adam, the loss MSE, in all of them).
ETT_LR = {"ett_dlinear": 5e-3, "ett_nlinear": 5e-3, "ett_gru": 1e-3, "ett_segrnn": 1e-3, "ett_patch_transformer": 5e-4}


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
    yield "imdb_lstm", (500,), nn.Sequential(nn.Embedding(10000, 32), Last(nn.LSTM(32, 32, batch_first=True)), nn.Linear(32, 1))
    yield "imdb_bidirectional_lstm", (500,), nn.Sequential(nn.Embedding(10000, 32), Last(nn.LSTM(32, 32, batch_first=True, bidirectional=True)), nn.Linear(64, 1))
    ett, h = (ETT_LOOKBACK, ETT_COLUMNS), ETT_HORIZON
    yield "ett_dlinear", ett, DLinear(ETT_LOOKBACK, h)
    yield "ett_nlinear", ett, NLinear(ETT_LOOKBACK, h)
    yield "ett_gru", ett, PerSeries(GRUForecaster(h))
    yield "ett_segrnn", ett, PerSeries(SegRNN(h))
    yield "ett_patch_transformer", ett, PatchTransformer(ETT_LOOKBACK, h)


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
    p.add_argument("--only", default="", help="time only these models (names, comma-separated)")
    p.add_argument("--skip", default="", help="leave out the models whose name starts with this")
    p.add_argument("--append", action="store_true", help="add rows to --out instead of replacing it")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benches/torch_reference.csv")
    a = p.parse_args()
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    print(f"{'model':<26} {'train ms':>10} {'val ms':>10} {'epoch s':>9}   (PyTorch {torch.__version__} eager, {a.device}, {a.threads} threads)")
    for name, shape, model in models():
        if a.only and name not in a.only.split(","):
            continue
        if a.skip and name.startswith(a.skip):
            continue
        lookback = 720 // 3 if name == "jena_conv_gru" else shape[0]
        epoch = ""
        if name.startswith("imdb"):
            x = torch.randint(0, 10000, (128, shape[0]))
            y = torch.randint(0, 2, (128, 1)).float()
            loss = nn.BCEWithLogitsLoss()
        elif name.startswith("ett"):
            x = torch.randn(ETT_BATCH, ETT_LOOKBACK, ETT_COLUMNS)
            y = torch.randn(ETT_BATCH, ETT_HORIZON, ETT_COLUMNS)
            loss = nn.MSELoss()
        else:
            x = torch.randn(128, lookback, shape[1])
            y = torch.randn(128, 1)
            loss = nn.L1Loss()
        model, x, y = model.to(dev), x.to(dev), y.to(dev)
        if name.startswith("ett"):
            opt = torch.optim.Adam(model.parameters(), lr=ETT_LR[name])
        else:
            opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)

        def train():
            model.train()
            opt.zero_grad()
            loss(model(x), y).backward()
            opt.step()
            sync()

        def val():
            model.eval()
            with torch.no_grad():
                loss(model(x), y).item()

        for _ in range(5):
            train()
        tr = statistics.median(time_steps(train, a.steps) for _ in range(a.repeat))
        va = statistics.median(time_steps(val, max(1, a.steps * 3 // 5)) for _ in range(a.repeat))
        if name.startswith("ett"):
            epoch = f"{tr * ETT_TRAIN_STEPS:.1f}"
        print(f"{name:<26} {tr:>10.2f} {va:>10.2f} {(tr * ETT_TRAIN_STEPS / 1000 if epoch else float('nan')):>9.2f}", flush=True)
        rows.append(f"{name},{tr:.3f},{va:.3f},{epoch}")
    header = not (a.append and os.path.exists(a.out))
    with open(a.out, "a" if a.append else "w") as fh:
        fh.write(("experiment,torch_train_ms,torch_val_ms,torch_epoch_ms\n" if header else "") + "\n".join(rows) + "\n")

if __name__ == "__main__":
    main()
