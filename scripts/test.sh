#!/usr/bin/env bash
# The one test command: installs what the tests need when missing, then runs everything —
# formatting and lints, the cargo tests (the store batteries run on SQLite and PostgreSQL),
# and the pytest interop suites that drive real clients against a running tandem.
#
#   scripts/test.sh            everything
#   scripts/test.sh --no-lint  skip rustfmt/clippy (quicker local loop)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
lint=1
for arg in "$@"; do
  case "$arg" in
    --no-lint) lint=0 ;;
    *) echo "usage: scripts/test.sh [--no-lint]" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---- system packages the tests use ----
need_pkgs=()
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v pg_isready >/dev/null || need_pkgs+=(postgresql postgresql-client)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
command -v cc >/dev/null || need_pkgs+=(gcc)
# DavMail (EWS ↔ IMAP/SMTP/CalDAV gateway) for tests/interop/test_davmail.py; keytool comes with its JRE.
command -v davmail-server >/dev/null || need_pkgs+=(davmail-server)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need_pkgs+=(dnsmasq-base)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
  if [[ " ${need_pkgs[*]} " == *" davmail-server "* ]]; then
    # The package enables DavMail as a system service whose defaults accept remote connections;
    # the tests start their own, so the service is stopped and disabled again.
    as_root systemctl disable --now davmail-server >/dev/null 2>&1 ||
      { as_root service davmail-server stop >/dev/null 2>&1; as_root update-rc.d davmail-server disable >/dev/null 2>&1; } ||
      true
  fi
fi

# ---- SIP peers (SIPp, sipsak, baresip, linphonec) ----
"$here/scripts/install-sip-peers.sh"

# ---- PostgreSQL for the store batteries ----
pg_url=${TANDEM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_ok() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }
if ! pg_ok "$pg_url"; then
  say "PostgreSQL at $pg_url is not answering; starting one"
  for v in $(ls /etc/postgresql 2>/dev/null); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
  done
  sleep 1
  if ! pg_ok "$pg_url"; then
    # A private cluster with trust authentication on its own port, owned by the postgres user.
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pgdata=${TMPDIR:-/tmp}/tandem-test-pg
    if [ ! -f "$pgdata/PG_VERSION" ]; then
      as_root mkdir -p "$pgdata" && as_root chown postgres "$pgdata"
      as_root runuser -u postgres -- "$bin/initdb" -D "$pgdata" -A trust -U postgres >/dev/null
    fi
    as_root runuser -u postgres -- "$bin/pg_ctl" -D "$pgdata" -o "-p 55432 -k /tmp -c listen_addresses=127.0.0.1" -l "$pgdata/log" -w start >/dev/null || true
    pg_url=postgres://postgres@127.0.0.1:55432/postgres
    pg_ok "$pg_url" || { echo "cannot reach or start PostgreSQL; see $pgdata/log" >&2; exit 1; }
  fi
fi
export TANDEM_TEST_POSTGRES_URL=$pg_url

# ---- Python peers ----
venv=${TANDEM_TEST_VENV:-$here/.venv}
if [ ! -x "$venv/bin/python" ]; then
  say "creating the Python environment for interop tests in $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/requirements.txt

# ---- Rust ----
if [ "$lint" -eq 1 ]; then
  say "rustfmt"
  cargo fmt --all -- --check
  say "clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
say "cargo build"
cargo build --locked -p tandem
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export TANDEM_BIN="$target_dir/debug/tandem"

say "cargo test (store batteries on SQLite and PostgreSQL at $TANDEM_TEST_POSTGRES_URL)"
cargo test --workspace --locked

say "interop suites (tests/interop)"
"$venv/bin/pytest" tests/interop -q
