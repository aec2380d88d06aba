#!/usr/bin/env python3
"""torch_train.py - the PyTorch reference for fedl's training benchmark.

Trains fedl's `lenet5` or `mlp` preset, built from the same layers in PyTorch,
on an MNIST-layout IDX directory (Fashion-MNIST by default) with the settings
of bench/train_vs_torch.sh: batch 32, SGD lr 0.05 momentum 0.9,
CrossEntropyLoss, one intra-op thread.

The whole training set is held in memory as one float32 tensor (pixels/255)
and reshuffled each epoch with a seeded torch.Generator, so the timed loop
measures the framework, not the input pipeline. Only the training loop is
timed (data loading, model construction and the test pass are not), which is
what fedl's `samples/s` measures too.

Prints one machine-readable line on stdout, e.g.

  torch_train model=lenet5 epochs=1 batch=32 threads=1 samples=60000
      train_s=12.345 samples_per_s=4860.2 peak_rss_mib=301.4 test_acc=0.8512
      torch=1.13.0

(on one line). peak_rss_mib is resource.getrusage(RUSAGE_SELF).ru_maxrss at
exit, i.e. it includes the Python interpreter and the torch libraries.

  python3 bench/torch_train.py --model lenet5 \
      --data /usr/share/datasets/fashion-mnist --epochs 1
"""
import argparse
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    """Read an IDX file (optionally gzipped) into a numpy array."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path = path + ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(directory, prefix, limit):
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"))
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    pixels = images.astype(np.float32)
    pixels /= 255.0  # in place: no second float copy of the set
    x = torch.from_numpy(pixels).unsqueeze(1)  # (N, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    return x.contiguous(), y


def build_model(name):
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 10))
    raise SystemExit(f"torch_train: unknown model '{name}' (lenet5, mlp)")


def init_like_fedl(model, default_init):
    """Initialise as fedl does, so both start from the same distribution:
    He uniform (bound sqrt(6 / fan_in)) for a layer followed by ReLU, Glorot
    uniform otherwise, zero biases. PyTorch's own default (uniform with bound
    1 / sqrt(fan_in), biases too) starts the MLP from smaller weights and
    lands 2-3 points lower after one epoch; --torch-default-init keeps it."""
    if default_init:
        return
    layers = list(model)
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            relu_next = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            if relu_next:
                nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


def evaluate(model, x, y, batch):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model(x[i:i + batch])
            correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet5", choices=["lenet5", "mlp"])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--torch-default-init", action="store_true",
                    help="keep PyTorch's default initialisation instead of fedl's")
    ap.add_argument("--train-limit", type=int, default=0, help="use only the first N training samples")
    ap.add_argument("--test-limit", type=int, default=0, help="use only the first N test samples")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)

    x_train, y_train = load_split(args.data, "train", args.train_limit)
    x_test, y_test = load_split(args.data, "t10k", args.test_limit)
    model = build_model(args.model)
    init_like_fedl(model, args.torch_default_init)
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    gen = torch.Generator()
    gen.manual_seed(args.seed)

    n = x_train.shape[0]
    seen = 0
    train_s = 0.0
    for _ in range(args.epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, args.batch):
            idx = order[i:i + args.batch]
            xb, yb = x_train[idx], y_train[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            seen += idx.shape[0]
        train_s += time.perf_counter() - start
    acc = evaluate(model, x_test, y_test, args.batch)  # fedl evaluates in --batch too
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    print(f"torch_train model={args.model} epochs={args.epochs} batch={args.batch} "
          f"threads={torch.get_num_threads()} samples={seen} train_s={train_s:.3f} "
          f"samples_per_s={seen / train_s:.1f} peak_rss_mib={rss_mib:.1f} "
          f"test_acc={acc:.4f} torch={torch.__version__}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
