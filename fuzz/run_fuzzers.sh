#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/CMakeLists.txt: clang-14, libFuzzer, ASan, UBSan) into
# build-fuzz/ and runs each for a fixed number of executions from its seed corpus
# (fuzz/corpus/<target>). Exits 1, naming the target and the input it saved, on the first
# crash, sanitizer report, timeout or memory blow-up; .ci/run calls it after launch/test.sh.
# Prints per target its executions, seconds, coverage reached by the seeds, coverage found
# since (new_cov, in libFuzzer's coverage points), the reports by kind (crashes, which include
# every ASan and UBSan report, leaks, timeouts, ooms) and the result. A target runs in one
# process (not libFuzzer's -fork mode), which stops at its first report, so each count is 0 or 1
# and a 1 ends that target's run. tests/bench/fuzz_bench.sh runs it with FUZZ_RUNS=1000000: the
# fuzzing benchmark (docs/testing.md), whose target is no report in 1 M executions of each.
#
#   fuzz/run_fuzzers.sh                      # every target, FUZZ_RUNS executions each
#   FUZZ_RUNS=1000000 fuzz/run_fuzzers.sh delta_file vector_file
#
# Environment (defaults in brackets): FUZZ_RUNS [20000] executions per target; FUZZ_BUILD_DIR
# [build-fuzz]; FUZZ_JOBS [nproc] build jobs; FUZZ_TARGET_TIMEOUT [600] seconds a whole run of
# one target may take; FUZZ_INPUT_TIMEOUT [10] seconds one input may take (libFuzzer -timeout);
# FUZZ_RSS_LIMIT_MB [2048] memory of a target process (libFuzzer -rss_limit_mb).
# The committed corpus is never written: new inputs go to a scratch copy, which is removed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

readonly ALL_TARGETS=(message server_request config job_config tsv_line delta_file vector_file
  checkpoint_manifest wire_codec)
readonly RUNS="${FUZZ_RUNS:-20000}"
readonly BUILD_DIR="${FUZZ_BUILD_DIR:-build-fuzz}"
readonly JOBS="${FUZZ_JOBS:-$(nproc)}"
readonly TARGET_TIMEOUT="${FUZZ_TARGET_TIMEOUT:-600}"
readonly INPUT_TIMEOUT="${FUZZ_INPUT_TIMEOUT:-10}"
readonly RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-2048}"
readonly COMPILER=clang++-14

targets=("$@")
((${#targets[@]} > 0)) || targets=("${ALL_TARGETS[@]}")

if ! command -v "$COMPILER" >/dev/null 2>&1; then
  echo "run_fuzzers.sh: $COMPILER not found; run launch/install_deps.sh (clang-14," \
    "libfuzzer-14-dev)." >&2
  exit 1
fi

launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
build_start=$SECONDS
cmake -S . -B "$BUILD_DIR" -DGRANARY_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$COMPILER" "${launcher[@]}" >/dev/null
fuzzers=()
for target in "${targets[@]}"; do fuzzers+=("${target}_fuzzer"); done
cmake --build "$BUILD_DIR" --parallel "$JOBS" --target "${fuzzers[@]}"
echo "run_fuzzers.sh: built ${#fuzzers[@]} targets in $((SECONDS - build_start)) s"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/granary-fuzz-run.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
artifacts="$BUILD_DIR/fuzz-artifacts"
mkdir -p "$artifacts"

# One row per target: executions, seconds, coverage after the seeds and at the end (its
# growth is the new coverage), the count of each kind of report (0 or 1: libFuzzer stops at the
# first) and the result: ok, or what stopped it (crash, leak, timeout, oom, or the whole run
# over FUZZ_TARGET_TIMEOUT, which is counted as a timeout).
readonly row_format='%-20s %12s %8s %9s %8s %8s %6s %9s %5s  %s'
rows=()
failed=()
for target in "${targets[@]}"; do
  seeds="fuzz/corpus/$target"
  if [[ ! -d "$seeds" ]]; then
    echo "run_fuzzers.sh: unknown target '$target' (no $seeds)" >&2
    exit 1
  fi
  corpus="$scratch/$target"
  mkdir -p "$corpus"
  log="$BUILD_DIR/fuzz-$target.log"
  start=$SECONDS
  status=0
  # New inputs go to $corpus; the seeds are read only. A failing input is saved as
  # $artifacts/<target>-crash-<sha1> (or -leak-, -timeout-, -oom-).
  timeout "$TARGET_TIMEOUT" "$BUILD_DIR/fuzz/${target}_fuzzer" -runs="$RUNS" \
    -timeout="$INPUT_TIMEOUT" -rss_limit_mb="$RSS_LIMIT_MB" \
    -artifact_prefix="$artifacts/$target-" "$corpus" "$seeds" >"$log" 2>&1 || status=$?
  seconds=$((SECONDS - start))
  # libFuzzer's status lines: "#<n> INITED cov: <c> ..." and "#<n> DONE cov: <c> ...".
  seed_cov="$(sed -n 's/^#[0-9]*[[:space:]]*INITED cov: \([0-9]*\).*/\1/p' "$log" | tail -1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
  executions="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")"
  end_cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  result=ok
  declare -A reports=([crash]=0 [leak]=0 [timeout]=0 [oom]=0)
  if ((status != 0)); then
    if grep -q 'ERROR: LeakSanitizer' "$log"; then
      result=leak
    elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
      result=timeout
    elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
      result=oom
    elif ((status == 124)); then
      result="over ${TARGET_TIMEOUT}s"
    else
      result=crash
    fi
    case "$result" in
      crash | leak | timeout | oom) reports[$result]=1 ;;
      *) reports[timeout]=1 ;;
    esac
    echo "run_fuzzers.sh: $target: $result (exit $status); log $log:" >&2
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|deadly signal' "$log" | head -20 >&2 ||
      true
    failed+=("$target")
  fi
  new_cov=$((${end_cov:-0} - ${seed_cov:-0}))
  rows+=("$(printf "$row_format" "$target" "${executions:-0}" "$seconds" "${seed_cov:-?}" \
    "+$new_cov" "${reports[crash]}" "${reports[leak]}" "${reports[timeout]}" \
    "${reports[oom]}" "$result")")
done

printf "$row_format\n" target executions seconds seed_cov new_cov crashes leaks timeouts ooms \
  result
printf '%s\n' "${rows[@]}"
if ((${#failed[@]} > 0)); then
  echo "run_fuzzers.sh: failed: ${failed[*]} (inputs in $artifacts)" >&2
  exit 1
fi
echo "run_fuzzers.sh: all ${#targets[@]} targets ran $RUNS executions without a report."
