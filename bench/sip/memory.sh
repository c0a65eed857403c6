#!/usr/bin/env bash
# Memory per SIP registration and per presence subscription in a release tandem: its resident
# set (/proc/PID/status VmRSS) before and after 10,000 registrations (USERS users × ENDPOINTS
# endpoints: one SIPp per endpoint, each on its own port, registering every user) and after
# 10,000 presence subscriptions (WATCHERS watchers × TARGETS presentities, held open), each read
# once the registrar's 5 s transaction linger has passed. Loopback only; bounded; stops by itself.
#
#   bench/sip/memory.sh        (needs sipp; TANDEM_BIN defaults to the release build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
TANDEM_BIN=${TANDEM_BIN:-/root/.cache/tandem-target/release/tandem}
USERS=${USERS:-2000}
ENDPOINTS=${ENDPOINTS:-5}
WATCHERS=${WATCHERS:-100}
TARGETS=${TARGETS:-100}
PASSWORD="Bench-Pass-2026"
[ -x "$TANDEM_BIN" ] || { echo "no tandem binary at $TANDEM_BIN" >&2; exit 1; }
command -v sipp >/dev/null || { echo "sipp is missing: scripts/install-sip-peers.sh" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-sip-memory.XXXXXX")
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
TOML
TANDEM_DEMO_PASSWORD=$PASSWORD timeout -k 5 1200 "$TANDEM_BIN" up --config "$work/tandem.toml" >"$work/up.log" 2>&1 &
pid=$!
for _ in $(seq 100); do "$TANDEM_BIN" status --data-dir "$work/data" --json >/dev/null 2>&1 && break; sleep 0.2; done
user() { printf 'user%04d' "$1"; }
{ echo "name,display_name,sip_address,primary_smtp_address,password"
  for ((i = 0; i < USERS; i++)); do echo "$(user $i),Bench $(user $i),,,$PASSWORD"; done; } > "$work/users.csv"
log "importing $USERS users"
"$TANDEM_BIN" user import --csv "$work/users.csv" --data-dir "$work/data" 2>/dev/null
# $pid is `timeout`; the server is its child.
tpid=$(pgrep -P "$pid" | head -n 1)
rss() { awk '/VmRSS/{print $2}' "/proc/$tpid/status"; }
sleep 6; base=$(rss)
{ echo SEQUENTIAL; for ((i = 0; i < USERS; i++)); do u=$(user $i); echo "$u;[authentication username=$u password=$PASSWORD];$u"; done; } > "$work/reg.csv"
log "registering $USERS users from $ENDPOINTS endpoints each"
for ((e = 0; e < ENDPOINTS; e++)); do
  read -r p <<<"$(ports 1)"
  timeout -k 5 120 sipp -sf "$here/scenarios/register_digest.xml" -inf "$work/reg.csv" -key expires 3600 \
    -m "$USERS" -r 1000 -l 500 -p "$p" -i 127.0.0.1 "127.0.0.1:$sip" -nostdin -timeout 100 >/dev/null 2>&1 || true
done
sleep 6
registrations=$("$TANDEM_BIN" cs get-registrations --data-dir "$work/data" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
after_reg=$(rss)
{ echo SEQUENTIAL; for ((w = 0; w < WATCHERS; w++)); do for ((t = 0; t < TARGETS; t++)); do
    u=$(user $w); echo "$u;[authentication username=$u password=$PASSWORD];$(user $((WATCHERS + t)))"; done; done; } > "$work/sub.csv"
log "holding $((WATCHERS * TARGETS)) presence subscriptions"
read -r p <<<"$(ports 1)"
timeout -k 5 300 sipp -sf "$here/scenarios/subscribe_hold.xml" -inf "$work/sub.csv" -m $((WATCHERS * TARGETS)) -r 500 -l 1000 \
  -p "$p" -i 127.0.0.1 "127.0.0.1:$sip" -aa -nostdin -timeout 200 >/dev/null 2>&1 || true
sleep 6
subs=$(curl -s --cacert "$work/data/pki/ca.pem" "https://127.0.0.1:$fe/metrics" | awk '/^tandem_sip_subscriptions /{print $2}')
after_sub=$(rss)
per_reg=$(( (after_reg - base) * 1024 / (registrations > 0 ? registrations : 1) ))
per_sub=$(( (after_sub - after_reg) * 1024 / (${subs%.*} > 0 ? ${subs%.*} : 1) ))
cat <<OUT
| What | Count | RSS after (KiB) | Bytes each (RSS delta) |
|---|---:|---:|---:|
| baseline (started, $USERS users imported) | — | $base | — |
| registrations | $registrations | $after_reg | $per_reg |
| presence subscriptions | ${subs%.*} | $after_sub | $per_sub |
OUT
