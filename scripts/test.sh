#!/usr/bin/env bash
# Set up .venv (first run) and run the test suite: `bash scripts/test.sh [PYTEST ARGS...]`.
#
# Tests always run on SQLite, and also on PostgreSQL when TEST_DATABASE_URL is set. When it is not
# set, a throwaway PostgreSQL server is started for the run (scripts/with-postgres.sh; installed
# from Debian's packages when missing and running as root). VIGIL_TEST_POSTGRES=0 skips that;
# VIGIL_TEST_POSTGRES=1 makes failing to start it an error.
#
# The browser test (tests/test_browser.py) needs Chromium: scripts/ensure-chromium.sh installs
# Debian's package when missing and running as root; otherwise that test is skipped with the
# reason. VIGIL_TEST_BROWSER=0 skips it; VIGIL_TEST_BROWSER=1 makes a missing Chromium an error.
#
# Tests run in parallel, one pytest-xdist worker per CPU, each test file on one worker
# in collection order, where tests marked slow come first (tests/conftest.py), so the longest start
# at once (VIGIL_TEST_WORKERS=0 runs them in this process, e.g. to use a debugger).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
vigil_ensure_venv

if [ "${VIGIL_TEST_BROWSER:-}" != 0 ] && ! bash scripts/ensure-chromium.sh; then
    if [ "${VIGIL_TEST_BROWSER:-}" = 1 ]; then
        echo "test.sh: error: Chromium is required for the browser test (VIGIL_TEST_BROWSER=1)" >&2
        exit 1
    fi
    echo "test.sh: WARNING: no Chromium: the browser test will be skipped" >&2
fi

parallel=(-n "${VIGIL_TEST_WORKERS:-auto}" --dist loadfile --no-loadscope-reorder)
[ "${VIGIL_TEST_WORKERS:-}" = 0 ] && parallel=()

if [ -n "${TEST_DATABASE_URL:-}" ]; then
    echo "test.sh: testing on SQLite and on PostgreSQL at TEST_DATABASE_URL" >&2
    exec .venv/bin/pytest "${parallel[@]}" "$@"
elif [ "${VIGIL_TEST_POSTGRES:-}" = 0 ]; then
    echo "test.sh: testing on SQLite only (VIGIL_TEST_POSTGRES=0)" >&2
    exec .venv/bin/pytest "${parallel[@]}" "$@"
fi
exec bash scripts/with-postgres.sh .venv/bin/pytest "${parallel[@]}" "$@"
