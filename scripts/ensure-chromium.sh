#!/usr/bin/env bash
# Make sure a headless Chromium is there for the browser test (tests/test_browser.py).
#
# Looks for VIGIL_CHROMIUM, chromium, chromium-browser or google-chrome on PATH; when none is found
# and we are root with apt-get, installs Debian's `chromium` package. Exits 0 when a browser is
# available and 1 when not: scripts/test.sh then skips the browser test (or fails when
# VIGIL_TEST_BROWSER=1, as in CI).
set -euo pipefail

say() { printf 'ensure-chromium: %s\n' "$*" >&2; }

have_chromium() {
    local name
    for name in ${VIGIL_CHROMIUM:-} chromium chromium-browser google-chrome google-chrome-stable; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

have_chromium && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "Chromium is not installed and cannot be installed here (that needs root and apt-get)"
    exit 1
fi
say "Chromium not found; installing Debian's chromium package (apt-get)"
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
install=(apt-get install -y -q --no-install-recommends chromium)
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt-get update -q >>"$log" 2>&1 || true
fi
if ! "${install[@]}" >>"$log" 2>&1; then
    if ! { apt-get update -q && "${install[@]}"; } >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        say "apt-get install chromium failed"
        exit 1
    fi
fi
rm -f "$log"
have_chromium
