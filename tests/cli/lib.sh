# lib.sh - helpers the command-line test scripts source: run a command and
# check its exit code, look for text in its output, compare files, wait
# for a condition, and count passes and failures. The caller sets $work
# (a scratch directory).
passed=0
failed=0

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

finish() { # print the totals; exit status 0 only when nothing failed
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
