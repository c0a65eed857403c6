#!/usr/bin/env bash
# The one test command: installs what the tests need when missing, then runs everything —
# formatting and lints, the cargo tests (the store batteries run on SQLite and PostgreSQL),
# and the pytest interop suites that drive real clients against a running tandem.
#
#   scripts/test.sh            everything
#   scripts/test.sh --no-lint  skip rustfmt/clippy (quicker local loop)
#   scripts/test.sh --no-fuzz  skip the fuzz smoke run (scripts/fuzz.sh, 10 s per target)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
lint=1
fuzz=1
for arg in "$@"; do
  case "$arg" in
    --no-lint) lint=0 ;;
    --no-fuzz) fuzz=0 ;;
    *) echo "usage: scripts/test.sh [--no-lint] [--no-fuzz]" >&2; exit 2 ;;
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
command -v c++ >/dev/null || need_pkgs+=(g++) # libFuzzer, built by the fuzz targets
# DavMail (EWS ↔ IMAP/SMTP/CalDAV gateway) for tests/interop/test_davmail.py; keytool comes with its JRE.
command -v davmail-server >/dev/null || need_pkgs+=(davmail-server)
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need_pkgs+=(dnsmasq-base)
# Node and npm for the ews-javascript-api flows (tests/interop/ews-js).
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  # Packages' own services (DavMail's listens with remote connections allowed by its packaged
  # defaults) must not start: the suites run private instances. policy-rc.d answering 101 tells
  # invoke-rc.d and deb-systemd-invoke not to start anything during this install.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" || {
    [ "$own_policy" -eq 0 ] || as_root rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ "$own_policy" -eq 0 ] || as_root rm -f /usr/sbin/policy-rc.d
fi
# Keep DavMail's system service disabled and stopped wherever it was installed from (the suite
# starts its own DavMail on loopback with its own settings).
if dpkg-query -W -f='${Status}' davmail-server 2>/dev/null | grep -q 'install ok installed'; then
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now davmail-server.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/davmail-server ]; then
    as_root /etc/init.d/davmail-server stop >/dev/null 2>&1 || true
    ! command -v update-rc.d >/dev/null || as_root update-rc.d davmail-server disable >/dev/null 2>&1 || true
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

# ---- Node peers (ews-javascript-api, for tests/interop/test_ews_js.py) ----
# Node and npm come with the system packages above; the pinned packages come from the lock file
# (which records no registry addresses), only when node_modules is missing or older than it.
ews_js=tests/interop/ews-js
if [ -f "$ews_js/package-lock.json" ]; then
  if [ ! -f "$ews_js/node_modules/.package-lock.json" ] || [ "$ews_js/package-lock.json" -nt "$ews_js/node_modules/.package-lock.json" ]; then
    say "installing the Node packages of $ews_js (npm ci)"
    (cd "$ews_js" && npm ci --no-audit --no-fund)
  fi
elif [ ! -d "$ews_js/node_modules" ] || [ "$ews_js/package.json" -nt "$ews_js/node_modules" ]; then
  say "installing the Node packages of $ews_js (npm install)"
  (cd "$ews_js" && npm install --no-audit --no-fund --omit-lockfile-registry-resolved)
fi

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

if [ "$fuzz" -eq 1 ]; then
  say "fuzz smoke run (every target in fuzz/, 10 s each)"
  scripts/fuzz.sh --seconds 10
fi

say "interop suites (tests/interop)"
"$venv/bin/pytest" tests/interop -q
