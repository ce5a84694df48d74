#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer, run before an
# issue is resolved (not in CI: a cold build of everything takes about half an hour on 2 cores;
# docs/testing.md). Configures build-asan/ with -DGRANARY_SANITIZE=ON (g++, every library,
# binary and test instrumented), builds everything and runs ctest. Any sanitizer report fails
# the run: the process that made it aborts (so a test fails), and each report is also written
# to build-asan/sanitizer-reports/, where the reports of processes a test started (servers,
# workers, the scheduler) land too, even when the test survives their death. Ends with the
# counts of passed, failed and skipped tests, the skipped tests with their reasons, and the
# reports. Exits 1 on a failed test or any report, 2 if the build fails.
#
#   tests/sanitize.sh                       # everything
#   tests/sanitize.sh -R 'MessageTest|Dat'  # some tests: the arguments go to ctest
#
# Environment (defaults in brackets): SANITIZE_BUILD_DIR [build-asan]; SANITIZE_JOBS [2] build
# jobs and tests at a time; SANITIZE_TIMEOUT_FACTOR [3] how many times the normal per-test
# timeout (GRANARY_TEST_TIMEOUT, 300 s) a test gets: ASan and UBSan make the tests 2-3 times
# slower, more where a test starts many processes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

readonly BUILD_DIR="${SANITIZE_BUILD_DIR:-build-asan}"
readonly JOBS="${SANITIZE_JOBS:-2}"
readonly TIMEOUT_FACTOR="${SANITIZE_TIMEOUT_FACTOR:-3}"
readonly NORMAL_TEST_TIMEOUT=300  # GRANARY_TEST_TIMEOUT's default in tests/CMakeLists.txt
readonly JUNIT_NAME=ctest-junit.xml
readonly REPORTS="$repo/$BUILD_DIR/sanitizer-reports"

launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
build_start=$SECONDS
if ! cmake -S . -B "$BUILD_DIR" -DGRANARY_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRANARY_TEST_TIMEOUT=$((NORMAL_TEST_TIMEOUT * TIMEOUT_FACTOR)) "${launcher[@]}" >/dev/null ||
  ! cmake --build "$BUILD_DIR" --parallel "$JOBS"; then
  echo "sanitize.sh: the build in $BUILD_DIR failed" >&2
  exit 2
fi
build_seconds=$((SECONDS - build_start))
echo "sanitize.sh: built $BUILD_DIR in ${build_seconds} s"

# halt_on_error and abort_on_error: the first report kills the process with SIGABRT, so that
# neither a test nor a child process goes on past it. detect_leaks: a leak at exit is a report
# (exit code 23) as well. log_path: each report also goes to a file named by its pid
# (asan.<pid>, ubsan.<pid>), which the environment passes to every process a test starts.
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$REPORTS/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan"

rm -f "$BUILD_DIR/$JUNIT_NAME"
run_start=$SECONDS
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --output-junit "$JUNIT_NAME" "$@" ||
  status=$?
run_seconds=$((SECONDS - run_start))

junit="$BUILD_DIR/$JUNIT_NAME"
passed=0 failed=0 skipped=0
if [[ -f "$junit" ]]; then
  # ctest writes one <testcase ...> tag a line; its status is run, fail, notrun or disabled.
  read -r passed failed skipped < <(awk '
    /<testcase / && match($0, /status="[^"]*"/) {
      s = substr($0, RSTART + 8, RLENGTH - 9)
      if (s == "run") p++; else if (s == "fail") f++; else n++
    }
    END { print p + 0, f + 0, n + 0 }' "$junit")
  if ((skipped > 0)); then
    echo
    echo "sanitize.sh: skipped, with the reason each gave:"
    ./launch/lib/list_skips.sh "$junit" | sed -e 's/^TEST /  /' -e 's/^WHY /      /'
  fi
fi

reports=()
while IFS= read -r -d '' report; do reports+=("$report"); done \
  < <(find "$REPORTS" -type f -print0 | sort -z)
for report in "${reports[@]}"; do
  echo
  echo "sanitize.sh: sanitizer report $report (first 40 lines):"
  head -n 40 "$report"
done

echo
echo "sanitize.sh: $((passed + failed + skipped)) tests: $passed passed, $failed failed," \
  "$skipped skipped; ${#reports[@]} sanitizer reports; build ${build_seconds} s," \
  "tests ${run_seconds} s"
if ((status != 0 || ${#reports[@]} > 0)); then exit 1; fi
exit 0
