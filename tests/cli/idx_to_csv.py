#!/usr/bin/env python3
"""idx_to_csv.py IMAGES LABELS OUT.csv [--names] - write an (uncompressed) IDX
image/label pair as CSV: a header "label,p0,...", then one row per sample,
label first. With --names the labels are written as class names
("class-3") instead of integers."""
import struct
import sys


def main():
    images, labels, out = sys.argv[1:4]
    names = "--names" in sys.argv[4:]
    with open(images, "rb") as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        pixels = f.read()
    with open(labels, "rb") as f:
        f.read(8)
        ys = f.read()
    side = rows * cols
    with open(out, "w", newline="") as f:
        f.write("label," + ",".join("p%d" % k for k in range(side)) + "\n")
        for i in range(count):
            label = "class-%d" % ys[i] if names else str(ys[i])
            row = pixels[i * side:(i + 1) * side]
            f.write(label + "," + ",".join(str(v) for v in row) + "\n")


if __name__ == "__main__":
    main()
