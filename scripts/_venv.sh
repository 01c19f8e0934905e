# shellcheck shell=bash
# Sourced (not run) by scripts/test.sh and scripts/run.sh.
#
# vigil_ensure_venv: make sure <repo>/.venv exists and has Vigil installed editable with the `dev`
# extra. Needs only python3 >= 3.11 (VIGIL_PYTHON picks another interpreter). pip runs again only
# when pyproject.toml or setup.py changed since the last successful install (hash kept in .venv/.vigil-stamp).

VIGIL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VIGIL_VENV="$VIGIL_ROOT/.venv"

_vigil_say() { printf 'vigil: %s\n' "$*" >&2; }

_vigil_find_python() {
    local candidate
    for candidate in "${VIGIL_PYTHON:-}" python3 python3.13 python3.12 python3.11 python; do
        [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# Debian ships `venv`/`ensurepip` separately (python3-venv); install it when we can.
_vigil_install_venv_module() {
    local python="$1" version
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    _vigil_say "installing python${version}-venv with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "python${version}-venv" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "python${version}-venv" >/dev/null; } \
        || apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
}

_vigil_create_venv() {
    local python
    if ! python="$(_vigil_find_python)"; then
        _vigil_say "error: Python 3.11 or newer is required (python3 on PATH is $(python3 --version 2>&1 || echo missing)); set VIGIL_PYTHON to one"
        return 1
    fi
    _vigil_say "creating .venv with $("$python" --version 2>&1) ($(command -v "$python"))"
    if ! "$python" -m venv "$VIGIL_VENV" >/dev/null 2>&1; then
        rm -rf "$VIGIL_VENV"
        if ! _vigil_install_venv_module "$python"; then
            _vigil_say "error: '$python -m venv' failed; on Debian/Ubuntu install the python3-venv package"
            return 1
        fi
        "$python" -m venv "$VIGIL_VENV"
    fi
}

_vigil_stamp() {
    # Which packaging files were installed, and where (a venv moved to another folder is stale).
    "$VIGIL_VENV/bin/python" -c 'import hashlib, sys; print(sys.argv[1]); print(hashlib.sha256(b"".join(open(f, "rb").read() for f in sys.argv[2:])).hexdigest())' \
        "$VIGIL_ROOT" "$VIGIL_ROOT/pyproject.toml" "$VIGIL_ROOT/setup.py"
}

vigil_ensure_venv() {
    local stamp_file="$VIGIL_VENV/.vigil-stamp" stamp
    if [ -e "$VIGIL_VENV" ]; then
        if ! "$VIGIL_VENV/bin/python" -m pip --version >/dev/null 2>&1; then
            _vigil_say ".venv is incomplete or its Python no longer runs; recreating it"
            rm -rf "$VIGIL_VENV"
        elif [ -f "$stamp_file" ] && [ "$(head -n 1 "$stamp_file")" != "$VIGIL_ROOT" ]; then
            _vigil_say ".venv was made for $(head -n 1 "$stamp_file"); recreating it here"
            rm -rf "$VIGIL_VENV"
        fi
    fi
    if [ ! -e "$VIGIL_VENV" ]; then
        _vigil_create_venv
    fi
    stamp="$(_vigil_stamp)"
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
        return 0
    fi
    _vigil_say "installing Vigil and its dependencies into .venv (pip install -e '.[dev]')"
    rm -f "$stamp_file"
    # PYTHONWARNINGS: hush setuptools' generic "editable installation" notice.
    (cd "$VIGIL_ROOT" && PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONWARNINGS=ignore \
        "$VIGIL_VENV/bin/python" -m pip install --quiet -e '.[dev]')
    printf '%s\n' "$stamp" > "$stamp_file"
}
