#!/usr/bin/env python3
"""memhog.py CGROUP_DIR MIB FIRST_MIB STEP_MIB STEP_MS HOLD_S [TRACE.csv] - a
memory hog for the monitor tests. It takes MIB MiB of memory it really
touches, FIRST_MIB at once and then STEP_MIB at a time every STEP_MS ms, holds
it HOLD_S seconds, then exits.

Meanwhile it watches the memory cgroup CGROUP_DIR (v1 or v2) every 50 ms and
prints, with the wall-clock time, the first moment the cgroup's available
memory (limit - (usage - inactive file)) fell below 8% of the limit: the onset
of pressure the test measures the trainer's reaction from. With TRACE it also
records every reading as "ms,limit,working_set,psi_some_avg10,psi_full_avg10"
lines (the format tests/monitor/test_policy.c replays)."""
import os
import sys
import time


def read_int(path):
    with open(path) as f:
        text = f.read().strip()
    return 1 << 62 if text == "max" else int(text)


def stat_value(path, names):
    with open(path) as f:
        fields = dict(line.split() for line in f if line.strip())
    for name in names:
        if name in fields:
            return int(fields[name])
    return 0


def cgroup_reading(group):
    """(limit, working set) in bytes."""
    if os.path.exists(os.path.join(group, "memory.limit_in_bytes")):
        limit = read_int(os.path.join(group, "memory.limit_in_bytes"))
        usage = read_int(os.path.join(group, "memory.usage_in_bytes"))
        inactive = stat_value(os.path.join(group, "memory.stat"),
                              ["total_inactive_file", "inactive_file"])
    else:
        limit = read_int(os.path.join(group, "memory.max"))
        usage = read_int(os.path.join(group, "memory.current"))
        inactive = stat_value(os.path.join(group, "memory.stat"), ["inactive_file"])
    return limit, max(0, usage - inactive)


def psi(group):
    """memory PSI some and full avg10, the cgroup's (v2) or the system's."""
    path = os.path.join(group, "memory.pressure")
    if not os.path.exists(path):
        path = "/proc/pressure/memory"
    some = full = 0.0
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                avg10 = float(parts[1].split("=")[1])
                if parts[0] == "some":
                    some = avg10
                else:
                    full = avg10
    except OSError:
        pass
    return some, full


def main():
    group = sys.argv[1]
    total, first, step, step_ms, hold = (int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                                         int(sys.argv[5]), float(sys.argv[6]))
    trace = open(sys.argv[7], "w") if len(sys.argv) > 7 else None
    start = time.monotonic()
    taken = first
    blocks = [b"\x01" * (first << 20)]
    onset = None
    next_step = start
    end = None
    print("hog: start %.3f" % time.time(), flush=True)
    while True:
        now = time.monotonic()
        if taken < total and now >= next_step:
            blocks.append(b"\x01" * (step << 20))  # written, so resident
            taken += step
            next_step += step_ms / 1000.0
            if taken >= total:
                print("hog: holding %d MiB at %.3f" % (total, time.time()), flush=True)
                end = time.monotonic() + hold
        limit, working_set = cgroup_reading(group)
        if onset is None and limit - working_set < limit * 0.08:
            onset = time.time()
            print("hog: onset %.3f" % onset, flush=True)
        if trace:
            some, full = psi(group)
            trace.write("%d,%d,%d,%.2f,%.2f\n" % ((now - start) * 1000, limit, working_set,
                                                  some, full))
        if end is not None and now >= end:
            break
        time.sleep(0.05)
    blocks.clear()
    print("hog: done %.3f" % time.time(), flush=True)
    if trace:  # the readings after the hog let go, for a few seconds
        for _ in range(100):
            now = time.monotonic()
            limit, working_set = cgroup_reading(group)
            some, full = psi(group)
            trace.write("%d,%d,%d,%.2f,%.2f\n" % ((now - start) * 1000, limit, working_set,
                                                  some, full))
            time.sleep(0.1)


if __name__ == "__main__":
    main()
