#!/usr/bin/env bash
# Trains one day of a daily incremental model (DESIGN.md "Daily incremental training"): starts
# from the base the previous calendar day closed, evaluates it on the day's input before
# training (progressive validation), trains on the day, and closes the day (Shrink, a new base,
# a delta export), then writes the day report. The cluster runs on this machine through
# launch/local.sh.
#
#   launch/daily.sh --date YYYYMMDD --data_root D --model_dir M --config JOB --cluster_config C
#                   [--servers N] [--workers N] [--cold_start] [--force] [--bin_dir DIR]
#                   [--timeout SECONDS] [--scheduler_flags "FLAGS"] [--server_flags "FLAGS"]
#                   [--worker_flags "FLAGS"] [--scheduler_flag FLAG] [--server_flag FLAG]
#                   [--worker_flag FLAG] [-- FLAGS for every role]
#
# The role flag options go to launch/local.sh as given (launch/lib/cluster.sh): "FLAGS" is split
# at whitespace only, --worker_flag FLAG is one flag with its spaces and quotes. Paths (model,
# data, configs, bin) may hold spaces and quotes: this script passes each as one flag.
#
# Input: D/<date>/part-* (gzip or plain TSV with a header). The job config's train_files and
# eval_files are resolved against that folder (the worker's --data_dir), so a daily job lists
# them as "part-*"; its metrics_file must be relative (it is written under the day's run).
#
# M holds:
#   bases/<date>/            the checkpoint that closed <date>: where <date> + 1 starts
#   deltas/<date>/           server-<rank>.delta: rows changed on <date> plus tombstones
#   reports/<date>.json      the day report (this script); <date>.close.json (the scheduler)
#   runs/<date>/checkpoints  checkpoints of <date> while it trains (an interrupted day resumes)
#   runs/<date>/<time>/      one attempt: logs of every role and the metrics file
#
# A day is closed only when its close verifies: reports/<date>.close.json exists and parses,
# bases/<date> holds the MANIFEST with the report's base_manifest_id and one server-<rank> per
# server, and the report lists one delta file per server, each present with its listed size.
# Re-running a closed day (close verified, day report present) changes nothing and exits 0;
# --force retrains it from the previous day's base. Any other state (a close cut short at any
# step) is closed again: the day's run resumes from its checkpoints and the scheduler closes it
# exactly once (scheduler/day_close.h). Exits non-zero, naming what failed, on any failure.
set -euo pipefail

readonly USAGE="usage: launch/daily.sh --date YYYYMMDD --data_root D --model_dir M --config JOB
       --cluster_config C [--servers N] [--workers N] [--cold_start] [--force] [--bin_dir DIR]
       [--timeout SECONDS] [--scheduler_flags \"FLAGS\"] [--server_flags \"FLAGS\"]
       [--worker_flags \"FLAGS\"] [--scheduler_flag FLAG] [--server_flag FLAG]
       [--worker_flag FLAG] [-- FLAGS for every role]"

say() { echo "daily.sh: $*"; }
die() {
  echo "daily.sh: $*" >&2
  exit 1
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

day=""
data_root=""
model_dir=""
job_config=""
cluster_config=""
servers=1
workers=1
cold_start=0
force=0
bin_dir="$repo/build"
timeout_seconds=3600
# The role flag options, in the order given, as local.sh arguments.
role_flag_args=()
extra_flags=()
while (($# > 0)); do
  case "$1" in
    --) shift; extra_flags=("$@"); break ;;
    --help | -h) echo "$USAGE"; exit 0 ;;
    --cold_start) cold_start=1; shift ;;
    --force) force=1; shift ;;
    --*=*)
      option="${1%%=*}" value="${1#*=}"
      shift
      set -- "$option" "$value" "$@" ;;
    --date | --data_root | --model_dir | --config | --cluster_config | --servers | --workers | \
      --bin_dir | --timeout | --scheduler_flags | --server_flags | --worker_flags | \
      --scheduler_flag | --server_flag | --worker_flag)
      (($# >= 2)) || die "$1 needs a value"$'\n'"$USAGE"
      case "$1" in
        --date) day="$2" ;;
        --data_root) data_root="$2" ;;
        --model_dir) model_dir="$2" ;;
        --config) job_config="$2" ;;
        --cluster_config) cluster_config="$2" ;;
        --servers) servers="$2" ;;
        --workers) workers="$2" ;;
        --bin_dir) bin_dir="$2" ;;
        --timeout) timeout_seconds="$2" ;;
        *_flags | *_flag) role_flag_args+=("$1" "$2") ;;
      esac
      shift 2 ;;
    *) die "unknown argument '$1' (role flags go after --)"$'\n'"$USAGE" ;;
  esac
done

# --- Checks before anything starts: each names what is missing ------------------------------
for required in day data_root model_dir job_config cluster_config; do
  [[ -n "${!required}" ]] || die "--${required/job_config/config} is required"$'\n'"$USAGE"
done
if [[ ! "$day" =~ ^[0-9]{8}$ || "$(date -u -d "$day" +%Y%m%d 2>/dev/null)" != "$day" ]]; then
  die "--date '$day' is not a date YYYYMMDD"
fi
previous_day="$(date -u -d "${day:0:4}-${day:4:2}-${day:6:2} -1 day" +%Y%m%d)"
command -v jq >/dev/null || die "check failed: jq is not installed (launch/install_deps.sh)"
for file in "$job_config" "$cluster_config"; do
  [[ -f "$file" && -r "$file" ]] || die "check failed: config file '$file' does not exist or is not readable"
done
job_config="$(realpath "$job_config")"
cluster_config="$(realpath "$cluster_config")"
day_input="$data_root/$day"
shopt -s nullglob
parts=("$day_input"/part-*)
shopt -u nullglob
((${#parts[@]} > 0)) || die "check failed: no input for $day: nothing matches '$day_input/part-*'"
day_input="$(realpath "$day_input")"
# The metrics file is written under the attempt's folder, where the report reads it.
metrics_file="$(sed -n 's/^[[:space:]]*metrics_file:[[:space:]]*"\([^"]*\)".*/\1/p' "$job_config" | tail -n 1)"
metrics_file="${metrics_file:-metrics.jsonl}"
[[ "$metrics_file" != /* ]] ||
  die "check failed: $job_config: metrics_file '$metrics_file' must be relative for daily runs"

mkdir -p "$model_dir" || die "check failed: cannot create --model_dir '$model_dir'"
model_dir="$(realpath "$model_dir")"
base="$model_dir/bases/$day"
close_report="$model_dir/reports/$day.close.json"
report="$model_dir/reports/$day.json"
runs="$model_dir/runs/$day"
checkpoints="$runs/checkpoints"

# Whether the close of day $1 is complete and verified (see the top); if not, prints why.
verify_close() {
  local close_day="$1"
  local close_base="$model_dir/bases/$close_day"
  local close_json="$model_dir/reports/$close_day.close.json"
  [[ -f "$close_json" ]] || { echo "no close report $close_json"; return 1; }
  jq -e '.base_manifest_id and .delta.files' "$close_json" >/dev/null 2>&1 ||
    { echo "close report $close_json is not a complete close report"; return 1; }
  local manifest_id
  manifest_id="$(jq -r '.base_manifest_id' "$close_json")"
  [[ -f "$close_base/MANIFEST" ]] || { echo "base $close_base has no MANIFEST"; return 1; }
  grep -qx "id: $manifest_id" "$close_base/MANIFEST" ||
    { echo "base $close_base/MANIFEST is not manifest $manifest_id of the close report"; return 1; }
  local rank
  for ((rank = 0; rank < servers; ++rank)); do
    [[ -d "$close_base/server-$rank" ]] || { echo "base $close_base has no server-$rank"; return 1; }
  done
  local files
  files="$(jq '.delta.files | length' "$close_json")"
  ((files == servers)) ||
    { echo "close report $close_json lists $files delta files for $servers servers"; return 1; }
  # Each file is looked for in this model folder's deltas/<date>/ (the folder may have moved).
  local path bytes
  while IFS=$'\t' read -r path bytes; do
    path="$model_dir/deltas/$close_day/${path##*/}"
    [[ -f "$path" ]] || { echo "delta file $path is missing"; return 1; }
    [[ "$(stat -c %s "$path")" == "$bytes" ]] ||
      { echo "delta file $path has $(stat -c %s "$path") bytes, the close report says $bytes"; return 1; }
  done < <(jq -r '.delta.files[] | [.path, .bytes] | @tsv' "$close_json")
}

closed_because=""
if ((force)); then
  say "--force: retraining $day from the base of $previous_day"
  rm -rf "$checkpoints" "$base" "$model_dir/deltas/$day" "$close_report" "$report"
elif ! closed_because="$(verify_close "$day")"; then
  if [[ -e "$base" || -e "$close_report" || -e "$model_dir/deltas/$day" ]]; then
    say "day $day is not closed ($closed_because): closing it again"
  fi
  closed_because=""
elif [[ -f "$report" ]]; then
  say "day $day is already closed ($base, $report); nothing to do (--force retrains it)"
  exit 0
else
  closed_because="verified"
fi

# --- Train and close the day, unless only the report is missing -----------------------------
if [[ -n "$closed_because" ]]; then
  say "day $day is closed but has no report; writing it from its last run"
  attempt="$(find "$runs" -mindepth 1 -maxdepth 1 -type d ! -name checkpoints | sort | tail -n 1)"
  [[ -n "$attempt" ]] || die "check failed: no run of $day under $runs to report on"
  duration=null  # unknown: the run that closed the day ended before this script measured it
  resumed=false
  previous_base="$model_dir/bases/$previous_day"
  [[ -d "$previous_base" ]] || previous_base=""
else
  previous_base="$model_dir/bases/$previous_day"
  base_flag=()
  if [[ -d "$previous_base" ]]; then
    # Each server restores its own shard of the base: the server count is fixed for a model.
    shopt -s nullglob
    base_shards=("$previous_base"/server-*)
    shopt -u nullglob
    ((${#base_shards[@]} == servers)) ||
      die "check failed: base '$previous_base' holds ${#base_shards[@]} server shards; run with --servers ${#base_shards[@]}"
    # Only a verified close is a day to start from.
    why="$(verify_close "$previous_day")" ||
      die "check failed: the previous day $previous_day is not closed ($why): run $previous_day again first"
    base_flag=("--base_dir=$previous_base")
  elif ((cold_start)); then
    say "--cold_start: $day starts from a fresh model"
    previous_base=""
  else
    die "check failed: no base of the previous day $previous_day: '$previous_base' does not exist (run $previous_day first, or pass --cold_start to begin fresh)"
  fi
  resumed=false
  if [[ -n "$(ls -A "$checkpoints" 2>/dev/null)" ]]; then
    resumed=true
    say "resuming $day from its checkpoints in $checkpoints"
  fi
  attempt="$runs/$(date -u +%Y%m%dT%H%M%S)"
  [[ -e "$attempt" ]] && attempt="$attempt-$$"
  mkdir -p "$checkpoints" "$attempt"
  start_seconds=$SECONDS
  say "training $day: input $day_input (${#parts[@]} parts), base ${previous_base:-none}, run $attempt"
  # One --*_flag per flag: paths with spaces or quotes stay one argument each. The user's role
  # flags follow, so that they may override these.
  day_flag_args=(--scheduler_flag "--day=$day" --scheduler_flag "--checkpoint_dir=$checkpoints")
  if ((${#base_flag[@]} > 0)); then day_flag_args+=(--scheduler_flag "${base_flag[0]}"); fi
  day_flag_args+=(--scheduler_flag "--close_day_into=$model_dir"
    --worker_flag "--job_config=$job_config" --worker_flag "--data_dir=$day_input"
    --worker_flag "--output_dir=$attempt" --worker_flag --evaluate_before_training)
  if ! "$repo/launch/local.sh" --servers "$servers" --workers "$workers" --config "$cluster_config" \
    --job train --run_dir "$attempt" --bin_dir "$bin_dir" --timeout "$timeout_seconds" \
    "${day_flag_args[@]}" "${role_flag_args[@]}" -- "${extra_flags[@]}"; then
    # Workers report their job done even when it failed, so the scheduler may have closed the
    # day: a base of a failed run must not become the next day's start.
    if [[ -e "$base" || -e "$close_report" ]]; then
      rm -rf "$base" "$model_dir/deltas/$day" "$close_report"
      say "discarded the base, delta and close report of $day: a process of its run failed" >&2
    fi
    die "day $day failed; logs in $attempt. Run the same command again to resume it from $checkpoints"
  fi
  duration=$((SECONDS - start_seconds))
  why="$(verify_close "$day")" ||
    die "day $day trained but its close does not verify: $why (see $attempt/scheduler.log)"
fi

# --- The day report ---------------------------------------------------------------------------
metrics="$attempt/$metrics_file"
[[ -f "$metrics" ]] || die "check failed: no metrics file '$metrics' (see $attempt/worker-0.log)"
# Samples of the day: data lines of every part, a header line each excluded.
samples=0
for part in "${parts[@]}"; do
  if [[ "$part" == *.gz ]]; then lines="$(gzip -dc "$part" | wc -l)"; else lines="$(wc -l <"$part")"; fi
  samples=$((samples + (lines > 0 ? lines - 1 : 0)))
done
temporary="$report.tmp"
# Rows admitted today = rows before today's Shrink (kept + evicted) - rows of the base the day
# started from (the previous report's rows kept); null when that report is missing.
previous_report=/dev/null
if [[ -n "${previous_base:-}" && -f "$model_dir/reports/$previous_day.json" ]]; then
  previous_report="$model_dir/reports/$previous_day.json"
fi
jq -n --arg day "$day" --arg previous_base "${previous_base:-}" --arg run "$attempt" \
  --argjson duration "$duration" --argjson samples "$samples" --argjson parts "${#parts[@]}" \
  --argjson resumed "$resumed" --slurpfile close "$close_report" --slurpfile metrics "$metrics" \
  --slurpfile previous "$previous_report" '
  ($close[0]) as $c |
  ($previous[0] // null) as $p |
  def admitted($t):
    if $previous_base == "" then $t.rows_kept + $t.rows_evicted
    elif $p == null then null
    else $t.rows_kept + $t.rows_evicted -
      ([$p.tables[] | select(.table == $t.table) | .rows_kept] | add // 0) end;
  ([$c.tables[] | . + {rows_admitted: admitted(.)}]) as $tables |
  ([$metrics[] | select(.before_training == true)] | last) as $before |
  ([$metrics[] | select(.epoch > 0)]) as $epochs |
  {day: $day,
   previous_base: (if $previous_base == "" then null else $previous_base end),
   resumed_from_checkpoint: $resumed,
   run: $run,
   duration_seconds: $duration,
   close_seconds: $c.close_seconds,
   input_parts: $parts,
   samples: $samples,
   workers: ($epochs | last | .workers),
   epochs: ($epochs | length),
   samples_trained: ([$epochs[].samples_trained // 0] | add // 0),
   requeued_chunks: ([$epochs[].requeued_chunks // 0] | add // 0),
   partial_batches: ([$epochs[].partial_batches // 0] | add // 0),
   eval_before_training: ($before.eval // null),
   eval_after_training: ($epochs | last | .eval // null),
   tables: $tables,
   rows_kept: ([$c.tables[].rows_kept] | add),
   rows_evicted: ([$c.tables[].rows_evicted] | add),
   rows_admitted: (if any($tables[]; .rows_admitted == null) then null
                   else [$tables[].rows_admitted] | add end),
   delta: $c.delta,
   base: $c.base}' >"$temporary" || die "cannot write the day report $temporary"
mv "$temporary" "$report"
say "day $day closed: base $base, report $report"
