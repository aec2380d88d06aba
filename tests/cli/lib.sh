# lib.sh - helpers the command-line test scripts source: run a command and
# check its exit code, look for text in its output, compare files, wait
# for a condition or a background process, find a free port, skip with a
# reason, clean up, and count passes and failures. The caller sets $work (a
# scratch directory).
passed=0
failed=0

skip() { # reason: the test cannot run here; say why and pass
    echo "SKIP: $1"
    exit 0
}

pass() { passed=$((passed + 1)); }

fail() { # message
    failed=$((failed + 1))
    echo "FAIL: $1"
}

check() { # name, expected exit code, command...
    name=$1 expected=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
    if [ "$rc" -eq "$expected" ]; then
        pass
    else
        fail "$name: exit $rc, expected $expected"
        cat "$work/out" "$work/err"
    fi
}

contains() { # name, file, text (a grep pattern)
    if grep -q -- "$3" "$2"; then
        pass
    else
        fail "$1: '$3' not in $2:"
        cat "$2"
    fi
}

same() { # name, file, file
    if cmp -s "$2" "$3"; then
        pass
    else
        fail "$1: $2 and $3 differ"
    fi
}

wait_until() { # seconds, command...: poll every 0.1 s until the command succeeds
    limit=$(($1 * 10))
    shift
    i=0
    until "$@"; do
        i=$((i + 1))
        [ $i -gt $limit ] && return 1
        sleep 0.1
    done
}

succeeded() { # name, pid, output file: the background process exited 0
    wait "$2"
    rc=$?
    if [ $rc -eq 0 ]; then
        pass
    else
        fail "$1 exited $rc"
        tail -20 "$3"
    fi
}

stop_and_clean() { # an EXIT trap: kill the background processes in $pids, remove $work
    for p in ${pids:-}; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}

start_plain_broker() { # mosquitto: plain MQTT, anonymous, on a free loopback port
    # Sets $port and $broker (its URL) and adds the broker to $pids; its
    # configuration and log go to the current directory.
    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >mosquitto.conf
    "$1" -c mosquitto.conf >broker.log 2>&1 &
    pids="${pids:-} $!"
    broker="mqtt://127.0.0.1:$port"
    wait_until 10 port_open "$port" || {
        fail "the broker did not start"
        cat broker.log
        return 1
    }
}

free_port() { # print a TCP port on the loopback that nothing listens on
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() { # port: something accepts connections on the loopback there
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null
}

finish() { # print the totals; exit status 0 only when nothing failed
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
