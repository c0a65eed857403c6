#!/usr/bin/env bash
# SIP benchmark: the same SIPp scenarios against Kamailio (bench/sip/kamailio.cfg) and against
# Tandem's Front End, on this machine, over loopback only:
#   REGISTER with digest (register_digest.xml), MESSAGE between registered users (message.xml
#   → message_uas.xml), SUBSCRIBE + NOTIFY (subscribe_notify_any_order.xml, which accepts every
#   order of 2xx and NOTIFYs a correct notifier may send).
# For each: the highest sustained rate (calls/s), found by stepping the rate up (each step at most
# 10 s): a step passes with zero failed calls and a p99 response time under P99_LIMIT_MS (a
# server that queues answers late, and SIPp's retransmissions still complete the calls; that
# is overload, not throughput). A step with ≤ 1% failures is run once more and must then have
# none. Past the maximum, goodput (completed calls/s) is reported at the first failing step and
# at 1.5× and 2× the maximum. Kamailio and Tandem run alternately, ROUNDS rounds each (both stay
# up; the idle one only keeps its timers); each round gives a Tandem/Kamailio ratio per scenario,
# reported as the median and the spread (lowest–highest) over the rounds. The 1-minute load
# average is read after every step and reported per server and scenario (lowest–highest), so a
# busy machine shows. Prints Markdown and writes bench/sip/results.md.
#
#   bench/sip/run.sh                 full run (ROUNDS rounds)
#   bench/sip/run.sh --quick         1 round, 3 short steps per scenario (smoke test of the harness)
#   bench/sip/run.sh --kamailio-only only the Kamailio side (no tandem binary needed)
#   bench/sip/run.sh --profile       per-request CPU: the servers under callgrind, PROFILE_CALLS
#                                    calls of each scenario at PROFILE_RATE calls/s, instructions
#                                    (Ir) per call; Kamailio too (all its processes) unless
#                                    PROFILE_KAMAILIO=0. Writes bench/sip/profile.md.
#
# Environment:
#   TANDEM_BIN      tandem binary (default /root/.cache/tandem-target/release/tandem)
#   ROUNDS          rounds per server (default 3)
#   STEP_SECONDS    seconds per rate step (default 5, at most 10)
#   RATES           rate steps in calls/s (default "100 200 400 700 1000 1500 2000 3000 4000 6000 8000")
#   MAX_RATE        cap on the rate steps (default 8000)
#   P99_LIMIT_MS    a step passes only with p99 below this (default 200; SIPp retransmits at 500)
#   OVERLOAD        1 (default): also run 1.5× and 2× the maximum and report goodput; 0: skip
#   BENCH_USERS     bench users user0000.. (default 200, even, at least 20)
#   TANDEM_MAX_QUEUE_DELAY_MS  Tandem's [frontend] sip_max_queue_delay_ms (overload control;
#                   default: the configuration's default; 0 turns it off, to compare)
#   PROFILE_CALLS   calls per scenario in --profile (default 300); PROFILE_RATE (default 20);
#                   PROFILE_SETTLE seconds between the warm-up sign-ins and the first measure (20)
#   WARMUP_SETTLE   seconds after the warm-up sign-ins before round 1 (default 10)
# Needs: sipp, kamailio (+ presence modules): scripts/install-sip-peers.sh --bench; valgrind
# (callgrind_control) for --profile.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scen="$here/scenarios"
quick=0
kam_only=0
profile=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --kamailio-only) kam_only=1 ;;
    --profile) profile=1 ;;
    -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
    *) echo "usage: bench/sip/run.sh [--quick] [--kamailio-only] [--profile]" >&2; exit 2 ;;
  esac
done

TANDEM_BIN=${TANDEM_BIN:-/root/.cache/tandem-target/release/tandem}
STEP_SECONDS=${STEP_SECONDS:-5}
[ "$STEP_SECONDS" -gt 10 ] && STEP_SECONDS=10
[ "$STEP_SECONDS" -lt 1 ] && STEP_SECONDS=1
MAX_RATE=${MAX_RATE:-8000}
RATES=${RATES:-"100 200 400 700 1000 1500 2000 3000 4000 6000 8000"}
P99_LIMIT_MS=${P99_LIMIT_MS:-200}
ROUNDS=${ROUNDS:-3}
OVERLOAD=${OVERLOAD:-1}
PROFILE_CALLS=${PROFILE_CALLS:-300}
PROFILE_RATE=${PROFILE_RATE:-20}
PROFILE_KAMAILIO=${PROFILE_KAMAILIO:-1}
PROFILE_SETTLE=${PROFILE_SETTLE:-20}
WARMUP_SETTLE=${WARMUP_SETTLE:-10}
if [ "$quick" -eq 1 ]; then RATES=${QUICK_RATES:-"50 100 200"}; STEP_SECONDS=2; ROUNDS=1; fi
[ "$ROUNDS" -lt 1 ] && ROUNDS=1
BENCH_USERS=${BENCH_USERS:-200}
[ "$BENCH_USERS" -lt 20 ] && BENCH_USERS=20
half=$((BENCH_USERS / 2))
PASSWORD="Bench-Pass-2026"   # same for every user on both servers
# No new ramp step after 12 minutes per round and server: the run stops by itself.
DEADLINE=$(( $(date +%s) + 720 * ROUNDS * 2 ))

hint="install with: scripts/install-sip-peers.sh --bench"
command -v sipp >/dev/null || { echo "sipp is missing; $hint" >&2; exit 1; }
KAMAILIO=$(command -v kamailio || echo /usr/sbin/kamailio)
[ -x "$KAMAILIO" ] || { echo "kamailio is missing; $hint" >&2; exit 1; }
if [ "$kam_only" -eq 0 ] && [ ! -x "$TANDEM_BIN" ]; then
  echo "no tandem binary at $TANDEM_BIN (build: cargo build --release -p tandem, or set TANDEM_BIN)" >&2; exit 1
fi

if [ "$profile" -eq 1 ]; then
  command -v callgrind_control >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
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

# ---- one SIPp step: prints "successful failed p99_ms load1" (p99 -1 when no sample; load1: the
# 1-minute load average when the step ends)
sipp_step() {  # dir scenario remote rate calls extra...
  local dir=$1 sf=$2 remote=$3 rate=$4 calls=$5; shift 5
  mkdir -p "$dir"
  local budget=$((STEP_SECONDS + 15))
  (cd "$dir" && timeout -k 2 $((budget + 5)) sipp -sf "$scen/$sf" -r "$rate" -m "$calls" -l $((rate * 3 + 50)) \
      -nostdin -trace_screen -screen_file screen.log -trace_rtt -rtt_freq 50 -trace_err -error_file errors.log \
      -trace_stat -stf stat.csv -fd 1 \
      -timeout "${budget}s" -timeout_error -i 127.0.0.1 -p "${SIPP_PORT:-$(free_ports 1)}" \
      "$@" "$remote" > out.log 2>&1) || true
  python3 - "$dir" "$calls" <<'EOF'
import glob, re, sys
d, calls = sys.argv[1], int(sys.argv[2])
def read(name):
    return open(f"{d}/{name}", errors="replace").read() if glob.glob(f"{d}/{name}") else ""
def counter(text, label):
    m = re.findall(rf"^\s*{label}\s*\|\s*\d+\s*\|\s*(\d+)", text, re.M)
    return int(m[-1]) if m else None
# SIPp writes screen.log only when it ends normally; when its global -timeout ends a step (calls
# still pending past the maximum) there is none, and reading it alone counted every call of such
# a step as failed, completed ones included. The statistics file (-trace_stat, written every
# second and at the end) has the cumulative counts in every case; screen.log, then the last
# screen in out.log, are the fallbacks.
def from_stat():
    rows = [l.rstrip("\n").split(";") for l in read("stat.csv").splitlines() if l.strip()]
    if len(rows) < 2:
        return None, None
    head, last = rows[0], rows[-1]
    try:
        return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])
    except (ValueError, IndexError):
        return None, None
screen, out = read("screen.log"), read("out.log")
ok, failed = from_stat()
if ok is None:
    ok, failed = counter(screen, "Successful call"), counter(screen, "Failed call")
if ok is None:
    ok, failed = counter(out, "Successful call"), counter(out, "Failed call")
ok, failed = ok or 0, failed or 0
load = open("/proc/loadavg").read().split()[0]
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
print(ok, failed, p99, load)
EOF
}

# ---- step the rate up until the first failure; prints "best_rate p99_at_best past_rate
# past_goodput goodput_1.5x goodput_2x load_lo load_hi": past_* is the first failing step and its
# completed calls/s (- when no step failed), goodput_* the completed calls/s at 1.5× and 2× the
# best rate (- when not run), load_* the lowest and highest 1-minute load average seen
minmax() {  # op values...: the lowest (min) or highest (max) of the numbers given
  python3 -c "import sys; v=[float(x) for x in sys.argv[2:] if x not in ('', '-')]; print((min if sys.argv[1] == 'min' else max)(v) if v else '-')" "$@"
}
ramp() {  # label scenario remote extra...
  local label=$1 sf=$2 remote=$3; shift 3
  local best=0 best_p99=-1 rate past=- past_good=- g15=- g20=- loads=""
  local ok failed p99 load
  for rate in $RATES; do
    [ "$rate" -gt "$MAX_RATE" ] && break
    if [ "$(date +%s)" -gt "$DEADLINE" ]; then log "time budget spent; stopping the ramp"; break; fi
    local calls=$((rate * STEP_SECONDS))
    read -r ok failed p99 load < <(sipp_step "$work/runs/$label-$rate" "$sf" "$remote" "$rate" "$calls" "$@")
    loads="$loads $load"
    log "$label: $rate/s × ${STEP_SECONDS}s → $ok ok, $failed failed, p99 ${p99} ms (load $load)"
    # A handful of failures (≤ 1%) can be SIPp's own race when two answers arrive back to back
    # while a call waits to send; such a step is run once more and must then have none.
    if [ "$failed" -gt 0 ] && [ $((failed * 100)) -le "$calls" ]; then
      read -r ok failed p99 load < <(sipp_step "$work/runs/$label-$rate-again" "$sf" "$remote" "$rate" "$calls" "$@")
      loads="$loads $load"
      log "$label: $rate/s again → $ok ok, $failed failed, p99 ${p99} ms (load $load)"
    fi
    if [ "$failed" -ne 0 ] || [ "$ok" -ne "$calls" ]; then
      past=$rate; past_good=$((ok / STEP_SECONDS)); break
    fi
    if ! python3 -c "import sys; sys.exit(0 if 0 <= float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$p99" "$P99_LIMIT_MS"; then
      log "$label: p99 ${p99} ms ≥ ${P99_LIMIT_MS} ms at $rate/s: overloaded"
      past=$rate; past_good=$((ok / STEP_SECONDS)); break
    fi
    best=$rate; best_p99=$p99
  done
  if [ "$OVERLOAD" -eq 1 ] && [ "$best" -gt 0 ]; then
    local r15=$((best * 3 / 2)) r20=$((best * 2))
    read -r ok failed p99 load < <(sipp_step "$work/runs/$label-over15" "$sf" "$remote" "$r15" "$((r15 * STEP_SECONDS))" "$@")
    loads="$loads $load"; g15=$((ok / STEP_SECONDS))
    log "$label: 1.5× the maximum = $r15/s → $ok ok, $failed failed: goodput $g15/s (load $load)"
    read -r ok failed p99 load < <(sipp_step "$work/runs/$label-over20" "$sf" "$remote" "$r20" "$((r20 * STEP_SECONDS))" "$@")
    loads="$loads $load"; g20=$((ok / STEP_SECONDS))
    log "$label: 2× the maximum = $r20/s → $ok ok, $failed failed: goodput $g20/s (load $load)"
  fi
  # shellcheck disable=SC2086  # $loads is a list of numbers
  echo "$best $best_p99 $past $past_good $g15 $g20 $(minmax min $loads) $(minmax max $loads)"
}

# ---- servers
start_kamailio() {  # port
  local port=$1 k="$work/kamailio"
  mkdir -p "$k/db"
  cp /usr/share/kamailio/dbtext/kamailio/{version,presentity,active_watchers,watchers,xcap,pua} "$k/db/"
  "$KAMAILIO" -c -f "$here/kamailio.cfg" -A "SIP_PORT=$port" -A "DB_URL=\"text://$k/db\"" \
      -A "PRES_ADDR=\"sip:pres@127.0.0.1:$port\"" -A "AUTH_PASSWORD=\"$PASSWORD\"" > "$k/check.log" 2>&1 \
    || { cat "$k/check.log" >&2; echo "kamailio.cfg does not check" >&2; exit 1; }
  timeout -k 5 7200 ${KAMAILIO_WRAP:-} "$KAMAILIO" -DD -E -m 512 -M 16 -f "$here/kamailio.cfg" -A "SIP_PORT=$port" \
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
${TANDEM_MAX_QUEUE_DELAY_MS:+sip_max_queue_delay_ms = $TANDEM_MAX_QUEUE_DELAY_MS}

[hosts]
"mail.litwareinc.com" = "127.0.0.1"
"autodiscover.litwareinc.com" = "127.0.0.1"
"pool.litwareinc.com" = "127.0.0.1"
"sip.litwareinc.com" = "127.0.0.1"
EOF
  TANDEM_DEMO_PASSWORD="Bench-Demo-Pass-1" RUST_LOG=warn timeout -k 5 7200 ${TANDEM_WRAP:-} "$TANDEM_BIN" up \
      --config "$t/config.toml" > "$t/up.out" 2> "$t/up.err" &
  pids+=($!)
  local i
  for i in $(seq 1 600); do
    "$TANDEM_BIN" status --data-dir "$tandem_data" --json > /dev/null 2>&1 && break
    sleep 0.2
    [ "$i" -eq 600 ] && { echo "tandem did not become ready" >&2; tail -20 "$t/up.err" >&2; exit 1; }
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

# ---- before the first round: every bench user signs in once, then the server settles. A first
# sign-in costs Tandem more than a refresh (its calendar watch starts: TLS, an S2S token, EWS),
# once per user; without this, round 1's first REGISTER step pays for it and fails.
warm_up() {  # name port
  local name=$1 remote="127.0.0.1:$2" ok failed
  read -r ok failed _ _ < <(STEP_SECONDS=2 sipp_step "$work/runs/$name-warmup" register_digest.xml "$remote" \
      100 "$half" -inf "$work/register.csv" -key expires 3600)
  log "$name: warm-up sign-ins: $ok ok, $failed failed; settling ${WARMUP_SETTLE}s"
  sleep "$WARMUP_SETTLE"
}

# ---- one server, one round: the three scenarios; appends "round name scenario <ramp fields>"
# lines to $work/results.txt
bench_server() {  # name port round
  local name=$1 port=$2 round=$3 remote="127.0.0.1:$2"
  local r
  # One local port for every REGISTER step: the steps refresh the same bindings instead of
  # adding a contact per step (both servers cap contacts per user at 8).
  r=$(SIPP_PORT=$(free_ports 1) ramp "$name-r$round-register" register_digest.xml "$remote" -inf "$work/register.csv" \
      -key expires 3600)
  echo "$round $name register $r" >> "$work/results.txt"
  # MESSAGE: the targets are registered at the port of a SIPp UAS that answers 200.
  local uas_port; uas_port=$(free_ports 1)
  read -r ok failed _ _ < <(SIPP_PORT=$uas_port sipp_step "$work/runs/$name-r$round-targets" register_digest.xml \
      "$remote" 100 "$half" -inf "$work/targets.csv" -key expires 3600)
  [ "$failed" -eq 0 ] || log "$name: registering the MESSAGE targets: $failed failed"
  mkdir -p "$work/runs/$name-r$round-uas"
  (cd "$work/runs/$name-r$round-uas" && exec timeout -k 2 1800 sipp -sf "$scen/message_uas.xml" -p "$uas_port" \
      -i 127.0.0.1 -nostdin -trace_err -error_file errors.log -trace_screen -screen_file screen.log "$remote" \
      > out.log 2>&1) &
  local uas_pid=$!
  pids+=("$uas_pid")
  sleep 0.5
  r=$(ramp "$name-r$round-message" message.xml "$remote" -inf "$work/message.csv")
  echo "$round $name message $r" >> "$work/results.txt"
  kill "$uas_pid" 2>/dev/null || true
  r=$(ramp "$name-r$round-subscribe" subscribe_notify_any_order.xml "$remote" -inf "$work/subscribe.csv" -aa)
  echo "$round $name subscribe $r" >> "$work/results.txt"
}

# ---- --profile: instructions per call under callgrind, a fixed number of calls at a low rate.
# callgrind_control zeroes the counters before a scenario and dumps them after it; a dump's
# "summary:" line is the instructions (Ir) every thread of the process executed meanwhile
# (Kamailio: summed over its processes). An idle interval as long as a scenario is measured too
# (timers, ticks) and reported beside the scenarios, not subtracted from them.
# The callgrind processes of this run (other runs on the machine are left alone).
# callgrind_control lists "PID n: command line"; the servers' command lines name $work.
cg_pids() { callgrind_control 2>/dev/null | awk -v w="$work" 'index($0, w) { sub(":", "", $2); print $2 }' | tr '\n' ' '; }

profile_scenario() {  # name label scenario remote extra...
  local name=$1 label=$2 sf=$3 remote=$4; shift 4
  local secs=$((PROFILE_CALLS / PROFILE_RATE)) ok failed
  # shellcheck disable=SC2046  # a list of process ids
  callgrind_control --zero $(cg_pids) > /dev/null 2>&1 || true
  if [ "$sf" = idle ]; then
    sleep "$secs"; ok=$PROFILE_CALLS; failed=0
  else
    read -r ok failed _ _ < <(STEP_SECONDS=$secs sipp_step "$work/runs/profile-$name-$label" "$sf" "$remote" \
        "$PROFILE_RATE" "$PROFILE_CALLS" "$@")
  fi
  sleep 6   # lingering transactions end and the last NOTIFY answers arrive
  # shellcheck disable=SC2046
  callgrind_control --dump="$name-$label" $(cg_pids) > /dev/null 2>&1 || true
  sleep 2
  local total
  total=$(python3 - "$work/callgrind" "$name-$label" <<'EOF'
import glob, re, sys
d, label = sys.argv[1], sys.argv[2]
tot = 0
for f in glob.glob(f"{d}/callgrind.out.*"):
    head = open(f, errors="replace").read(4000)
    # callgrind_control --dump=LABEL writes "desc: Trigger: dump LABEL" (older releases:
    # "Client Request: LABEL").
    if not re.search(rf"^desc: Trigger: .*\b{re.escape(label)}$", head, re.M):
        continue
    m = re.search(r"^summary:\s*(\d+)", open(f, errors="replace").read(), re.M)
    if m:
        tot += int(m.group(1))
print(tot)
EOF
)
  echo "$name $label $ok $failed $total" >> "$work/profile.txt"
  log "profile $name $label: $ok ok, $failed failed, $total instructions"
}

profile_server() {  # name port
  local name=$1 port=$2 remote="127.0.0.1:$2"
  local reg_port uas_port
  read -r reg_port uas_port < <(free_ports 2)
  # Warm-up, not measured: every bench user signs in once. A first sign-in costs Tandem more than
  # a refresh (its calendar watch starts: TLS, an S2S token, EWS), once per user, not per request;
  # the measured REGISTERs refresh these bindings, as the rate benchmark's do.
  read -r _ _ _ _ < <(SIPP_PORT=$reg_port STEP_SECONDS=$((half / PROFILE_RATE + 1)) sipp_step \
      "$work/runs/profile-$name-warmup" register_digest.xml "$remote" "$PROFILE_RATE" "$half" \
      -inf "$work/register.csv" -key expires 3600)
  read -r _ _ _ _ < <(SIPP_PORT=$uas_port STEP_SECONDS=$((half / PROFILE_RATE + 1)) sipp_step \
      "$work/runs/profile-$name-targets" register_digest.xml "$remote" "$PROFILE_RATE" "$half" \
      -inf "$work/targets.csv" -key expires 3600)
  mkdir -p "$work/runs/profile-$name-uas"
  (cd "$work/runs/profile-$name-uas" && exec timeout -k 2 900 sipp -sf "$scen/message_uas.xml" -p "$uas_port" \
      -i 127.0.0.1 -nostdin -trace_err -error_file errors.log "$remote" > out.log 2>&1) &
  local uas_pid=$!
  pids+=("$uas_pid")
  log "profile $name: warmed up; settling ${PROFILE_SETTLE}s"
  sleep "$PROFILE_SETTLE"
  profile_scenario "$name" idle idle "$remote"
  SIPP_PORT=$reg_port profile_scenario "$name" register register_digest.xml "$remote" \
      -inf "$work/register.csv" -key expires 3600
  profile_scenario "$name" message message.xml "$remote" -inf "$work/message.csv"
  kill "$uas_pid" 2>/dev/null || true
  profile_scenario "$name" subscribe subscribe_notify_any_order.xml "$remote" -inf "$work/subscribe.csv" -aa
}

log "work directory: $work"
read -r kam_port tan_port < <(free_ports 2)

if [ "$profile" -eq 1 ]; then
  mkdir -p "$work/callgrind"
  VALGRIND="valgrind --tool=callgrind --callgrind-out-file=$work/callgrind/callgrind.out.%p"
  : > "$work/profile.txt"
  if [ "$PROFILE_KAMAILIO" -eq 1 ]; then
    KAMAILIO_WRAP="$VALGRIND --trace-children=yes"
    log "kamailio under callgrind on 127.0.0.1:$kam_port"
    start_kamailio "$kam_port"
    profile_server kamailio "$kam_port"
    kill "${pids[0]}" 2>/dev/null || true
    sleep 3
  fi
  if [ "$kam_only" -eq 0 ]; then
    # Under callgrind every request waits far longer than in a real run: overload control
    # would refuse most of them, so it is off here unless asked for.
    TANDEM_MAX_QUEUE_DELAY_MS=${TANDEM_MAX_QUEUE_DELAY_MS:-0}
    TANDEM_WRAP="$VALGRIND"
    log "tandem under callgrind on 127.0.0.1:$tan_port"
    start_tandem "$tan_port"
    profile_server tandem "$tan_port"
  fi
  python3 - "$work/profile.txt" "$PROFILE_CALLS" "$PROFILE_RATE" "$TANDEM_BIN" <<'EOF' | tee "$here/profile.md"
import collections, subprocess, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
calls, rate, tandem = sys.argv[2], sys.argv[3], sys.argv[4]
by = collections.defaultdict(dict)
for name, label, ok, failed, total in rows:
    by[label][name] = (int(ok), int(failed), int(total))
try:
    version = subprocess.run([tandem, "--version"], capture_output=True, text=True).stdout.strip()
except OSError:
    version = "not run"
load = open("/proc/loadavg").read().split()[0]
print(f"## SIP per-request CPU: callgrind instructions per call\n")
print(f"Command: `bench/sip/run.sh --profile` ({calls} calls per scenario at {rate}/s; tandem {version};"
      f" load average at the end {load}; instruction counts do not depend on the load).\n")
print("| Scenario | Messages the server handles per call | Kamailio Ir/call | Tandem Ir/call | Tandem/Kamailio | Failed calls K / T |")
print("|---|---|---:|---:|---:|---|")
msgs = {"register": "REGISTER→401, REGISTER→200",
        "message": "MESSAGE→407, MESSAGE→relayed, its 200 relayed back",
        "subscribe": "SUBSCRIBE→407, SUBSCRIBE→200, NOTIFY+200, un-SUBSCRIBE→200, NOTIFY+200",
        "idle": "none (idle, as long as one scenario)"}
for label in ["register", "message", "subscribe", "idle"]:
    k = by[label].get("kamailio"); t = by[label].get("tandem")
    per = lambda v: f"{v[2] / max(v[0], 1) / 1000:,.0f} k" if v else "-"
    ratio = f"{(t[2] / max(t[0], 1)) / (k[2] / max(k[0], 1)):.2f}×" if k and t and k[2] else "-"
    fails = f"{k[1] if k else '-'} / {t[1] if t else '-'}"
    print(f"| {label} | {msgs[label]} | {per(k)} | {per(t)} | {ratio} | {fails} |")
print("\nIr/call: instructions the server's process(es) executed while the scenario ran (callgrind_control"
      " --zero before, --dump after), divided by the completed calls; the idle row divides by the same"
      " number of calls, to show the background share included in the others.")
EOF
  log "logs: $work"
  exit 0
fi

log "kamailio on 127.0.0.1:$kam_port"
start_kamailio "$kam_port"
if [ "$kam_only" -eq 0 ]; then
  log "tandem ($TANDEM_BIN) on 127.0.0.1:$tan_port"
  start_tandem "$tan_port"
fi
warm_up kamailio "$kam_port"
[ "$kam_only" -eq 0 ] && warm_up tandem "$tan_port"
: > "$work/results.txt"
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS: kamailio"
  bench_server kamailio "$kam_port" "$round"
  if [ "$kam_only" -eq 0 ]; then
    log "round $round of $ROUNDS: tandem"
    bench_server tandem "$tan_port" "$round"
  fi
done

{
  echo "## SIP: Tandem vs Kamailio ($(date -u +%Y-%m-%d))"
  echo
  echo "Command: \`bench/sip/run.sh$([ "$quick" -eq 1 ] && echo " --quick")$([ "$kam_only" -eq 1 ] && echo " --kamailio-only")\`" \
       "(ROUNDS=$ROUNDS, STEP_SECONDS=$STEP_SECONDS, rates: $RATES, cap $MAX_RATE/s, $BENCH_USERS users, OVERLOAD=$OVERLOAD)."
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo);" \
       "$("$KAMAILIO" -v 2>/dev/null | head -1 | sed 's/^version: //'); SIPp $(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -1);" \
       "tandem $([ "$kam_only" -eq 1 ] && echo "not run" || "$TANDEM_BIN" --version 2>/dev/null | head -1)."
  echo
  python3 - "$work/results.txt" "$P99_LIMIT_MS" "$STEP_SECONDS" <<'EOF'
import collections, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
limit, step = sys.argv[2], sys.argv[3]
R = collections.defaultdict(dict)   # (scenario, server) -> round -> ramp fields
for rnd, name, scen, *f in rows:
    R[(scen, name)][int(rnd)] = f
rounds = sorted({int(r[0]) for r in rows})
def num(x):
    try:
        return float(x)
    except ValueError:
        return None
print(f"Rate: per round, the highest step with zero failed calls and p99 < {limit} ms (each step {step} s)."
      " Ratio: Tandem/Kamailio per round; the median and the spread (lowest–highest) over the rounds"
      " (≥ 1.0× is the target). p99: response time at the maximum (SIPp -trace_rtt, ~4 ms clock), median over rounds."
      " Past max: the first failing step, calls/s offered → completed, per round. Goodput: completed calls/s"
      " at 1.5× and 2× the round's maximum as a share of that maximum (median over rounds)."
      " Load: the 1-minute load average at the end of every step, lowest–highest.\n")
print("| Scenario | Kamailio calls/s per round | Tandem calls/s per round | Ratio T/K median (spread) | p99 ms K / T | Past max K / T | Goodput 1.5× K / T | Goodput 2× K / T | Load K / T |")
print("|---|---|---|---:|---|---|---|---|---|")
names = {"register": "REGISTER + digest", "message": "MESSAGE (407 + relay)", "subscribe": "SUBSCRIBE + NOTIFY"}
for scen in ["register", "message", "subscribe"]:
    k, t = R.get((scen, "kamailio"), {}), R.get((scen, "tandem"), {})
    rates = lambda d: ", ".join(d[r][0] if r in d else "-" for r in rounds)
    ratios = [num(t[r][0]) / num(k[r][0]) for r in rounds if r in k and r in t and num(k[r][0])]
    ratio = f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})" if ratios else "n/a"
    def p99(d):
        v = [num(d[r][1]) for r in d if num(d[r][1]) is not None and num(d[r][1]) >= 0]
        return f"{statistics.median(v):.0f}" if v else "n/a"
    def past(d):
        return ", ".join(f"{d[r][2]}→{d[r][3]}" if d[r][2] != "-" else "none" for r in sorted(d)) or "-"
    def good(d, i):
        v = [num(d[r][i]) / num(d[r][0]) for r in d if num(d[r][i]) is not None and num(d[r][0])]
        return f"{100 * statistics.median(v):.0f} %" if v else "-"
    def load(d):
        lo = [num(d[r][6]) for r in d if num(d[r][6]) is not None]
        hi = [num(d[r][7]) for r in d if num(d[r][7]) is not None]
        return f"{min(lo):.1f}–{max(hi):.1f}" if lo and hi else "-"
    print(f"| {names[scen]} | {rates(k)} | {rates(t)} | {ratio} | {p99(k)} / {p99(t)} | {past(k)} / {past(t)} |"
          f" {good(k, 4)} / {good(t, 4)} | {good(k, 5)} / {good(t, 5)} | {load(k)} / {load(t)} |")
print("\nA rate of 0 means even the lowest step had failures; see the SIPp logs under the run's work directory.")
EOF
} | tee "$here/results.md"
log "logs: $work"
