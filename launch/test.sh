#!/usr/bin/env bash
# The README's second command (and what CI runs): installs what the build needs, builds, and
# runs every test. Exits with ctest's status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

./launch/install_deps.sh
./launch/build.sh
# Two tests at a time: cluster tests start several processes each. The timeout bounds a hung
# test instead of hanging CI.
exec ctest --test-dir build --output-on-failure -j2 --timeout 300
