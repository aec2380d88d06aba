#!/usr/bin/python3
"""Generate the golden correctness vectors of fedl from PyTorch.

Run from anywhere (needs Debian's python3-torch; under pyenv call
/usr/bin/python3 explicitly):

    python3 tests/golden/gen.py            # rewrite tests/golden/*.bin
    python3 tests/golden/gen.py --report   # also print float32-vs-float64 noise

Each case is written to tests/golden/<case>.bin, read by
tests/nn/test_golden.c. The file format ("FGLD" version 1), all
little-endian:

    header  "FGLD" | u32 version = 1 | u32 entry_count
    entry   u32 name_len | name (ASCII, 1..63 bytes, no NUL)
            u32 dtype (0 = float32, 1 = int32, 2 = text, one byte per element)
            u32 ndim (0..4) | ndim x u32 dims | prod(dims) elements
            (ndim 0 is a scalar: one element)
    trailer u32 CRC-32 (zlib.crc32, the zlib/PNG polynomial) of every
            preceding byte

Everything is deterministic: every case seeds torch with its own seed, the
arithmetic is float32 on one thread, and the files are byte-identical on
every regeneration with the same torch build.

The LeNet-5 case would be 247 KB per parameter-sized vector, so it stores
no initial parameters and only a sample of the parameter-sized results:
  * The initial parameters come from a hash both sides compute exactly:
    for flat index i, h = lowbias32((i + 1) * 0x9E3779B9 mod 2^32),
    k = h >> 8 (24 bits), param[i] = float32((2k - 2^24) * 2^-24) * bound,
    one float32 multiply (round to nearest even) by the float32 bound of
    the tensor holding i. "init_tensors" (n, 2) int32 holds (start, count)
    of each parameter tensor in the flat array and "init_bounds" (n) its
    bound, 1 / sqrt(fan_in) as in PyTorch's default init.
  * "sample" (r, 3) int32 lists ranges (start, count, step) of flat
    indices; a sampled vector holds param[start + j * step] for j < count,
    range after range. Small tensors are sampled whole; the two large
    dense weights with a step coprime to their row length, so every column
    is seen.

The optimiser case (optim_step.bin) feeds the same two stored gradient
vectors to each torch optimiser and stores the parameters after each step:
it checks the update arithmetic alone, without gradient noise, finely
enough to see weight decay (whose effect on the LeNet-5 parameters,
about 4e-6 for AdamW, is below the 1e-5 tolerance).
"""

import math
import os
import struct
import sys
import zlib

try:
    import torch
except ImportError:
    # A pyenv or venv python3 first on PATH does not see Debian's
    # python3-torch: rerun under the system interpreter that does.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise
import torch.nn as nn
import torch.nn.functional as F

MAGIC = b"FGLD"
VERSION = 1
DTYPE_F32, DTYPE_I32, DTYPE_TEXT = 0, 1, 2
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
REPORT = "--report" in sys.argv


# ------------------------------------------------------------------ writer


class GoldenFile:
    def __init__(self, case):
        self.case = case
        self.entries = []

    def f32(self, name, tensor, shape=None):
        t = tensor.detach().to(torch.float32).contiguous()
        dims = list(t.shape) if shape is None else list(shape)
        assert math.prod(dims) == t.numel(), (name, dims, t.shape)
        data = struct.pack("<%df" % t.numel(), *t.flatten().tolist())
        self.entries.append((name, DTYPE_F32, dims, data))

    def i32(self, name, values, shape=None):
        t = torch.as_tensor(values, dtype=torch.int64).contiguous()
        dims = list(t.shape) if shape is None else list(shape)
        data = struct.pack("<%di" % t.numel(), *t.flatten().tolist())
        self.entries.append((name, DTYPE_I32, dims, data))

    def text(self, name, value):
        data = value.encode("ascii")
        self.entries.append((name, DTYPE_TEXT, [len(data)], data))

    def write(self):
        out = bytearray(MAGIC + struct.pack("<II", VERSION, len(self.entries)))
        for name, dtype, dims, data in self.entries:
            raw = name.encode("ascii")
            assert 0 < len(raw) < 64 and len(dims) <= 4
            out += struct.pack("<I", len(raw)) + raw
            out += struct.pack("<II", dtype, len(dims))
            out += struct.pack("<%dI" % len(dims), *dims)
            out += data
        out += struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)
        path = os.path.join(OUT_DIR, self.case + ".bin")
        with open(path, "wb") as f:
            f.write(out)
        print("%-22s %7d bytes" % (self.case + ".bin", len(out)))


def report(case, name, golden, reference64):
    """Print how far the float32 golden tensor is from float64 arithmetic."""
    if not REPORT:
        return
    g = golden.detach().double().flatten()
    r = reference64.detach().double().flatten()
    diff = (g - r).abs()
    rel = (diff / r.abs().clamp(min=1.0)).max().item()
    scale = r.abs().max().item()
    print("    %-18s %-22s max|b| %.3e  max|a-b| %.3e  rel(max(1,|b|)) %.3e  "
          "per max|b| %.3e" % (case, name, scale, diff.max().item(), rel,
                               diff.max().item() / max(scale, 1e-30)))


# ----------------------------------------------------------- layer cases


def away_from_zero(t, gap=0.05):
    """Move values out of (-gap, gap) so no value sits at relu's kink."""
    pushed = torch.where(t >= 0, t + gap, t - gap)
    return torch.where(t.abs() < gap, pushed, t)


def distinct_values(shape, generator_scale=4.0):
    """A random permutation of well-separated values: no max-pool ties."""
    n = math.prod(shape)
    values = (torch.randperm(n).to(torch.float32) - n / 2) / n * generator_scale
    return (values + 0.25 / n * torch.rand(n)).reshape(shape)


def layer_case(case, seed, spec, input_shape, batch, module, torch_input_shape=None,
               make_input=None, x_scale=1.0, dy_scale=1.0):
    """Forward and backward of one fedl layer against its torch module.

    input_shape is fedl's per-sample (C, H, W); torch_input_shape, when the
    torch module wants another view of the same memory (conv1d), is the
    per-sample torch shape. Loss = sum(y * dy) with a random dy.

    x_scale and dy_scale shrink the data of the layers that sum hundreds of
    products, so float32 rounding (torch's and fedl's, each ~1e-6 there at
    scale 1) stays well inside 1e-5 * max(1, |b|).
    """
    torch.manual_seed(seed)
    shape = [batch] + list(input_shape)
    if make_input is None:
        x = x_scale * torch.randn(shape)
    else:
        x = make_input(shape)
    tshape = [batch] + list(torch_input_shape or input_shape)

    params = list(module.parameters())
    with torch.no_grad():
        # O(1) parameters make fedl's |a-b| <= 1e-5 max(1,|b|) check a
        # relative one for most values.
        for p in params:
            p.uniform_(-1.0, 1.0)

    def run(mod, x_in, dtype):
        m = mod.to(dtype)
        xi = x_in.to(dtype).reshape(tshape).clone().requires_grad_(True)
        for p in m.parameters():
            p.grad = None
        y = m(xi)
        return m, xi, y

    module, xt, y = run(module, x, torch.float32)
    dy = dy_scale * torch.randn(y.shape)
    (y * dy).sum().backward()

    g = GoldenFile(case)
    g.text("spec", spec)
    g.i32("input_shape", list(input_shape))
    g.f32("x", x, shape)
    if params:
        g.f32("params", torch.cat([p.detach().flatten() for p in module.parameters()]))
        g.f32("dparams", torch.cat([p.grad.flatten() for p in module.parameters()]))
    g.f32("y", y)
    g.f32("dy", dy)
    g.f32("dx", xt.grad, shape)
    g.write()

    if REPORT:
        import copy
        m64, x64, y64 = run(copy.deepcopy(module), x, torch.float64)
        (y64 * dy.double()).sum().backward()
        report(case, "y", y, y64)
        report(case, "dx", xt.grad, x64.grad)
        for p, p64 in zip(module.parameters(), m64.parameters()):
            report(case, "dparam", p.grad, p64.grad)


def layer_cases():
    c = 0

    def seed():
        nonlocal c
        c += 1
        return 1000 + c

    layer_case("dense", seed(), "dense(7)", (5, 1, 1), 3, nn.Sequential(nn.Flatten(), nn.Linear(5, 7)))
    layer_case("dense_flatten", seed(), "dense(7)", (3, 2, 2), 2,
               nn.Sequential(nn.Flatten(), nn.Linear(12, 7)))
    layer_case("conv2d_s2p1", seed(), "conv2d(4,3,stride=2,pad=1)", (3, 9, 8), 2,
               nn.Conv2d(3, 4, 3, stride=2, padding=1), x_scale=0.5, dy_scale=0.5)
    layer_case("conv2d_k5p2", seed(), "conv2d(6,5,pad=2)", (1, 12, 12), 2,
               nn.Conv2d(1, 6, 5, padding=2), x_scale=0.3, dy_scale=0.3)
    layer_case("conv1d_k3p1", seed(), "conv1d(5,3,stride=1,pad=1)", (2, 1, 11), 3,
               nn.Conv1d(2, 5, 3, stride=1, padding=1), torch_input_shape=(2, 11))
    layer_case("maxpool2d_k2", seed(), "maxpool2d(2)", (3, 8, 8), 2, nn.MaxPool2d(2),
               make_input=distinct_values)
    layer_case("maxpool2d_k3s2p1", seed(), "maxpool2d(3,stride=2,pad=1)", (2, 9, 9), 2,
               nn.MaxPool2d(3, stride=2, padding=1), make_input=distinct_values)
    layer_case("avgpool2d_k2", seed(), "avgpool2d(2)", (3, 8, 6), 2, nn.AvgPool2d(2))
    layer_case("global_avgpool", seed(), "global_avgpool", (4, 5, 5), 2, nn.AdaptiveAvgPool2d(1))
    kink_free = lambda shape: away_from_zero(torch.randn(shape))
    layer_case("relu", seed(), "relu", (3, 4, 4), 2, nn.ReLU(), make_input=kink_free)
    layer_case("leaky_relu", seed(), "leaky_relu(0.1)", (3, 4, 4), 2, nn.LeakyReLU(0.1),
               make_input=kink_free)
    layer_case("sigmoid", seed(), "sigmoid", (3, 4, 4), 2, nn.Sigmoid(),
               make_input=lambda s: 3.0 * torch.randn(s))
    layer_case("tanh", seed(), "tanh", (3, 4, 4), 2, nn.Tanh(),
               make_input=lambda s: 2.0 * torch.randn(s))
    layer_case("flatten", seed(), "flatten", (3, 4, 4), 2, nn.Flatten())


# -------------------------------------------------------------- MSE loss


def mse_case():
    """dense(3) on (4,1,1), MSELoss(mean) against a random target."""
    torch.manual_seed(2001)
    batch = 3
    lin = nn.Linear(4, 3)
    x = torch.randn(batch, 4, 1, 1)
    target = torch.randn(batch, 3)
    model = nn.Sequential(nn.Flatten(), lin)
    xi = x.clone().requires_grad_(True)
    pred = model(xi)
    pred.retain_grad()
    loss = F.mse_loss(pred, target)
    loss.backward()

    g = GoldenFile("mse_dense")
    g.text("spec", "dense(3)")
    g.i32("input_shape", [4, 1, 1])
    g.f32("x", x)
    g.f32("params", torch.cat([lin.weight.detach().flatten(), lin.bias.detach()]))
    g.f32("target", target)
    g.f32("y", pred)
    g.f32("loss", loss.reshape(()), [])
    g.f32("dy", pred.grad)  # d loss / d pred
    g.f32("dparams", torch.cat([lin.weight.grad.flatten(), lin.bias.grad]))
    g.f32("dx", xi.grad)
    g.write()


# --------------------------------------------------------------- LeNet-5

LENET5_SPEC = ("conv2d(6,5,pad=2) relu maxpool2d(2) conv2d(16,5) relu maxpool2d(2) flatten "
               "dense(120) relu dense(84) relu dense(10)")


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def lowbias32(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def hash_init(model):
    """Fill the parameters with the hash init documented at the top."""
    tensors, bounds, start = [], [], 0
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p.shape[1] * math.prod(p.shape[2:]) if p.dim() > 1 else None
            if fan_in is None:  # a bias: the fan-in of the weight before it
                fan_in = prev_fan_in
            prev_fan_in = fan_in
            bound = torch.tensor(1.0 / math.sqrt(fan_in), dtype=torch.float32)
            n = p.numel()
            units = [((lowbias32(((i + 1) * 0x9E3779B9) & 0xFFFFFFFF) >> 8) * 2 - (1 << 24))
                     for i in range(start, start + n)]
            v = torch.tensor(units, dtype=torch.float32) * (1.0 / (1 << 24))  # exact
            p.copy_((v * bound).reshape(p.shape))  # one float32 rounding
            tensors.append((start, n))
            bounds.append(bound.item())
            start += n
    return tensors, bounds


def sample_ranges(model):
    """(start, count, step) of the sampled flat indices: all of every small
    tensor, every 23rd weight of dense(120) (row length 400) and every 11th
    of dense(84) (row length 120)."""
    ranges, start = [], 0
    for p in model.parameters():
        n = p.numel()
        step = 1
        if n == 400 * 120:
            step = 23
        elif n == 120 * 84:
            step = 11
        ranges.append((start, (n + step - 1) // step, step))
        start += n
    return ranges


def take(flat, ranges):
    parts = [flat[s: s + c * st: st] for s, c, st in ranges]
    for part, (s, c, st) in zip(parts, ranges):
        assert part.numel() == c
    return torch.cat(parts)


def flat_params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def flat_grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


OPTIMISERS = [
    # name, fedl kind (0 SGD, 1 Adam, 2 AdamW), lr, torch constructor kwargs
    ("sgd_momentum", 0, 0.05, dict(momentum=0.9)),
    ("adam", 1, 1e-3, dict()),
    ("adamw", 2, 1e-3, dict(weight_decay=0.01)),
    ("sgd_nesterov_wd", 0, 0.05, dict(momentum=0.9, nesterov=True, weight_decay=5e-4)),
]


def make_optimiser(kind, params, lr, kwargs):
    cls = [torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW][kind]
    return cls(params, lr=lr, **kwargs)


def optimiser_config(opt):
    """[lr, momentum, dampening, nesterov, weight_decay, beta1, beta2, eps]
    as torch resolved them (its defaults included)."""
    d = opt.param_groups[0]
    betas = d.get("betas", (0.9, 0.999))
    return [d["lr"], d.get("momentum", 0.0), d.get("dampening", 0.0),
            1.0 if d.get("nesterov", False) else 0.0, d["weight_decay"],
            betas[0], betas[1], d.get("eps", 1e-8)]


def lenet5_case():
    torch.manual_seed(3001)
    batch = 4
    x = torch.rand(batch, 1, 28, 28)
    labels = torch.randint(0, 10, (batch,))

    model = lenet5()
    tensors, bounds = hash_init(model)
    ranges = sample_ranges(model)
    p0 = flat_params(model).clone()

    xi = x.clone().requires_grad_(True)
    logits = model(xi)
    logits.retain_grad()
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    g = GoldenFile("lenet5")
    g.text("spec", LENET5_SPEC)
    g.text("preset", "lenet5")
    g.i32("input_shape", [1, 28, 28])
    g.i32("init_tensors", tensors)
    g.f32("init_bounds", torch.tensor(bounds))
    g.i32("sample", ranges)
    g.f32("params_sampled", take(p0, ranges))  # checks the hash init itself
    g.f32("x", x)
    g.i32("labels", labels.to(torch.int32).tolist())
    g.f32("logits", logits)
    g.f32("loss", loss.reshape(()), [])
    g.f32("dlogits", logits.grad)
    g.f32("dparams_sampled", take(flat_grads(model), ranges))
    g.f32("dx", xi.grad)

    if REPORT:
        m64 = lenet5().double()
        with torch.no_grad():
            for p, q in zip(m64.parameters(), model.parameters()):
                p.copy_(q.double())
        x64 = x.double().requires_grad_(True)
        l64 = m64(x64)
        F.cross_entropy(l64, labels).backward()
        report("lenet5", "logits", logits, l64)
        report("lenet5", "dx", xi.grad, x64.grad)
        for i, (p, q) in enumerate(zip(model.parameters(), m64.parameters())):
            report("lenet5", "dparam[%d]" % i, p.grad, q.grad)

    for name, kind, lr, kwargs in OPTIMISERS:
        m = lenet5()
        with torch.no_grad():
            for p, q in zip(m.parameters(), model.parameters()):
                p.copy_(q)
        opt = make_optimiser(kind, m.parameters(), lr, kwargs)
        for _ in range(2):  # the same batch twice
            opt.zero_grad()
            F.cross_entropy(m(x), labels).backward()
            opt.step()
        g.i32(name + "/kind", [kind])
        g.f32(name + "/config", torch.tensor(optimiser_config(opt)))
        g.f32(name + "/params_sampled", take(flat_params(m), ranges))
        if REPORT:
            after = flat_params(m)
            # How much of the update each tolerance can see.
            delta = (after - p0).abs()
            print("    lenet5 %-16s |update| max %.3e median %.3e" %
                  (name, delta.max().item(), delta.median().item()))
    g.write()


# ---------------------------------------------------------- optimisers alone


def optim_case():
    """Two steps of each optimiser on a 512-vector with stored gradients.

    The gradients mix exact zeros (dead units: Adam must not move them,
    AdamW and L2 decay must), values near Adam's eps, and ordinary ones;
    the parameters are O(1) so decay is large enough to see."""
    torch.manual_seed(4001)
    n = 512
    p0 = torch.randn(n)

    def grads():
        g = 0.1 * torch.randn(n)
        kind = torch.randint(0, 6, (n,))
        g = torch.where(kind == 0, torch.zeros(n), g)
        g = torch.where(kind == 1, 1e-8 * torch.randn(n), g)
        g = torch.where(kind == 2, 1e-4 * torch.randn(n), g)
        return g

    g1, g2 = grads(), grads()
    g = GoldenFile("optim_step")
    g.f32("params", p0)
    g.f32("grads_step1", g1)
    g.f32("grads_step2", g2)
    for name, kind, lr, kwargs in OPTIMISERS:
        p = p0.clone().requires_grad_(True)
        opt = make_optimiser(kind, [p], lr, kwargs)
        g.i32(name + "/kind", [kind])
        g.f32(name + "/config", torch.tensor(optimiser_config(opt)))
        for step, grad in ((1, g1), (2, g2)):
            p.grad = grad.clone()
            opt.step()
            g.f32("%s/params_step%d" % (name, step), p)
    g.write()


def main():
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    layer_cases()
    mse_case()
    lenet5_case()
    optim_case()


if __name__ == "__main__":
    main()
