#!/usr/bin/env bash
# Set up .venv (first run) and start Vigil: `bash scripts/run.sh [vigil serve OPTIONS...]`.
#
# Runs in the folder you call it from: that is where `.env` is read and where the default database
# (sqlite:///vigil.db) lives. `vigil serve` applies migrations on startup, then listens on
# http://127.0.0.1:8000 (POST /slack/events, GET /healthz, the dashboard at /). Without Slack credentials it still
# starts and says which variables are missing.
set -euo pipefail
# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
vigil_ensure_venv
exec "$VIGIL_VENV/bin/vigil" serve "$@"
