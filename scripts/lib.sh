# Shared by scripts/start.sh and scripts/test.sh: Debian packages, the virtualenv.
# Safe to run again: it installs only what is missing.

set -euo pipefail
BERTH_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BERTH_VENV:-$BERTH_HOME/.venv}"

say() { printf 'berth: %s\n' "$*"; }

require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    say "the embedded engine mounts filesystems and runs runc, so run this as root (sudo $0)"
    exit 1
  fi
}

# install_packages PKG...: apt-get install the packages that are not installed yet.
install_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# What the console and its engine need at run time.
RUNTIME_PACKAGES=(python3 python3-venv ca-certificates runc redis-server busybox-static iproute2 iptables util-linux procps)

# ensure_venv REQUIREMENTS_FILE: the virtualenv with the pinned Python packages.
ensure_venv() {
  local requirements="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv in $VENV"
    /usr/bin/python3 -m venv "$VENV"
  fi
  # Reinstall only when the requirement files changed since the last install.
  local stamp="$VENV/.berth-$(basename "$requirements").sha256"
  local sum
  sum="$(cat "$BERTH_HOME"/requirements*.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    say "installing Python packages from $(basename "$requirements")"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$BERTH_HOME/$requirements"
    echo "$sum" > "$stamp"
  fi
}
