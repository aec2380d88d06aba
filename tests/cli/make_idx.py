#!/usr/bin/env python3
"""make_idx.py DIR [TRAIN TEST SIDE SEED] - write a small, learnable data set in
the MNIST layout (train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) for the command-line tests.
Each class brightens its own band of rows; the rest is noise."""
import os
import random
import struct
import sys


def write_split(directory, prefix, count, side, rng):
    pixels = bytearray()
    labels = bytearray()
    band = max(1, side // 10)
    for _ in range(count):
        label = rng.randrange(10)
        labels.append(label)
        for row in range(side):
            bright = label * band <= row < (label + 1) * band
            for _ in range(side):
                pixels.append(min(255, (150 if bright else 0) + rng.randrange(100)))
    with open(os.path.join(directory, prefix + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, count, side, side) + bytes(pixels))
    with open(os.path.join(directory, prefix + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, count) + bytes(labels))


def main():
    directory = sys.argv[1]
    train = int(sys.argv[2]) if len(sys.argv) > 2 else 240
    test = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    side = int(sys.argv[4]) if len(sys.argv) > 4 else 12
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    os.makedirs(directory, exist_ok=True)
    write_split(directory, "train", train, side, rng)
    write_split(directory, "t10k", test, side, rng)


if __name__ == "__main__":
    main()
