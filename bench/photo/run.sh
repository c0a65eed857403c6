#!/usr/bin/env bash
# GetUserPhoto benchmark: starts `tandem up` (release unless PROFILE=debug) on free loopback ports
# in a fresh directory, uploads a 1024x1024 JPEG for alice with `tandem exchange set-user-photo`,
# and measures the REST form (bench/photo/photo_bench.rs): p50/p99 uncached (200 with the JPEG)
# and cached (If-None-Match → 304) for HR96x96 and HR648x648; prints JSON figures.
#
#   bench/photo/run.sh [--runs N]        (PROFILE=debug bench/photo/run.sh for a quick look)
#
# Figures go to docs/BENCHMARKS.md by hand, with the command and the date.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
. "$here/bench/lib/tandem.sh"
start_bench_tandem "${PROFILE:-release}" photo_bench
"$bin_dir/examples/photo_bench" --url "https://127.0.0.1:$port/EWS/Exchange.asmx" \
  --ca "$work/data/pki/ca.pem" --user alice@litwareinc.com --password bench-password-1 \
  --tandem "$bin_dir/tandem" --data-dir "$work/data" "$@"
