#!/usr/bin/env bash
# SIP benchmark: the same SIPp scenarios against Kamailio (bench/sip/kamailio.cfg) and against
# Tandem's Front End, on this machine, in one run, over loopback only:
#   REGISTER with digest (register_digest.xml), MESSAGE between registered users (message.xml
#   → message_uas.xml), SUBSCRIBE + NOTIFY (subscribe_notify.xml).
# For each: the highest sustained rate (calls/s), found by stepping the rate up (each step at most
# 10 s): a step passes with zero failed calls and a p99 response time under P99_LIMIT_MS (a
# server that queues answers late, and SIPp's retransmissions still complete the calls; that
# is overload, not throughput). A step with ≤ 1% failures is run once more and must then have
# none. Reported: that rate, the p99 response time at it (SIPp -trace_rtt), and the
# Tandem/Kamailio ratios. Prints a Markdown table and writes bench/sip/results.md.
#
#   bench/sip/run.sh                 full run (≈ 10 min at most)
#   bench/sip/run.sh --quick         3 short steps per scenario (smoke test of the harness)
#   bench/sip/run.sh --kamailio-only only the Kamailio side (no tandem binary needed)
#
# Environment:
#   TANDEM_BIN      tandem binary (default /root/.cache/tandem-target/release/tandem)
#   STEP_SECONDS    seconds per rate step (default 5, at most 10)
#   RATES           rate steps in calls/s (default "100 200 400 700 1000 1500 2000 3000 4000 6000 8000")
#   MAX_RATE        cap on the rate steps (default 8000)
#   P99_LIMIT_MS    a step passes only with p99 below this (default 200; SIPp retransmits at 500)
#   BENCH_USERS     bench users user0000.. (default 200, even, at least 20)
# Needs: sipp, kamailio (+ presence modules): scripts/install-sip-peers.sh --bench
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scen="$here/scenarios"
quick=0
kam_only=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --kamailio-only) kam_only=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "usage: bench/sip/run.sh [--quick] [--kamailio-only]" >&2; exit 2 ;;
  esac
done

TANDEM_BIN=${TANDEM_BIN:-/root/.cache/tandem-target/release/tandem}
STEP_SECONDS=${STEP_SECONDS:-5}
[ "$STEP_SECONDS" -gt 10 ] && STEP_SECONDS=10
[ "$STEP_SECONDS" -lt 1 ] && STEP_SECONDS=1
MAX_RATE=${MAX_RATE:-8000}
RATES=${RATES:-"100 200 400 700 1000 1500 2000 3000 4000 6000 8000"}
P99_LIMIT_MS=${P99_LIMIT_MS:-200}
if [ "$quick" -eq 1 ]; then RATES=${QUICK_RATES:-"50 100 200"}; STEP_SECONDS=2; fi
BENCH_USERS=${BENCH_USERS:-200}
[ "$BENCH_USERS" -lt 20 ] && BENCH_USERS=20
half=$((BENCH_USERS / 2))
PASSWORD="Bench-Pass-2026"   # same for every user on both servers
DEADLINE=$(( $(date +%s) + 1500 ))  # no new step after 25 minutes: the run stops by itself

hint="install with: scripts/install-sip-peers.sh --bench"
command -v sipp >/dev/null || { echo "sipp is missing; $hint" >&2; exit 1; }
KAMAILIO=$(command -v kamailio || echo /usr/sbin/kamailio)
[ -x "$KAMAILIO" ] || { echo "kamailio is missing; $hint" >&2; exit 1; }
if [ "$kam_only" -eq 0 ] && [ ! -x "$TANDEM_BIN" ]; then
  echo "no tandem binary at $TANDEM_BIN (build: cargo build --release -p tandem, or set TANDEM_BIN)" >&2; exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-sip-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  sleep 1
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

free_ports() {  # N distinct ports free for TCP and UDP on 127.0.0.1
  python3 - "$1" <<'EOF'
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
EOF
}

# ---- injection files: "user;[authentication username=user password=P];target"
row() { printf '%s;[authentication username=%s password=%s];%s\n' "$1" "$1" "$PASSWORD" "$2"; }
user() { printf 'user%04d' "$1"; }
{ echo SEQUENTIAL; for ((i = 0; i < half; i++)); do row "$(user $i)" "$(user $i)"; done; } > "$work/register.csv"
{ echo SEQUENTIAL; for ((i = half; i < BENCH_USERS; i++)); do row "$(user $i)" "$(user $i)"; done; } > "$work/targets.csv"
{ echo SEQUENTIAL; for ((i = 0; i < half; i++)); do row "$(user $i)" "$(user $((i + half)))"; done; } > "$work/message.csv"
{ echo SEQUENTIAL; for ((i = 0; i < half; i++)); do row "$(user $i)" "$(user $((i + half)))"; done; } > "$work/subscribe.csv"

# ---- one SIPp step: prints "successful failed p99_ms" (p99 -1 when no sample)
sipp_step() {  # dir scenario remote rate calls extra...
  local dir=$1 sf=$2 remote=$3 rate=$4 calls=$5; shift 5
  mkdir -p "$dir"
  local budget=$((STEP_SECONDS + 15))
  (cd "$dir" && timeout -k 2 $((budget + 5)) sipp -sf "$scen/$sf" -r "$rate" -m "$calls" -l $((rate * 3 + 50)) \
      -nostdin -trace_screen -screen_file screen.log -trace_rtt -rtt_freq 50 -trace_err -error_file errors.log \
      -timeout "${budget}s" -timeout_error -i 127.0.0.1 -p "${SIPP_PORT:-$(free_ports 1)}" \
      "$@" "$remote" > out.log 2>&1) || true
  python3 - "$dir" "$calls" <<'EOF'
import glob, re, sys
d, calls = sys.argv[1], int(sys.argv[2])
screen = open(f"{d}/screen.log", errors="replace").read() if glob.glob(f"{d}/screen.log") else ""
def counter(label):
    m = re.findall(rf"^\s*{label}\s*\|\s*\d+\s*\|\s*(\d+)", screen, re.M)
    return int(m[-1]) if m else 0
ok, failed = counter("Successful call"), counter("Failed call")
if ok + failed < calls:
    failed += calls - ok - failed  # calls that never completed count as failures
vals = []
for f in glob.glob(f"{d}/*_rtt.csv"):
    for line in open(f):
        parts = line.strip().split(";")
        if len(parts) >= 2 and parts[1].replace(".", "", 1).isdigit():
            vals.append(float(parts[1]))
vals.sort()
p99 = vals[min(len(vals) - 1, int(0.99 * len(vals)))] if vals else -1
print(ok, failed, p99)
EOF
}

# ---- step the rate up until the first failure; prints "best_rate p99_at_best"
ramp() {  # label scenario remote extra...
  local label=$1 sf=$2 remote=$3; shift 3
  local best=0 best_p99=-1 rate
  for rate in $RATES; do
    [ "$rate" -gt "$MAX_RATE" ] && break
    if [ "$(date +%s)" -gt "$DEADLINE" ]; then log "time budget spent; stopping the ramp"; break; fi
    local calls=$((rate * STEP_SECONDS))
    read -r ok failed p99 < <(sipp_step "$work/runs/$label-$rate" "$sf" "$remote" "$rate" "$calls" "$@")
    log "$label: $rate/s × ${STEP_SECONDS}s → $ok ok, $failed failed, p99 ${p99} ms"
    # A handful of failures (≤ 1%) can be SIPp's own race when two answers arrive back to back
    # while a call waits to send; such a step is run once more and must then have none.
    if [ "$failed" -gt 0 ] && [ $((failed * 100)) -le "$calls" ]; then
      read -r ok failed p99 < <(sipp_step "$work/runs/$label-$rate-again" "$sf" "$remote" "$rate" "$calls" "$@")
      log "$label: $rate/s again → $ok ok, $failed failed, p99 ${p99} ms"
    fi
    if [ "$failed" -ne 0 ] || [ "$ok" -ne "$calls" ]; then break; fi
    if ! python3 -c "import sys; sys.exit(0 if 0 <= float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$p99" "$P99_LIMIT_MS"; then
      log "$label: p99 ${p99} ms ≥ ${P99_LIMIT_MS} ms at $rate/s: overloaded"
      break
    fi
    best=$rate; best_p99=$p99
  done
  echo "$best $best_p99"
}

# ---- servers
start_kamailio() {  # port
  local port=$1 k="$work/kamailio"
  mkdir -p "$k/db"
  cp /usr/share/kamailio/dbtext/kamailio/{version,presentity,active_watchers,watchers,xcap,pua} "$k/db/"
  "$KAMAILIO" -c -f "$here/kamailio.cfg" -A "SIP_PORT=$port" -A "DB_URL=\"text://$k/db\"" \
      -A "PRES_ADDR=\"sip:pres@127.0.0.1:$port\"" -A "AUTH_PASSWORD=\"$PASSWORD\"" > "$k/check.log" 2>&1 \
    || { cat "$k/check.log" >&2; echo "kamailio.cfg does not check" >&2; exit 1; }
  timeout -k 5 1800 "$KAMAILIO" -DD -E -m 512 -M 16 -f "$here/kamailio.cfg" -A "SIP_PORT=$port" \
      -A "DB_URL=\"text://$k/db\"" -A "PRES_ADDR=\"sip:pres@127.0.0.1:$port\"" -A "AUTH_PASSWORD=\"$PASSWORD\"" \
      -w "$k" > "$k/kamailio.log" 2>&1 &
  pids+=($!)
  wait_sip "$port" kamailio "$k/kamailio.log"
}

wait_sip() {  # port name log: OPTIONS answered (any final response), 10 s at most
  python3 - "$1" <<'EOF' || { echo "$2 is not answering on 127.0.0.1:$1" >&2; tail -20 "$3" >&2; exit 1; }
import socket, sys, time, uuid
port = int(sys.argv[1]); deadline = time.time() + 10
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.settimeout(0.5)
lp = s.getsockname()[1]
while time.time() < deadline:
    b = uuid.uuid4().hex
    msg = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK{b};rport\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:probe@litwareinc.com>;tag={b[:8]}\r\nTo: <sip:127.0.0.1:{port}>\r\n"
           f"Call-ID: {b}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        if s.recv(65535).startswith(b"SIP/2.0"):
            sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
EOF
}

start_tandem() {  # sip_port → sets tandem_data
  local sip_port=$1 t="$work/tandem"
  read -r mbx fe tls < <(free_ports 3)
  mkdir -p "$t"
  tandem_data="$t/data"
  cat > "$t/config.toml" <<EOF
[deployment]
domain = "litwareinc.com"
data_dir = "$tandem_data"

[mailbox]
https_listen = "127.0.0.1:$mbx"

[frontend]
https_listen = "127.0.0.1:$fe"
sip_udp_listen = "127.0.0.1:$sip_port"
sip_tcp_listen = "127.0.0.1:$sip_port"
sip_tls_listen = "127.0.0.1:$tls"
# All SIPp load comes from 127.0.0.1; Kamailio's config has no per-source limit either.
sip_requests_per_second_per_source = 0

[hosts]
"mail.litwareinc.com" = "127.0.0.1"
"autodiscover.litwareinc.com" = "127.0.0.1"
"pool.litwareinc.com" = "127.0.0.1"
"sip.litwareinc.com" = "127.0.0.1"
EOF
  TANDEM_DEMO_PASSWORD="Bench-Demo-Pass-1" RUST_LOG=warn timeout -k 5 1800 "$TANDEM_BIN" up --config "$t/config.toml" \
      > "$t/up.out" 2> "$t/up.err" &
  pids+=($!)
  local i
  for i in $(seq 1 100); do
    "$TANDEM_BIN" status --data-dir "$tandem_data" --json > /dev/null 2>&1 && break
    sleep 0.2
    [ "$i" -eq 100 ] && { echo "tandem did not become ready" >&2; tail -20 "$t/up.err" >&2; exit 1; }
  done
  log "tandem: adding $BENCH_USERS bench users (argon2 each)"
  for ((i = 0; i < BENCH_USERS; i++)); do
    local u; u=$(user $i)
    printf '%s\n' "$PASSWORD" | timeout 30 "$TANDEM_BIN" user add "$u" --display-name "Bench User $i" \
        --password-stdin --data-dir "$tandem_data" > /dev/null 2>> "$t/user-add.err" \
      || { echo "tandem user add $u failed:" >&2; tail -5 "$t/user-add.err" >&2; exit 1; }
  done
  wait_sip "$sip_port" tandem "$t/up.err"
}

# ---- one server: the three scenarios; prints "reg_rate reg_p99 msg_rate msg_p99 sub_rate sub_p99"
bench_server() {  # name port
  local name=$1 port=$2 remote="127.0.0.1:$2"
  local reg msg sub
  # One local port for every REGISTER step: the steps refresh the same bindings instead of
  # adding a contact per step (both servers cap contacts per user at 8).
  reg=$(SIPP_PORT=$(free_ports 1) ramp "$name-register" register_digest.xml "$remote" -inf "$work/register.csv" \
      -key expires 3600)
  # MESSAGE: the targets are registered at the port of a SIPp UAS that answers 200.
  local uas_port; uas_port=$(free_ports 1)
  read -r ok failed _ < <(SIPP_PORT=$uas_port sipp_step "$work/runs/$name-targets" register_digest.xml "$remote" \
      100 "$half" -inf "$work/targets.csv" -key expires 3600)
  [ "$failed" -eq 0 ] || log "$name: registering the MESSAGE targets: $failed failed"
  mkdir -p "$work/runs/$name-uas"
  (cd "$work/runs/$name-uas" && exec timeout -k 2 900 sipp -sf "$scen/message_uas.xml" -p "$uas_port" -i 127.0.0.1 \
      -nostdin -trace_err -error_file errors.log -trace_screen -screen_file screen.log "$remote" > out.log 2>&1) &
  local uas_pid=$!
  pids+=("$uas_pid")
  sleep 0.5
  msg=$(ramp "$name-message" message.xml "$remote" -inf "$work/message.csv")
  kill "$uas_pid" 2>/dev/null || true
  sub=$(ramp "$name-subscribe" subscribe_notify.xml "$remote" -inf "$work/subscribe.csv" -aa)
  echo "$reg $msg $sub"
}

log "work directory: $work"
read -r kam_port tan_port < <(free_ports 2)
log "kamailio on 127.0.0.1:$kam_port"
start_kamailio "$kam_port"
read -r k_reg k_reg99 k_msg k_msg99 k_sub k_sub99 < <(bench_server kamailio "$kam_port")
kill "${pids[0]}" 2>/dev/null || true   # Kamailio off while Tandem runs

t_reg=- t_reg99=- t_msg=- t_msg99=- t_sub=- t_sub99=-
if [ "$kam_only" -eq 0 ]; then
  log "tandem ($TANDEM_BIN) on 127.0.0.1:$tan_port"
  start_tandem "$tan_port"
  read -r t_reg t_reg99 t_msg t_msg99 t_sub t_sub99 < <(bench_server tandem "$tan_port")
fi

ratio() {  # a b [floor]: a/b, both raised to floor first (p99 has SIPp's ~4 ms clock granularity)
  python3 -c "import sys
a, b, floor = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    a, b = max(float(a), floor), max(float(b), floor)
    print('n/a' if b <= 0 or a < 0 else f'{a / b:.2f}×')
except ValueError:
    print('pending')" "$1" "$2" "${3:-0}"; }
p99s() { if [ "$1" = "-" ]; then echo "-"; elif [ "$1" = "-1" ]; then echo "n/a"; else echo "$1"; fi; }

{
  echo "## SIP: Tandem vs Kamailio ($(date -u +%Y-%m-%d))"
  echo
  echo "Command: \`bench/sip/run.sh$([ "$quick" -eq 1 ] && echo " --quick")$([ "$kam_only" -eq 1 ] && echo " --kamailio-only")\`" \
       "(STEP_SECONDS=$STEP_SECONDS, rates: $RATES, cap $MAX_RATE/s, $BENCH_USERS users)."
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo);" \
       "$("$KAMAILIO" -v 2>/dev/null | head -1 | sed 's/^version: //'); SIPp $(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -1);" \
       "tandem $([ "$kam_only" -eq 1 ] && echo "not run" || "$TANDEM_BIN" --version 2>/dev/null | head -1)."
  echo "Rate: the highest step with zero failed calls and p99 < ${P99_LIMIT_MS} ms (each step ${STEP_SECONDS} s);" \
       "p99: response time at that rate" \
       "(SIPp -trace_rtt; its clock ticks in ~4 ms steps, so p99 values are floored at 4 ms for the ratio)." \
       "Ratios Tandem/Kamailio: rate (≥ 1.0× is the target) and p99 (≤ 1.0× is as fast or faster)."
  echo
  echo "| Scenario | Kamailio calls/s | Kamailio p99 ms | Tandem calls/s | Tandem p99 ms | Rate T/K | p99 T/K |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| REGISTER + digest | $k_reg | $(p99s "$k_reg99") | $t_reg | $(p99s "$t_reg99") | $(ratio "$t_reg" "$k_reg") | $(ratio "$t_reg99" "$k_reg99" 4) |"
  echo "| MESSAGE (407 + relay) | $k_msg | $(p99s "$k_msg99") | $t_msg | $(p99s "$t_msg99") | $(ratio "$t_msg" "$k_msg") | $(ratio "$t_msg99" "$k_msg99" 4) |"
  echo "| SUBSCRIBE + NOTIFY | $k_sub | $(p99s "$k_sub99") | $t_sub | $(p99s "$t_sub99") | $(ratio "$t_sub" "$k_sub") | $(ratio "$t_sub99" "$k_sub99" 4) |"
  echo
  echo "A rate of 0 means even the lowest step had failures; see the SIPp logs under $work/runs."
} | tee "$here/results.md"
log "logs: $work"
