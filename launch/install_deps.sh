#!/usr/bin/env bash
# Installs the Debian 12 packages Granary's build needs. Safe to run again: when everything is
# already installed it only asks dpkg and never touches the network, so quickstart.sh and
# test.sh can call it on every run, offline too.
set -euo pipefail

# Exactly what CMakeLists.txt finds, plus the compiler toolchain. RocksDB and Eigen are not
# linked yet; they are listed now so the storage and optimizer work needs no new setup step.
readonly PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev cppzmq-dev
  libprotobuf-dev protobuf-compiler
  librocksdb-dev
  libgflags-dev libgoogle-glog-dev
  libeigen3-dev libabsl-dev
  libgtest-dev libgmock-dev
  libxxhash-dev zlib1g-dev
  # Not for the build: launch/daily.sh writes its day report with jq.
  jq
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_deps.sh: dpkg-query not found; this script supports Debian 12 (bookworm)." >&2
  echo "Install these packages (or your system's equivalents) by hand: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for package in "${PACKAGES[@]}"; do
  # "installed" only: a package that was removed but not purged reports "config-files".
  status="$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)"
  if [[ "$status" != "installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install_deps.sh: all ${#PACKAGES[@]} build packages are installed."
  exit 0
fi

if ((EUID != 0)); then
  echo "install_deps.sh: missing packages: ${missing[*]}" >&2
  echo "Install them as root, then run this again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "install_deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# --no-install-recommends keeps a fresh image small; everything needed is a hard dependency.
apt-get install -y --no-install-recommends "${missing[@]}"
echo "install_deps.sh: done."
