#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server, e.g. `bash scripts/with-postgres.sh pytest -q`.
#
# Finds initdb/pg_ctl (PATH, else the newest /usr/lib/postgresql/*/bin); installs Debian's
# `postgresql` package when missing and we are root with apt-get. Initialises a temporary data
# directory (as the `postgres` user when run as root: the server refuses to run as root), starts
# the server on a free 127.0.0.1 port, creates database `vigil_test`, exports
#   TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/vigil_test
# runs the command in the current folder, then always stops the server and deletes the directory.
# Exits with the command's exit code.
#
# When PostgreSQL cannot be had, it warns and runs the command anyway (so tests run on SQLite
# only) -- unless VIGIL_TEST_POSTGRES=1, which makes that an error (CI uses this).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

say() { printf 'with-postgres: %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

PG_BIN=""
PG_TMP=""

find_postgres() {
    local initdb dir
    if initdb="$(command -v initdb 2>/dev/null)"; then
        dir="$(dirname "$(readlink -f "$initdb")")"
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            PG_BIN="$dir"
            return 0
        fi
    fi
    # Debian/Ubuntu keep the server tools in a versioned directory that is not on PATH.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            PG_BIN="$dir"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    is_root && command -v apt-get >/dev/null 2>&1 || return 1
    local log
    log="$(mktemp)"
    say "PostgreSQL not found; installing Debian's postgresql package (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local install=(apt-get install -y -q --no-install-recommends postgresql)
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        apt-get update -q >>"$log" 2>&1 || true
    fi
    if ! "${install[@]}" >>"$log" 2>&1; then
        if ! { apt-get update -q && "${install[@]}"; } >>"$log" 2>&1; then
            tail -n 30 "$log" >&2
            rm -f "$log"
            say "apt-get install postgresql failed"
            return 1
        fi
    fi
    rm -f "$log"
}

# Run a PostgreSQL server tool as the user that owns the cluster.
as_pg() {
    if ! is_root; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cleanup() {
    if [ -n "$PG_TMP" ] && [ -d "$PG_TMP" ]; then
        if [ -f "$PG_TMP/data/postmaster.pid" ]; then
            (cd "$PG_TMP" && as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1) \
                || (cd "$PG_TMP" && as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1) \
                || say "warning: could not stop the server in $PG_TMP"
        fi
        rm -rf "$PG_TMP"
    fi
}

# Initialise and start a server; on success export TEST_DATABASE_URL.
start_postgres() {
    if is_root && ! id postgres >/dev/null 2>&1; then
        say "running as root but there is no 'postgres' user to run the server as"
        return 1
    fi
    if is_root; then
        # /tmp rather than $TMPDIR: the postgres user must be able to reach it.
        PG_TMP="$(mktemp -d /tmp/vigil-pg.XXXXXX)" && chown postgres "$PG_TMP" || return 1
    else
        PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/vigil-pg.XXXXXX")" || return 1
    fi
    chmod 700 "$PG_TMP" || return 1
    cd "$PG_TMP" || return 1   # the postgres user may not be allowed into the caller's folder
    if ! as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 --no-locale \
            --no-sync >"$PG_TMP/initdb.log" 2>&1; then
        tail -n 20 "$PG_TMP/initdb.log" >&2
        say "initdb failed"
        return 1
    fi
    local attempt port=""
    for attempt in 1 2 3; do
        port="$(free_port)"
        # Throwaway data: durability off for speed.
        if as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
                -o "-h 127.0.0.1 -p $port -k $PG_TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
                start >/dev/null 2>&1; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        tail -n 20 "$PG_TMP/server.log" >&2 || true
        say "the server did not start"
        return 1
    fi
    if [ -x "$PG_BIN/createdb" ]; then
        "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres vigil_test
    else
        "$PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'CREATE DATABASE vigil_test'
    fi || { say "could not create database vigil_test"; return 1; }
    export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/vigil_test"
    say "$("$PG_BIN/postgres" --version) running at $TEST_DATABASE_URL (stopped on exit)"
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

caller_dir="$(pwd)"
problem=""
if ! { find_postgres || { install_postgres && find_postgres; }; }; then
    problem="PostgreSQL is not installed and could not be installed (that needs root and apt-get)"
elif ! start_postgres; then
    problem="PostgreSQL ($PG_BIN) could not be started (see above)"
fi
cd "$caller_dir"
if [ -n "$problem" ]; then
    cleanup
    PG_TMP=""
    unset TEST_DATABASE_URL
    if [ "${VIGIL_TEST_POSTGRES:-}" = 1 ]; then
        say "error: $problem, and VIGIL_TEST_POSTGRES=1 requires it"
        exit 1
    fi
    say "WARNING: $problem."
    say "WARNING: running without it: tests cover SQLite only (set TEST_DATABASE_URL to use a server)."
fi

set +e
"$@"
status=$?
set -e
exit "$status"
