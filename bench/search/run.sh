#!/usr/bin/env bash
# Search benchmark (issue 13, deliverable 8), release build, data layer of the Mailbox:
#   bench/search/run.sh [ITEMS] [MAILBOXES]        (SEARCH_BENCH_PG=1 for PostgreSQL)
# Prints one JSON line: items written per second (index included), QueryString and eDiscovery
# p50/p99 in ms, index bytes (where the backend can tell) and database bytes.
set -euo pipefail
export SEARCH_BENCH_ITEMS=${1:-100000} SEARCH_BENCH_MAILBOXES=${2:-100}
cd "$(dirname "$0")/../.."
cargo test --release -p tandem-mailbox --lib search_bench -- --ignored --nocapture 2>&1 | grep '^{'
