#!/usr/bin/env bash
# Set up and start Berth on a Debian 12 machine: system packages, the virtualenv,
# the database, Redis if none runs, then the Celery worker and beat and daphne.
# Ctrl-C stops all of it. Running it again is safe.
#
#   sudo scripts/start.sh [--host 0.0.0.0] [--port 8000]
source "$(dirname "$0")/lib.sh"
require_root
install_packages "${RUNTIME_PACKAGES[@]}"
ensure_venv requirements.txt
cd "$BERTH_HOME"
exec "$VENV/bin/python" -m console.launcher "$@"
