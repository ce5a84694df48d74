#!/usr/bin/env bash
# Fails a test run in which a test did not run (GTEST_SKIP, or a DISABLED_ test) unless the
# allow-list names it: CI runs every test it has, and a skip for a missing package or file
# must not pass unseen. Run by launch/test.sh after ctest:
#
#   launch/lib/check_skips.sh JUNIT_FILE ALLOW_LIST
#
# JUNIT_FILE is ctest's --output-junit report. ALLOW_LIST (launch/allowed_skips.txt) holds one
# test a line: its ctest name (`ctest --test-dir build -N` lists them), blanks, and why it may
# skip; `#` starts a comment. Exits 0 if every test that did not run is listed; 1 after naming
# each one that is not, with the reason it gave; 2 if a file is missing or an entry gives no
# reason.
set -euo pipefail

die() {
  echo "check_skips.sh: $*" >&2
  exit 2
}

(($# == 2)) || die "usage: launch/lib/check_skips.sh JUNIT_FILE ALLOW_LIST"
junit="$1"
allow_list="$2"
[[ -f "$junit" && -r "$junit" ]] || die "no ctest report at '$junit'"
[[ -f "$allow_list" && -r "$allow_list" ]] || die "no allow-list at '$allow_list'"

declare -A allowed=()
number=0
while IFS= read -r line || [[ -n "$line" ]]; do
  number=$((number + 1))
  name=""
  reason=""
  read -r name reason <<<"${line%%#*}" || true
  [[ -n "$name" ]] || continue
  [[ -n "$reason" ]] || die "$allow_list:$number: '$name' needs the reason it may skip"
  allowed[$name]=1
done <"$allow_list"

# "TEST name" for each test that did not run, then "WHY line" for the reason it gave.
not_run="$("$(dirname "${BASH_SOURCE[0]}")/list_skips.sh" "$junit")"

unlisted=()
report=""
listed=0
while IFS= read -r line; do
  case "$line" in
    "TEST "*)
      name="${line#TEST }"
      if [[ -n "${allowed[$name]+set}" ]]; then
        listed=0
      else
        listed=1
        unlisted+=("$name")
        report+="  $name"$'\n'
      fi ;;
    "WHY "*) if ((listed)); then report+="      ${line#WHY }"$'\n'; fi ;;
  esac
done <<<"$not_run"

((${#unlisted[@]} == 0)) && exit 0
{
  echo
  echo "check_skips.sh: FAILED: ${#unlisted[@]} test(s) did not run and are not listed in" \
    "$allow_list:"
  printf '%s' "$report"
  echo "Make each run (launch/install_deps.sh installs what the tests need), or add it to"
  echo "$allow_list with the reason it may skip."
} >&2
exit 1
