#!/usr/bin/env bash
# Installs the Debian 12 packages Granary's build and every one of its tests need. Safe to run
# again: when everything is already installed it only asks dpkg and never touches the network,
# so quickstart.sh and test.sh can call it on every run, offline too.
set -euo pipefail

# What CMakeLists.txt finds, plus the compiler toolchain, plus the tools tests run. A test
# whose tool is missing skips, and launch/test.sh fails a run with a skip that
# launch/allowed_skips.txt does not list: a tool a test needs belongs here.
readonly PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev cppzmq-dev
  libprotobuf-dev protobuf-compiler
  librocksdb-dev
  libgflags-dev libgoogle-glog-dev
  libeigen3-dev libabsl-dev
  libgtest-dev libgmock-dev
  libxxhash-dev zlib1g-dev
  # granary_serve's HTTP server (worker/serve/), found through pkg-config cpp-httplib.
  libcpp-httplib-dev
  # Not for the build: launch/daily.sh writes its day report with jq (daily_test).
  jq
  # Not for the build: slurm_launch_test starts a single-node Slurm of its own (munged,
  # slurmctld, slurmd as root) and submits launch/slurm.sbatch to it.
  slurm-wlm munge
  # Not for the build: .ci/run builds the fuzz targets (fuzz/) with clang and libFuzzer.
  clang-14 libfuzzer-14-dev
  # Not for the build: describe_train_test writes its stream with tests/bench/synthetic_stream.py.
  python3
)
# The services those packages enable and start on a machine run by systemd. The test starts
# daemons of its own, so a machine that had none of these gets none running as a side effect.
readonly TEST_ONLY_SERVICES=(munge slurmctld slurmd)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_deps.sh: dpkg-query not found; this script supports Debian 12 (bookworm)." >&2
  echo "Install these packages (or your system's equivalents) by hand: ${PACKAGES[*]}" >&2
  exit 1
fi

# "installed" only: a package that was removed but not purged reports "config-files".
installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]; }

missing=()
for package in "${PACKAGES[@]}"; do
  installed "$package" || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
  echo "install_deps.sh: all ${#PACKAGES[@]} packages are installed."
  exit 0
fi

if ((EUID != 0)); then
  echo "install_deps.sh: missing packages: ${missing[*]}" >&2
  echo "Install them as root, then run this again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

# Each service is packaged under its own name; one that was installed before is left alone.
new_services=()
for service in "${TEST_ONLY_SERVICES[@]}"; do
  installed "$service" || new_services+=("$service")
done

echo "install_deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# --no-install-recommends keeps a fresh image small; everything needed is a hard dependency.
apt-get install -y --no-install-recommends "${missing[@]}"
if ((${#new_services[@]} > 0)) && [[ -d /run/systemd/system ]]; then
  systemctl disable --now "${new_services[@]}" ||
    echo "install_deps.sh: warning: could not disable ${new_services[*]}" >&2
fi
echo "install_deps.sh: done."
