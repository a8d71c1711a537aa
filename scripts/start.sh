#!/usr/bin/env bash
# Set up and start Berth on a Debian 12 machine: system packages, the virtualenv,
# the database, Redis if none runs, then the Celery worker and beat and daphne.
# It restarts any of them that dies; Ctrl-C stops all of it. Running it again is safe
# (a second one on the same data directory refuses to start).
#
#   sudo scripts/start.sh [--host 0.0.0.0] [--port 8000]
source "$(dirname "$0")/lib.sh"
require_root
if command -v systemctl >/dev/null && systemctl is-active --quiet berth.target 2>/dev/null; then
  say "Berth already runs under systemd (systemctl status berth.target); not starting a second console"
  exit 1
fi
install_packages "${RUNTIME_PACKAGES[@]}"
ensure_venv requirements.txt
cd "$BERTH_HOME"
exec "$VENV/bin/python" -m console.launcher "$@"
