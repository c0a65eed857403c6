#!/usr/bin/env bash
# EWS benchmark: starts a release `tandem up` on a free loopback port in a fresh directory and runs
# the benchmark client (bench/ews/ews_bench.rs) against it over HTTPS; prints JSON figures.
#
#   bench/ews/run.sh [--big N] [--creates N] [--concurrency N]
#
# Figures go to docs/BENCHMARKS.md by hand, with the command and the date.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
. "$here/bench/lib/tandem.sh"
start_bench_tandem release ews_bench
"$bin_dir/examples/ews_bench" --url "https://127.0.0.1:$port/EWS/Exchange.asmx" \
  --ca "$work/data/pki/ca.pem" --user alice@litwareinc.com --password bench-password-1 \
  --pid "$pid" --db "$work/data/mailbox.db" "$@"
