#!/usr/bin/env bash
# Run Berth's whole test suite on a Debian 12 machine, installing what the tests
# need: the runtime packages, a registry, chromium, docker for interoperability
# checks, and the pinned test dependencies. First the static gates
# (scripts/checks.sh: ruff, import contracts, mypy), then pytest. Tests start
# (and stop) their own Redis, registries and dockerd.
#
#   sudo scripts/test.sh [pytest arguments]
source "$(dirname "$0")/lib.sh"
require_root
install_packages "${RUNTIME_PACKAGES[@]}" \
  chromium fonts-liberation docker-registry apache2-utils docker.io skopeo zstd
ensure_venv requirements-test.txt
"$BERTH_HOME/scripts/checks.sh"  # ruff, import contracts, mypy: before the slow part
cd "$BERTH_HOME"
exec "$VENV/bin/python" -m pytest "$@"
