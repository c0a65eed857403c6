#!/usr/bin/env bash
# End-to-end presence benchmark (issue 11): one `tandem up` (Mailbox and Front End in one process)
# on free loopback ports in a fresh directory, USERS users imported, then bench/presence/watchers.py
# (an independent SIP/EWS client: one UDP socket for every watcher dialog, EWS over HTTPS) holds
# USERS × WATCHERS presence subscriptions, books one meeting per user through EWS CreateItem at
# RATE per second and times CreateItem response → each watcher's NOTIFY with the meeting; also
# the process's RSS and idle CPU and the Front End's GetStreamingEvents connections. Prints JSON.
#
#   USERS=1000 WATCHERS=5 RATE=10 bench/presence/e2e.sh
#   USERS=20000 WATCHERS=1 MEETINGS=0 bench/presence/e2e.sh      (connections, memory, CPU)
#
# TANDEM_BIN defaults to $CARGO_TARGET_DIR/release/tandem (build it with
# `cargo build --release -p tandem`). Figures go to docs/BENCHMARKS.md by hand.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TANDEM_BIN=${TANDEM_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/release/tandem}
USERS=${USERS:-1000}
WATCHERS=${WATCHERS:-5}
RATE=${RATE:-10}
MEETINGS=${MEETINGS:--1}
IDLE=${IDLE:-20}
PY=${PYTHON:-python3}
PASSWORD="Bench-Pass-2026"
[ -x "$TANDEM_BIN" ] || { echo "no tandem binary at $TANDEM_BIN" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true
work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-presence-e2e.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
ports() { python3 -c 'import socket,sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
[x.bind(("127.0.0.1",0)) for x in s]; print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"; }
read -r mbx fe sip tls <<<"$(ports 4)"
cat > "$work/tandem.toml" <<TOML
[deployment]
domain = "litwareinc.com"
data_dir = "$work/data"
[mailbox]
https_listen = "127.0.0.1:$mbx"
[frontend]
https_listen = "127.0.0.1:$fe"
sip_udp_listen = "127.0.0.1:$sip"
sip_tcp_listen = "127.0.0.1:$sip"
sip_tls_listen = "127.0.0.1:$tls"
sip_requests_per_second_per_source = 0
[hosts]
"mail.litwareinc.com" = "127.0.0.1"
"autodiscover.litwareinc.com" = "127.0.0.1"
"pool.litwareinc.com" = "127.0.0.1"
"sip.litwareinc.com" = "127.0.0.1"
TOML
TANDEM_DEMO_PASSWORD=$PASSWORD "$TANDEM_BIN" up --config "$work/tandem.toml" >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 300); do "$TANDEM_BIN" status --data-dir "$work/data" --json >/dev/null 2>&1 && break; sleep 0.2; done
{ echo "name,display_name,sip_address,primary_smtp_address,password"
  for ((i = 0; i < USERS; i++)); do printf 'user%04d,Bench user%04d,,,%s\n' "$i" "$i" "$PASSWORD"; done; } > "$work/users.csv"
log "importing $USERS users"
"$TANDEM_BIN" user import --csv "$work/users.csv" --data-dir "$work/data" 2>/dev/null
# The Front End trusts the Mailbox once their S2S trust is set up (integration status).
for _ in $(seq 300); do
  if grep -q "Integration setup" "$work/up.log" &&
    "$TANDEM_BIN" integration status --data-dir "$work/data" --json 2>/dev/null > "$work/integration.json" &&
    grep -q '"ok": *true' "$work/integration.json"; then
    break
  fi
  sleep 0.5
done
grep -q '"ok": *true' "$work/integration.json" || { echo "the integration setup did not finish" >&2; cat "$work/integration.json" >&2; exit 1; }
ca="$work/data/pki/ca.pem"
log "running watchers.py: $USERS users × $WATCHERS watchers, meetings at $RATE/s"
"$PY" "$here/watchers.py" --sip "127.0.0.1:$sip" --ews "https://127.0.0.1:$mbx/EWS/Exchange.asmx" \
  --metrics "https://127.0.0.1:$fe/metrics" --ca "$ca" --password "$PASSWORD" --pid "$pid" \
  --users "$USERS" --watchers "$WATCHERS" --rate "$RATE" --meetings "$MEETINGS" --idle "$IDLE"
