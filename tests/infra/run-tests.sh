#!/usr/bin/env bash
# `make test`: install what the suite needs, start the real components, lint, run pytest, and
# stop what this script started (and only that).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
runtime=$root/.test-runtime
mkdir -p "$runtime"

bash tests/infra/system-deps.sh
bash tests/infra/node-deps.sh
bash tests/infra/venv.sh python3 .venv
# The PyInstaller bundle (`make bundle`), which tests run as users run the downloaded app. It builds in the
# background while the suite runs (the tests that need it run last, and wait for it: SPARECYCLES_TEST_BUNDLE_STATUS
# holds the build's exit code once it is done).
rm -f "$runtime/bundle.status"
(bash installer/pyinstaller/build.sh >"$runtime/bundle.log" 2>&1; echo $? >"$runtime/bundle.status") &
bundle_pid=$!
SPARECYCLES_TEST_BUNDLE=$root/dist/sparecycles/sparecycles
SPARECYCLES_TEST_BUNDLE_STATUS=$runtime/bundle.status
SPARECYCLES_TEST_BUNDLE_LOG=$runtime/bundle.log
export SPARECYCLES_TEST_BUNDLE SPARECYCLES_TEST_BUNDLE_STATUS SPARECYCLES_TEST_BUNDLE_LOG
bash tests/infra/lint.sh .venv

started_dockerd=""
started_postgres=""
xvfb_pid=""
teardown() {
  [[ -n $xvfb_pid ]] && kill "$xvfb_pid" 2>/dev/null || true
  kill "$bundle_pid" 2>/dev/null || true
  if [[ -n $started_postgres ]]; then
    echo "Stopping the PostgreSQL cluster this run started"
    pg_ctlcluster $started_postgres stop || true
  fi
  if [[ -n $started_dockerd ]]; then
    echo "Stopping the Docker engine this run started"
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap teardown EXIT

docker_ready() { timeout 5 /usr/bin/docker version >/dev/null 2>&1; }
if ! docker_ready; then
  echo "Starting the Docker engine (dockerd --iptables=false)"
  dockerd --iptables=false >"$runtime/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 120); do docker_ready && break; sleep 0.5; done
  docker_ready || { echo "dockerd did not start; its log:" >&2; tail -30 "$runtime/dockerd.log" >&2; exit 1; }
fi

# PostgreSQL (Debian's cluster) for the marketplace's tests on it; each test makes its own database.
cluster=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR == 1 {print $1, $2, $3, $4}')
if [[ -n $cluster ]]; then
  read -r pg_version pg_name pg_port pg_status <<<"$cluster"
  if [[ $pg_status != online* ]]; then
    pg_ctlcluster "$pg_version" "$pg_name" start
    started_postgres="$pg_version $pg_name"
  fi
  role_sql=$(mktemp /tmp/sparecycles-role-XXXXXX.sql)
  cat >"$role_sql" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sparecycles_test') THEN
    CREATE ROLE sparecycles_test LOGIN CREATEDB PASSWORD 'sparecycles-test';
  END IF;
END $$;
-- Dropping a test's database WITH (FORCE) must end an autovacuum worker that started on it meanwhile.
GRANT pg_signal_backend TO sparecycles_test;
SQL
  chmod 644 "$role_sql"
  su postgres -c "psql -q -p $pg_port -f $role_sql" >/dev/null
  rm -f "$role_sql"
  export SPARECYCLES_TEST_POSTGRES="postgresql+psycopg://sparecycles_test:sparecycles-test@127.0.0.1:$pg_port/postgres"
fi

# anvil (a local EVM node) for the wallet's chain tests, which start their own on a free loopback port;
# set here, a missing binary fails those tests instead of skipping them.
SPARECYCLES_TEST_ANVIL=$(bash tests/infra/anvil-path.sh)
export SPARECYCLES_TEST_ANVIL
# promtool (from Debian's prometheus package, unpacked, not installed) checks the metrics' exposition.
SPARECYCLES_TEST_PROMTOOL=$(bash tests/infra/promtool.sh)
export SPARECYCLES_TEST_PROMTOOL

# An X server for the GUI and input-idle tests; tests set DISPLAY themselves where they need it.
exec 3>"$runtime/display"
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp >"$runtime/xvfb.log" 2>&1 &
xvfb_pid=$!
exec 3>&-
for _ in $(seq 1 100); do [[ -s $runtime/display ]] && break; sleep 0.1; done
SPARECYCLES_TEST_DISPLAY=":$(head -1 "$runtime/display")"
export SPARECYCLES_TEST_DISPLAY
unset DISPLAY WAYLAND_DISPLAY

# pytest inside a D-Bus session with an unlocked Secret Service (gnome-keyring) whose keyrings live in
# this run's own folder: a "login" collection created with a password (an empty one makes gnome-keyring
# prompt, which fails without a display), so that keys can be stored, never touching the user's keyrings.
rm -rf "$runtime/xdg-data" && mkdir -p "$runtime/xdg-data"
set +e
XDG_DATA_HOME="$runtime/xdg-data" dbus-run-session -- bash -c '
  printf "sparecycles-test-session" | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
  exec .venv/bin/python -m pytest "$@"
' pytest ${PYTEST_ARGS:---durations=25}
rc=$?
set -e
# The bundle must build even where no selected test ran it.
wait "$bundle_pid" 2>/dev/null || true
if [[ $(cat "$runtime/bundle.status" 2>/dev/null) != 0 ]]; then
  echo "The bundle did not build (installer/pyinstaller/build.sh):"
  tail -30 "$runtime/bundle.log"
  [[ $rc == 0 ]] && rc=1
fi
exit $rc
