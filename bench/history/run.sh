#!/usr/bin/env bash
# Conversation history writer throughput: queues N ended conversations of M messages in a Front
# End store and writes both participants' transcripts to a real Mailbox on loopback through
# Autodiscover and EWS with S2S tokens (bench/history/history_bench.rs); prints JSON figures.
#
#   bench/history/run.sh [--conversations N] [--messages M]   (PROFILE=debug for a quick look)
#
# Figures go to docs/BENCHMARKS.md by hand, with the command, the date and the machine's load.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
profile=${PROFILE:-release}
flag=--release
[ "$profile" = debug ] && flag=
cargo build $flag --locked -p tandem-frontend --example history_bench
bin_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/$profile
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin_dir/examples/history_bench" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
