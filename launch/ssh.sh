#!/usr/bin/env bash
# Runs a Granary cluster over ssh on the hosts of a host file: the scheduler on the first host,
# N parameter servers and M workers spread round-robin over the hosts that take them. Every
# role is one `ssh -o BatchMode=yes HOST 'cd REMOTE_DIR && exec BINARY FLAGS'` whose output is
# the role's log here. Waits for the workers' job, then for the scheduler to shut the cluster
# down, and exits 0 only if every role exited 0; otherwise it names the role that failed, its
# host and the end of its log.
#
#   launch/ssh.sh HOSTFILE --servers N --workers M --config FILE [--job demo|idle|train]
#                 [--run_dir DIR] [--bin_dir DIR] [--remote_dir DIR] [--scheduler_port PORT]
#                 [--ssh "COMMAND"] [--timeout SECONDS] [--scheduler_flags "FLAGS"]
#                 [--server_flags "FLAGS"] [--worker_flags "FLAGS"] [--scheduler_flag FLAG]
#                 [--server_flag FLAG] [--worker_flag FLAG] [--restarts N]
#                 [-- FLAGS passed to every role]
#
# --worker_flags "FLAGS" is split at whitespace only (no quotes); --worker_flag FLAG passes one
# flag intact, e.g. a path with spaces or quotes. Both repeat (launch/lib/cluster.sh). Every
# word of a remote command is quoted (printf %q): the remote shell sees each argument intact.
#
# --restarts N: as in local.sh, up to N restarts per run in total: a worker that died is
# restarted alone on its host once the scheduler declared it dead (it joins the running job in
# the dead one's rank; RUN_DIR/worker-I.restart-J.log); any other failed role stops the cluster
# and starts it again in RUN_DIR/attempt-K; with --scheduler_flags "--checkpoint_dir=DIR" (a
# folder every host sees) each attempt rolls back to the newest consistent checkpoint.
#
# HOSTFILE: one host per line; `#` starts a comment. After the host name, optional hints:
#   slots=N     at most N servers and workers on this host (default: no limit, spread evenly);
#               slots=0 on the first line keeps that host for the scheduler alone
#   roles=LIST  which of server,worker may run there (default: both)
#   addr=IP     the address the roles on this host listen on and advertise (default: the
#               host name resolved here with getent; must not be a loopback address when the
#               cluster spans several machines)
# e.g.
#   node1 slots=0          # the scheduler only
#   node2 roles=server
#   node3 roles=worker slots=4
#
# Every host must have the binaries at the same --bin_dir (a shared file system or an identical
# install) and --config, and --worker_flags paths, readable at the same path as here. Roles run
# in REMOTE_DIR (default: the run dir's path), created on each host; servers keep their RocksDB
# tables in REMOTE_DIR/data/server-<rank> unless --server_flags sets --data_dir. The scheduler
# listens on --scheduler_port of the first host (default 0: the kernel picks one, and ssh.sh
# reads it back from REMOTE_DIR/scheduler.addr there); servers and workers pick free ports
# unless their flags say otherwise, so the hosts must accept TCP from each other.
#
# Writes DIR/{scheduler,server-I,worker-I}.log (each starts with the role's pid on its host),
# DIR/pids ("name local-ssh-pid host" per line), DIR/scheduler.addr and DIR/cluster_id.
# Ctrl-C (or SIGTERM) shuts the cluster down through the scheduler (granary_ctl on the first
# host), then stops what is left by pid on each host. --ssh replaces the ssh command (e.g.
# "ssh -p 2222", or a test's stand-in); ssh.sh adds `-o BatchMode=yes -o ConnectTimeout=...`.
set -euo pipefail

readonly LAUNCHER=ssh.sh
readonly USAGE="usage: launch/ssh.sh HOSTFILE --servers N --workers M --config FILE
       [--job demo|idle|train] [--run_dir DIR] [--bin_dir DIR] [--remote_dir DIR]
       [--scheduler_port PORT] [--ssh \"COMMAND\"] [--timeout SECONDS]
       [--scheduler_flags \"FLAGS\"] [--server_flags \"FLAGS\"] [--worker_flags \"FLAGS\"]
       [--scheduler_flag FLAG] [--server_flag FLAG] [--worker_flag FLAG] [--restarts N]
       [-- FLAGS for every role]
(--*_flags \"FLAGS\" split at whitespace; --*_flag FLAG is one flag, spaces kept)"
# An unreachable host fails the checks after this long instead of hanging them.
readonly SSH_CONNECT_TIMEOUT_SECONDS=10
# Bound on one remote command of ours (a check, reading the address, a kill).
readonly SSH_COMMAND_TIMEOUT_SECONDS=20

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=launch/lib/cluster.sh
source "$repo/launch/lib/cluster.sh"
require_bash_5_1

hostfile=""
ssh_words=(ssh)
remote_dir=""
scheduler_port=0
# shellcheck disable=SC2317  # invoked by parse_cluster_args
parse_launcher_option() {
  consumed=0
  case "$1" in
    --ssh | --remote_dir | --scheduler_port)
      (($# >= 2)) || die "$1 needs a value"$'\n'"$USAGE"
      case "$1" in
        --ssh) read -ra ssh_words <<<"$2" ;;
        --remote_dir) remote_dir="$2" ;;
        --scheduler_port) scheduler_port="$2" ;;
      esac
      consumed=2 ;;
    -*) ;;
    *)
      [[ -z "$hostfile" ]] || die "one HOSTFILE only, got '$hostfile' and '$1'"$'\n'"$USAGE"
      hostfile="$1"
      consumed=1 ;;
  esac
}
original_args=("$@")
parse_cluster_args "$@"
[[ -n "$hostfile" ]] || die "HOSTFILE is required"$'\n'"$USAGE"
# Each attempt runs in RUN_DIR/attempt-K, and its roles in REMOTE_DIR (default: that folder).
if ((restarts > 0)); then
  [[ -z "$remote_dir" ]] || die "--restarts takes the default --remote_dir (each attempt's run folder)"
  supervise_attempts "${BASH_SOURCE[0]}" "${original_args[@]}"
fi
((${#ssh_words[@]} > 0)) || die "--ssh must name a command"
if ! [[ "$scheduler_port" =~ ^[0-9]+$ ]] || ((scheduler_port > 65535)); then
  die "--scheduler_port must be a port number (0: any free one), got '$scheduler_port'"
fi
# Roles run in REMOTE_DIR, so paths relative to here would name other files there.
config="$(realpath -m -- "$config")"
bin_dir="$(realpath -m -- "$bin_dir")"
ssh_command=("${ssh_words[@]}" -o BatchMode=yes -o ConnectTimeout="$SSH_CONNECT_TIMEOUT_SECONDS")
status_255_meaning="ssh could not run it, or it exited with 255"

# --- Host file ------------------------------------------------------------------------------
host_names=()  # in file order
host_addrs=()  # the address its roles listen on
host_slots=()  # -1: no limit
host_takes=()  # " server worker " or a part of it
host_lines=()  # line number in the host file, for messages
host_used=()   # servers and workers placed there

is_ipv4() { [[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; }

read_hostfile() {
  [[ -f "$hostfile" && -r "$hostfile" ]] ||
    die "check failed: host file '$hostfile' does not exist or is not readable"
  local line number=0 words word host slots takes addr i
  while IFS= read -r line || [[ -n "$line" ]]; do
    number=$((number + 1))
    line="${line%%#*}"
    read -ra words <<<"$line"
    ((${#words[@]} > 0)) || continue
    host="${words[0]}"
    slots=-1
    takes=" server worker "
    addr=""
    [[ "$host" != *=* ]] || die "$hostfile:$number: a line starts with the host name, got '$host'"
    for ((i = 0; i < ${#host_names[@]}; i++)); do
      [[ "${host_names[i]}" != "$host" ]] ||
        die "$hostfile:$number: host '$host' is listed twice (first on line ${host_lines[i]})"
    done
    for word in "${words[@]:1}"; do
      case "$word" in
        slots=*)
          slots="${word#slots=}"
          [[ "$slots" =~ ^[0-9]+$ ]] ||
            die "$hostfile:$number: slots must be a number >= 0, got '$word'" ;;
        roles=*)
          takes=" "
          local role roles
          IFS=, read -ra roles <<<"${word#roles=}"
          for role in "${roles[@]}"; do
            [[ "$role" == server || "$role" == worker ]] ||
              die "$hostfile:$number: roles lists server and/or worker (the scheduler runs on the first host), got '$role'"
            takes+="$role "
          done ;;
        addr=*)
          addr="${word#addr=}"
          is_ipv4 "$addr" || die "$hostfile:$number: addr must be an IPv4 address, got '$addr'" ;;
        *) die "$hostfile:$number: unknown hint '$word' (know slots=N, roles=server,worker, addr=IP)" ;;
      esac
    done
    if [[ -z "$addr" ]]; then
      if is_ipv4 "$host"; then
        addr="$host"
      else
        addr="$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }')" || true
        [[ -n "$addr" ]] ||
          die "$hostfile:$number: cannot resolve host '$host' to an IPv4 address here; add addr=IP"
      fi
    fi
    host_names+=("$host")
    host_addrs+=("$addr")
    host_slots+=("$slots")
    host_takes+=("$takes")
    host_lines+=("$number")
    host_used+=(0)
  done <"$hostfile"
  ((${#host_names[@]} > 0)) || die "$hostfile: lists no host"

  # Roles bind and advertise these addresses: a loopback one is unreachable from other machines.
  local loopback=-1 remote=0
  for ((i = 0; i < ${#host_names[@]}; i++)); do
    if [[ "${host_addrs[i]}" == 127.* ]]; then
      ((loopback >= 0)) || loopback=$i
    else
      remote=1
    fi
  done
  if ((loopback >= 0 && remote)); then
    die "$hostfile:${host_lines[loopback]}: host '${host_names[loopback]}' resolves to loopback address ${host_addrs[loopback]}, which the other hosts cannot reach; add addr=IP"
  fi
}

# Picks the host for the next role ("server" or "worker"), round-robin from the role's cursor;
# sets placed (a host index). Dies naming the host file when no host has a free slot left.
declare -A cursor_of=([server]=0 [worker]=0)
place() {
  local role="$1" count=${#host_names[@]} k i
  for ((k = 0; k < count; k++)); do
    i=$(((cursor_of[$role] + k) % count))
    [[ "${host_takes[i]}" == *" $role "* ]] || continue
    ((host_slots[i] < 0 || host_used[i] < host_slots[i])) || continue
    host_used[i]=$((host_used[i] + 1))
    cursor_of[$role]=$(((i + 1) % count))
    placed=$i
    return 0
  done
  die "check failed: $hostfile has no free slot for another $role (need $servers servers and $workers workers; raise slots= or add hosts)"
}

# --- Remote commands ------------------------------------------------------------------------
# ssh joins its arguments with spaces and hands the result to the remote user's shell, which
# splits it again: every word of a remote command is therefore quoted here with quote_words
# (printf %q), so that a path or flag with spaces or quotes arrives as one argument.

# Runs the shell command $2 on host index $1, bounded in time; prints its output.
run_on_host() {
  timeout --kill-after=2 "$SSH_COMMAND_TIMEOUT_SECONDS" \
    "${ssh_command[@]}" "${host_names[$1]}" "$2" </dev/null
}

quote_words() {
  local quoted
  printf -v quoted '%q ' "$@"
  echo "${quoted% }"
}

# The run's CURVE keys (docs/operations.md "Security") at the same path on every host: the folder
# given as --keys_dir=DIR among the flags for every role (it must then be on every host), else
# REMOTE_DIR/keys, where granary_ctl keygen writes a fresh keypair on the first host; the key
# file is copied from there to the other hosts through ssh's stdin (never on a command line),
# created 0600 under umask 077 and moved into place. Sets keys_dir.
distribute_cluster_keys() {
  keys_dir=""
  local flag keys i target
  for flag in "${extra_flags[@]}"; do
    if [[ "$flag" == --keys_dir=* ]]; then keys_dir="${flag#--keys_dir=}"; fi
  done
  [[ -n "$keys_dir" ]] && return 0
  keys_dir="$remote_dir/keys"
  run_on_host 0 "$(quote_words "$bin_dir/granary_ctl" --keys_dir="$keys_dir" keygen)" \
    >"$run_dir/keygen.log" 2>&1 ||
    die "check failed: cannot generate the cluster keys into $keys_dir on ${host_names[0]} (see $run_dir/keygen.log)"
  keys="$(run_on_host 0 "cat $(quote_words "$keys_dir/cluster.curve")")" ||
    die "check failed: cannot read the cluster keys $keys_dir/cluster.curve on ${host_names[0]}"
  for ((i = 1; i < ${#host_names[@]}; i++)); do
    target="$(quote_words "$keys_dir/cluster.curve")"
    timeout --kill-after=2 "$SSH_COMMAND_TIMEOUT_SECONDS" "${ssh_command[@]}" "${host_names[i]}" \
      "umask 077 && mkdir -p $(quote_words "$keys_dir") && cat >$target.tmp-$i && mv -f $target.tmp-$i $target" \
      <<<"$keys" || die "check failed: cannot copy the cluster keys to $keys_dir on ${host_names[i]}"
  done
}

# Checks what the roles on host index $1 need, before anything starts: ssh works, the binaries
# are there, REMOTE_DIR can be created, and on the first host the config is readable.
# Every path and message is quoted with quote_words: the remote shell sees each intact.
check_host() {
  local i="$1" script output rc=0 binary
  script="mkdir -p $(quote_words "$remote_dir") || { echo $(quote_words "cannot create $remote_dir"); exit 3; }"
  for binary in "${BINARIES[@]}"; do
    script+="; [ -x $(quote_words "$bin_dir/$binary") ] || { echo $(quote_words "no executable $bin_dir/$binary (pass --bin_dir)"); exit 3; }"
  done
  if ((i == 0)); then
    script+="; [ -r $(quote_words "$config") ] || { echo $(quote_words "config file $config is not readable"); exit 3; }"
    # A stale address would send the roles to a scheduler that no longer exists.
    script+="; [ ! -e $(quote_words "$remote_dir/scheduler.addr") ] || { echo $(quote_words "$remote_dir already holds a run; pass another --remote_dir"); exit 3; }"
  fi
  output="$(run_on_host "$i" "$script" 2>&1)" || rc=$?
  ((rc == 0)) && return 0
  local where="host '${host_names[i]}' ($hostfile:${host_lines[i]})"
  if ((rc == 3)); then die "check failed: $where: $output"; fi
  die "check failed: cannot run commands on $where over ${ssh_words[0]} (exit status $rc): ${output:-no output}"
}

# Starts role NAME (e.g. server-0) of binary $3 on host index $2 with the flags that follow.
# The remote shell prints its pid before exec'ing the binary, so the role keeps that pid and
# signal_role can reach it by pid on its host.
start_remote_role() {
  local name="$1" i="$2" binary="$3"
  shift 3
  local command
  command="cd $(quote_words "$remote_dir") && echo \"ssh.sh: $name runs as pid \$\$ on \$(hostname)\""
  command+=" && exec $(quote_words "$bin_dir/$binary" --host="${host_addrs[i]}" "$@")"
  start_role "$name" "${host_names[i]}" "${ssh_command[@]}" "${host_names[i]}" "$command"
}

# The pid on its host of the role started as local pid $1, or nothing if it has not said yet.
remote_pid_of() {
  sed -n "1s/^ssh\.sh: ${name_of[$1]} runs as pid \([0-9]*\) on .*/\1/p" \
    "$run_dir/${name_of[$1]}.log" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by replace_dead_workers
role_pid() { remote_pid_of "$1"; }

# shellcheck disable=SC2317  # invoked by the shared functions
role_label() {
  local remote_pid
  remote_pid="$(remote_pid_of "$1")"
  echo "${name_of[$1]} (pid ${remote_pid:-unknown} on ${host_of[$1]}, ssh pid $1)"
}

# Signals the role on its host, by the pid it printed and only if that pid still runs one of
# our binaries; a SIGKILL also ends the local ssh client, which otherwise waits for the remote
# command (a remote process may outlive its ssh connection).
# shellcheck disable=SC2317  # invoked by signal_running
signal_role() {
  local signal="$1" pid="$2" remote_pid host
  remote_pid="$(remote_pid_of "$pid")"
  host="${host_of[$pid]}"
  if [[ -n "$remote_pid" ]]; then
    local i
    for ((i = 0; i < ${#host_names[@]}; i++)); do
      if [[ "${host_names[i]}" == "$host" ]]; then
        run_on_host "$i" "case \"\$(ps -o args= -p $remote_pid)\" in $(quote_words "$bin_dir")/granary_*) kill -$signal $remote_pid ;; esac" \
          >/dev/null 2>&1 || say "could not signal ${name_of[$pid]} (pid $remote_pid on $host)" >&2
      fi
    done
  fi
  if [[ -z "$remote_pid" || "$signal" == KILL ]]; then kill "-$signal" "$pid" 2>/dev/null || true; fi
}

# --- Checks before anything starts: say which one failed -----------------------------------
read_hostfile
placement=()
for ((s = 0; s < servers; s++)); do
  place server
  placement+=("server-$s $placed")
done
for ((w = 0; w < workers; w++)); do
  place worker
  placement+=("worker-$w $placed")
done
prepare_run_dir
run_dir="$(cd "$run_dir" && pwd)"
[[ -n "$remote_dir" ]] || remote_dir="$run_dir"
for ((i = 0; i < ${#host_names[@]}; i++)); do check_host "$i"; done

cluster_id="$(new_cluster_id ssh)"
echo "$cluster_id" >"$run_dir/cluster_id"
distribute_cluster_keys
: >"$run_dir/pids"
# request_shutdown appends only words that need no quoting (flags of addresses, ids, numbers).
ctl_command=("${ssh_command[@]}" "${host_names[0]}"
  "$(quote_words "$bin_dir/granary_ctl" --keys_dir="$keys_dir")")
install_traps

# --- Start ----------------------------------------------------------------------------------
start_time=$SECONDS
say "run dir $run_dir, cluster id $cluster_id, hosts: ${host_names[*]}"
start_remote_role scheduler 0 granary_scheduler --port="$scheduler_port" \
  --address_file="$remote_dir/scheduler.addr" --cluster_id="$cluster_id" --keys_dir="$keys_dir" \
  --num_servers="$servers" --num_workers="$workers" --config="$config" "${extra_flags[@]}" \
  "${scheduler_flags[@]}"
scheduler_pid=$last_pid

# shellcheck disable=SC2317  # invoked by wait_for_scheduler_address
address_published() {
  local address
  address="$(run_on_host 0 "cat $(quote_words "$remote_dir/scheduler.addr") 2>/dev/null")" ||
    return 1
  [[ "$address" =~ ^[0-9.]+:[0-9]+$ ]] || return 1
  scheduler_address="$address"
  echo "$scheduler_address" >"$run_dir/scheduler.addr"
}
wait_for_scheduler_address address_published "$remote_dir/scheduler.addr on ${host_names[0]}"

# Starts worker NAME on the host of worker BASE ($2), with its flags.
# shellcheck disable=SC2317  # also invoked by replace_dead_workers
start_worker() {
  local entry host=""
  for entry in "${placement[@]}"; do
    if [[ "${entry% *}" == "$2" ]]; then host="${entry##* }"; fi
  done
  start_remote_role "$1" "$host" granary_worker --job="$job" --scheduler="$scheduler_address" \
    --cluster_id="$cluster_id" --keys_dir="$keys_dir" "${extra_flags[@]}" "${worker_flags[@]}"
}
for entry in "${placement[@]}"; do
  name="${entry% *}"
  i="${entry##* }"
  if [[ "$name" == server-* ]]; then
    start_remote_role "$name" "$i" granary_server --scheduler="$scheduler_address" \
      --cluster_id="$cluster_id" --keys_dir="$keys_dir" --data_dir="$remote_dir/data" \
      "${extra_flags[@]}" \
      "${server_flags[@]}"
  else
    start_worker "$name" "$name"
    worker_pids+=("$last_pid")
  fi
  say "$name on ${host_names[i]} (${host_addrs[i]})"
done
say "scheduler at $scheduler_address on ${host_names[0]}; server(s): $servers, worker(s): $workers, job: $job"
say "stop with Ctrl-C, or on ${host_names[0]}: $bin_dir/granary_ctl --scheduler=$scheduler_address --cluster_id=$cluster_id --keys_dir=$keys_dir shutdown"

wait_for_job
