#!/usr/bin/env python3
"""safetensors_check.py MODEL.fedl EXPORT.safetensors [--data DIR [--limit N]]

Checks a `fedl ckpt export --safetensors` file against the fedl file it was
exported from, reading both with nothing but the standard library:

  * the safetensors layout: 8-byte little-endian header length N, N bytes of
    JSON padded with spaces to a multiple of 8, then the data block;
  * metadata: format "pt", fedl_spec equal to the fedl file's spec;
  * names "<layer index>.weight" / "<layer index>.bias", one per parameter
    tensor of the spec, with PyTorch's shapes computed here from the spec
    and the input shape (not taken from fedl);
  * data offsets contiguous, in layer order, covering the data block;
  * every value bit-for-bit equal to the fedl file's "params" section
    (docs/FORMAT.md), tensor by tensor.

If torch imports, the tensors are loaded with torch.frombuffer into a
torch.nn.Sequential built from the spec with load_state_dict(strict=True),
and with --data the test split of an IDX directory is evaluated; the line
"torch: N samples, K correct, loss L" can be compared with `fedl eval`.

Exit 0 when every check passed, 1 otherwise (each failure is printed).
"""
import gzip
import json
import os
import re
import struct
import sys

FAILURES = []


def fail(message):
    FAILURES.append(message)
    print("FAIL: " + message)


# ------------------------------------------------------------- fedl files

CONTAINER_MAGIC = b"\x89FEDL\r\n\n"
V1_MAGIC = b"FEDLMODL"


def read_fedl(path):
    """(spec, (c, h, w), params bytes) of a fedl model file or checkpoint."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == V1_MAGIC:
        spec_len, c, h, w, count = struct.unpack_from("<IiiiQ", data, 16)
        spec = data[40:40 + spec_len].decode("ascii")
        start = 40 + spec_len
        return spec, (c, h, w), data[start:start + 4 * count]
    if data[:8] != CONTAINER_MAGIC:
        raise ValueError("%s: not a fedl file" % path)
    sections = read_section_table(data)
    if "model" not in sections or "params" not in sections:
        raise ValueError("%s: no 'model' or 'params' section" % path)
    spec, shape = read_model_section(sections["model"])
    return spec, shape, sections["params"]


def read_section_table(data):
    """name -> bytes of every section (docs/FORMAT.md, container version 2).

    Header (32 bytes): magic[8], version u32, header length u32, file kind
    u32, section count u32, file length u64. Table entries (48 bytes): name
    [16] NUL-padded, kind u32, reserved u32, offset u64, length u64, CRC-32C
    u32, reserved u32. (The CRCs are fedl's to check; this reads only.)
    """
    version, _, _, count, file_len = struct.unpack_from("<IIIIQ", data, 8)
    if version != 2 or file_len != len(data):
        raise ValueError("container version %d, length %d of %d" % (version, file_len, len(data)))
    sections = {}
    for i in range(count):
        entry = 32 + 48 * i
        name = data[entry:entry + 16].rstrip(b"\0").decode("ascii")
        offset, length = struct.unpack_from("<QQ", data, entry + 24)
        sections[name] = data[offset:offset + length]
    return sections


def read_model_section(section):
    """(spec, (c, h, w)) from the "model" section (docs/FORMAT.md): payload
    version u32, input c, h, w (int32), parameter count u64, layer count L
    u32, L records of 20 bytes, spec length u32, spec."""
    version, c, h, w, _, layers = struct.unpack_from("<IiiiQI", section, 0)
    if version != 1:
        raise ValueError("model section payload version %d" % version)
    at = 28 + 20 * layers
    (spec_len,) = struct.unpack_from("<I", section, at)
    return section[at + 4:at + 4 + spec_len].decode("ascii"), (c, h, w)


# ------------------------------------------------------------------ spec

LAYER_RE = re.compile(r"([a-z_0-9]+)(?:\(([^)]*)\))?")


def parse_spec(spec):
    """[(name, positional args, keyword args)] of a canonical spec."""
    layers = []
    for token in re.findall(r"[a-z_0-9]+(?:\([^)]*\))?", spec):
        name, args = LAYER_RE.fullmatch(token).groups()
        positional, keywords = [], {}
        for arg in (args.split(",") if args else []):
            if "=" in arg:
                key, value = arg.split("=", 1)
                keywords[key] = value
            else:
                positional.append(arg)
        layers.append((name, positional, keywords))
    return layers


def out_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def expected_tensors(spec, shape):
    """[(name, shape)] in layer order, with PyTorch's shapes."""
    tensors = []
    c, h, w = shape
    for index, (name, pos, kw) in enumerate(parse_spec(spec)):
        bias = kw.get("bias", "1") != "0"
        if name == "dense":
            units = int(pos[0])
            tensors.append(("%d.weight" % index, [units, c * h * w]))
            if bias:
                tensors.append(("%d.bias" % index, [units]))
            c, h, w = units, 1, 1
        elif name in ("conv2d", "conv1d"):
            units, k = int(pos[0]), int(pos[1])
            stride, pad = int(kw.get("stride", 1)), int(kw.get("pad", 0))
            weight = [units, c, k, k] if name == "conv2d" else [units, c, k]
            tensors.append(("%d.weight" % index, weight))
            if bias:
                tensors.append(("%d.bias" % index, [units]))
            if name == "conv2d":
                h = out_size(h, k, stride, pad)
            w = out_size(w, k, stride, pad)
            c = units
        elif name in ("maxpool2d", "avgpool2d"):
            k = int(pos[0])
            stride, pad = int(kw.get("stride", k)), int(kw.get("pad", 0))
            h, w = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
        elif name == "global_avgpool":
            h, w = 1, 1
        elif name == "flatten":
            c, h, w = c * h * w, 1, 1
    return tensors


# ----------------------------------------------------------- safetensors

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    if n % 8 != 0:
        fail("header length %d is not a multiple of 8" % n)
    raw = data[8:8 + n]
    if not raw.rstrip(b" ").endswith(b"}"):
        fail("the header is not JSON padded with spaces")
    header = json.loads(raw.decode("utf-8"))
    return header, data[8 + n:]


def check_layout(header, block, spec, shape, params):
    meta = header.pop("__metadata__", None)
    if meta is None:
        fail("no __metadata__")
        meta = {}
    if meta.get("format") != "pt":
        fail("metadata format is %r, not 'pt'" % meta.get("format"))
    if meta.get("fedl_spec") != spec:
        fail("metadata fedl_spec %r != the file's spec %r" % (meta.get("fedl_spec"), spec))
    if not all(isinstance(v, str) for v in meta.values()):
        fail("metadata values must be strings")
    expected = expected_tensors(spec, shape)
    names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
    if names != [name for name, _ in expected]:
        fail("tensors %s, expected %s (in layer order)" % (names, [n for n, _ in expected]))
    position = 0
    for name, want_shape in expected:
        entry = header.get(name)
        if entry is None:
            continue
        begin, end = entry["data_offsets"]
        if entry["dtype"] != "F32":
            fail("%s: dtype %s" % (name, entry["dtype"]))
        if entry["shape"] != want_shape:
            fail("%s: shape %s, expected %s" % (name, entry["shape"], want_shape))
        count = 1
        for d in want_shape:
            count *= d
        if begin != position or end != begin + 4 * count:
            fail("%s: data_offsets [%d, %d], expected [%d, %d]"
                 % (name, begin, end, position, position + 4 * count))
        if block[begin:end] != params[position:position + 4 * count]:
            fail("%s: values differ from the fedl file's parameters" % name)
        position += 4 * count
    if position != len(block) or len(block) != len(params):
        fail("data block %d bytes, tensors %d bytes, fedl parameters %d bytes"
             % (len(block), position, len(params)))
    return expected


# ------------------------------------------------------------------ torch

def build_sequential(torch, spec, shape):
    nn = torch.nn
    modules = []
    c, h, w = shape
    for name, pos, kw in parse_spec(spec):
        bias = kw.get("bias", "1") != "0"
        if name == "dense":
            modules.append(nn.Linear(c * h * w, int(pos[0]), bias=bias))
            c, h, w = int(pos[0]), 1, 1
        elif name in ("conv2d", "conv1d"):
            units, k = int(pos[0]), int(pos[1])
            stride, pad = int(kw.get("stride", 1)), int(kw.get("pad", 0))
            conv = nn.Conv2d if name == "conv2d" else nn.Conv1d
            modules.append(conv(c, units, k, stride=stride, padding=pad, bias=bias))
            if name == "conv2d":
                h = out_size(h, k, stride, pad)
            c, w = units, out_size(w, k, stride, pad)
        elif name in ("maxpool2d", "avgpool2d"):
            k = int(pos[0])
            stride, pad = int(kw.get("stride", k)), int(kw.get("pad", 0))
            pool = nn.MaxPool2d if name == "maxpool2d" else nn.AvgPool2d
            modules.append(pool(k, stride=stride, padding=pad))
            h, w = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
        elif name == "global_avgpool":
            modules.append(nn.AdaptiveAvgPool2d(1))
            h, w = 1, 1
        elif name == "flatten":
            modules.append(nn.Flatten())
            c, h, w = c * h * w, 1, 1
        elif name == "relu":
            modules.append(nn.ReLU())
        elif name == "leaky_relu":
            modules.append(nn.LeakyReLU(float(pos[0]) if pos else 0.01))
        elif name == "sigmoid":
            modules.append(nn.Sigmoid())
        elif name == "tanh":
            modules.append(nn.Tanh())
        elif name == "dropout":
            modules.append(nn.Dropout(float(pos[0])))
        else:
            raise ValueError("no torch module for layer %r" % name)
    return nn.Sequential(*modules)


def read_idx(path):
    """(dims, payload) of an IDX file, path or path + ".gz"."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    else:
        with gzip.open(path + ".gz", "rb") as f:
            data = f.read()
    ndim = data[3]
    dims = struct.unpack_from(">" + "I" * ndim, data, 4)
    return dims, data[4 + 4 * ndim:]


def torch_check(spec, shape, header, block, data_dir, limit):
    try:
        import torch
    except ImportError:
        print("torch not installed: skipped torch load")
        return
    model = build_sequential(torch, spec, shape)
    state = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(block[begin:end]), dtype=torch.float32)
        state[name] = values.reshape(entry["shape"])
    model.load_state_dict(state, strict=True)
    print("torch %s: load_state_dict(strict=True) ok for %d tensors"
          % (torch.__version__, len(state)))
    if data_dir is None:
        return
    dims, pixels = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte"))
    _, labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte"))
    count = min(dims[0], limit) if limit else dims[0]
    per_sample = shape[0] * shape[1] * shape[2]
    x = torch.frombuffer(bytearray(pixels[:count * per_sample]), dtype=torch.uint8)
    x = x.to(torch.float32) * torch.tensor(1.0 / 255.0, dtype=torch.float32)
    if shape[1] == 1 and any(layer[0] == "conv1d" for layer in parse_spec(spec)):
        x = x.reshape(count, shape[0], shape[2])  # (N, C, L) for Conv1d
    else:
        x = x.reshape(count, *shape)
    y = torch.frombuffer(bytearray(labels[:count]), dtype=torch.uint8).to(torch.int64)
    model.eval()
    with torch.no_grad():
        logits = model(x).reshape(count, -1)
        loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct = int((logits.argmax(dim=1) == y).sum().item())
    print("torch: %d samples, %d correct, loss %.4f" % (count, correct, loss / count))


# -------------------------------------------------------------------- main

def main(argv):
    args = argv[1:]
    data_dir, limit = None, 0
    if "--data" in args:
        i = args.index("--data")
        data_dir = args[i + 1]
        del args[i:i + 2]
    if "--limit" in args:
        i = args.index("--limit")
        limit = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    spec, shape, params = read_fedl(args[0])
    header, block = read_safetensors(args[1])
    tensors = check_layout(header, block, spec, shape, params)
    if not FAILURES:
        print("safetensors ok: %d tensors, %d parameters, spec %s"
              % (len(tensors), len(params) // 4, spec))
        torch_check(spec, shape, header, block, data_dir, limit)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
