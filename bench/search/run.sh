#!/usr/bin/env bash
# Search benchmark (issue 13, deliverable 8), release build, through the running servers:
#   bench/search/run.sh [--items N] [--mailboxes M] [--users U] [--queries Q] [--pg]
# Seeds N transcripts over M mailboxes through the Mailbox's data layer (written per second with
# the index, index bytes per transcript), then times FindItem QueryString over EWS for U of the
# users and `tandem ediscovery search` across every mailbox (bench/search/bench.py). --pg puts
# the mailbox store on PostgreSQL at 127.0.0.1:5432 (user postgres, trust).
# Without arguments on the data layer alone, as before: bench/search/run.sh --data-layer ITEMS MAILBOXES
# Figures go to docs/BENCHMARKS.md by hand, with the command and the machine's load.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
if [ "${1:-}" = "--data-layer" ]; then
  export SEARCH_BENCH_ITEMS=${2:-100000} SEARCH_BENCH_MAILBOXES=${3:-100}
  cargo test --release -p tandem-mailbox --lib search_bench -- --ignored --nocapture 2>&1 | grep '^{'
  exit
fi
cargo build --release --locked -p tandem
cargo test --release --locked -p tandem-mailbox --lib --no-run
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
venv=${TANDEM_TEST_VENV:-$here/.venv}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
TANDEM_BIN="$target_dir/release/tandem" "$venv/bin/python" bench/search/bench.py "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
