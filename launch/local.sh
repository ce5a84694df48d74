#!/usr/bin/env bash
# Runs a whole Granary cluster on this machine: one scheduler, N parameter servers and M
# workers on 127.0.0.1, each with a port the kernel picks. Waits for the workers' job, then for
# the scheduler to shut the cluster down, and exits 0 only if every process exited 0, or a
# worker lost after the cluster formed (killed by a signal, or fenced by the scheduler: exit
# status 3) while the scheduler finished the job without it and exited 0.
#
#   launch/local.sh --servers N --workers M --config FILE [--job demo|idle|train] [--run_dir DIR]
#                   [--bin_dir DIR] [--timeout SECONDS] [--scheduler_flags "FLAGS"]
#                   [--server_flags "FLAGS"] [--worker_flags "FLAGS"] [--scheduler_flag FLAG]
#                   [--server_flag FLAG] [--worker_flag FLAG] [-- FLAGS for every role]
#
# --worker_flags "FLAGS" is split at whitespace only (no quotes); --worker_flag FLAG passes one
# flag intact, e.g. a path with spaces or quotes. Both repeat (launch/lib/cluster.sh).
#
# Servers keep their RocksDB tables in DIR/data/server-<rank> unless --server_flags sets
# --data_dir.
#
# --restarts N supervises the run, restarting up to N times in total per run. A worker that
# exits non-zero or is killed is restarted alone, with the same flags, once the scheduler
# declared it dead: the new process joins the running job in the dead one's rank
# (docs/operations.md "Replacing a worker"), logging to DIR/attempt-K/worker-I.restart-J.log.
# If any other process dies or fails, the whole cluster is stopped and started again, each
# attempt in DIR/attempt-K. With --scheduler_flags "--checkpoint_dir=CKPT" every attempt rolls
# back to the newest consistent checkpoint in CKPT and trains only the chunks not finished in
# it (DESIGN.md "Durability and recovery"); without one, an attempt starts from scratch.
#
# Writes DIR/{scheduler,server-I,worker-I}.log, DIR/pids ("name pid" per line),
# DIR/scheduler.addr and DIR/cluster_id. Ctrl-C (or SIGTERM) shuts the cluster down through the
# scheduler, then stops what is left by pid.
set -euo pipefail

readonly LAUNCHER=local.sh
readonly USAGE="usage: launch/local.sh --servers N --workers M --config FILE [--job demo|idle|train]
       [--run_dir DIR] [--bin_dir DIR] [--timeout SECONDS] [--scheduler_flags \"FLAGS\"]
       [--server_flags \"FLAGS\"] [--worker_flags \"FLAGS\"] [--scheduler_flag FLAG]
       [--server_flag FLAG] [--worker_flag FLAG] [--restarts N] [-- FLAGS for every role]
(--*_flags \"FLAGS\" split at whitespace; --*_flag FLAG is one flag, spaces kept)"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=launch/lib/cluster.sh
source "$repo/launch/lib/cluster.sh"
require_bash_5_1

# local.sh has no options beyond the shared ones.
parse_launcher_option() { consumed=0; }
# shellcheck disable=SC2317  # invoked by signal_running
signal_role() { kill "-$1" "$2" 2>/dev/null || true; }
# shellcheck disable=SC2317  # invoked by replace_dead_workers
role_pid() { echo "$1"; }

original_args=("$@")
parse_cluster_args "$@"

if ((restarts > 0)); then supervise_attempts "${BASH_SOURCE[0]}" "${original_args[@]}"; fi

# --- Checks before anything starts: say which one failed -----------------------------------
check_config_and_binaries "run launch/build.sh, or pass --bin_dir"
prepare_run_dir
# Ports need no check: every role binds port 0 and the kernel hands out a free one. The
# scheduler's reachability is checked once it is listening, before any other role starts.

cluster_id="$(new_cluster_id local)"
echo "$cluster_id" >"$run_dir/cluster_id"
prepare_cluster_keys
: >"$run_dir/pids"
ctl_command=("$bin_dir/granary_ctl" --keys_dir="$keys_dir")
install_traps

# --- Start ----------------------------------------------------------------------------------
start_time=$SECONDS
address_file="$run_dir/scheduler.addr"
say "run dir $run_dir, cluster id $cluster_id"
start_role scheduler "" "$bin_dir/granary_scheduler" --host=127.0.0.1 --port=0 \
  --address_file="$address_file" --cluster_id="$cluster_id" --keys_dir="$keys_dir" \
  --num_servers="$servers" --num_workers="$workers" --config="$config" "${extra_flags[@]}" \
  "${scheduler_flags[@]}"
scheduler_pid=$last_pid

# shellcheck disable=SC2317  # invoked by wait_for_scheduler_address
address_written() {
  [[ -s "$address_file" ]] || return 1
  scheduler_address="$(<"$address_file")"
}
wait_for_scheduler_address address_written "$address_file"
scheduler_host="${scheduler_address%:*}"
scheduler_port="${scheduler_address##*:}"
# shellcheck disable=SC2016  # $1 and $2 are the inner shell's arguments
if ! timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$scheduler_host" "$scheduler_port" 2>/dev/null; then
  say "check failed: the scheduler at $scheduler_address is not reachable over TCP" >&2
  stop_cluster
  report || true
  exit 1
fi

for ((i = 0; i < servers; i++)); do
  start_role "server-$i" "" "$bin_dir/granary_server" --host=127.0.0.1 --port=0 \
    --scheduler="$scheduler_address" --cluster_id="$cluster_id" --keys_dir="$keys_dir" \
    --data_dir="$run_dir/data" \
    "${extra_flags[@]}" "${server_flags[@]}"
done
# shellcheck disable=SC2317  # also invoked by replace_dead_workers
start_worker() {
  start_role "$1" "" "$bin_dir/granary_worker" --host=127.0.0.1 --job="$job" \
    --scheduler="$scheduler_address" --cluster_id="$cluster_id" --keys_dir="$keys_dir" \
    "${extra_flags[@]}" "${worker_flags[@]}"
}
for ((i = 0; i < workers; i++)); do
  start_worker "worker-$i" "worker-$i"
  worker_pids+=("$last_pid")
done
say "scheduler at $scheduler_address; server(s): $servers, worker(s): $workers, job: $job"
say "stop with Ctrl-C, or: $bin_dir/granary_ctl --scheduler=$scheduler_address --cluster_id=$cluster_id --keys_dir=$keys_dir shutdown"

wait_for_job
