#!/usr/bin/env bash
# Soak: mixed SIP and EWS load against a release `tandem up` for a long time, watching memory.
#
#   bench/soak/run.sh [--minutes 30] [--register-rate R] [--message-rate R] [--ews-rate R]
#                     [--max-growth-mib 64]
#
# Load, all at once, for the whole run, over loopback:
#   - SIPp REGISTER with digest (register_digest.xml), --register-rate calls/s, refreshing the
#     bindings of 10 users from one port;
#   - SIPp MESSAGE with proxy digest (message.xml) between 10 pairs of users, relayed to a SIPp
#     UAS that answers 200 (message_uas.xml), --message-rate calls/s. The UAS keeps each answered
#     transaction for 32 s (timer J, 64·T1) so that it answers tandem's retransmissions again, as
#     RFC 3261 §17.2.2 asks: otherwise one lost 200 on a loaded machine becomes a 408;
#   - EWS CreateItem and FindItem (first page of 100) taking turns, --ews-rate requests/s in all
#     from 8 clients (bench/soak/ews_load.py).
# Default rates: half the maximum measured for each kind alone (docs/BENCHMARKS.md: REGISTER
# 8,000/s, MESSAGE 4,000/s, CreateItem 797/s with 8 clients), divided by three because the three
# kinds share the machine: REGISTER 1,333/s, MESSAGE 667/s, EWS 133/s. Lower them on a machine
# shared with other work.
#
# tandem's RSS (/proc/PID/status VmRSS) is sampled every 10 s. "Start" is the sample at the end
# of the warm-up (the first tenth of the run, at least 10 s and at most 3 minutes: caches and
# pools fill); the run fails (exit 1) when RSS at the end exceeds start by more than
# --max-growth-mib, or when any SIP call or EWS request failed. Prints a summary; the logs stay
# in the work directory it names. The summary also gives the load average, the datagrams the
# kernel dropped at each UDP socket for a full receive buffer (tandem's SIP socket, the UAS, the
# SIPp clients: /proc/net/udp), which tells a loaded machine from a server that loses answers,
# and tandem's anonymous memory (smaps_rollup) at the start and the end.
#
# Environment: TANDEM_BIN (default: the release build, built here when missing), PYTHON (a
# Python with `requests`; default: $TANDEM_TEST_VENV/bin/python, .venv/bin/python, python3).
# Needs sipp. Not part of CI: it runs for as long as it is told.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scen="$repo/bench/sip/scenarios"
minutes=30 register_rate=1333 message_rate=667 ews_rate=133 max_growth_mib=64
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --register-rate) register_rate=$2; shift 2 ;;
    --message-rate) message_rate=$2; shift 2 ;;
    --ews-rate) ews_rate=$2; shift 2 ;;
    --max-growth-mib) max_growth_mib=$2; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "usage: bench/soak/run.sh [--minutes N] [--register-rate R] [--message-rate R] [--ews-rate R] [--max-growth-mib N]" >&2; exit 2 ;;
  esac
done
seconds=$(python3 -c "import sys; print(max(10, int(float(sys.argv[1]) * 60)))" "$minutes")
warmup=$(( seconds / 10 )); [ "$warmup" -lt 10 ] && warmup=10; [ "$warmup" -gt 180 ] && warmup=180

command -v sipp >/dev/null || { echo "sipp is missing (apt-get install sip-tester)" >&2; exit 1; }
if [ -z "${TANDEM_BIN:-}" ]; then
  (cd "$repo" && cargo build --release --locked -p tandem)
  TANDEM_BIN=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/tandem
fi
if [ -z "${PYTHON:-}" ]; then
  for p in "${TANDEM_TEST_VENV:-/nonexistent}/bin/python" "$repo/.venv/bin/python" python3; do
    if "$p" -c "import requests" 2>/dev/null; then PYTHON=$p; break; fi
  done
fi
"${PYTHON:?no Python with requests; set PYTHON}" -c "import requests" || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-soak.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

free_ports() {  # N distinct ports free for TCP and UDP on 127.0.0.1
  python3 - "$1" <<'PY'
import socket, sys
n, held, out = int(sys.argv[1]), [], []
while len(out) < n:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        held.append(t); continue
    held += [t, u]; out.append(p)
print(" ".join(map(str, out)))
PY
}

# ---- tandem
read -r mbx fe sip tls < <(free_ports 4)
data="$work/data"
PASSWORD="Soak-Pass-2026"
cat > "$work/tandem.toml" <<TOML
[deployment]
domain = "litwareinc.com"
data_dir = "$data"

[mailbox]
https_listen = "127.0.0.1:$mbx"

[frontend]
https_listen = "127.0.0.1:$fe"
sip_udp_listen = "127.0.0.1:$sip"
sip_tcp_listen = "127.0.0.1:$sip"
sip_tls_listen = "127.0.0.1:$tls"
# All SIPp load comes from 127.0.0.1.
sip_requests_per_second_per_source = 0

[hosts]
"mail.litwareinc.com" = "127.0.0.1"
"autodiscover.litwareinc.com" = "127.0.0.1"
"pool.litwareinc.com" = "127.0.0.1"
"sip.litwareinc.com" = "127.0.0.1"
TOML
log "work directory: $work; tandem: $TANDEM_BIN"
TANDEM_DEMO_PASSWORD="$PASSWORD" RUST_LOG=warn "$TANDEM_BIN" up --config "$work/tandem.toml" \
  > "$work/tandem.out" 2> "$work/tandem.err" &
tandem_pid=$!
pids+=("$tandem_pid")
for i in $(seq 1 150); do
  "$TANDEM_BIN" status --data-dir "$data" --json > /dev/null 2>&1 && break
  kill -0 "$tandem_pid" 2>/dev/null || { tail -20 "$work/tandem.err" >&2; exit 1; }
  sleep 0.2
  [ "$i" -eq 150 ] && { echo "tandem did not become ready" >&2; tail -20 "$work/tandem.err" >&2; exit 1; }
done
user() { printf 'soak%02d' "$1"; }
for i in $(seq 0 19); do
  printf '%s\n' "$PASSWORD" | "$TANDEM_BIN" user add "$(user "$i")" --display-name "Soak User $i" \
    --password-stdin --data-dir "$data" > /dev/null
done
row() { printf '%s;[authentication username=%s password=%s];%s\n' "$1" "$1" "$PASSWORD" "$2"; }
{ echo SEQUENTIAL; for i in $(seq 0 9); do row "$(user "$i")" "$(user "$i")"; done; } > "$work/register.csv"
{ echo SEQUENTIAL; for i in $(seq 10 19); do row "$(user "$i")" "$(user "$i")"; done; } > "$work/targets.csv"
{ echo SEQUENTIAL; for i in $(seq 0 9); do row "$(user "$i")" "$(user $((i + 10)))"; done; } > "$work/message.csv"

sipp_run() {  # name scenario rate calls port extra...: runs SIPp in $work/NAME
  local name=$1 sf=$2 rate=$3 calls=$4 port=$5; shift 5
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec sipp -sf "$scen/$sf" -r "$rate" -m "$calls" -l $(( rate * 4 + 100 )) -nostdin \
      -trace_screen -screen_file screen.log -trace_err -error_file errors.log -timeout "$(( seconds + 120 ))s" \
      -timeout_error -i 127.0.0.1 -p "$port" -mp "$(free_ports 1)" "$@" "127.0.0.1:$sip" > out.log 2>&1)
}
sipp_counts() {  # name: "successful failed" from SIPp's final screen
  python3 - "$work/$1/screen.log" <<'PY'
import re, sys
try:
    screen = open(sys.argv[1], errors="replace").read()
except FileNotFoundError:
    screen = ""
def counter(label):
    m = re.findall(rf"^\s*{label}\s*\|\s*\d+\s*\|\s*(\d+)", screen, re.M)
    return int(m[-1]) if m else 0
print(counter("Successful call"), counter("Failed call"))
PY
}

# The MESSAGE targets register at the port of a UAS that answers every MESSAGE with 200.
read -r reg_port uas_port msg_port < <(free_ports 3)
sipp_run targets register_digest.xml 50 10 "$uas_port" -inf "$work/targets.csv" -key expires 7200
read -r ok failed < <(sipp_counts targets)
[ "$ok" -eq 10 ] || { echo "registering the MESSAGE targets failed ($ok ok, $failed failed)" >&2; exit 1; }
# The shared UAS scenario, held 32 s after its answer (see the top).
sed 's|</scenario>|  <pause milliseconds="32000"/>\n</scenario>|' "$scen/message_uas.xml" > "$work/message_uas.xml"
(cd "$work" && mkdir -p uas && cd uas && exec sipp -sf "$work/message_uas.xml" -p "$uas_port" -i 127.0.0.1 -nostdin \
    -trace_err -error_file errors.log -trace_screen -screen_file screen.log "127.0.0.1:$sip" > out.log 2>&1) &
uas_pid=$!
pids+=("$uas_pid")
sleep 0.5

# ---- load and sampling
log "load for ${seconds}s: REGISTER ${register_rate}/s, MESSAGE ${message_rate}/s, EWS ${ews_rate}/s (warm-up ${warmup}s)"
sipp_run register register_digest.xml "$register_rate" $(( register_rate * seconds )) "$reg_port" \
  -inf "$work/register.csv" -key expires 3600 &
reg_pid=$!; pids+=("$reg_pid")
sipp_run message message.xml "$message_rate" $(( message_rate * seconds )) "$msg_port" -inf "$work/message.csv" &
msg_pid=$!; pids+=("$msg_pid")
ews_url="https://127.0.0.1:$mbx/EWS/Exchange.asmx"
"$PYTHON" "$here/ews_load.py" --url "$ews_url" --ca "$data/pki/ca.pem" --user alice@litwareinc.com \
  --password "$PASSWORD" --rate "$ews_rate" --seconds "$seconds" > "$work/ews.json" 2> "$work/ews.err" &
ews_pid=$!; pids+=("$ews_pid")

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$tandem_pid/status"; }
anon_kib() { awk '/^Anonymous:/ {print $2}' "/proc/$tandem_pid/smaps_rollup" 2>/dev/null || echo 0; }
udp_drops() {  # port: datagrams dropped at the UDP sockets bound to 127.0.0.1:port
  awk -v p="$(printf '0100007F:%04X' "$1")" '$2 == p {d += $NF} END {print d + 0}' /proc/net/udp
}
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load_avg)
anon_start=""
# Counters vanish with their socket (a SIPp client exits once its calls are made): keep the last
# value seen for each.
drops_t=0 drops_u=0 drops_r=0 drops_m=0
sample_drops() {
  local d
  d=$(udp_drops "$sip"); [ "$d" -gt "$drops_t" ] && drops_t=$d
  d=$(udp_drops "$uas_port"); [ "$d" -gt "$drops_u" ] && drops_u=$d
  d=$(udp_drops "$reg_port"); [ "$d" -gt "$drops_r" ] && drops_r=$d
  d=$(udp_drops "$msg_port"); [ "$d" -gt "$drops_m" ] && drops_m=$d
  return 0
}
: > "$work/rss.csv"
t0=$(date +%s)
while :; do
  now=$(( $(date +%s) - t0 ))
  kill -0 "$tandem_pid" 2>/dev/null || { echo "tandem exited during the soak" >&2; tail -20 "$work/tandem.err" >&2; exit 1; }
  echo "$now,$(rss_kib)" >> "$work/rss.csv"
  [ -z "$anon_start" ] && [ "$now" -ge "$warmup" ] && anon_start=$(anon_kib)
  sample_drops
  [ "$now" -ge "$seconds" ] && break
  sleep 10
done
sample_drops
drops="$drops_t $drops_u $(( drops_r + drops_m ))"
anon_end=$(anon_kib)
load_end=$(load_avg)
wait "$ews_pid" || true
# SIPp ends once its calls are made (at most a little after the duration).
for p in "$reg_pid" "$msg_pid"; do
  for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
  kill -INT "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
done
echo "$(( $(date +%s) - t0 )),$(rss_kib)" >> "$work/rss.csv"

read -r reg_ok reg_failed < <(sipp_counts register)
read -r msg_ok msg_failed < <(sipp_counts message)
python3 - "$work" "$warmup" "$max_growth_mib" "$reg_ok" "$reg_failed" "$msg_ok" "$msg_failed" \
  "$(( register_rate * seconds ))" "$(( message_rate * seconds ))" "$seconds" "$drops" "$anon_start $anon_end" \
  "$load_start" "$load_end" <<'PY'
import json, sys
work, warmup, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
reg_ok, reg_failed, msg_ok, msg_failed, reg_calls, msg_calls, seconds = map(int, sys.argv[4:11])
drops_tandem, drops_uas, drops_clients = map(int, sys.argv[11].split())
anon_start, anon_end = (int(x or 0) for x in (sys.argv[12].split() + ["0", "0"])[:2])
load_start, load_end = sys.argv[13], sys.argv[14]
rows = [tuple(map(int, l.split(","))) for l in open(f"{work}/rss.csv") if l.strip()]
start = next((kib for t, kib in rows if t >= warmup), rows[-1][1])
first, end, peak = rows[0][1], rows[-1][1], max(kib for _, kib in rows)
mib = lambda k: k / 1024
try:
    ews = json.load(open(f"{work}/ews.json"))
except (OSError, ValueError):
    ews = {"requests": 0, "errors": 1, "first_errors": [open(f"{work}/ews.err").read()[-500:]]}
# Calls SIPp never finished count as failures.
reg_failed += max(0, reg_calls - reg_ok - reg_failed)
msg_failed += max(0, msg_calls - msg_ok - msg_failed)
growth = mib(end - start)
errors = reg_failed + msg_failed + ews["errors"]
print(f"duration {seconds} s; RSS MiB: first {mib(first):.1f}, start (after {warmup} s warm-up) {mib(start):.1f}, "
      f"end {mib(end):.1f}, max {mib(peak):.1f}; growth {growth:+.1f} MiB (limit {limit:g})")
print(f"SIP REGISTER: {reg_ok} ok, {reg_failed} failed; MESSAGE: {msg_ok} ok, {msg_failed} failed")
print(f"EWS: {ews['requests']} requests ({ews.get('achieved_per_s', '?')}/s), {ews['errors']} errors, "
      f"p50 {ews.get('p50_ms', '?')} ms, p99 {ews.get('p99_ms', '?')} ms")
print(f"UDP datagrams dropped (receive buffer full): tandem {drops_tandem}, UAS {drops_uas}, SIPp clients {drops_clients}")
print(f"tandem anonymous memory MiB: start {mib(anon_start):.1f}, end {mib(anon_end):.1f}; "
      f"load average (1/5/15 min): start {load_start}, end {load_end}")
for e in ews.get("first_errors", []):
    print(f"  EWS error: {e}")
ok = errors == 0 and growth <= limit
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
