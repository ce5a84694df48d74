# shellcheck shell=bash disable=SC2034,SC2153,SC2154  # globals shared with the sourcing launcher
# Shell functions shared by Granary's cluster launchers: launch/local.sh (one machine),
# launch/ssh.sh (the hosts of a host file) and launch/slurm.sbatch (one Slurm job). Sourced,
# never run.
#
# All three parse the same options (parse_cluster_args), check and create the run folder
# (prepare_run_dir), start a failed cluster again up to --restarts times (run_attempts) and
# stop a cluster through its scheduler (request_shutdown). local.sh and ssh.sh also supervise
# every role's process from this shell (start_role ... wait_for_job): what they run is a local
# process per role (the role itself, or the ssh client that runs it), start_role records it,
# the wait loop reaps it, and its exit status is the role's. slurm.sbatch leaves that to srun.
#
# The launcher sets LAUNCHER (its name in messages), USAGE and, if it wants another bound than
# 10 s, CTL_TIMEOUT_SECONDS before sourcing, and defines:
#
#   parse_launcher_option ARGS...  sets `consumed` to how many of ARGS its own option took (0:
#                                  not one of its options); called for options the shared
#                                  parser does not know
#   signal_role SIGNAL PID         (local.sh, ssh.sh) delivers SIGNAL to the role whose local
#                                  process is PID
#   start_worker NAME BASE         (local.sh, ssh.sh) starts a worker role named NAME with the
#                                  flags of worker BASE (e.g. worker-1), where BASE runs; sets
#                                  last_pid (replace_dead_workers restarts one worker with it)
#   role_pid PID                   (local.sh, ssh.sh) the pid on its host of the role started
#                                  as local process PID (nothing if not known yet)
#
# Before parse_cluster_args it may set a default of its own for servers, run_dir or bin_dir,
# OPTIONS_NOT_TAKEN (shared options it does not take: they are unknown arguments there) and
# SERVERS_FROM (how messages name where the server count comes from; default --servers).
#
# Adding a launcher option, e.g. --foo:
#   1. Parse it. An option of every launcher goes into parse_cluster_args: its name in the
#      case list, its variable and default at the top, its check after the loop (die naming
#      the option and the bad value). An option of one launcher goes into that launcher's
#      parse_launcher_option, and its checks follow the launcher's parse_cluster_args call.
#   2. Pass it to the role that needs it. local.sh: the flags of its start_role calls (one
#      each for the scheduler, the servers and the workers); ssh.sh: its start_remote_role
#      calls; slurm.sbatch: run_task, which runs in the srun tasks and sees only the
#      environment, so export the value as a GRANARY_* variable before srun. A role flag the
#      launcher need not know about needs no option: --scheduler_flags, --server_flags,
#      --worker_flags, or after --.
#   3. Document it in the launcher's header comment and USAGE, and in README.md.
#   4. Test it: tests/cluster/launch_test.cc for local.sh and ssh.sh (ssh through a stand-in
#      that runs commands here), tests/cluster/slurm_launch_test.cc for slurm.sbatch
#      (SlurmSbatchArgsTest: argument errors without Slurm; SlurmJobTest and
#      SlurmLostWorkerTest: jobs on a one-node Slurm the test starts),
#      tests/cluster/recovery_test.cc for --restarts after a crash, and
#      tests/cluster/daily_test.cc for launch/daily.sh, which runs local.sh.
#
# REQUIRES: `set -euo pipefail` in the launcher; bash >= 5.1 for the process supervision
# (local.sh and ssh.sh call require_bash_5_1 right after sourcing).

# How long the scheduler may take to bind and publish its address.
readonly ADDRESS_WAIT_SECONDS=30
# Logs are small today; RocksDB tables will not be, and a full disk fails late and obscurely.
readonly MIN_FREE_MB=100
# How long the others may take to exit on their own once the workers are done or a process
# failed (the scheduler needs a heartbeat timeout, 5 s by default, to notice a dead node).
readonly TEARDOWN_GRACE_SECONDS=15
# Between SIGTERM and SIGKILL for processes that ignored the orderly shutdown.
readonly KILL_GRACE_SECONDS=5
# Bound on `granary_ctl shutdown`, which returns once every node acknowledged; a launcher may
# set its own before sourcing (slurm.sbatch: 30).
readonly CTL_TIMEOUT_SECONDS="${CTL_TIMEOUT_SECONDS:-10}"
readonly TICK_SECONDS=0.5
# granary_worker's exit status once the scheduler fenced it (kFencedExitStatus, worker/job.h).
readonly WORKER_FENCED_STATUS=3
# Bound on waiting for the lock of the restart budget file (take_restart); it is held for a
# read and a write.
readonly BUDGET_LOCK_SECONDS=10
readonly LOG_TAIL_LINES=20
readonly BINARIES=(granary_scheduler granary_server granary_worker granary_ctl)

say() { echo "$LAUNCHER: $*"; }
die() {
  echo "$LAUNCHER: $*" >&2
  exit 1
}

# wait -n -p (bash 5.1) tells which child exited without polling pids that may be recycled.
require_bash_5_1() {
  if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
    die "needs bash >= 5.1 (this is $BASH_VERSION)"
  fi
}

positive_int() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

# True if this launcher takes shared option $1 (see OPTIONS_NOT_TAKEN above).
takes_option() { [[ " ${OPTIONS_NOT_TAKEN[*]:-} " != *" $1 "* ]]; }

# --- Arguments ------------------------------------------------------------------------------
# Role flags travel as arrays, one element per flag, from here to the role's command line
# (ssh.sh quotes each for the remote shell, slurm.sbatch passes them one per line). Two ways
# in, both repeatable, appended in the order given:
#   --worker_flags "FLAGS"   FLAGS split at spaces, tabs and newlines, nothing else: quotes and
#                            backslashes are kept as they are (no shell parsing, no eval), so
#                            no flag given this way can hold a space
#   --worker_flag ONE_FLAG   ONE_FLAG exactly as given, spaces and quotes included, e.g.
#                            --worker_flag "--output_dir=/data/it's a run"
# and the same for --scheduler_flag(s) and --server_flag(s). A flag may not hold a newline.

# Appends the words of string $2 to array variable $1 (split as described above).
append_split_flags() {
  local -n into="$1"
  local words=()
  read -r -d '' -a words <<<"$2" || true
  into+=("${words[@]}")
}

# Appends flag $3 (given with option $2) to array variable $1 as one element.
append_one_flag() {
  # shellcheck disable=SC2178  # a nameref to an array
  local -n into="$1"
  [[ "$3" != *$'\n'* ]] || die "$2 must not contain a newline, got '$3'"
  into+=("$3")
}

# Sets servers, workers, config, job, run_dir, bin_dir, timeout_seconds, restarts and the
# arrays extra_flags (after --, for every role), scheduler_flags, server_flags and
# worker_flags; dies naming the first bad or missing one. `repo` must be set unless the
# launcher set bin_dir.
parse_cluster_args() {
  servers="${servers:-}"
  workers=""
  config=""
  job="demo"
  run_dir="${run_dir:-}"
  bin_dir="${bin_dir:-$repo/build}"
  timeout_seconds=600
  extra_flags=()
  restarts=0
  restart_budget_file=""
  scheduler_flags=()
  server_flags=()
  worker_flags=()
  while (($# > 0)); do
    case "$1" in
      --) shift; extra_flags=("$@"); break ;;
      --help | -h) echo "$USAGE"; exit 0 ;;
      --*=*)
        local option="${1%%=*}" value="${1#*=}"
        shift
        set -- "$option" "$value" "$@"
        continue ;;
      --servers | --workers | --config | --job | --run_dir | --bin_dir | --timeout | \
        --restarts | --scheduler_flags | --server_flags | --worker_flags | --scheduler_flag | \
        --server_flag | --worker_flag | --restart_budget_file)
        takes_option "$1" || die "unknown argument '$1' (role flags go after --)"$'\n'"$USAGE"
        (($# >= 2)) || die "$1 needs a value"$'\n'"$USAGE"
        case "$1" in
          --servers) servers="$2" ;;
          --workers) workers="$2" ;;
          --config) config="$2" ;;
          --job) job="$2" ;;
          --run_dir) run_dir="$2" ;;
          --bin_dir) bin_dir="$2" ;;
          --timeout) timeout_seconds="$2" ;;
          --restarts) restarts="$2" ;;
          # Internal: an attempt of supervise_attempts shares the run's restart budget.
          --restart_budget_file) restart_budget_file="$2" ;;
          --scheduler_flags) append_split_flags scheduler_flags "$2" ;;
          --server_flags) append_split_flags server_flags "$2" ;;
          --worker_flags) append_split_flags worker_flags "$2" ;;
          --scheduler_flag) append_one_flag scheduler_flags "$1" "$2" ;;
          --server_flag) append_one_flag server_flags "$1" "$2" ;;
          --worker_flag) append_one_flag worker_flags "$1" "$2" ;;
        esac
        shift 2 ;;
      *)
        consumed=0
        parse_launcher_option "$@"
        ((consumed > 0)) || die "unknown argument '$1' (role flags go after --)"$'\n'"$USAGE"
        shift "$consumed" ;;
    esac
  done

  positive_int "$servers" ||
    die "${SERVERS_FROM:---servers} must be a positive integer, got '$servers'"
  if takes_option --workers; then
    positive_int "$workers" || die "--workers must be a positive integer, got '$workers'"
  fi
  if takes_option --timeout; then
    positive_int "$timeout_seconds" ||
      die "--timeout must be a positive integer, got '$timeout_seconds'"
  fi
  [[ -n "$config" ]] || die "--config is required"$'\n'"$USAGE"
  [[ "$restarts" =~ ^[0-9]+$ ]] || die "--restarts must be a number >= 0, got '$restarts'"
}

# Checks, on this machine, that the config is readable and that bin_dir holds every binary;
# dies naming the first that is not, with $1 (how to get the binaries) as the hint.
check_config_and_binaries() {
  [[ -f "$config" && -r "$config" ]] ||
    die "check failed: config file '$config' does not exist or is not readable"
  local binary
  for binary in "${BINARIES[@]}"; do
    [[ -x "$bin_dir/$binary" ]] || die "check failed: no executable $bin_dir/$binary ($1)"
  done
}

# --- Attempts (--restarts N) ----------------------------------------------------------------
# --restarts N allows N restarts per run in total, of either kind: the whole cluster (a new
# attempt, below) or one worker that died (replace_dead_workers, local.sh and ssh.sh). The
# count left is kept in the file restart_budget_file (RUN_DIR/restarts_left), which the attempts
# share (supervise_attempts passes it with --restart_budget_file).

# True, with one restart fewer left, if the run has one left. Atomic (flock on the file, bounded
# by BUDGET_LOCK_SECONDS): slurm.sbatch's tasks take restarts from it at the same time.
take_restart() {
  [[ -n "$restart_budget_file" && -s "$restart_budget_file" ]] || return 1
  (
    flock --wait "$BUDGET_LOCK_SECONDS" 9 || exit 1
    left="$(<"$restart_budget_file")"
    ((left > 0)) || exit 1
    echo $((left - 1)) >"$restart_budget_file"
  ) 9<"$restart_budget_file"
}

# Whether the run has a restart left (without taking it).
restart_left() {
  [[ -n "$restart_budget_file" && -s "$restart_budget_file" ]] && (($(<"$restart_budget_file") > 0))
}

# Runs `RUN_ATTEMPT K RUN_DIR/attempt-K` for K = 1, 2, ... until one returns 0 or one failed
# with no restart left, then exits 0 or 1. RUN_ATTEMPT starts the whole cluster and returns how
# it ended; with --scheduler_flags "--checkpoint_dir=..." each attempt rolls back to the newest
# consistent checkpoint and trains only the chunks not finished in it. A launcher whose cluster
# was stopped on purpose (a signal) sets stop_requested=1: no attempt follows.
stop_requested=0
run_attempts() {
  local run_attempt="$1" attempt status
  if [[ " ${scheduler_flags[*]} " != *" --checkpoint_dir="* ]]; then
    say "warning: --restarts without --scheduler_flags \"--checkpoint_dir=...\": an attempt after a failure trains from scratch" >&2
  fi
  restart_budget_file="$run_dir/restarts_left"
  echo "$restarts" >"$restart_budget_file"
  for ((attempt = 1; ; attempt++)); do
    say "attempt $attempt of $((restarts + 1)) in $run_dir/attempt-$attempt ($(<"$restart_budget_file") restarts left)"
    status=0
    "$run_attempt" "$attempt" "$run_dir/attempt-$attempt" || status=$?
    if ((status == 0)); then
      say "attempt $attempt succeeded"
      exit 0
    fi
    if ((stop_requested)); then
      say "attempt $attempt was stopped (status $status); no further attempt" >&2
      exit 1
    fi
    if ! take_restart; then
      say "attempt $attempt failed (status $status)" >&2
      break
    fi
    say "attempt $attempt failed (status $status); starting the cluster again" >&2
  done
  say "FAILED: all $attempt attempts failed, no restart left of $restarts; logs in $run_dir/attempt-*" >&2
  exit 1
}

# For launchers that supervise the roles from this shell (local.sh, ssh.sh): runs LAUNCHER
# ARGS... (the launcher's own path and its arguments) once per attempt, with --run_dir
# RUN_DIR/attempt-K and without --restarts (but with the run's restart budget, which lets it
# restart a dead worker alone). A signal stops the running attempt in order and
# ends the supervision with 128 + the signal's number.
supervise_attempts() {
  local launcher="$1"
  shift
  prepare_run_dir
  # The same arguments minus --restarts and --run_dir (role flags after -- unchanged).
  local attempt_launcher="$launcher" attempt_args=() skip_value=0 after_dashes=0 arg
  for arg in "$@"; do
    if ((after_dashes)); then attempt_args+=("$arg"); continue; fi
    if ((skip_value)); then skip_value=0; continue; fi
    case "$arg" in
      --) after_dashes=1; attempt_args+=("$arg") ;;
      --restarts | --run_dir) skip_value=1 ;;
      --restarts=* | --run_dir=*) ;;
      *) attempt_args+=("$arg") ;;
    esac
  done
  attempt_pid=""
  # The attempt gets SIGTERM: as a background child it ignores SIGINT.
  # shellcheck disable=SC2317  # invoked by trap
  forward_signal() {
    if [[ -n "$attempt_pid" ]]; then kill -TERM "$attempt_pid" 2>/dev/null || true; fi
    wait "$attempt_pid" 2>/dev/null || true
    say "interrupted by SIG$1" >&2
    exit $((128 + $(kill -l "$1")))
  }
  trap 'forward_signal INT' INT
  trap 'forward_signal TERM' TERM
  # Sees supervise_attempts' locals: bash scopes them dynamically.
  # shellcheck disable=SC2317  # invoked by run_attempts
  run_launcher_attempt() {
    local status=0
    "$attempt_launcher" --run_dir "$2" --restart_budget_file "$restart_budget_file" \
      "${attempt_args[@]}" &
    attempt_pid=$!
    wait "$attempt_pid" || status=$?
    attempt_pid=""
    return "$status"
  }
  run_attempts run_launcher_attempt
}

# Creates the run folder (default run/<timestamp>, linked from run/latest) after checking that
# it holds no earlier run and that its disk has room for the logs. Sets run_dir.
prepare_run_dir() {
  local link_latest=0
  if [[ -z "$run_dir" ]]; then
    run_dir="$repo/run/$(date +%Y%m%d-%H%M%S)"
    [[ -e "$run_dir" ]] && run_dir="$run_dir-$$"
    link_latest=1
  fi
  # A stale scheduler.addr would send the roles to a scheduler that no longer exists.
  if [[ -e "$run_dir/pids" || -e "$run_dir/scheduler.addr" || -e "$run_dir/attempt-1" ]]; then
    die "check failed: run dir '$run_dir' already holds a run; pass another --run_dir"
  fi
  local existing="$run_dir" free_kb
  until [[ -d "$existing" ]]; do existing="$(dirname "$existing")"; done
  free_kb="$(df -Pk "$existing" | awk 'NR == 2 { print $4 }')"
  [[ "$free_kb" =~ ^[0-9]+$ ]] || die "check failed: cannot tell the free space of '$existing' (df)"
  if ((free_kb < MIN_FREE_MB * 1024)); then
    die "check failed: only $((free_kb / 1024)) MB free on the disk of '$existing'; need $MIN_FREE_MB MB for logs"
  fi
  mkdir -p "$run_dir" || die "check failed: cannot create run dir '$run_dir'"
  if ((link_latest)); then ln -sfn "$(basename "$run_dir")" "$repo/run/latest"; fi
}

# A fresh id per run: a stray node of an earlier run cannot join this cluster by mistake.
new_cluster_id() {
  echo "$1-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
}

# The cluster's CURVE keys (common/curve_keys.h, docs/operations.md "Security"): the folder
# given as --keys_dir=DIR among the flags for every role, else a fresh keypair that
# `granary_ctl keygen` writes into RUN_DIR/keys (mode 0600), so that every link of the run is
# authenticated. Sets keys_dir; the launcher passes --keys_dir to every role and granary_ctl.
prepare_cluster_keys() {
  keys_dir=""
  local flag
  for flag in "${extra_flags[@]}"; do
    if [[ "$flag" == --keys_dir=* ]]; then keys_dir="${flag#--keys_dir=}"; fi
  done
  [[ -n "$keys_dir" ]] && return 0
  keys_dir="$run_dir/keys"
  "$bin_dir/granary_ctl" --keys_dir="$keys_dir" keygen >"$run_dir/keygen.log" 2>&1 ||
    die "check failed: cannot generate the cluster keys into $keys_dir (see $run_dir/keygen.log)"
}

# --- Process bookkeeping --------------------------------------------------------------------
declare -A name_of=()   # pid -> role name, e.g. server-1
declare -A host_of=()   # pid -> host the role runs on, when not this machine
declare -A status_of=() # pid -> exit status, once it exited
running=()              # pids started and not yet exited
started=()              # pids in start order
exited=()               # pids in exit order: the first failure is usually the cause
worker_pids=()
declare -A base_of=()  # worker pid -> the worker it is or replaces, e.g. worker-1
declare -A replaced=() # pid -> 1: a dead worker that a restarted one replaced (no failure)
awaiting=()            # dead worker pids to restart once the scheduler declared them dead
declare -A noted_dead=() # pid -> 1: a dead worker note_dead_workers looked at
# pid -> 1: a worker lost after it joined the cluster: killed by a signal, or fenced by the
# scheduler (exit status WORKER_FENCED_STATUS). The scheduler hands its work to the others
# (docs/operations.md "Losing a worker"), so it fails the run only if the scheduler does. A
# worker that exits 1 failed its job: that fails the run.
declare -A lost=()
scheduler_pid=""
scheduler_address=""
ticker=""  # pid of the sleep that bounds one wait
ctl_pid="" # pid of a running `granary_ctl shutdown`
# What an exit status of 255 means for this launcher's processes (ssh uses it for its own
# failures); empty: nothing special.
status_255_meaning=""

# Starts `command...` for role NAME with its output in RUN_DIR/NAME.log and a line
# "NAME PID [HOST]" in RUN_DIR/pids; HOST is empty for this machine. Sets last_pid.
start_role() {
  local name="$1" host="$2"
  shift 2
  # Background children of a non-interactive shell ignore SIGINT: a Ctrl-C reaches this script
  # only, and the cluster is stopped in order instead of every process dying at once.
  "$@" </dev/null >"$run_dir/$name.log" 2>&1 &
  local pid=$!
  name_of[$pid]="$name"
  if [[ -n "$host" ]]; then host_of[$pid]="$host"; fi
  echo "$name $pid${host:+ $host}" >>"$run_dir/pids"
  running+=("$pid")
  started+=("$pid")
  last_pid=$pid
}

record_exit() {
  local pid="$1" rc="$2" still=() p
  status_of[$pid]="$rc"
  exited+=("$pid")
  for p in "${running[@]}"; do
    if [[ "$p" != "$pid" ]]; then still+=("$p"); fi
  done
  running=("${still[@]}")
}

# Returns when one of our processes exits (recording its status) or after TICK_SECONDS.
# A signal interrupts the wait at once and runs its trap.
wait_a_tick() {
  local who="" rc=0 tick
  sleep "$TICK_SECONDS" &
  ticker=$!
  tick=$ticker
  # wait unsets `who` when a signal interrupts it or it fails.
  wait -n -p who "${running[@]}" "$tick" 2>/dev/null || rc=$?
  if [[ -n "${who:-}" && "$who" != "$tick" ]]; then
    kill "$tick" 2>/dev/null || true
    record_exit "$who" "$rc"
  fi
  wait "$tick" 2>/dev/null || true
  ticker=""
  # Inside a trap handler bash may reap a child and drop it from its job table, so that
  # `wait -n` no longer knows it ("no such job"); `wait PID` still has its status.
  local pid
  for pid in "${running[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rc=0
      wait "$pid" 2>/dev/null || rc=$?
      record_exit "$pid" "$rc"
    fi
  done
}

# Waits until every process exited or `seconds` passed; true if none is left.
wait_for_exit() {
  local deadline=$((SECONDS + $1))
  while ((${#running[@]} > 0 && SECONDS < deadline)); do wait_a_tick; done
  ((${#running[@]} == 0))
}

# How messages name the role started as pid $1, e.g. "server-1 (pid 4242)". A launcher whose
# roles run elsewhere redefines it to name their host and pid there.
role_label() { echo "${name_of[$1]} (pid $1)"; }

signal_running() {
  local signal="$1" pid
  for pid in "${running[@]}"; do
    say "sending SIG$signal to $(role_label "$pid")"
    signal_role "$signal" "$pid"
  done
}

# Whether a worker runs, or a dead one waits to be restarted.
worker_running() {
  local pid
  ((${#awaiting[@]} == 0)) || return 0
  for pid in "${worker_pids[@]}"; do
    if [[ -z "${status_of[$pid]+set}" ]]; then return 0; fi
  done
  return 1
}

# --- Restarting one worker (--restarts) -----------------------------------------------------
# A worker that exits non-zero or is killed after it joined the cluster, while the scheduler
# runs and the run has a restart left, is restarted alone, with the same flags: the scheduler
# gives the new process the dead one's rank once it declared that one dead (after its
# heartbeat timeout; earlier it would refuse the registration), so the restart waits for that
# line in the scheduler's log. The new process logs to RUN_DIR/worker-I.restart-K.log; the
# dead one then counts as no failure. A dead server or scheduler still fails the attempt: the
# cluster restarts from the checkpoint.

# The rules of a worker's loss, shared with slurm.sbatch's tasks (which get them with declare -f
# and must be given WORKER_FENCED_STATUS with declare -p). RUN_DIR is the attempt's folder.

# Whether a worker that exited with status $1 after it joined the cluster was lost (killed by a
# signal, or fenced by the scheduler) rather than failed: the job goes on without it.
worker_lost_status() { (($1 > 128 || $1 == WORKER_FENCED_STATUS)); }

# Whether the worker logging to file $2 had joined the cluster of RUN_DIR $1: one started with
# the cluster ($3 = 0) once it formed, a restarted one ($3 = 1) once it logged its registration.
worker_joined() {
  if (($3)); then
    grep -q "registered as worker" "$2" 2>/dev/null
  else
    grep -q "cluster formed" "$1/scheduler.log" 2>/dev/null
  fi
}

# Whether the scheduler of RUN_DIR $1 declared the worker process with pid $2 dead (only then
# does it accept a replacement).
worker_declared_dead() {
  grep -q "worker [0-9]* (\([^)]*, \)\?pid $2) is dead" "$1/scheduler.log" 2>/dev/null
}

# Whether the scheduler of RUN_DIR $1 shuts the cluster down (a worker that exits then needs no
# replacement: the scheduler would refuse it).
cluster_shutting_down() { grep -q "shutting down the cluster" "$1/scheduler.log" 2>/dev/null; }

# Moves workers that just died to `awaiting` if they may be restarted.
note_dead_workers() {
  local pid
  for pid in "${worker_pids[@]}"; do
    [[ -n "${status_of[$pid]+set}" && "${status_of[$pid]}" != 0 ]] || continue
    [[ -z "${replaced[$pid]+set}" && " ${awaiting[*]} " != *" $pid "* ]] || continue
    [[ -z "${noted_dead[$pid]+set}" ]] || continue
    noted_dead[$pid]=1
    # One that never joined the cluster (a bad flag, a refused registration) fails the attempt.
    # The first workers joined once it formed; a restarted one once it logged its registration.
    local restarted=0
    if [[ -n "${base_of[$pid]+set}" ]]; then restarted=1; fi
    worker_joined "$run_dir" "$run_dir/${name_of[$pid]}.log" "$restarted" || continue
    if worker_lost_status "${status_of[$pid]}"; then lost[$pid]=1; fi
    if [[ -n "$scheduler_pid" && -z "${status_of[$scheduler_pid]+set}" ]] && restart_left; then
      say "$(role_label "$pid") $(describe_status "${status_of[$pid]}"); restarting it alone once the scheduler declared it dead" >&2
      awaiting+=("$pid")
    fi
  done
}

# Whether a process other than a worker exited non-zero.
other_role_failed() {
  local pid
  for pid in "${exited[@]}"; do
    [[ " ${worker_pids[*]} " != *" $pid "* && "${status_of[$pid]}" != 0 ]] && return 0
  done
  return 1
}

# Restarts the awaiting workers the scheduler declared dead; drops them all if the scheduler
# exited or shuts the cluster down, or another role failed (they are failures then).
replace_dead_workers() {
  ((${#awaiting[@]} > 0)) || return 0
  # A worker that exits once the cluster shuts down needs no replacement (the scheduler would
  # refuse it), nor one of an attempt that fails anyway (a server or the scheduler failed).
  if [[ -n "${status_of[$scheduler_pid]+set}" ]] || other_role_failed ||
    cluster_shutting_down "$run_dir"; then
    awaiting=()
    return 0
  fi
  local pid still=() role_pid
  for pid in "${awaiting[@]}"; do
    role_pid="$(role_pid "$pid")"
    if [[ -z "$role_pid" ]] || ! worker_declared_dead "$run_dir" "$role_pid"; then
      still+=("$pid")
      continue
    fi
    if ! take_restart; then continue; fi
    local base="${base_of[$pid]:-${name_of[$pid]}}" k=1
    while [[ -e "$run_dir/$base.restart-$k.log" ]]; do k=$((k + 1)); done
    start_worker "$base.restart-$k" "$base"
    base_of[$last_pid]="$base"
    worker_pids+=("$last_pid")
    replaced[$pid]=1
    say "restarted $base alone as $base.restart-$k (pid $last_pid; $(<"$restart_budget_file") restarts left)" >&2
  done
  awaiting=("${still[@]}")
}

# Asks the scheduler at scheduler_address to shut cluster_id down: `granary_ctl shutdown`
# through `ctl_command` (an array: granary_ctl, or a command that runs it where the scheduler
# is), bounded by CTL_TIMEOUT_SECONDS, its output appended to file $1. True once every node
# acknowledged; false if one did not in time, or the scheduler could not be reached.
request_shutdown() {
  timeout --kill-after=2 $((CTL_TIMEOUT_SECONDS + 2)) \
    "${ctl_command[@]}" --scheduler="$scheduler_address" --cluster_id="$cluster_id" \
    --timeout="$CTL_TIMEOUT_SECONDS" shutdown >>"$1" 2>&1
}

# Orderly first: the scheduler tells every node to stop and waits for their acknowledgements
# (request_shutdown; the launcher sets ctl_command once the scheduler is listening). Whatever
# is left afterwards gets SIGTERM, then SIGKILL, always through signal_role.
stop_cluster() {
  ((${#running[@]} > 0)) || return 0
  if [[ -n "$scheduler_address" && -z "${status_of[$scheduler_pid]+set}" ]]; then
    say "asking the scheduler at $scheduler_address to shut the cluster down"
    # In the background so that a second Ctrl-C interrupts the wait at once.
    request_shutdown "$run_dir/ctl.log" &
    ctl_pid=$!
    local ctl_status=0
    wait "$ctl_pid" || ctl_status=$?
    ctl_pid=""
    if ((ctl_status == 0)); then
      # The scheduler acknowledges once every node did; they are exiting now.
      wait_for_exit "$TEARDOWN_GRACE_SECONDS" && return 0
    else
      say "granary_ctl shutdown failed, see $run_dir/ctl.log" >&2
    fi
  fi
  signal_running TERM
  wait_for_exit "$KILL_GRACE_SECONDS" && return 0
  signal_running KILL
  wait_for_exit "$KILL_GRACE_SECONDS" || say "still running after SIGKILL: ${running[*]}"
}

describe_status() {
  local rc="$1"
  if ((rc > 128 && rc < 255)); then
    echo "was killed by SIG$(kill -l "$((rc - 128))")"
  elif ((rc == 255)) && [[ -n "$status_255_meaning" ]]; then
    echo "exited with status 255 ($status_255_meaning)"
  else
    echo "exited with status $rc"
  fi
}

# Prints every failed process with the end of its log; true if all exited 0.
report() {
  local pid rc failed=0
  for pid in "${exited[@]}"; do
    rc="${status_of[$pid]}"
    ((rc == 0)) && continue
    if [[ -n "${replaced[$pid]+set}" ]]; then
      say "$(role_label "$pid") $(describe_status "$rc") and was replaced; its log: $run_dir/${name_of[$pid]}.log"
      continue
    fi
    if [[ -n "${lost[$pid]+set}" && "${status_of[$scheduler_pid]:-}" == 0 ]]; then
      say "$(role_label "$pid") $(describe_status "$rc"); the job finished without it; its log: $run_dir/${name_of[$pid]}.log"
      continue
    fi
    failed=$((failed + 1))
    echo >&2
    echo "$LAUNCHER: $(role_label "$pid") $(describe_status "$rc");" \
      "last $LOG_TAIL_LINES lines of $run_dir/${name_of[$pid]}.log:" >&2
    tail -n "$LOG_TAIL_LINES" "$run_dir/${name_of[$pid]}.log" | sed 's/^/    /' >&2
  done
  if ((failed == 0)); then
    local also=""
    if ((${#replaced[@]} > 0)); then also=" or were replaced (${#replaced[@]} dead workers)"; fi
    say "all ${#started[@]} processes exited 0$also; logs in $run_dir"
    return 0
  fi
  echo >&2
  local order=""
  if ((failed > 1)); then order=" (listed in the order they exited)"; fi
  say "FAILED: $failed of ${#started[@]} processes did not exit 0$order; logs in $run_dir" >&2
  return 1
}

# --- Signals --------------------------------------------------------------------------------
# Kills our helper processes (a tick's sleep, granary_ctl), which hold no cluster state.
# shellcheck disable=SC2317  # invoked by trap
kill_helpers() {
  local pid
  for pid in "$ticker" "$ctl_pid"; do
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  done
}

# A second Ctrl-C while stopping: no more waiting for an orderly shutdown.
# shellcheck disable=SC2317  # invoked by trap
on_second_signal() {
  kill_helpers
  echo >&2
  say "caught another signal, killing what is left" >&2
  signal_running KILL
  wait_for_exit "$KILL_GRACE_SECONDS" || say "still running after SIGKILL: ${running[*]}" >&2
  exit 130
}

# shellcheck disable=SC2317  # invoked by trap
on_signal() {
  local signal="$1"
  trap on_second_signal INT TERM
  kill_helpers
  echo >&2
  say "caught SIG$signal, stopping the cluster (again to kill at once)" >&2
  stop_cluster
  report || true
  say "interrupted by SIG$signal" >&2
  exit $((128 + $(kill -l "$signal")))
}

# Covers every other way out (a failed command under set -e, die): never leave processes behind.
# shellcheck disable=SC2317  # invoked by trap
on_exit() {
  kill_helpers
  if ((${#running[@]} > 0)); then
    signal_running TERM
    wait_for_exit "$KILL_GRACE_SECONDS" || signal_running KILL
  fi
}

install_traps() {
  trap 'on_signal INT' INT
  trap 'on_signal TERM' TERM
  # A closed terminal: its SIGHUP reaches our children too, but stop whatever survives it.
  trap 'on_signal HUP' HUP
  trap on_exit EXIT
}

# --- Waiting for the job --------------------------------------------------------------------
# Waits until `address_ready` (a command) succeeds, which sets scheduler_address; fails the
# run if the scheduler exits first or takes longer than ADDRESS_WAIT_SECONDS.
wait_for_scheduler_address() {
  local address_ready="$1" where="$2"
  local deadline=$((SECONDS + ADDRESS_WAIT_SECONDS))
  until "$address_ready"; do
    if [[ -n "${status_of[$scheduler_pid]+set}" ]]; then
      say "the scheduler exited before it was listening" >&2
      report || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      say "the scheduler wrote no $where within $ADDRESS_WAIT_SECONDS s" >&2
      stop_cluster
      report || true
      exit 1
    fi
    wait_a_tick
  done
}

# Waits for the workers' job, then for the scheduler to shut the cluster down; stops the
# cluster after --timeout or when the rest does not exit on its own. Exits 1 unless every
# process exited 0. `start_time` is when the first role started (bash SECONDS).
wait_for_job() {
  local timeout_at=$((start_time + timeout_seconds)) teardown_at="" failure="" pid
  while ((${#running[@]} > 0)); do
    if ((SECONDS >= timeout_at)); then
      failure="the cluster was still running after --timeout $timeout_seconds s"
      say "$failure; stopping it" >&2
      stop_cluster
      break
    fi
    if [[ -n "$teardown_at" ]] && ((SECONDS >= teardown_at)); then
      failure="processes were still running $TEARDOWN_GRACE_SECONDS s after the workers finished or a process failed"
      say "$failure; stopping them" >&2
      stop_cluster
      break
    fi
    wait_a_tick
    note_dead_workers
    replace_dead_workers
    if [[ -z "$teardown_at" ]]; then
      for pid in "${exited[@]}"; do
        # A lost worker's work goes on without it: the scheduler ends the run.
        [[ -z "${replaced[$pid]+set}" && -z "${lost[$pid]+set}" ]] || continue
        if [[ "${status_of[$pid]}" != 0 ]]; then teardown_at=$((SECONDS + TEARDOWN_GRACE_SECONDS)); fi
      done
      if ! worker_running; then teardown_at=$((SECONDS + TEARDOWN_GRACE_SECONDS)); fi
    fi
  done

  if ! report; then exit 1; fi
  if [[ -n "$failure" ]]; then
    say "FAILED: $failure" >&2
    exit 1
  fi
}
