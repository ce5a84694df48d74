#!/usr/bin/env bash
# The README's second command (and what CI runs): installs what the build and the tests need,
# builds, and runs every test. Exits with ctest's status, or, when ctest passed, 1 if a test
# did not run (it skipped) and launch/allowed_skips.txt does not list it. Either way it names
# such tests (launch/lib/check_skips.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly ALLOWED_SKIPS=launch/allowed_skips.txt
# ctest's report of every test, from which check_skips.sh reads the skips; ctest takes the path
# relative to the build folder.
readonly JUNIT_NAME=ctest-junit.xml

./launch/install_deps.sh
./launch/build.sh
rm -f "build/$JUNIT_NAME"
# Two tests at a time: cluster tests start several processes each. The timeout bounds a hung
# test instead of hanging CI.
status=0
ctest --test-dir build --output-on-failure -j2 --timeout 300 --output-junit "$JUNIT_NAME" ||
  status=$?
skips=0
if ((status == 0)) || [[ -f "build/$JUNIT_NAME" ]]; then
  ./launch/lib/check_skips.sh "build/$JUNIT_NAME" "$ALLOWED_SKIPS" || skips=$?
fi
if ((status != 0)); then exit "$status"; fi
exit "$skips"
