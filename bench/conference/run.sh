#!/usr/bin/env bash
# Conference mixing load: N conferences x M G.711 legs on loopback through the Front End's mixing
# thread, fed by a real-time RTP load generator (bench/conference/conference_bench.rs); prints
# JSON figures (late ticks, longest tick, CPU per leg).
#
#   bench/conference/run.sh [--conferences 100] [--legs 10] [--seconds 20]   (PROFILE=debug for a quick look)
#
# Figures go to docs/BENCHMARKS.md by hand, with the command, the date and the machine's load.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
profile=${PROFILE:-release}
flag=--release
[ "$profile" = debug ] && flag=
cargo build $flag --locked -p tandem-frontend --example conference_bench
bin_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/$profile
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin_dir/examples/conference_bench" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
