#!/usr/bin/env bash
# The README's first command: installs what the build and the tests need
# (launch/install_deps.sh), builds, converts MovieLens-100K and trains the DUPN multi-task model
# (configs/movielens_dupn.pbtxt) on a local cluster of 2 servers and 2 workers, then prints the
# evaluation metrics of every epoch (merged over both workers' predictions).
#
#   launch/quickstart.sh [--movielens_dir DIR] [--demo]
#
# --movielens_dir  the unpacked ml-100k folder (u.data, u.user, u.item, u.genre); default
#                  ../shared/data/movielens-100k next to the repository
# --demo           run the push/pull demo instead of training: every worker checks the rows it
#                  pulls against the updates all workers pushed and logs "rows match"
set -euo pipefail

readonly SERVERS=2
readonly WORKERS=2
readonly USAGE="usage: launch/quickstart.sh [--movielens_dir DIR] [--demo]"

# The launch scripts and the configs are addressed from the repository root, wherever we are.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"

movielens_dir="$repo/../shared/data/movielens-100k"
demo=0
while (($# > 0)); do
  case "$1" in
    --movielens_dir) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; movielens_dir="$2"; shift 2 ;;
    --movielens_dir=*) movielens_dir="${1#*=}"; shift ;;
    --demo) demo=1; shift ;;
    --help | -h) echo "$USAGE"; exit 0 ;;
    *) echo "quickstart.sh: unknown argument '$1'"$'\n'"$USAGE" >&2; exit 1 ;;
  esac
done
if ((!demo)) && [[ ! -f "$movielens_dir/u.data" ]]; then
  echo "quickstart.sh: no MovieLens-100K in '$movielens_dir' (need u.data, u.user, u.item," \
    "u.genre from https://files.grouplens.org/datasets/movielens/ml-100k.zip);" \
    "pass --movielens_dir DIR, or --demo" >&2
  exit 1
fi

./launch/install_deps.sh
./launch/build.sh

run_dir="$repo/run/quickstart-$(date +%Y%m%d-%H%M%S)"

if ((demo)); then
  echo
  echo "quickstart.sh: starting $SERVERS servers + $WORKERS workers, logs in $run_dir"
  # local.sh prints which process failed and the end of its log, so a failure needs no more.
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
  exit 0
fi

data_dir="$run_dir/movielens"
mkdir -p "$data_dir"
echo
echo "quickstart.sh: converting $movielens_dir into $data_dir"
./build/granary_movielens_convert --input_dir="$movielens_dir" --output_dir="$data_dir"

echo
echo "quickstart.sh: training DUPN on $SERVERS servers + $WORKERS workers, logs in $run_dir"
./launch/local.sh --servers "$SERVERS" --workers "$WORKERS" \
  --config configs/movielens_dupn_cluster.pbtxt --job train --run_dir "$run_dir" \
  --worker_flag "--job_config=$repo/configs/movielens_dupn.pbtxt" \
  --worker_flag "--data_dir=$data_dir" --worker_flag "--output_dir=$run_dir"

echo
# Worker rank 0 (whichever log it is) merges the evaluation and logs the metrics.
if ! grep -h "\] worker [0-9]* epoch [0-9]* trained: " "$run_dir"/worker-*.log | sed 's/^.*\] /  /'; then
  echo "quickstart.sh: FAILED: no training summary in $run_dir/worker-*.log" >&2
  exit 1
fi
echo
if ! grep -h "\] epoch [0-9]* eval " "$run_dir"/worker-*.log | sed 's/^.*\] /  /'; then
  echo "quickstart.sh: FAILED: no evaluation metrics in $run_dir/worker-*.log" >&2
  exit 1
fi
echo
echo "quickstart.sh: OK: trained DUPN on MovieLens-100K with $SERVERS servers + $WORKERS" \
  "workers; metrics (one JSON line per epoch) in $run_dir/metrics.jsonl, logs in $run_dir"
