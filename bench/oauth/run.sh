#!/usr/bin/env bash
# S2S token cost, first and cached, with PyJWT verifying the same token as the peer.
#   bench/oauth/run.sh [ITERATIONS]     (release build; results go to docs/BENCHMARKS.md by hand)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
n=${1:-2000}
sample=$(mktemp)
cargo run --release -q -p tandem-oauth --example oauth_bench -- "$n" "$sample"
venv=${TANDEM_TEST_VENV:-$here/.venv}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import jwt' 2>/dev/null; then
  "$venv/bin/python" bench/oauth/peer_pyjwt.py "$sample" "$n"
else
  echo '{"pyjwt_verify_actor_us": null, "note": "no Python environment with PyJWT; run scripts/test.sh first"}'
fi
rm -f "$sample"
