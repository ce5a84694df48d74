#!/usr/bin/env bash
# Measures granary_describe's starter configs on data the project has never seen: the synthetic
# stream of tests/bench/synthetic_stream.py, whose planted model gives the Bayes ceiling.
# Generates the stream, runs granary_describe on its first file, then trains the written job
# with the written cluster config ("describe") and with each optimizer setting of a small sweep
# of the embedding table, on the validation split (train on train-00..06, evaluate on
# train-07) and, with --eval, on the eval split (every train file, evaluated on eval.tsv). Each
# run is a local cluster of 1 server and 1 worker. Prints one line per run and epoch: each
# task's metric, beside the planted model's (bayes.json). Choose on validation only.
#
#   tests/bench/describe_sweep.sh [--rows N] [--seed S] [--runs N] [--epochs N] [--eval]
#       [--settings LIST] [--work_dir DIR]
#
# --rows      rows of the stream, default 150000 (the size of issue 18's new user's stream)
# --seed      of the stream, default 1
# --runs      runs per setting and split (asynchronous runs differ slightly), default 1
# --epochs    train this many epochs instead of the written job's (every epoch is printed)
# --eval      also run the eval split
# --settings  comma-separated, default all: describe (the written cluster config: Adam 0.003
#             on the embeddings, 0.001 on the dense table), adagrad0.05 (Adagrad 0.05, initial
#             accumulator 0.1, on the embeddings: configs/movielens_dupn_cluster.pbtxt),
#             adagrad0.2, adam0.0003, adam0.001, adam0.01 (Adam of that learning rate on the
#             embeddings); any adagrad<rate> or adam<rate> works; the dense table keeps Adam
#             0.001 in every setting
# --work_dir  data, configs and run folders; default a new temporary folder, kept
# Needs a built tree (launch/build.sh) and python3.
set -euo pipefail

readonly USAGE="usage: tests/bench/describe_sweep.sh [--rows N] [--seed S] [--runs N] [--epochs N]
       [--eval] [--settings LIST] [--work_dir DIR]"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rows=150000
seed=1
runs=1
epochs=""
with_eval=0
settings="describe,adagrad0.05,adagrad0.2,adam0.0003,adam0.001,adam0.01"
work_dir=""
while (($# > 0)); do
  case "$1" in
    --rows) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; rows="$2"; shift 2 ;;
    --seed) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; seed="$2"; shift 2 ;;
    --runs) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; runs="$2"; shift 2 ;;
    --epochs) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; epochs="$2"; shift 2 ;;
    --eval) with_eval=1; shift ;;
    --settings) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; settings="$2"; shift 2 ;;
    --work_dir) (($# >= 2)) || { echo "$USAGE" >&2; exit 1; }; work_dir="$2"; shift 2 ;;
    --help | -h) echo "$USAGE"; exit 0 ;;
    *) echo "describe_sweep.sh: unknown argument '$1'"$'\n'"$USAGE" >&2; exit 1 ;;
  esac
done
fail() { echo "describe_sweep.sh: $*" >&2; exit 1; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || fail "--runs must be >= 1"
[[ -x "$repo/build/granary_describe" ]] || fail "build first (launch/build.sh)"
[[ -n "$work_dir" ]] || work_dir="$(mktemp -d /tmp/describe_sweep-XXXXXX)"
mkdir -p "$work_dir"

data="$work_dir/data"
if [[ ! -f "$data/bayes.json" ]]; then
  python3 "$repo/tests/bench/synthetic_stream.py" --output_dir="$data" --rows="$rows" \
    --seed="$seed" >/dev/null
fi
configs="$work_dir/configs"
"$repo/build/granary_describe" --input="$data/train-00.tsv" --output_dir="$configs" \
  >"$work_dir/describe.out"
if [[ -n "$epochs" ]]; then
  [[ "$epochs" =~ ^[1-9][0-9]*$ ]] || fail "--epochs must be >= 1"
  sed -i "s/^  epochs: [0-9]*/  epochs: $epochs/" "$configs/job.pbtxt"
fi
# The validation split: train-00..06 train, train-07 is its eval file.
validation="$work_dir/validation"
mkdir -p "$validation"
for k in 00 01 02 03 04 05 06; do ln -sf "$data/train-$k.tsv" "$validation/train-$k.tsv"; done
ln -sf "$data/train-07.tsv" "$validation/eval.tsv"

# The cluster config of a setting: the written one with the embedding table's optimizer
# replaced (the first `optimizer { ... }` block of the file is the "emb" table's).
cluster_of() {
  local setting="$1" out="$configs/cluster-$1.pbtxt" optimizer
  case "$setting" in
    describe) cp "$configs/cluster.pbtxt" "$out"; echo "$out"; return ;;
    adagrad*) optimizer="adagrad { learning_rate: ${setting#adagrad} initial_accumulator: 0.1 }" ;;
    adam*) optimizer="adam { learning_rate: ${setting#adam} }" ;;
    *) fail "unknown setting '$setting'" ;;
  esac
  python3 - "$configs/cluster.pbtxt" "$out" "$optimizer" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r"optimizer \{\s*adam \{\s*learning_rate: [0-9.e-]+\s*\}\s*\}",
              "optimizer { %s }" % sys.argv[3], text, count=1)
open(sys.argv[2], "w").write(text)
EOF
  echo "$out"
}

splits=(validation)
((with_eval)) && splits+=(eval)
IFS=',' read -r -a setting_list <<<"$settings"
for split in "${splits[@]}"; do
  split_data="$validation"
  bayes_split=validation
  [[ "$split" == eval ]] && { split_data="$data"; bayes_split=eval; }
  for ((run = 1; run <= runs; ++run)); do
    # Settings interleaved within a run, so that the machine's load falls on all alike.
    for setting in "${setting_list[@]}"; do
      cluster="$(cluster_of "$setting")"
      run_dir="$work_dir/runs/$split-$setting-$run"
      rm -rf "$run_dir"
      mkdir -p "$run_dir"
      if ! "$repo/launch/local.sh" --servers 1 --workers 1 --config "$cluster" --job train \
        --run_dir "$run_dir/cluster" --worker_flags "--job_config=$configs/job.pbtxt \
        --data_dir=$split_data --output_dir=$run_dir" >"$run_dir/local.out" 2>&1; then
        tail -5 "$run_dir/local.out" >&2
        fail "$split $setting run $run failed; see $run_dir/local.out"
      fi
      python3 - "$run_dir/metrics.jsonl" "$data/bayes.json" "$bayes_split" "$split $setting run $run" <<'EOF'
import json, sys
bayes = json.load(open(sys.argv[2]))[sys.argv[3]]
for line in open(sys.argv[1]):
    epoch = json.loads(line)
    if "eval" not in epoch or epoch.get("before_training"):
        continue
    tasks = epoch["eval"]
    def metric(task, key):
        value = tasks.get(task, {}).get(key)
        return "n/a" if value is None else "%.4f" % value
    print("%s epoch %d: click AUC %s (Bayes %.4f), purchase AUC %s (Bayes %.4f), "
          "purchase_power accuracy %s (Bayes %.4f)" % (
              sys.argv[4], epoch["epoch"], metric("click", "auc"), bayes["click"]["auc_exact"],
              metric("purchase", "auc"), bayes["purchase"]["auc_exact"],
              metric("purchase_power", "accuracy"), bayes["purchase_power"]["accuracy"]))
EOF
    done
  done
done
