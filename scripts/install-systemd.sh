#!/usr/bin/env bash
# Install Berth as systemd services on a Debian 12 host, from this checkout: the packages and
# the virtualenv (as start.sh does), a `berth` system user, /etc/berth/berth.env (kept if it
# exists), the database prepared once here (the first administrator's password is printed),
# then every unit in deploy/systemd/ installed, enabled and started.
#
#   sudo scripts/install-systemd.sh              # install and start
#   scripts/install-systemd.sh --render DIR      # only write the units, filled in, to DIR
#
# Afterwards: `systemctl status berth.target`, `journalctl -u 'berth-*' -f`; the settings
# live in /etc/berth/berth.env (restart with `systemctl restart berth.target`).
source "$(dirname "$0")/lib.sh"

ENV_FILE=/etc/berth/berth.env
UNIT_DIR=/etc/systemd/system

# render_units DEST DATA_DIR: deploy/systemd/* with the paths of this install filled in.
render_units() {
  local dest="$1" data_dir="$2" unit
  mkdir -p "$dest"
  for unit in "$BERTH_HOME"/deploy/systemd/*.service "$BERTH_HOME"/deploy/systemd/*.target; do
    [ -e "$unit" ] || continue
    sed -e "s|@BERTH_HOME@|$BERTH_HOME|g" -e "s|@VENV@|$VENV|g" -e "s|@DATA_DIR@|$data_dir|g" \
      "$unit" > "$dest/$(basename "$unit")"
  done
}

if [ "${1:-}" = "--render" ]; then
  render_units "${2:?usage: $0 --render DIR}" "${BERTH_DATA_DIR:-/var/lib/berth-console}"
  exit 0
fi

require_root
command -v systemctl >/dev/null || { say "systemctl not found: this host does not run systemd"; exit 1; }
install_packages "${RUNTIME_PACKAGES[@]}"
ensure_venv requirements.txt

if ! id berth >/dev/null 2>&1; then
  say "creating the system user berth"
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin berth
fi
if [ ! -f "$ENV_FILE" ]; then
  say "writing $ENV_FILE (edit it, then: systemctl restart berth.target)"
  install -d -m 0750 -g berth /etc/berth
  cat > "$ENV_FILE" <<CONF
# Berth's settings (see the README's Configuration table).
BERTH_DATA_DIR=/var/lib/berth-console
BERTH_ENGINE_ROOT=/var/lib/berth
BERTH_ENGINE_RUN=/run/berth
BERTH_REDIS_URL=redis://127.0.0.1:6379/0
BERTH_HOST=127.0.0.1
BERTH_PORT=8000
BERTH_ALLOWED_HOSTS=localhost,127.0.0.1,[::1]
CONF
  chgrp berth "$ENV_FILE"
  chmod 0640 "$ENV_FILE"
fi
set -a
# shellcheck disable=SC1090
source "$ENV_FILE"
set +a
DATA_DIR="${BERTH_DATA_DIR:?BERTH_DATA_DIR is not set in $ENV_FILE}"

if ! runuser -u berth -- test -r "$BERTH_HOME/manage.py" -a -x "$VENV/bin/python"; then
  say "the berth user cannot read $BERTH_HOME or $VENV: put the checkout somewhere world-readable (e.g. /opt/berth)"
  exit 1
fi
systemctl enable --now redis-server.service >/dev/null

# Prepared here once, so that the first administrator's password is shown in this terminal.
install -d -m 0750 -o berth -g berth "$DATA_DIR"
cd "$BERTH_HOME"
"$VENV/bin/python" manage.py migrate --noinput
"$VENV/bin/python" manage.py collectstatic --noinput --verbosity 0
"$VENV/bin/python" manage.py bootstrap
# beat runs as berth and reads the keys; the processes that run as root read anything.
chown berth:berth "$DATA_DIR" "$DATA_DIR"/secret_key "$DATA_DIR"/encryption_key 2>/dev/null || true

units=()
render_units "$UNIT_DIR" "$DATA_DIR"
for unit in "$BERTH_HOME"/deploy/systemd/*.service "$BERTH_HOME"/deploy/systemd/*.target; do
  [ -e "$unit" ] && units+=("$(basename "$unit")")
done
say "installed ${units[*]} in $UNIT_DIR"
systemctl daemon-reload
systemctl enable "${units[@]}" >/dev/null
systemctl restart berth.target
say "Berth is starting on http://${BERTH_HOST:-127.0.0.1}:${BERTH_PORT:-8000}/  (systemctl status berth.target)"
