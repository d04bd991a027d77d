# Helpers shared by the benchmarks that start daemons and an sshd
# (bench/net.sh, bench/jobs.sh). Sourced, never run. The sourcing script sets
# STEP_LIMIT and BIN, creates WORK (a scratch directory), then calls
# bench_traps; everything these helpers start is stopped by cleanup.
#
#   log, die                 messages on stderr, prefixed with the script's name
#   run, timed               run a command bounded by STEP_LIMIT (timed: and its wall time)
#   median, maximum, calc, sec, ms
#   clive_binary, need_disk  the clive-node binary to measure; free space under target/
#   clive, new_node, start_node, stop_node   clive-node homes and daemons on 127.0.0.1
#                            (or on an address inside a network namespace the script made)
#   reset_hwm, hwm_kib       peak RSS of a process
#   start_sshd               this benchmark's own sshd on 127.0.0.1, or on an address
#                            inside a namespace (sets SSH_CMD, SSH_E, ...)
#   ON_CLEANUP               a command the sourcing script sets; cleanup runs it last

BENCH_NAME=${0##*/}

log() { printf '%s\n' "$*" >&2; }
die() { log "$BENCH_NAME: $*"; exit 1; }

# --- processes this script started, and cleanup -------------------------------
SSHD_PID=
SLEEPER_PID=  # the watchdog of the command being timed (its process group)
FG_PID=       # the command being timed
FG_CMD=
declare -A NODE_PID=() # home -> daemon pid
BG_PIDS=()    # other background commands the script started
ON_CLEANUP=   # run by cleanup after every process is stopped (e.g. removing namespaces)

cleanup() {
  local rc=$? pid pids=() _
  trap - EXIT INT TERM
  [ -z "$FG_PID" ] || kill -TERM -- "-$FG_PID" 2>/dev/null || true
  [ -z "$FG_PID" ] || pids+=("$FG_PID")
  [ -z "$SLEEPER_PID" ] || kill -TERM -- "-$SLEEPER_PID" 2>/dev/null || true
  for pid in "${BG_PIDS[@]}"; do pids+=("$pid"); done
  [ -z "$SSHD_PID" ] || pids+=("$SSHD_PID")
  for pid in "${NODE_PID[@]}"; do pids+=("$pid"); done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ -n "$ON_CLEANUP" ]; then $ON_CLEANUP || true; fi
  rm -rf "$WORK"
  exit "$rc"
}

# bench_traps: cleanup on exit, interrupt and termination.
bench_traps() {
  trap cleanup EXIT
  trap 'log "$BENCH_NAME: interrupted"; exit 130' INT
  trap 'log "$BENCH_NAME: terminated"; exit 143' TERM
}

# --- running and timing commands ----------------------------------------------
# run CMD...: runs CMD (stdin /dev/null, stdout in $WORK/cmd.out), bounded by
# STEP_LIMIT; on failure shows what failed and its stderr, and exits 1.
run() {
  local rc=0
  timeout "$STEP_LIMIT" "$@" </dev/null >"$WORK/cmd.out" 2>"$WORK/cmd.err" || rc=$?
  [ "$rc" = 0 ] || fail "$rc" "$*"
}
fail() { # fail RC CMD
  if [ "$1" = 124 ]; then log "$BENCH_NAME: timed out after ${STEP_LIMIT} s: $2"
  else log "$BENCH_NAME: failed (exit $1): $2"; fi
  tail -n 20 "$WORK/cmd.err" | sed 's/^/  | /' >&2
  exit 1
}

# timed VAR CMD...: runs CMD as run does, and sets VAR to its wall time in
# seconds. No wrapper process runs between the two clock readings: the time
# limit is a watchdog started beforehand (a sleep, then a kill of CMD's
# process group), and CMD is waited for by its pid, which cannot miss its
# end however soon it comes (`wait -n` on CMD and a sleep could: bash 5.2
# at times lost a CMD that had ended, and waited for the sleep). CMD and
# the watchdog each run in their own process group (set -m), so that
# everything either started can be killed.
timed() {
  local var=$1 rc=0 t0 t1 us
  shift
  : >"$WORK/timed.pid"
  rm -f "$WORK/timed.expired"
  FG_CMD="$*"
  set -m
  (
    sleep "$STEP_LIMIT"
    : >"$WORK/timed.expired"
    read -r pid <"$WORK/timed.pid" && kill -TERM -- "-$pid" 2>/dev/null
  ) </dev/null >/dev/null 2>&1 &
  SLEEPER_PID=$!
  t0=$EPOCHREALTIME
  "$@" </dev/null >"$WORK/cmd.out" 2>"$WORK/cmd.err" &
  FG_PID=$!
  echo "$FG_PID" >"$WORK/timed.pid"
  wait "$FG_PID" || rc=$?
  t1=$EPOCHREALTIME
  set +m
  kill -TERM -- "-$SLEEPER_PID" 2>/dev/null || true
  wait "$SLEEPER_PID" 2>/dev/null || true
  SLEEPER_PID=
  FG_PID=
  if [ -e "$WORK/timed.expired" ]; then fail 124 "$FG_CMD"; fi
  [ "$rc" = 0 ] || fail "$rc" "$FG_CMD"
  us=$((${t1/./} - ${t0/./}))
  printf -v "$var" '%d.%06d' $((us / 1000000)) $((us % 1000000))
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPR
sec() { calc %.3f "$1"; }
ms() { calc %.1f "$1 * 1000"; }

# --- what is measured, and where -------------------------------------------------
# clive_binary: sets BIN to $CLIVE_NODE_BIN, or to a release build made now.
clive_binary() {
  if [ -n "${CLIVE_NODE_BIN:-}" ]; then
    BIN=$CLIVE_NODE_BIN
  else
    cargo build --release --locked -p clive-cli >&2
    BIN=$PWD/target/release/clive-node
  fi
  [ -x "$BIN" ] || die "no clive-node binary at $BIN"
}

# need_disk MIB: dies unless the disk of target/ has MIB MiB free.
need_disk() {
  local avail
  mkdir -p target
  avail=$(df -Pm target | awk 'NR == 2 { print $4 }')
  [ "$avail" -ge "$1" ] || die "needs $1 MiB free on the disk of $PWD/target, has ${avail} MiB"
}

# --- clive-node: nodes on loopback ---------------------------------------------
# clive ARGS...: runs clive-node with ARGS, as run does.
clive() { run "$BIN" "$@"; }

# new_node HOME [BIND]: a new node home whose daemon will listen on BIND
# (default 127.0.0.1:0) only.
new_node() {
  clive --home "$1" init
  printf '[net]\nbind = ["%s"]\n' "${2:-127.0.0.1:0}" >"$1/config.toml"
}

# start_node HOME [BIND [NETNS]]: starts its daemon in the background (pid in
# NODE_PID[HOME], output in HOME.log), listening on BIND (default
# 127.0.0.1:0; 0.0.0.0 only inside NETNS) inside network namespace NETNS
# (default: this one), and waits until it answers, listening on BIND's
# address only.
start_node() {
  local h=$1 bind=${2:-127.0.0.1:0} ns=${3:-} pid addrs host in_ns=()
  host=${bind%:*}
  [ -z "$ns" ] || in_ns=(ip netns exec "$ns")
  "${in_ns[@]}" "$BIN" --home "$h" start --bind "$bind" </dev/null >"$h.log" 2>&1 &
  pid=$!
  NODE_PID[$h]=$pid
  if ! timeout 30 "$BIN" --home "$h" status --wait 10s </dev/null >"$WORK/cmd.out" 2>"$WORK/cmd.err"; then
    log "$BENCH_NAME: the daemon of $h did not come up (${in_ns[*]} $BIN --home $h start --bind $bind)"
    if ! kill -0 "$pid" 2>/dev/null; then log "  it exited; its output:"; sed 's/^/  | /' "$h.log" | tail -n 20 >&2; fi
    log "  status --wait 10s said:"
    tail -n 20 "$WORK/cmd.err" | sed 's/^/  | /' >&2
    exit 1
  fi
  kill -0 "$pid" 2>/dev/null || die "the daemon of $h exited after answering; start must stay in the foreground"
  clive --home "$h" --json status
  [ "$(jq -r .running "$WORK/cmd.out")" = true ] || die "status of $h says it is not running: $(cat "$WORK/cmd.out")"
  addrs=$(jq -r '.addrs[]' "$WORK/cmd.out")
  [ -n "$addrs" ] || die "status of $h lists no listening address"
  # 0.0.0.0 only inside a namespace the script made: every address is its own.
  if [ "$host" != 0.0.0.0 ] && grep -qv "^${host//./\\.}:" <<<"$addrs"; then
    die "the daemon of $h listens beyond $host: $(tr '\n' ' ' <<<"$addrs")"
  fi
}

# stop_node HOME: stops its daemon and waits (bounded) for it to exit.
stop_node() {
  local h=$1 pid=${NODE_PID[$1]} _
  clive --home "$h" stop
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2>/dev/null || die "the daemon of $h still runs 10 s after stop"
  wait "$pid" 2>/dev/null || true
  unset "NODE_PID[$h]"
}

HWM_RESET=0
# reset_hwm PID: restart the peak-RSS count of PID where the kernel allows.
reset_hwm() { if [ "$HWM_RESET" = 1 ]; then echo 5 >"/proc/$1/clear_refs"; fi; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# --- sshd ------------------------------------------------------------------------

# start_sshd [ADDR [NETNS [CLIENT_NETNS]]]: starts this benchmark's own sshd
# on ADDR (default 127.0.0.1) inside NETNS (default: this namespace; keys and
# config in $WORK/ssh) and checks that ssh from CLIENT_NETNS reaches it.
# Sets SSH (that directory), PORT, SSH_CMD (an array: ssh with its options),
# SSH_E (the same as one string, for rsync -e), SSH_VERSION and SSH_ALGS.
start_sshd() {
  local addr=${1:-127.0.0.1} ns=${2:-} client_ns=${3:-} port attempt _ in_ns=() client=()
  [ -z "$ns" ] || in_ns=(ip netns exec "$ns")
  [ -z "$client_ns" ] || client=(ip netns exec "$client_ns")
  SSH=$WORK/ssh
  mkdir -m 700 "$SSH"
  ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$SSH/host_key"
  ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$SSH/client_key"
  cp "$SSH/client_key.pub" "$SSH/authorized_keys"
  # Privilege separation directory sshd insists on when run as root.
  if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi

  PORT=
  for attempt in 1 2 3 4 5; do
    port=$("${in_ns[@]}" python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$addr")
    # SetEnv SHLVL=1: bash sources ~/.bashrc for commands run by sshd only at
    # shell level 1, so this keeps this machine's rc files (root's runs
    # `pyenv init`, about 0.17 s) out of the ssh and rsync figures.
    cat >"$SSH/sshd_config" <<EOF
Port $port
ListenAddress $addr
HostKey $SSH/host_key
AuthorizedKeysFile $SSH/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile none
UseDNS no
PrintMotd no
SetEnv SHLVL=1
EOF
    cat >"$SSH/config" <<EOF
Host *
  User $(id -un)
  IdentityFile $SSH/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile $SSH/known_hosts
  BatchMode yes
  ConnectTimeout 10
  LogLevel ERROR
EOF
    run /usr/sbin/sshd -t -f "$SSH/sshd_config"
    "${in_ns[@]}" /usr/sbin/sshd -D -e -f "$SSH/sshd_config" </dev/null >"$SSH/sshd.log" 2>&1 &
    SSHD_PID=$!
    for _ in $(seq 50); do
      grep -qF "Server listening on $addr" "$SSH/sshd.log" && break
      kill -0 "$SSHD_PID" 2>/dev/null || break
      sleep 0.1
    done
    if grep -qF "Server listening on $addr" "$SSH/sshd.log" && kill -0 "$SSHD_PID" 2>/dev/null; then
      PORT=$port
      break
    fi
    kill "$SSHD_PID" 2>/dev/null || true
    wait "$SSHD_PID" 2>/dev/null || true
    SSHD_PID=
    log "sshd did not start on $addr:$port (attempt $attempt):"
    sed 's/^/  | /' "$SSH/sshd.log" >&2
  done
  [ -n "$PORT" ] || die "could not start sshd on $addr"
  SSH_E="ssh -F $SSH/config -p $PORT" # for rsync -e
  SSH_CMD=(ssh -F "$SSH/config" -p "$PORT")
  run "${client[@]}" "${SSH_CMD[@]}" -v "$addr" true
  SSH_ALGS=$(sed -n -e 's/.*kex: algorithm: \(.*\)/kex \1/p' \
    -e 's/.*kex: server->client cipher: \([^ ]*\).*/cipher \1/p' "$WORK/cmd.err" | paste -sd, - | sed 's/,/, /g')
  SSH_VERSION=$(ssh -V 2>&1 | cut -d, -f1)
  log "sshd listening on $addr:$PORT ($SSH_VERSION, $SSH_ALGS)"
}
