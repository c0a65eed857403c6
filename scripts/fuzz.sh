#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer, on the stable toolchain without
# sanitizers) for a bounded time or a bounded number of executions, each from a copy of its seed
# corpus so the repository's corpus stays as committed. A crash, a leak of the time or memory limit,
# or a panic fails the run and leaves the reproducer in the printed artifact folder.
#
#   scripts/fuzz.sh                   smoke run: 10 s per target (the test command runs this)
#   scripts/fuzz.sh --seconds 60      longer time-boxed run
#   scripts/fuzz.sh --runs 10000000   campaign: ten million executions per target
#   scripts/fuzz.sh --target sip_message --runs 10000000
#
# Environment: TANDEM_FUZZ_TARGET_DIR (cargo target directory for the instrumented build; default
# fuzz/target). Installs cargo-fuzz with `cargo install` when it is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
seconds=10
runs=""
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --target) only=$2; shift 2 ;;
    *) echo "usage: scripts/fuzz.sh [--seconds N | --runs N] [--target NAME]" >&2; exit 2 ;;
  esac
done

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export CARGO_TARGET_DIR=${TANDEM_FUZZ_TARGET_DIR:-$here/fuzz/target}
cd "$here/fuzz"
cargo fuzz build -s none -O

work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
passed=0
for t in $(cargo fuzz list); do
  [ -z "$only" ] || [ "$t" = "$only" ] || continue
  mkdir -p "$work/$t" "$work/artifacts/$t"
  if [ -d "corpus/$t" ]; then cp -r "corpus/$t/." "$work/$t/"; fi
  if [ -n "$runs" ]; then limit=(-runs="$runs"); else limit=(-max_total_time="$seconds"); fi
  start=$(date +%s)
  if out=$(cargo fuzz run "$t" -s none -O "$work/$t" -- "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 2>&1); then
    execs=$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -n 1)
    printf 'fuzz %-18s ok   %10s executions in %4d s\n' "$t" "${execs:-?}" "$(( $(date +%s) - start ))"
    passed=$((passed + 1))
  else
    printf 'fuzz %-18s FAILED; last lines:\n' "$t"
    printf '%s\n' "$out" | tail -n 30
    # Keep the reproducer where the operator can read it after the temporary folder goes.
    keep="$here/fuzz/artifacts/$t"
    mkdir -p "$keep" && cp -r "$work/artifacts/$t/." "$keep/" 2>/dev/null || true
    echo "reproducer(s) in $keep"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
