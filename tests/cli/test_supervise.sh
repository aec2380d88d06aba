#!/bin/sh
# test_supervise.sh FEDL SOURCE_DIR - `fedl supervise`: a training run
# kill -9'd again and again is restarted each time and ends with the
# weights of an undisturbed run; a failing command is restarted within the
# restart budget and then given up on with a report; critical memory
# pressure (a fake /proc/meminfo) stops the run with a checkpoint, holds it
# while the pressure lasts and relaunches it after; systemd hears READY,
# STATUS, WATCHDOG and STOPPING; SIGTERM is forwarded; usage errors exit 2.
set -u
fedl=$1
src=$2
work=$(mktemp -d)
supervisor_pid=
trap '[ -n "$supervisor_pid" ] && kill -KILL "$supervisor_pid" 2>/dev/null; rm -rf "$work"' EXIT
. "$src/tests/cli/lib.sh"

# Wait (up to about 30 s) until file $1 contains $2.
wait_for() {
    i=0
    while ! grep -q -- "$2" "$1" 2>/dev/null && [ $i -lt 3000 ]; do
        sleep 0.01
        i=$((i + 1))
    done
}

# How many lines of file $1 contain $2.
count() {
    n=$(grep -c -- "$2" "$1" 2>/dev/null)
    echo "${n:-0}"
}

# Wait for the background supervisor and put its exit code in $rc.
wait_supervisor() {
    wait "$supervisor_pid"
    rc=$?
    supervisor_pid=
}

expect_rc() { # name, expected, output files to show on failure...
    name=$1 expected=$2
    shift 2
    if [ "$rc" -eq "$expected" ]; then
        pass
    else
        fail "$name: exit $rc, expected $expected"
        cat "$@"
    fi
}

# MemAvailable of the fake /proc/meminfo (kB of 1000000), replaced whole.
set_available() {
    printf 'MemTotal:        1000000 kB\nMemFree:          %s kB\nMemAvailable:     %s kB\n' \
        "$1" "$1" >"$work/fake/proc/meminfo.tmp"
    mv "$work/fake/proc/meminfo.tmp" "$work/fake/proc/meminfo"
}

newest_checkpoint() { # dir: the newest checkpoint file's name, or nothing
    ls "$1" 2>/dev/null | grep '^ckpt-.*\.fedl$' | sort | tail -1
}

# Long enough a run for six kills at random moments (about 2 s here); the
# sanitizer build trains some 30 times slower, so a quarter of the data.
samples=2048
[ -n "${FEDL_SANITIZED:-}" ] && samples=512
python3 "$src/tests/cli/make_idx.py" "$work/data" "$samples" 64 28 4 || exit 1
set -- --model lenet5 --data "$work/data" --epochs 3 --batch 32 --seed 7
check "undisturbed reference run" 0 "$fedl" train "$@" --out "$work/reference.fedl"

# --- a. kill -9 the child again and again: restarted, resumed, same weights.
"$fedl" supervise --backoff-initial 0.1 --backoff-max 0.2 --restart-budget 50 \
    --log "$work/a.jsonl" -- "$fedl" train "$@" --ckpt-dir "$work/ck-a" --ckpt-steps 1 \
    --ckpt-seconds 0 --out "$work/a.fedl" >"$work/a.out" 2>"$work/a.err" &
supervisor_pid=$!
kills=0
seed=1
while [ "$kills" -lt 6 ]; do
    # the (kills + 1)-th child's pid, from its "start" event
    i=0
    while [ "$(count "$work/a.jsonl" '"event":"start"')" -le "$kills" ] && [ $i -lt 3000 ]; do
        sleep 0.01
        i=$((i + 1))
    done
    pid=$(grep '"event":"start"' "$work/a.jsonl" | tail -1 | sed 's/.*"pid":\([0-9]*\).*/\1/')
    # Each life first writes a checkpoint of its own (start-up alone may
    # outlast a fixed delay under a sanitizer on a loaded machine), then
    # dies at a random moment after it.
    before=$(newest_checkpoint "$work/ck-a")
    i=0
    while [ "$(newest_checkpoint "$work/ck-a")" = "$before" ] && kill -0 "$pid" 2>/dev/null &&
        [ $i -lt 6000 ]; do
        sleep 0.01
        i=$((i + 1))
    done
    delay=$(awk -v s="$seed" 'BEGIN { srand(s); printf "%.3f", rand() * 0.2 }')
    seed=$((seed + 1))
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null || break # it finished first
    kills=$((kills + 1))
done
wait_supervisor
expect_rc "supervised run killed $kills times" 0 "$work/a.err"
[ "$kills" -ge 5 ] && pass || fail "only $kills kills landed before training finished"
same "weights after $kills kills equal the undisturbed run's" "$work/a.fedl" "$work/reference.fedl"
n=$(count "$work/a.jsonl" '"reason":"killed by SIGKILL (not by fedl supervise)"')
[ "$n" -eq "$kills" ] && pass || {
    fail "$n of $kills SIGKILL exits logged as not sent by supervise"
    cat "$work/a.jsonl"
}
n=$(count "$work/a.jsonl" '"event":"start"')
[ "$n" -eq $((kills + 1)) ] && pass || fail "$n starts for $kills kills"
contains "a killed run resumed" "$work/a.out" "^resumed from"
contains "SIGKILL exits are reported on stderr" "$work/a.err" \
    "killed by SIGKILL (not by fedl supervise)"

# --- b. a command that always fails: 1 run + 3 restarts, then a report.
check "restart budget spent" 1 "$fedl" supervise --restart-budget 3 --backoff-initial 0.05 \
    --log "$work/b.jsonl" -- sh -c "echo run >>'$work/b.runs'; exit 3"
n=$(count "$work/b.runs" run)
[ "$n" -eq 4 ] && pass || fail "the failing command ran $n times, expected 4"
contains "the report names the exit" "$work/err" "exit status 3"
contains "the report names the restart budget" "$work/err" "restart budget"
[ "$(count "$work/err" '  pid .* exit status 3')" -eq 4 ] && pass ||
    fail "the give-up report does not list all 4 exits"
contains "give-up is logged" "$work/b.jsonl" '"event":"give-up"'
check "a command that cannot start" 1 "$fedl" supervise -- "$work/no-such-command"
contains "could not start is explained" "$work/err" "cannot start.*No such file"

# --- c. critical memory pressure in a fake /proc: stop, hold, relaunch, resume.
mkdir -p "$work/fake/proc"
set_available 800000
printf 'dwell_ms = 200\ncooldown_ms = 500\n' >"$work/policy.conf"
"$fedl" supervise --root "$work/fake" --interval 100 --policy "$work/policy.conf" \
    --log "$work/c.jsonl" -- "$fedl" train "$@" --ckpt-dir "$work/ck-c" --ckpt-steps 4 \
    --out "$work/c.fedl" >"$work/c.out" 2>"$work/c.err" &
supervisor_pid=$!
wait_for "$work/c.err" "epoch 1/3: .*25%"
set_available 20000 # 2%: critical
wait_for "$work/c.jsonl" '"event":"exit"'
contains "pressure stops the child" "$work/c.jsonl" \
    '"event":"exit".*stopped by fedl supervise for memory pressure, exit status 0'
contains "the pressure event says what was done" "$work/c.jsonl" \
    '"event":"pressure".*"to":"critical".*"action":"checkpoint and release: SIGTERM to pid [0-9]*, exited after'
contains "the child checkpointed" "$work/c.out" "stopped at step"
sleep 1 # well past the cooldown: still critical, so no relaunch
n=$(count "$work/c.jsonl" '"event":"start"')
[ "$n" -eq 1 ] && pass || fail "relaunched ($n starts) while memory was still critical"
set_available 800000
wait_supervisor
expect_rc "supervised run under pressure" 0 "$work/c.err" "$work/c.jsonl"
[ "$(count "$work/c.jsonl" '"event":"start"')" -eq 2 ] && pass ||
    fail "not relaunched exactly once after the pressure passed"
contains "the relaunch is a pressure transition" "$work/c.jsonl" \
    '"event":"pressure".*"from":"critical".*"action":"resume'
contains "the relaunched child resumed" "$work/c.out" "^resumed from"
same "weights after a pressure pause equal the undisturbed run's" "$work/c.fedl" \
    "$work/reference.fedl"

# --- d. systemd notify: READY, STATUS, WATCHDOG every half interval, STOPPING.
cat >"$work/notify.py" <<'EOF'
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path + ".tmp")
os.rename(path + ".tmp", path)  # appears once bound
s.settimeout(15)
with open(out, "w") as f:
    while True:
        try:
            data = s.recv(4096).decode()
        except socket.timeout:
            break
        f.write(data + "\n")
        f.flush()
        if "STOPPING=1" in data:
            break
EOF
python3 "$work/notify.py" "$work/notify.sock" "$work/notify.txt" &
listener=$!
i=0
while [ ! -S "$work/notify.sock" ] && [ $i -lt 1000 ]; do
    sleep 0.01
    i=$((i + 1))
done
check "supervised under systemd" 0 env NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=200000 \
    "$fedl" supervise -- sh -c 'sleep 1'
wait "$listener"
contains "READY=1 sent" "$work/notify.txt" "^READY=1$"
contains "STATUS= sent" "$work/notify.txt" "^STATUS=running pid [0-9]* (restarts 0)$"
n=$(count "$work/notify.txt" "^WATCHDOG=1$")
[ "$n" -ge 2 ] && pass || fail "$n WATCHDOG=1 in 1 s at a 200 ms watchdog"
contains "STOPPING=1 sent" "$work/notify.txt" "^STOPPING=1$"

# --- e. SIGTERM to supervise: forwarded, the child checkpoints, exit 0.
"$fedl" supervise --log "$work/e.jsonl" -- "$fedl" train "$@" --ckpt-dir "$work/ck-e" \
    --out "$work/e.fedl" >"$work/e.out" 2>"$work/e.err" &
supervisor_pid=$!
wait_for "$work/e.err" "epoch 1/3: .*25%"
kill -TERM "$supervisor_pid"
wait_supervisor
expect_rc "SIGTERM to supervise" 0 "$work/e.err"
contains "the child checkpointed on the forwarded SIGTERM" "$work/e.out" "stopped at step"
contains "the exit is reported" "$work/e.err" "stopped by fedl supervise on SIGTERM, exit status 0"
contains "the stop is logged" "$work/e.jsonl" '"event":"stop","pid":[0-9]*,"status":0'
check "resume after the forwarded SIGTERM" 0 "$fedl" train "$@" --ckpt-dir "$work/ck-e" \
    --out "$work/e.fedl"
same "resumed weights equal the undisturbed run's" "$work/e.fedl" "$work/reference.fedl"

# --- f. a SIGKILL with the cgroup's oom_kill counter rising is the OOM
# killer's: a fake cgroup v2 whose memory.events the child bumps before it
# kills itself.
mkdir -p "$work/oom/proc/self" "$work/oom/sys/fs/cgroup/svc"
set_available 800000
cp "$work/fake/proc/meminfo" "$work/oom/proc/meminfo"
echo "0::/svc" >"$work/oom/proc/self/cgroup"
echo 1000000000 >"$work/oom/sys/fs/cgroup/svc/memory.max"
echo 100000000 >"$work/oom/sys/fs/cgroup/svc/memory.current"
events="$work/oom/sys/fs/cgroup/svc/memory.events"
printf 'low 0\nhigh 0\nmax 0\noom 3\noom_kill 3\n' >"$events"
check "an OOM-killed child" 1 "$fedl" supervise --root "$work/oom" --restart-budget 0 \
    --interval 50 -- sh -c 'sleep 0.2; printf "low 0\nhigh 0\nmax 1\noom 4\noom_kill 4\n" \
        >"$0.tmp" && mv "$0.tmp" "$0" && kill -KILL $$' "$events"
contains "the OOM killer is named" "$work/err" \
    "killed by SIGKILL (OOM killer: cgroup oom_kill 3 -> 4)"

check "no command" 2 "$fedl" supervise
check "nothing after --" 2 "$fedl" supervise --log - --
check "unknown option" 2 "$fedl" supervise --bogus -- true
check "bad number" 2 "$fedl" supervise --backoff-initial soon -- true
check "help" 0 "$fedl" supervise --help
contains "help names fedl train --monitor" "$work/out" "fedl train --monitor"

finish
