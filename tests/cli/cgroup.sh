# cgroup.sh - helpers for the command-line tests that need a real memory
# cgroup, sourced after lib.sh. make_memory_cgroup creates one (v1 on these
# machines, v2 on Raspberry Pi OS) or skips the test saying why; the caller
# removes "$group" on exit.

# make_memory_cgroup NAME LIMIT_BYTES: sets $group (its directory) and
# $version (1 or 2); no swap inside it.
make_memory_cgroup() {
    if [ -w /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
        version=1
        group=/sys/fs/cgroup/memory/$1
        mkdir "$group" || skip "cannot create $group"
        echo "$2" >"$group/memory.limit_in_bytes"
        # the memory+swap limit, where the kernel has it, is the same
        [ -f "$group/memory.memsw.limit_in_bytes" ] && echo "$2" >"$group/memory.memsw.limit_in_bytes"
    elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && [ -w /sys/fs/cgroup ]; then
        version=2
        echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
        group=/sys/fs/cgroup/$1
        mkdir "$group" || skip "cannot create $group"
        echo "$2" >"$group/memory.max" || skip "cannot set $group/memory.max"
        echo 0 >"$group/memory.swap.max" 2>/dev/null
    else
        group=""
        skip "no writable memory cgroup (v1 /sys/fs/cgroup/memory or v2 with the memory controller)"
    fi
}

# Run a command inside the group: the shell moves itself in, then execs.
in_group() {
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$group" "$@"
}

# The group's OOM kills so far.
oom_kills() {
    if [ "$version" = 1 ]; then
        sed -n 's/^oom_kill //p' "$group/memory.oom_control"
    else
        sed -n 's/^oom_kill //p' "$group/memory.events"
    fi
}
