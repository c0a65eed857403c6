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
. "$here/bench/lib/tandem.sh"
start_bench_tandem "${PROFILE:-release}" presence_mailbox_bench
"$bin_dir/examples/presence_mailbox_bench" --url "https://127.0.0.1:$port/EWS/Exchange.asmx" \
  --ca "$work/data/pki/ca.pem" --password bench-password-1 --pid "$pid" "$@"
