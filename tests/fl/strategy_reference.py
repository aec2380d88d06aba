#!/usr/bin/env python3
"""strategy_reference.py - reference values for tests/fl/test_aggregate.c.

Runs every aggregation strategy of include/fedl/fl.h with numpy on small
cases (3-8 clients, 6-8 parameters, 2-3 rounds) and writes the inputs and
the expected global weights after each round to strategy_reference.txt,
which the C test reads (it does not need numpy):

    python3 tests/fl/strategy_reference.py > tests/fl/strategy_reference.txt

(a python3 with numpy: Debian's /usr/bin/python3 with python3-numpy).

The formulas are those of the header (Reddi et al. 2021, Algorithm 2
without bias correction; Hsu et al. 2019; coordinate-wise median; trimmed
mean as scipy's trim_mean; Krum and Multi-Krum of Blanchard et al. 2017).
The arithmetic is float64; what fedl keeps in float32 (the weights, the
server state m and v, the configuration, deltas kept by robust strategies
after clipping) is rounded to float32 at the same points, so the C results
should agree to about one float32 ulp.

File format, one record per line, values as %.9g (float32 round trip):
    case NAME KIND PARAMS ROUNDS
    config server_lr momentum beta1 beta2 tau proximal_mu trim_fraction
           byzantine multi_krum_m clip_norm max_updates
    global X...                       the weights before round 1
    round CLIENTS                     then CLIENTS lines:
    update ID SAMPLES DELTA...
    expect X...                       the weights after the round
    end
"""
import math
import sys

import numpy as np

F32 = np.float32


def f32(x):
    """The float64 value of x rounded to float32, as C promotes a float."""
    return float(F32(x))


def defaults(kind):
    """fedl_strategy_defaults (include/fedl/fl.h)."""
    c = dict(kind=kind, server_lr=1.0, momentum=0.9, beta1=0.9, beta2=0.99, tau=1e-9,
             proximal_mu=0.01, trim_fraction=0.1, byzantine=1, multi_krum_m=0,
             clip_norm=0.0, max_updates=100)
    if kind in ("fedadam", "fedadagrad"):
        c["server_lr"] = 0.1
    if kind == "fedyogi":
        c["server_lr"] = 0.01
        c["tau"] = 1e-3
    return c


FLOAT_FIELDS = ("server_lr", "momentum", "beta1", "beta2", "tau", "proximal_mu",
                "trim_fraction")
LINEAR = ("fedavg", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi")


def clip_scale(cfg, d64):
    clip = f32(cfg["clip_norm"])
    if clip <= 0.0:
        return 1.0
    norm = math.sqrt(float(np.sum(d64 * d64)))
    return clip / norm if norm > clip else 1.0


def weighted_mean(cfg, updates):
    """Sample-weighted mean of the (clipped) deltas, summed in arrival order."""
    total = np.zeros(len(updates[0][2]))
    weight = 0.0
    for _, samples, delta in updates:
        d64 = delta.astype(np.float64)
        total = total + (samples * clip_scale(cfg, d64)) * d64
        weight += samples
    return total / weight


def kept_deltas(cfg, updates):
    """What a robust strategy keeps: each delta clipped, in float32, as float64 rows."""
    rows = []
    for _, _, delta in updates:
        d64 = delta.astype(np.float64)
        scale = clip_scale(cfg, d64)
        rows.append(d64 if scale == 1.0 else (d64 * scale).astype(F32).astype(np.float64))
    return np.array(rows)


def sequential_sum(rows):
    total = np.zeros(rows.shape[1])
    for row in rows:
        total = total + row
    return total


def trimmed_mean(cfg, rows):
    n = rows.shape[0]
    cut = int(math.floor(f32(cfg["trim_fraction"]) * n))
    ordered = np.sort(rows, axis=0)[cut:n - cut]
    return sequential_sum(ordered) / (n - 2 * cut)


def krum(cfg, rows):
    n = rows.shape[0]
    f = cfg["byzantine"]
    assert n > 2 * f + 2
    dist = np.array([[float(np.sum((rows[i] - rows[k]) ** 2)) for k in range(n)]
                     for i in range(n)])
    nearest = n - f - 2
    scores = []
    for i in range(n):
        others = sorted(dist[i][k] for k in range(n) if k != i)
        total = 0.0
        for v in others[:nearest]:
            total += v
        scores.append(total)
    if cfg["kind"] == "krum":
        keep = 1
    else:
        keep = cfg["multi_krum_m"] if cfg["multi_krum_m"] > 0 else n - f
    chosen = sorted(np.argsort(np.array(scores), kind="stable")[:keep].tolist())
    return sequential_sum(rows[chosen]) / keep, chosen


def round_delta(cfg, updates):
    kind = cfg["kind"]
    if kind in LINEAR:
        return weighted_mean(cfg, updates)
    rows = kept_deltas(cfg, updates)
    if kind == "median":
        return np.median(rows, axis=0)
    if kind == "trimmed-mean":
        return trimmed_mean(cfg, rows)
    return krum(cfg, rows)[0]


def server_step(cfg, state, x, delta):
    """x (float32) moved by the round's delta; state m, v float32 arrays."""
    kind = cfg["kind"]
    lr = f32(cfg["server_lr"])
    x64 = x.astype(np.float64)
    if kind == "fedavgm":
        v = (f32(cfg["momentum"]) * state["v"].astype(np.float64) + delta).astype(F32)
        state["v"] = v
        return (x64 + lr * v.astype(np.float64)).astype(F32)
    if kind in ("fedadagrad", "fedadam", "fedyogi"):
        b1, b2, tau = f32(cfg["beta1"]), f32(cfg["beta2"]), f32(cfg["tau"])
        m_old = state["m"].astype(np.float64)
        v_old = state["v"].astype(np.float64)
        dd = delta * delta
        m = (b1 * m_old + (1.0 - b1) * delta).astype(F32)
        if kind == "fedadagrad":
            v = v_old + dd
        elif kind == "fedadam":
            v = b2 * v_old + (1.0 - b2) * dd
        else:
            v = v_old - (1.0 - b2) * dd * np.sign(v_old - dd)
        v = v.astype(F32)
        state["m"], state["v"] = m, v
        step = lr * m.astype(np.float64) / (np.sqrt(v.astype(np.float64)) + tau)
        return (x64 + step).astype(F32)
    return (x64 + lr * delta).astype(F32)


def fmt(values):
    return " ".join("%.9g" % float(v) for v in values)


def emit_case(out, name, cfg, rounds, params, seed, shape_round):
    """rounds: client counts per round; shape_round(r, rng, deltas, samples) may edit them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, params).astype(F32)
    state = {"m": np.zeros(params, F32), "v": np.zeros(params, F32)}
    out.write("case %s %s %d %d\n" % (name, cfg["kind"], params, len(rounds)))
    out.write("config %s %d %d %s %d\n" % (
        fmt([f32(cfg[k]) for k in FLOAT_FIELDS]), cfg["byzantine"], cfg["multi_krum_m"],
        fmt([f32(cfg["clip_norm"])]), cfg["max_updates"]))
    out.write("global %s\n" % fmt(x))
    for r, clients in enumerate(rounds):
        deltas = rng.normal(0.0, 0.1, (clients, params)).astype(F32)
        samples = rng.integers(1, 200, clients).astype(np.float64)
        if shape_round is not None:
            shape_round(r, rng, deltas, samples)
        updates = [("%s-r%d-c%d" % (name, r + 1, i), samples[i], deltas[i])
                   for i in range(clients)]
        x = server_step(cfg, state, x, round_delta(cfg, updates))
        out.write("round %d\n" % clients)
        for cid, s, d in updates:
            out.write("update %s %.17g %s\n" % (cid, s, fmt(d)))
        out.write("expect %s\n" % fmt(x))
    out.write("end\n")


def zero_first_coordinate(r, rng, deltas, samples):
    """Round 1 leaves coordinate 0 alone: v = 0 there, the tau / sign(0) corner."""
    if r == 0:
        deltas[:, 0] = 0.0


def outlier_last(r, rng, deltas, samples):
    """The last client sends a delta 100 times an honest one."""
    deltas[-1] = deltas[0] * F32(100.0)


def large_deltas(r, rng, deltas, samples):
    """Deltas of norm up to about 1.2, so that clip_norm 0.3 cuts most of them."""
    deltas *= F32(1.0 + r)
    deltas[0] *= F32(4.0)


def main():
    out = sys.stdout
    out.write("# strategy_reference.txt - written by tests/fl/strategy_reference.py "
              "(numpy %s); do not edit.\n" % np.__version__)
    cases = [
        ("fedavg", defaults("fedavg"), [4, 3, 5], 8, 11, None),
        ("fedprox", defaults("fedprox"), [3, 3], 6, 12, None),
        ("fedavg-clip", dict(defaults("fedavg"), server_lr=0.5, clip_norm=0.3), [4, 4], 8, 13,
         large_deltas),
        ("fedavgm", defaults("fedavgm"), [4, 3, 4], 8, 14, None),
        ("fedadagrad", defaults("fedadagrad"), [4, 4, 3], 8, 15, zero_first_coordinate),
        ("fedadam", defaults("fedadam"), [4, 4, 3], 8, 16, zero_first_coordinate),
        ("fedyogi", defaults("fedyogi"), [4, 4, 3], 8, 17, zero_first_coordinate),
        ("median", defaults("median"), [5, 4, 3], 7, 18, outlier_last),
        ("median-clip", dict(defaults("median"), clip_norm=0.2), [5, 4], 7, 19, large_deltas),
        ("trimmed-mean", dict(defaults("trimmed-mean"), trim_fraction=0.25), [5, 4, 8], 7, 20,
         outlier_last),
        ("krum", defaults("krum"), [5, 6], 8, 21, outlier_last),
        ("multi-krum", dict(defaults("multi-krum"), multi_krum_m=3), [6, 5], 8, 22,
         outlier_last),
        ("multi-krum-n-f", defaults("multi-krum"), [6, 7], 6, 23, outlier_last),
    ]
    for name, cfg, rounds, params, seed, shape in cases:
        emit_case(out, name, cfg, rounds, params, seed, shape)


if __name__ == "__main__":
    main()
