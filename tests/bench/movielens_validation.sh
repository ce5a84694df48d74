#!/usr/bin/env bash
# Reproduces the model-selection runs of docs/experiments.md on MovieLens-100K: trains a job
# config on the validation split (train on train-00..06, evaluate on train-07) and, with
# --eval, on the eval split the quickstart uses (every train file, evaluated on eval.tsv.gz),
# on a local cluster of 2 servers and 2 workers, and prints each run's epoch-5 metrics. A
# study tool, like movielens_baselines.py: choices are made on the validation column only.
#
#   tests/bench/movielens_validation.sh [--job_config FILE] [--runs N] [--eval]
#       [--movielens_dir DIR] [--work_dir DIR]
#
# --job_config     default configs/movielens_dupn.pbtxt (its cluster: movielens_dupn_cluster)
# --runs           runs per split (asynchronous runs differ by about 0.001), default 2
# --eval           also run the eval split
# --movielens_dir  default ../shared/data/movielens-100k next to the repository
# --work_dir       converted data and run folders; default a new temporary folder, removed at
#                  the end unless a run failed
# Needs a built tree (launch/build.sh).
set -euo pipefail

readonly USAGE="usage: tests/bench/movielens_validation.sh [--job_config FILE] [--runs N] [--eval]
       [--movielens_dir DIR] [--work_dir DIR]"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
job_config="$repo/configs/movielens_dupn.pbtxt"
runs=2
with_eval=0
movielens_dir="$repo/../shared/data/movielens-100k"
work_dir=""
while (($# > 0)); do
  case "$1" in
    --job_config) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; job_config="$2"; shift 2 ;;
    --runs) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; runs="$2"; shift 2 ;;
    --eval) with_eval=1; shift ;;
    --movielens_dir) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; movielens_dir="$2"; shift 2 ;;
    --work_dir) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; work_dir="$2"; shift 2 ;;
    --help | -h) echo "$USAGE"; exit 0 ;;
    *) echo "movielens_validation.sh: unknown argument '$1'"$'\n'"$USAGE" >&2; exit 1 ;;
  esac
done
fail() { echo "movielens_validation.sh: $*" >&2; exit 1; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || fail "--runs must be >= 1"
[[ -f "$job_config" ]] || fail "no job config '$job_config'"
job_config="$(cd "$(dirname "$job_config")" && pwd)/$(basename "$job_config")"
[[ -x "$repo/build/granary_movielens_convert" ]] || fail "build first (launch/build.sh)"
temporary=0
if [[ -z "$work_dir" ]]; then
  work_dir="$(mktemp -d /tmp/movielens_validation-XXXXXX)"
  temporary=1
fi
mkdir -p "$work_dir"

data="$work_dir/data"
"$repo/build/granary_movielens_convert" --input_dir="$movielens_dir" --output_dir="$data" >/dev/null
# The validation split: the first 7 of the 8 time-ordered train files, the 8th as its eval file.
validation="$work_dir/validation"
mkdir -p "$validation"
for k in 00 01 02 03 04 05 06; do ln -sf "$data/train-$k.tsv.gz" "$validation/train-$k.tsv.gz"; done
ln -sf "$data/train-07.tsv.gz" "$validation/eval.tsv.gz"

splits=(validation)
((with_eval)) && splits+=(eval)
for split in "${splits[@]}"; do
  split_data="$validation"
  [[ "$split" == eval ]] && split_data="$data"
  for ((run = 1; run <= runs; ++run)); do
    run_dir="$work_dir/runs/$split-$run"
    rm -rf "$run_dir"
    mkdir -p "$run_dir"
    if ! "$repo/launch/local.sh" --servers 2 --workers 2 \
      --config "$repo/configs/movielens_dupn_cluster.pbtxt" --job train --run_dir "$run_dir" \
      --worker_flags "--job_config=$job_config --data_dir=$split_data --output_dir=$run_dir" \
      >"$run_dir/local.out" 2>&1; then
      tail -5 "$run_dir/local.out" >&2
      fail "$split run $run failed; see $run_dir/local.out"
    fi
    # Worker rank 0 logs the merged metrics; the last epoch's lines are the result.
    last_epoch="$(grep -h "\] epoch [0-9]* eval " "$run_dir"/worker-*.log | tail -1 |
      sed 's/.*\] epoch \([0-9]*\) eval .*/\1/')"
    grep -h "\] epoch $last_epoch eval " "$run_dir"/worker-*.log |
      sed "s/^.*\] epoch [0-9]* eval /$split run $run: /"
  done
done
((temporary)) && rm -rf "$work_dir"
exit 0
