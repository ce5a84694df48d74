#!/usr/bin/env bash
# Configures and builds Granary into build/ at the repository root, from any directory.
# CMAKE_BUILD_TYPE (environment) overrides the default RelWithDebInfo: optimized, and still
# debuggable when a role crashes on a cluster.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$repo/build"
build_type="${CMAKE_BUILD_TYPE:-RelWithDebInfo}"

cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type"
# cmake --build runs `make -j N` for the default generator, and also works if build/ was
# configured with another generator (e.g. Ninja).
cmake --build "$build_dir" --parallel "$(nproc)"

echo
echo "build.sh: $build_type build in $build_dir:"
for binary in granary_scheduler granary_server granary_worker granary_ctl; do
  echo "  $build_dir/$binary"
done
