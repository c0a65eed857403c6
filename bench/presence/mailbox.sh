#!/usr/bin/env bash
# Presence benchmark, Mailbox half: starts `tandem up` on a free loopback port in a fresh directory and
# bench/presence/mailbox_bench.rs against it over HTTPS; prints JSON figures.
#
#   bench/presence/mailbox.sh [--subscriptions 1000,20000] [--per-connection 200] [--idle-secs 20] [--probes 100]
#
# Figures go to docs/BENCHMARKS.md by hand, with the command and the date. PROFILE=debug uses the
# debug build (no release build needed; slower, so latencies are pessimistic).
set -euo pipefail
# Many open streams: more file descriptors than the default soft limit.
ulimit -n 65536 2>/dev/null || true
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
# Two builds: target selection (--example) would otherwise leave the tandem binary unbuilt.
profile=${PROFILE:-release}
flag=--release
[ "$profile" = debug ] && flag=
cargo build $flag --locked -p tandem
cargo build $flag --locked -p tandem-mailbox --example presence_mailbox_bench
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/tandem.toml" <<TOML
[deployment]
domain = "litwareinc.com"
data_dir = "$work/data"

[mailbox]
https_listen = "127.0.0.1:$port"

[frontend]
https_listen = "127.0.0.1:$fport"
sip_udp_listen = "127.0.0.1:$sport"
sip_tcp_listen = "127.0.0.1:$sport"
sip_tls_listen = "127.0.0.1:$tport"
TOML
TANDEM_DEMO_PASSWORD=bench-password-1 "$target_dir/$profile/tandem" --log-format json up --config "$work/tandem.toml" \
  >"$work/tandem.out" 2>"$work/tandem.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
until "$target_dir/$profile/tandem" status --data-dir "$work/data" --json >/dev/null 2>&1; do
  kill -0 $pid 2>/dev/null || { cat "$work/tandem.err" >&2; exit 1; }
  sleep 0.1
done
"$target_dir/$profile/examples/presence_mailbox_bench" --url "https://127.0.0.1:$port/EWS/Exchange.asmx" \
  --ca "$work/data/pki/ca.pem" --password bench-password-1 --pid "$pid" "$@"
