#!/usr/bin/env python3
"""make_csv.py OUT.csv BYTES [SEED] - write a learnable CSV in the layout of
Fashion-MNIST as CSV (tests/cli/idx_to_csv.py): a header "label,p0,...,p783",
then rows of an integer label 0-9 and 784 integer pixels 0-255, until the
file holds at least BYTES bytes. Each class brightens its own band of image
rows (as tests/cli/make_idx.py does); the rest is noise. Fast: a 10 MiB file
takes about a second."""
import random
import sys

SIDE = 28
BAND = SIDE // 10


def main():
    out = sys.argv[1]
    want = int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    text = [str(v) for v in range(256)]
    size = 0
    with open(out, "w", newline="") as f:
        header = "label," + ",".join("p%d" % k for k in range(SIDE * SIDE)) + "\n"
        f.write(header)
        size += len(header)
        while size < want:
            label = rng.randrange(10)
            noise = rng.randbytes(SIDE * SIDE)
            first, last = label * BAND * SIDE, (label + 1) * BAND * SIDE
            # noise in 0..99, the class's band 150..249
            fields = [text[b % 100 + (150 if first <= k < last else 0)] for k, b in enumerate(noise)]
            row = str(label) + "," + ",".join(fields) + "\n"
            f.write(row)
            size += len(row)


if __name__ == "__main__":
    main()
