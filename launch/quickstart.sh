#!/usr/bin/env bash
# The README's first command: installs what the build needs, builds, and runs the push/pull
# demo on a local cluster of 2 servers and 2 workers. Every worker checks the rows it pulls
# against the updates all workers pushed and logs "rows match" when they agree.
set -euo pipefail

readonly SERVERS=2
readonly WORKERS=2

# The launch scripts and the config are addressed from the repository root, wherever we are.
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./launch/install_deps.sh
./launch/build.sh

run_dir="$PWD/run/quickstart-$(date +%Y%m%d-%H%M%S)"
echo
echo "quickstart.sh: starting $SERVERS servers + $WORKERS workers, logs in $run_dir"
# local.sh prints which process failed and the end of its log, so a failure needs no more here.
./launch/local.sh --servers "$SERVERS" --workers "$WORKERS" --config configs/demo.pbtxt \
  --job demo --run_dir "$run_dir"

echo
matched=0
for ((i = 0; i < WORKERS; i++)); do
  log="$run_dir/worker-$i.log"
  if line="$(grep -m1 "rows match" "$log")"; then
    echo "worker-$i: $line"
    matched=$((matched + 1))
  else
    echo "worker-$i: no 'rows match' line in $log" >&2
  fi
done
if ((matched != WORKERS)); then
  echo "quickstart.sh: FAILED: $matched of $WORKERS workers confirmed their rows" >&2
  exit 1
fi
echo
echo "quickstart.sh: OK: $SERVERS servers + $WORKERS workers ran the push/pull demo;" \
  "every worker's pulled rows match the pushed updates. Logs in $run_dir"
