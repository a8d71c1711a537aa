#!/usr/bin/env bash
# Run Berth's whole test suite on a Debian 12 machine, installing what the tests
# need: the runtime packages, a registry, chromium, docker for interoperability
# checks, and the pinned test dependencies. Tests start (and stop) their own
# Redis, registries and dockerd.
#
#   sudo scripts/test.sh [pytest arguments]
source "$(dirname "$0")/lib.sh"
require_root
install_packages "${RUNTIME_PACKAGES[@]}" \
  chromium fonts-liberation docker-registry apache2-utils docker.io skopeo zstd
ensure_venv requirements-test.txt
cd "$BERTH_HOME"
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest "$@"
