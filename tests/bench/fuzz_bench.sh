#!/usr/bin/env bash
# The fuzzing benchmark (docs/performance.md, docs/testing.md "Fuzzing"): every fuzz target, or
# those named, for FUZZ_RUNS executions each (default 1,000,000), through fuzz/run_fuzzers.sh,
# which builds them and prints the table: executions, seconds, seed and new coverage, and the
# counts of crashes (every ASan and UBSan report among them), leaks, timeouts and ooms. The
# target is zero reports in 1 M executions of each. Each target runs in one libFuzzer process,
# not -fork mode: it stops at its first report, so a count is 0 or 1 and its input is saved in
# build-fuzz/fuzz-artifacts/. Exits 1 if any target reported.
#
#   tests/bench/fuzz_bench.sh                          # all targets, 1 M executions each
#   FUZZ_RUNS=100000 tests/bench/fuzz_bench.sh message # one target, shorter
#
# Environment: as fuzz/run_fuzzers.sh, with FUZZ_RUNS [1000000] and FUZZ_TARGET_TIMEOUT [3600]
# seconds for one target's whole run (the slowest took about 2 minutes per million here).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export FUZZ_RUNS="${FUZZ_RUNS:-1000000}"
export FUZZ_TARGET_TIMEOUT="${FUZZ_TARGET_TIMEOUT:-3600}"
exec "$repo/fuzz/run_fuzzers.sh" "$@"
