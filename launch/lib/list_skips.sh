#!/usr/bin/env bash
# Lists the tests of a ctest run that did not run (GTEST_SKIP, or a DISABLED_ test), with the
# reason each gave; launch/lib/check_skips.sh and tests/sanitize.sh read it:
#
#   launch/lib/list_skips.sh JUNIT_FILE
#
# JUNIT_FILE is ctest's --output-junit report. Prints "TEST name" for each such test, then
# "WHY line" for each line of the message GTEST_SKIP gave (between gtest's "file:line: Skipped"
# and "[  SKIPPED ]"). Exits 2 if the file is missing.
set -euo pipefail

(($# == 1)) || {
  echo "list_skips.sh: usage: launch/lib/list_skips.sh JUNIT_FILE" >&2
  exit 2
}
[[ -f "$1" && -r "$1" ]] || {
  echo "list_skips.sh: no ctest report at '$1'" >&2
  exit 2
}

# ctest writes one <testcase ...> tag a line; status "notrun" (a skip) or "disabled" means the
# test did not run.
awk '
  /<testcase / {
    name = ""; status = ""
    if (match($0, /name="[^"]*"/)) name = substr($0, RSTART + 6, RLENGTH - 7)
    if (match($0, /status="[^"]*"/)) status = substr($0, RSTART + 8, RLENGTH - 9)
    in_case = (status == "notrun" || status == "disabled")
    in_reason = 0
    if (in_case) print "TEST " name
    next
  }
  /<\/testcase>/ { in_case = 0; next }
  in_case && /^\[  SKIPPED \]/ { in_reason = 0 }
  in_case && in_reason {
    gsub(/&lt;/, "<"); gsub(/&gt;/, ">"); gsub(/&quot;/, "\""); gsub(/&apos;/, "'\''")
    gsub(/&amp;/, "\\&")
    print "WHY " $0
  }
  in_case && /: Skipped$/ { in_reason = 1 }
' "$1"
