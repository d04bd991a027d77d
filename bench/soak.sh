#!/usr/bin/env bash
# Soak: four clive-node daemons on 127.0.0.1, all trusting each other with
# fetch,push (invite/join both ways), doing adds, gets, pins, pushes, name
# publishes (zone `za` on node 0, `zb` on node 1), follows, cats, exports and
# gcs, while daemons and CLI commands are SIGKILLed at random moments.
#
# Usage: bench/soak.sh [MINUTES]      (default 10: no round starts after that)
#
# Each round runs a random mix of operations on 3 workers at once, while the
# script SIGKILLs 0 to 2 daemons and about one command in six, each after a
# random delay (0-150 ms or 0-3 s). Then it restarts every killed daemon and
# checks, on every node:
#   - the daemon came back, and no daemon the script did not kill has exited;
#   - `fsck` is clean;
#   - every pin whose command reported success (exit 0, neither it nor its
#     node's daemon killed) is listed with its hash and `export`s byte for
#     byte as what was added (a pin whose command was killed may be missing,
#     but if present it must be right, and from then on it must stay);
#   - every name resolves (`name resolve`) on its publisher to the value of
#     its last successful publish, or, after a publish that was killed, to
#     the old or the new value (all names of one killed publish together),
#     never to the value of a publish that exited non-zero unkilled; the hash
#     exports byte for byte; every follower, after `name refresh`, resolves
#     it to the same hash;
#   - each node fetches a new blob from each other node (`get --from -o`),
#     byte for byte, at the first try;
#   - no `panicked` in any daemon log or command stderr, no "does not match
#     the hash" from these honest peers, and no command that was not killed
#     running into its time limit.
# Each violation is printed with the command, node, exit code and stderr (and
# the history of the name or pin), once. At the end the counts are printed:
# rounds, operations, commands, kills, violations. Exit 1 on any violation,
# 2 on bad usage or when the setup fails.
#
# Environment: CLIVE_NODE_BIN (default: target/release/clive-node, built by
# cargo first), SOAK_SEED (random seed, printed; default: from the clock),
# OP_TIMEOUT (seconds a command may take, default 120), SOAK_KEEP=1 to keep
# the scratch directory (target/soak.*) for a post-mortem. Binds and dials
# 127.0.0.1 only; relays and discovery stay off (the default). Every daemon
# and command started is stopped and the scratch directory removed on exit,
# Ctrl-C included.
set -uo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
{ # read whole before it runs: editing the file during a run cannot change the run

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac
MINUTES=${1:-10}
[ $# -le 1 ] && [[ $MINUTES =~ ^[0-9]+$ ]] && [ "$MINUTES" -ge 1 ] || { usage >&2; exit 2; }
OP_TIMEOUT=${OP_TIMEOUT:-120}
CHECK_TIMEOUT=60
SEED=${SOAK_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$SEED
N=4
WORKERS=3
CMD_KILL_PCT=16 # chance that a command is SIGKILLed, percent

log() { printf '%s\n' "$*" >&2; }
die() { log "soak.sh: $*"; exit 2; }
for tool in jq b3sum timeout python3 cmp diff; do
  command -v "$tool" >/dev/null || die "needs $tool"
done

if [ -n "${CLIVE_NODE_BIN:-}" ]; then
  BIN=$(realpath "$CLIVE_NODE_BIN")
else
  nice -n 10 cargo build --release --locked -p clive-cli >&2 || die "cargo build failed"
  BIN=$PWD/target/release/clive-node
fi
[ -x "$BIN" ] || die "no clive-node binary at $BIN"

mkdir -p target
WORK=$(mktemp -d "$PWD/target/soak.XXXXXX")
case "$WORK" in *[[:space:]]*) die "scratch path has whitespace: $WORK" ;; esac
RUN=$WORK/run   # one file per command running now: its process group id
LOGS=$WORK/logs # daemon logs, one per start
SRC=$WORK/src   # everything added, kept to compare exports with
mkdir -p "$RUN" "$LOGS" "$SRC"

# --- processes this script started, and cleanup ---------------------------------
declare -a DPID=()   # node -> daemon pid ("" when down)
declare -a DLOG=()   # node -> log of its current daemon
declare -a DKILLED=() # node -> 1 when the script killed it this round
WORKER_PIDS=()

cleanup() {
  local rc=$? pid f _
  trap - EXIT INT TERM
  for pid in "${WORKER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for f in "$RUN"/*; do
    [ -e "$f" ] || continue
    pid=${f##*/}
    case $pid in
      k.*) kill -KILL "${pid#k.}" 2>/dev/null || true ;; # a sleeping killer
      *) kill -KILL -- "-$pid" 2>/dev/null || true ;;   # a command's process group
    esac
  done
  for pid in "${DPID[@]}"; do [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${DPID[@]}"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null
  if [ "${SOAK_KEEP:-0}" = 1 ]; then log "soak.sh: kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "soak.sh: interrupted"; exit 130' INT
trap 'log "soak.sh: terminated"; exit 143' TERM

# --- violations -----------------------------------------------------------------------
VIOLATIONS=0
declare -A SEEN=()       # signature -> 1: each violation is reported once
declare -A VCLASS=()     # class -> count
MESH_SLOW=0
# violation CLASS SIGNATURE TEXT: prints it (TEXT may span lines) unless a
# violation with the same signature was already reported.
violation() {
  local class=$1 sig=$2
  shift 2
  [ -z "${SEEN[$sig]:-}" ] || return 0
  SEEN[$sig]=1
  VIOLATIONS=$((VIOLATIONS + 1))
  VCLASS[$class]=$((${VCLASS[$class]:-0} + 1))
  {
    printf 'VIOLATION %d [%s] (round %s)\n' "$VIOLATIONS" "$class" "${ROUND:-setup}"
    printf '%s\n' "$@" | sed 's/^/  /'
  } | tee -a "$WORK/violations"
}
# tailf FILE: its last lines, indented, for a violation's text.
tailf() { if [ -s "$1" ]; then tail -n "${2:-15}" "$1" | sed 's/^/    | /'; else echo "    (empty)"; fi; }

# --- commands ---------------------------------------------------------------------------
home() { echo "$WORK/n$1"; }
# cli NODE ARGS...: runs clive-node on NODE's home, bounded; output in $WORK/c.out/.err.
cli() {
  local n=$1
  shift
  local rc=0
  timeout -k 5 "$CHECK_TIMEOUT" "$BIN" --home "$(home "$n")" "$@" </dev/null >"$WORK/c.out" 2>"$WORK/c.err" || rc=$?
  cat "$WORK/c.err" >>"$RD/check/cli.err"
  return "$rc"
}
# cli_text: the last cli command's stderr and stdout, for a violation.
cli_text() {
  echo "  stdout:"; tailf "$WORK/c.out"
  echo "  stderr:"; tailf "$WORK/c.err"
}
setup_cli() { # setup_cli NODE ARGS...: cli, or die with what it said
  cli "$@" || { log "soak.sh: setup failed (exit $?): clive-node --home $(home "$1") ${*:2}"; cat "$WORK/c.err" >&2; exit 2; }
}

free_udp_ports() { # free_udp_ports N: N distinct free UDP ports on 127.0.0.1
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

STARTS=0
# start_daemon NODE: starts its daemon on its fixed port; 0 once it answers.
start_daemon() {
  local n=$1 pid
  STARTS=$((STARTS + 1))
  DLOG[$n]=$LOGS/n$n.$STARTS.log
  "$BIN" --home "$(home "$n")" start --bind "127.0.0.1:${PORT[$n]}" </dev/null >"${DLOG[$n]}" 2>&1 &
  pid=$!
  DPID[$n]=$pid
  if ! cli "$n" status --wait 30s || ! kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    DPID[$n]=
    return 1
  fi
  return 0
}

# --- data ---------------------------------------------------------------------------------
SRCN=0
# new_blob: a new file of random bytes in $SRC, its path in NEW. Sizes: mostly
# small, some up to 4 MiB, a few of 16-32 MiB (long enough to be killed mid-way).
# (Not called in $(...): the count must survive.)
new_blob() {
  local size r=$((RANDOM % 100)) p
  if [ "$r" -lt 65 ]; then size=$((RANDOM % 65536 + 1))
  elif [ "$r" -lt 93 ]; then size=$(((RANDOM % 4096 + 256) * 1024))
  else size=$(((RANDOM % 17 + 16) * 1048576)); fi
  SRCN=$((SRCN + 1))
  p=$SRC/b$SRCN
  head -c "$size" /dev/urandom >"$p"
  NEW=$p
}
# new_tree: a new directory of 3-40 files (one empty, some in subdirectories), in NEW.
new_tree() {
  local p f i nf=$((RANDOM % 38 + 3))
  SRCN=$((SRCN + 1))
  p=$SRC/t$SRCN
  mkdir -p "$p/sub/deeper"
  : >"$p/empty"
  for i in $(seq "$nf"); do
    case $((RANDOM % 3)) in 0) f=$p/f$i ;; 1) f=$p/sub/f$i ;; *) f=$p/sub/deeper/f$i ;; esac
    head -c $((RANDOM % 32768)) /dev/urandom >"$f"
  done
  NEW=$p
}
# same SRC PATH: PATH (exported) holds exactly the bytes of SRC (file or tree).
same() {
  [ -n "$1" ] || { log "soak.sh: internal error: no source to compare $2 with"; exit 2; }
  if [ -d "$1" ]; then [ -d "$2" ] && diff -r "$1" "$2" >/dev/null 2>&1
  else [ -f "$2" ] && cmp -s "$1" "$2"; fi
}

# --- the ledger -------------------------------------------------------------------------------
declare -A SRC_OF=()     # hash -> source path
declare -A PIN_SRC=()    # "node|pin" -> source path
declare -A PIN_HASH=()   # "node|pin" -> hash ("" if not known)
declare -A PIN_SURE=()   # "node|pin" -> 1 once it must exist, 0 while it may
declare -A PIN_HIST=()   # "node|pin" -> how it came to be
declare -A PIN_BAD=()    # "node|pin" -> 1 once reported (not checked again)
declare -A PIN_ROUND=()  # "node|pin" -> round of a get-and-pin (to tell a concurrent gc)
declare -A PIN_PARTIAL=() # "node|pin" -> 1: pinned after a failed get, may be incomplete
declare -A NAME_OK=()    # "zone/name" -> allowed values: hashes and/or "none"
declare -A NAME_HIST=()  # "zone/name" -> every publish attempt
declare -A NAME_BAD=()   # "zone/name" -> 1 once reported
declare -A NAME_NOT=()   # "zone/name" -> values of publishes that exited non-zero unkilled
declare -A FOLLOWS=()    # "node|zone" -> 1 when a follow reported success (or zone show found it)
declare -A FOLLOW_PLANNED=() # "node|zone" -> 1 once a follow is planned (one a round; reset per round)
declare -A GROUP_NAMES=() # op -> "name=hash ..." of a killed publish of several names
NOTES=0
note() { NOTES=$((NOTES + 1)); printf 'note: %s\n' "$*" | tee -a "$WORK/notes" >&2; }
ZONES=(za zb)
declare -A OWNER=([za]=0 [zb]=1)
declare -A TICKET=()
NAMES_PER_ZONE=6

# --- one round's operations -----------------------------------------------------------------
# Operations are planned by the main shell from the ledger as it stood at the
# round's start, run by the workers (background subshells that only run
# commands and write what happened to files), and read back after the round.
declare -a OP_KIND=() OP_NODE=() OP_ARGS=()

kill_delay() { # seconds: 0-150 ms or 0-3 s
  if [ $((RANDOM % 2)) = 0 ]; then printf '0.%03d' $((RANDOM % 150))
  else printf '%d.%03d' $((RANDOM % 3)) $((RANDOM % 1000)); fi
}

# step OPDIR STEP NODE ARGS...: runs one command (in its own process group,
# `timeout` makes one), SIGKILLing it after a random delay now and then.
# Writes STEP.cmd, .out, .err, .rc ("RC T0 T1"), and .killed if the kill was sent.
step() {
  local d=$1 s=$2 n=$3 tp kp= rc t0
  shift 3
  printf 'clive-node --home %s %s\n' "$(home "$n")" "$*" >"$d/$s.cmd"
  t0=$EPOCHREALTIME
  timeout -k 5 "$OP_TIMEOUT" "$BIN" --home "$(home "$n")" "$@" </dev/null >"$d/$s.out" 2>"$d/$s.err" &
  tp=$!
  : >"$RUN/$tp"
  if [ $((RANDOM % 100)) -lt "$CMD_KILL_PCT" ]; then
    (
      sleep "$(kill_delay)"
      if [ ! -e "$d/$s.rc" ]; then
        echo "$EPOCHREALTIME" >"$d/$s.killed"
        kill -KILL -- "-$tp" 2>/dev/null
      fi
    ) &
    kp=$!
    : >"$RUN/k.$kp"
  fi
  wait "$tp"
  rc=$?
  echo "$rc $t0 $EPOCHREALTIME" >"$d/$s.rc"
  rm -f "$RUN/$tp"
  if [ -n "$kp" ]; then kill "$kp" 2>/dev/null; wait "$kp" 2>/dev/null; rm -f "$RUN/k.$kp"; fi
  return "$rc"
}

# run_op ID: runs operation ID's commands (worker side).
run_op() {
  local i=$1 d=$RD/op.$1 n=${OP_NODE[$1]}
  local -a a
  read -r -a a <<<"${OP_ARGS[$i]}"
  mkdir -p "$d"
  case ${OP_KIND[$i]} in
    add) step "$d" s1 "$n" --json add "${a[0]}" --pin "${a[1]}" ;;
    add-unpinned) step "$d" s1 "$n" --json add "${a[0]}" ;;
    getpin) # a: hash, from-id or -, pin
      if [ "${a[1]}" = - ]; then step "$d" s1 "$n" get "${a[0]}"
      else step "$d" s1 "$n" get "${a[0]}" --from "${a[1]}"; fi
      step "$d" s2 "$n" pin add "${a[2]}" "${a[0]}" ;;
    push) step "$d" s1 "$n" push "${a[0]}" --to "${a[1]}" ;;
    publish) step "$d" s1 "$n" name publish "${a[@]}" ;;
    follow) step "$d" s1 "$n" name follow "${a[0]}" ;;
    cat) step "$d" s1 "$n" cat "${a[0]}" ;;
    export) step "$d" s1 "$n" export "${a[0]}" "$d/out" ;;
    gc) step "$d" s1 "$n" gc ;;
  esac
}
declare -A GC_RAN=() # "node|round" -> 1 when a gc ran on node in that round

rand_node() { echo $((RANDOM % N)); }
# sure_pins [NODE]: "node|pin" keys of pins that must exist (on NODE).
sure_pins() {
  local k
  for k in "${!PIN_SURE[@]}"; do
    [ "${PIN_SURE[$k]}" = 1 ] && [ -z "${PIN_BAD[$k]:-}" ] && [ -n "${PIN_HASH[$k]}" ] || continue
    [ -z "${1:-}" ] || [ "${k%%|*}" = "$1" ] || continue
    echo "$k"
  done
}
pick() { # pick WORD...: one of them
  local -a w=("$@")
  [ ${#w[@]} -gt 0 ] && echo "${w[RANDOM % ${#w[@]}]}"
}

PINN=0
# plan_op ID: chooses operation ID (kind, node, arguments) and its lane.
plan_op() {
  local i=$1 r=$((RANDOM % 100)) n k h src z names pairs j t
  n=$(rand_node)
  OP_NODE[$i]=$n
  PINN=$((PINN + 1))
  if [ "$r" -lt 26 ]; then
    if [ $((RANDOM % 4)) = 0 ]; then new_tree; else new_blob; fi
    OP_KIND[$i]=add; OP_ARGS[$i]="$NEW p$ROUND-$PINN"
  elif [ "$r" -lt 29 ]; then
    new_blob
    OP_KIND[$i]=add-unpinned; OP_ARGS[$i]=$NEW
  elif [ "$r" -lt 50 ] && k=$(pick $(sure_pins)); then
    h=${PIN_HASH[$k]}
    while [ "$n" = "${k%%|*}" ]; do n=$(rand_node); done
    OP_NODE[$i]=$n
    if [ $((RANDOM % 3)) = 0 ]; then t=-; else t=${ID[${k%%|*}]}; fi
    OP_KIND[$i]=getpin; OP_ARGS[$i]="$h $t g$ROUND-$PINN"
  elif [ "$r" -lt 55 ] && k=$(pick $(sure_pins)); then
    n=${k%%|*}
    j=$(rand_node); while [ "$j" = "$n" ]; do j=$(rand_node); done
    OP_NODE[$i]=$n; OP_KIND[$i]=push; OP_ARGS[$i]="${PIN_HASH[$k]} ${ID[$j]} $j"
  elif [ "$r" -lt 76 ]; then
    z=${ZONES[RANDOM % ${#ZONES[@]}]}
    n=${OWNER[$z]}
    OP_NODE[$i]=$n
    pairs=
    names=" "
    for _ in $(seq $((RANDOM % 3 + 1))); do
      t="$z/app$((RANDOM % NAMES_PER_ZONE))"
      case $names in *" $t "*) continue ;; esac
      names+="$t "
      if [ $((RANDOM % 3)) = 0 ] && k=$(pick $(sure_pins "$n")); then
        pairs+=" $t ${PIN_HASH[$k]}"
      else
        new_blob
        pairs+=" $t $NEW"
      fi
    done
    OP_KIND[$i]=publish; OP_ARGS[$i]=${pairs# }
  elif [ "$r" -lt 84 ]; then
    local -a todo=()
    for z in "${ZONES[@]}"; do
      for j in $(seq 0 $((N - 1))); do
        [ "$j" = "${OWNER[$z]}" ] || [ -n "${FOLLOWS[$j|$z]:-}" ] || [ -n "${FOLLOW_PLANNED[$j|$z]:-}" ] || todo+=("$j $z")
      done
    done
    if [ ${#todo[@]} -gt 0 ]; then
      read -r j z <<<"$(pick "${todo[@]}")"
      OP_NODE[$i]=$j; OP_KIND[$i]=follow; OP_ARGS[$i]="${TICKET[$z]} $z"
      FOLLOW_PLANNED[$j|$z]=1
    else
      OP_KIND[$i]=gc; OP_ARGS[$i]=
    fi
  elif [ "$r" -lt 91 ] && k=$(pick $(sure_pins)); then
    OP_NODE[$i]=${k%%|*}; OP_KIND[$i]=cat; OP_ARGS[$i]=${k#*|}
    [ -f "${PIN_SRC[$k]}" ] || OP_KIND[$i]=export
  elif [ "$r" -lt 96 ] && k=$(pick $(sure_pins)); then
    OP_NODE[$i]=${k%%|*}; OP_KIND[$i]=export; OP_ARGS[$i]=${k#*|}
  else
    OP_KIND[$i]=gc; OP_ARGS[$i]=
  fi
}

# --- reading a round back ----------------------------------------------------------------------
declare -a KILL_NODE=() KILL_AT=() # daemon kills of this round
OPS=0; CMDS=0; CMD_KILLS=0; DAEMON_KILLS=0; UNCERTAIN=0; TIMEOUTS=0
declare -A FAILS=() # first line of a failed command's error, normalised -> count

# step_rc OPDIR STEP: the step's exit code ("" if it never ran).
step_rc() { [ -e "$1/$2.rc" ] && cut -d' ' -f1 "$1/$2.rc"; }
# step_sure OPDIR STEP NODE...: the step ran, was not killed, did not time
# out, and none of the daemons of NODE... was killed while it ran (half a
# second either side).
step_sure() {
  local d=$1 s=$2 rc t0 t1 n k
  shift 2
  [ -e "$d/$s.rc" ] && [ ! -e "$d/$s.killed" ] || return 1
  read -r rc t0 t1 <"$d/$s.rc"
  [ "$rc" != 124 ] && [ "$rc" != 137 ] || return 1
  for n in "$@"; do
    for k in "${!KILL_NODE[@]}"; do
      [ "${KILL_NODE[$k]}" = "$n" ] || continue
      if awk -v a="$t0" -v b="$t1" -v t="${KILL_AT[$k]}" 'BEGIN { exit !(t >= a - 0.5 && t <= b + 0.5) }'; then
        return 1
      fi
    done
  done
  return 0
}
# step_text OPDIR STEP: what a violation shows of a step.
step_text() {
  local d=$1 s=$2
  echo "  command: $(cat "$d/$s.cmd" 2>/dev/null)"
  echo "  exit: $(step_rc "$d" "$s")$([ -e "$d/$s.killed" ] && echo ' (SIGKILLed by the soak)')"
  echo "  stderr:"; tailf "$d/$s.err"
}
# step_note OPDIR STEP NODE...: one line of history for the ledger.
step_note() {
  local d=$1 s=$2 how
  shift 2
  if step_sure "$d" "$s" "$@"; then how="exit $(step_rc "$d" "$s")"
  else how="UNCERTAIN (exit $(step_rc "$d" "$s"), $([ -e "$d/$s.killed" ] && echo 'command SIGKILLed' || echo 'a daemon SIGKILLed during it'))"; fi
  echo "round $ROUND: $(cat "$d/$s.cmd" 2>/dev/null) -> $how"
}

# count_steps OPDIR: counts commands, kills, timeouts and failures.
count_steps() {
  local d=$1 f s rc line
  for f in "$d"/*.rc; do
    [ -e "$f" ] || continue
    s=${f##*/}; s=${s%.rc}
    CMDS=$((CMDS + 1))
    rc=$(step_rc "$d" "$s")
    if grep -q 'does not match the hash' "$d/$s.err"; then
      violation false-mismatch "mismatch|$d/$s" "a transfer from an honest peer (no store damaged: see fsck) was reported as a hash mismatch" "$(step_text "$d" "$s")"
    fi
    if [ -e "$d/$s.killed" ]; then CMD_KILLS=$((CMD_KILLS + 1)); continue; fi
    if [ "$rc" = 124 ]; then
      TIMEOUTS=$((TIMEOUTS + 1))
      violation hang "hang|$d/$s" "a command that was not killed ran into its ${OP_TIMEOUT} s limit (node's daemon killed during it: $(step_sure "$d" "$s" 0 1 2 3 && echo no || echo maybe))" "$(step_text "$d" "$s")"
      continue
    fi
    if [ "$rc" != 0 ]; then
      line=$(grep -m1 -i 'error' "$d/$s.err" | sed -E 's/[0-9a-f]{16,}/H/g; s/[0-9]+(\.[0-9]+)?/N/g' | cut -c1-160)
      FAILS["${line:-exit $rc, no error line}"]=$((${FAILS["${line:-exit $rc, no error line}"]:-0} + 1))
    fi
  done
}

# absorb ID: takes operation ID's outcome into the ledger (main side).
absorb() {
  local i=$1 d=$RD/op.$1 n=${OP_NODE[$1]} key h src z name t j f
  local -a a
  read -r -a a <<<"${OP_ARGS[$i]}"
  OPS=$((OPS + 1))
  count_steps "$d"
  for f in "$d"/*.rc; do
    [ -e "$f" ] || continue
    f=${f##*/}
    if ! step_sure "$d" "${f%.rc}" "$n"; then UNCERTAIN=$((UNCERTAIN + 1)); break; fi
  done
  case ${OP_KIND[$i]} in
    add)
      key="$n|${a[1]}"
      h=$(jq -r 'if type == "array" then .[0] else . end | .hash // empty' "$d/s1.out" 2>/dev/null)
      PIN_SRC[$key]=${a[0]}; PIN_HASH[$key]=$h
      PIN_HIST[$key]=$(step_note "$d" s1 "$n")
      if step_sure "$d" s1 "$n" && [ "$(step_rc "$d" s1)" = 0 ]; then
        PIN_SURE[$key]=1
        [ -n "$h" ] || violation add-output "addout|$d" "add exited 0 but printed no hash" "$(step_text "$d" s1)"
      else
        PIN_SURE[$key]=0
      fi
      [ -z "$h" ] || SRC_OF[$h]=${a[0]} ;;
    getpin)
      key="$n|${a[2]}"
      PIN_SRC[$key]=${SRC_OF[${a[0]}]:-}; PIN_HASH[$key]=${a[0]}
      PIN_HIST[$key]="$(step_note "$d" s1 "$n")"$'\n'"$(step_note "$d" s2 "$n")"
      PIN_ROUND[$key]=$ROUND
      if step_sure "$d" s2 "$n" && [ "$(step_rc "$d" s2)" = 0 ]; then
        if step_sure "$d" s1 "$n" && [ "$(step_rc "$d" s1)" = 0 ]; then PIN_SURE[$key]=1
        else
          # `pin add` checks that the root is stored, not that all of it
          # is: after a get that failed, the pin may name an incomplete object.
          PIN_SURE[$key]=0; PIN_PARTIAL[$key]=1
        fi
      else PIN_SURE[$key]=0; fi ;;
    push)
      j=${a[2]}
      key="$j|pushed-${a[0]:0:16}" # the name the receiver pins it under
      if [ -z "${PIN_SURE[$key]:-}" ] || [ "${PIN_SURE[$key]}" = 0 ]; then
        PIN_SRC[$key]=${SRC_OF[${a[0]}]:-}; PIN_HASH[$key]=${a[0]}
        PIN_HIST[$key]=$(step_note "$d" s1 "$n" "$j")
        if step_sure "$d" s1 "$n" "$j" && [ "$(step_rc "$d" s1)" = 0 ]; then PIN_SURE[$key]=1
        else PIN_SURE[$key]=0; fi
      fi ;;
    publish)
      local sure=0 rc killed=0 prev ambiguous=0
      local -a gn=()
      rc=$(step_rc "$d" s1)
      step_sure "$d" s1 "$n" && sure=1
      [ -e "$d/s1.killed" ] && killed=1
      for ((j = 0; j < ${#a[@]}; j += 2)); do
        name=${a[j]}; t=${a[j + 1]}
        if [ -f "$t" ]; then h=$(b3sum --no-names "$t"); SRC_OF[$h]=$t; else h=$t; fi
        NAME_HIST[$name]+="$(step_note "$d" s1 "$n") [$name = $h]"$'\n'
        prev=${NAME_OK[$name]:-}
        # An earlier publish of this name whose client was killed may still
        # commit after this one: no all-or-nothing check on this one.
        [ -z "${NAME_LATEV[$name]:-}" ] || ambiguous=1
        if [ "$sure" = 1 ] && [ "$rc" = 0 ]; then
          # A publish whose client was killed earlier this round may still
          # be running in the daemon: its value stays allowed.
          NAME_OK[$name]="$h${NAME_LATEV[$name]:-}"
        elif [ "$sure" = 1 ]; then
          NAME_NOT[$name]+=" $h"
          [ -n "$prev" ] || NAME_OK[$name]=none
        else
          case " $prev " in *" $h "*) ;; *) gn+=("$name=$h") ;; esac
          NAME_OK[$name]="${prev:-none} $h"
          if [ "$killed" = 1 ]; then NAME_LATEV[$name]+=" $h"; NAME_CLIENT_KILLED[$name]=1; fi
        fi
      done
      if [ "$sure" = 0 ] && [ "$ambiguous" = 0 ] && [ ${#gn[@]} -ge 2 ]; then GROUPS_+=("$i"); GROUP_NAMES[$i]="${gn[*]}"; fi ;;
    gc) GC_RAN["$n|$ROUND"]=1 ;;
    follow)
      if step_sure "$d" s1 "$n" && [ "$(step_rc "$d" s1)" = 0 ]; then FOLLOWS["$n|${a[1]}"]=1; fi ;;
    cat)
      key="$n|${a[0]}"
      if step_sure "$d" s1 "$n" && [ "$(step_rc "$d" s1)" = 0 ] && ! cmp -s "$d/s1.out" "${PIN_SRC[$key]}"; then
        violation wrong-bytes "cat|$key|$ROUND" "cat of pin ${a[0]} on node $n exited 0 with other bytes than were added (${PIN_SRC[$key]})" "$(step_text "$d" s1)"
      fi ;;
    export)
      key="$n|${a[0]}"
      if step_sure "$d" s1 "$n" && [ "$(step_rc "$d" s1)" = 0 ] && ! same "${PIN_SRC[$key]}" "$d/out"; then
        violation wrong-bytes "export|$key|$ROUND" "export of pin ${a[0]} on node $n exited 0 with other content than was added (${PIN_SRC[$key]})" "$(step_text "$d" s1)"
      fi ;;
  esac
}

# --- checks after a round ------------------------------------------------------------------------
check_panics() {
  local f hits
  for f in "$LOGS"/*.log "$RD"/op.*/*.err "$RD"/check/*.err; do
    [ -e "$f" ] || continue
    hits=$(grep -n 'panicked' "$f" | head -n 3) || continue
    violation panic "panic|$f|$hits" "'panicked' in $f:" "$(tailf "$f" 30)"
  done
}

check_daemons() {
  local n
  for n in $(seq 0 $((N - 1))); do
    if [ -n "${DPID[$n]}" ] && ! kill -0 "${DPID[$n]}" 2>/dev/null; then
      wait "${DPID[$n]}" 2>/dev/null
      violation daemon-exit "exit|${DLOG[$n]}" "the daemon of node $n exited without being killed (exit $?)" "  log: ${DLOG[$n]}" "$(tailf "${DLOG[$n]}" 30)"
      DPID[$n]=
    fi
    if [ -z "${DPID[$n]}" ]; then
      if ! start_daemon "$n"; then
        violation restart "restart|$n|$ROUND" "the daemon of node $n did not come back after a SIGKILL: clive-node --home $(home "$n") start --bind 127.0.0.1:${PORT[$n]}" "$(cli_text)" "  log:" "$(tailf "${DLOG[$n]}" 30)"
      fi
    fi
  done
}

# wait_mesh: waits (at most 5 s) until every running daemon lists its 3 peers
# as connected. (Connections are opened on demand, so this is only a settling
# time; the gets of check_fetch test what a user sees.)
wait_mesh() {
  local _ n ok
  for _ in $(seq 10); do
    ok=1
    for n in $(seq 0 $((N - 1))); do
      [ -n "${DPID[$n]}" ] || continue
      cli "$n" --json peers ls && [ "$(jq '[.[] | select(.connected)] | length' "$WORK/c.out")" = 3 ] || { ok=0; break; }
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.5
  done
  MESH_SLOW=$((MESH_SLOW + 1))
  return 0
}

check_fsck() {
  local n rc lines x
  for n in $(seq 0 $((N - 1))); do
    [ -n "${DPID[$n]}" ] || continue
    rc=0
    cli "$n" fsck || rc=$?
    [ "$rc" != 0 ] || continue
    # Objects missing under a pin made after a get that failed are that
    # pin's (noted in check_pins), not damage fsck should not find.
    lines=$(grep -E '^(missing|damaged) ' "$WORK/c.out" | while IFS= read -r x; do
      if [[ $x =~ needed\ by\ pin\ \"([^\"]+)\" ]] && [ -n "${PIN_PARTIAL[$n|${BASH_REMATCH[1]}]:-}" ] && [ "${PIN_SURE[$n|${BASH_REMATCH[1]}]:-}" = 0 ]; then continue; fi
      echo "$x"
    done)
    if [ -z "$lines" ] && grep -qE '^(missing|damaged) ' "$WORK/c.out"; then continue; fi
    violation fsck "fsck|$n|$(cut -d' ' -f1-2 <<<"$lines" | sort | b3sum --no-names)" \
      "fsck on node $n is not clean (exit $rc) after round $ROUND: clive-node --home $(home "$n") fsck" "$(cli_text)"
  done
}

check_pins() {
  local n k h d listed
  for n in $(seq 0 $((N - 1))); do
    [ -n "${DPID[$n]}" ] || continue
    if ! cli "$n" --json pin ls; then
      violation pin-ls "pinls|$n|$ROUND" "pin ls fails on node $n" "$(cli_text)"
      continue
    fi
    cp "$WORK/c.out" "$WORK/pins.$n"
    for k in "${!PIN_SURE[@]}"; do
      [ "${k%%|*}" = "$n" ] && [ -z "${PIN_BAD[$k]:-}" ] || continue
      listed=$(jq -r --arg p "${k#*|}" '.[] | select(.name == $p) | .hash' "$WORK/pins.$n")
      if [ -z "$listed" ]; then
        if [ "${PIN_SURE[$k]}" = 1 ]; then
          PIN_BAD[$k]=1
          violation pin-lost "pinlost|$k" "pin ${k#*|} on node $n is gone, though its command succeeded" "  history:" "$(sed 's/^/    /' <<<"${PIN_HIST[$k]}")"
        fi
        continue
      fi
      h=${PIN_HASH[$k]}
      if [ -n "$h" ] && [ "$listed" != "$h" ]; then
        PIN_BAD[$k]=1
        violation pin-wrong "pinwrong|$k" "pin ${k#*|} on node $n points at $listed, not $h" "  history:" "$(sed 's/^/    /' <<<"${PIN_HIST[$k]}")"
        continue
      fi
      d=$RD/check/export.$n.${k#*|}
      if ! cli "$n" export "${k#*|}" "$d"; then
        PIN_BAD[$k]=1
        if [ -n "${PIN_PARTIAL[$k]:-}" ] && [ "${PIN_SURE[$k]}" = 0 ]; then
          note "round $ROUND: pin ${k#*|} on node $n, pinned after a get that failed, does not export: $(grep -m1 -i error "$WORK/c.err")"
          rm -rf "$d"; continue
        fi
        violation pin-export "pinexport|$k" "pin ${k#*|} ($listed) on node $n does not export: clive-node --home $(home "$n") export ${k#*|} DEST$([ -n "${GC_RAN[$n|${PIN_ROUND[$k]:-x}]:-}" ] && echo " (a gc ran on node $n in the round it was pinned)")" "$(cli_text)" "  history:" "$(sed 's/^/    /' <<<"${PIN_HIST[$k]}")"
      elif ! same "${PIN_SRC[$k]}" "$d"; then
        PIN_BAD[$k]=1
        violation wrong-bytes "pinbytes|$k" "pin ${k#*|} ($listed) on node $n exports other content than was added (${PIN_SRC[$k]})" "  history:" "$(sed 's/^/    /' <<<"${PIN_HIST[$k]}")"
      else
        # Present and right: from now on it must stay.
        PIN_SURE[$k]=1; PIN_HASH[$k]=$listed
        [ -n "${SRC_OF[$listed]:-}" ] || SRC_OF[$listed]=${PIN_SRC[$k]}
      fi
      rm -rf "$d"
    done
  done
}

# resolve_on NODE NAME: prints the hash, "none" if not published; 1 on other errors.
resolve_on() {
  if cli "$1" name resolve "$2"; then head -n1 "$WORK/c.out"
  elif grep -q 'is not published in zone' "$WORK/c.err"; then echo none
  else return 1; fi
}

check_names() {
  local z o name got n f d t h now
  for z in "${ZONES[@]}"; do
    o=${OWNER[$z]}
    [ -n "${DPID[$o]}" ] || continue
    declare -A GOT=()
    for name in "${!NAME_OK[@]}"; do
      [ "${name%%/*}" = "$z" ] && [ -z "${NAME_BAD[$name]:-}" ] || continue
      if ! got=$(resolve_on "$o" "$name"); then
        NAME_BAD[$name]=1
        violation name-broken "namebroken|$name" "$name does not resolve on its publisher, node $o: clive-node --home $(home "$o") name resolve $name" "$(cli_text)" "  allowed: ${NAME_OK[$name]}" "  publishes:" "$(sed 's/^/    /' <<<"${NAME_HIST[$name]}")"
        continue
      fi
      GOT[$name]=$got
      case " ${NAME_OK[$name]} " in
        *" $got "*) ;;
        *)
          NAME_BAD[$name]=1
          violation name-wrong "namewrong|$name" "$name resolves on node $o to $got; allowed: ${NAME_OK[$name]}" "  (a value outside the allowed set: a lost successful publish, or a publish that exited non-zero unkilled$(case " ${NAME_NOT[$name]:-} " in *" $got "*) echo ' -- this is one of those' ;; esac))" "  publishes:" "$(sed 's/^/    /' <<<"${NAME_HIST[$name]}")"
          continue ;;
      esac
      if [ "$got" != none ]; then
        d=$RD/check/name.${name//\//_}
        if ! cli "$o" export "$got" "$d"; then
          NAME_BAD[$name]=1
          violation name-export "nameexport|$name" "$name = $got does not export on node $o" "$(cli_text)" "  publishes:" "$(sed 's/^/    /' <<<"${NAME_HIST[$name]}")"
        elif [ -n "${SRC_OF[$got]:-}" ] && ! same "${SRC_OF[$got]}" "$d"; then
          NAME_BAD[$name]=1
          violation wrong-bytes "namebytes|$name" "$name = $got on node $o exports other content than ${SRC_OF[$got]}" "  publishes:" "$(sed 's/^/    /' <<<"${NAME_HIST[$name]}")"
        fi
        rm -rf "$d"
      fi
    done
    # All the names of a killed publish changed together, or none did.
    local i j newc oldc nh
    for i in "${GROUPS_[@]}"; do
      [ "${OP_NODE[$i]}" = "$o" ] || continue
      newc=0; oldc=0
      for nh in ${GROUP_NAMES[$i]}; do
        name=${nh%%=*}
        [ "${name%%/*}" = "$z" ] && [ -z "${NAME_LATER[$name|$i]:-}" ] && [ -n "${GOT[$name]:-}" ] || continue 2
        if [ "${GOT[$name]}" = "${nh#*=}" ]; then newc=$((newc + 1)); else oldc=$((oldc + 1)); fi
      done
      if [ "$newc" -gt 0 ] && [ "$oldc" -gt 0 ]; then
        violation name-torn "torn|$i" "a killed publish of several names took effect for $newc of them and not for $oldc: ${GROUP_NAMES[$i]}" "  now: $(for nh in ${GROUP_NAMES[$i]}; do printf '%s=%s ' "${nh%%=*}" "${GOT[${nh%%=*}]}"; done)" "$(step_text "$RD/op.$i" s1)"
      fi
    done
    # Settled: what resolves now is what must resolve from now on, except
    # where a killed client's request may still be running in its daemon.
    for name in "${!GOT[@]}"; do
      if [ -z "${NAME_CLIENT_KILLED[$name]:-}" ]; then NAME_OK[$name]=${GOT[$name]}; fi
    done
    # Followers, after a refresh from the publisher, agree.
    for n in $(seq 0 $((N - 1))); do
      [ "$n" != "$o" ] && [ -n "${DPID[$n]}" ] || continue
      if ! cli "$n" name zone show "$z"; then
        [ -z "${FOLLOWS[$n|$z]:-}" ] || violation follow-lost "followlost|$n|$z" "node $n followed $z (follow exited 0) but zone show fails" "$(cli_text)"
        continue
      fi
      FOLLOWS[$n|$z]=1
      local ok=0 _
      for _ in 1 2 3; do
        if cli "$n" name refresh "$z"; then ok=1; break; fi
        sleep 2
      done
      if [ "$ok" = 0 ]; then
        violation refresh "refresh|$n|$z|$(grep -m1 -i error "$WORK/c.err" | sed -E 's/[0-9a-f]{8,}/H/g')" "node $n cannot refresh $z from its publisher (node $o), 3 tries 2 s apart: clive-node --home $(home "$n") name refresh $z" "$(cli_text)"
        continue
      fi
      for name in "${!GOT[@]}"; do
        [ -z "${NAME_BAD[$name]:-}" ] || continue
        if ! got=$(resolve_on "$n" "$name"); then
          violation follower-broken "fbroken|$n|$name|${GOT[$name]}" "$name does not resolve on follower node $n after a refresh (publisher: ${GOT[$name]})" "$(cli_text)"
        elif [ "$got" != "${GOT[$name]}" ] && now=$(resolve_on "$o" "$name") && [ "$now" != "${GOT[$name]}" ]; then
          note "round $ROUND: $name changed on its publisher during the check (${GOT[$name]} -> $now; a killed client's publish committing late?); follower node $n says $got"
        elif [ "$got" != "${GOT[$name]}" ]; then
          violation follower-wrong "fwrong|$n|$name|${GOT[$name]}" "$name resolves on follower node $n to $got after a refresh; the publisher says ${GOT[$name]}" "$(cli_text)"
        fi
      done
    done
    unset GOT
  done
}

# check_fetch: each node adds a new blob; each other node gets it at once.
check_fetch() {
  local x y p h d
  for x in $(seq 0 $((N - 1))); do
    [ -n "${DPID[$x]}" ] || continue
    p=$SRC/probe.$ROUND.$x
    head -c $((RANDOM % 8192 + 1)) /dev/urandom >"$p"
    if ! cli "$x" --json add "$p" --pin "probe-$ROUND"; then
      violation add-failed "probeadd|$x|$ROUND" "add of a small file fails on node $x after the round (all daemons up)" "$(cli_text)"
      continue
    fi
    h=$(jq -r 'if type == "array" then .[0] else . end | .hash' "$WORK/c.out")
    SRC_OF[$h]=$p
    PIN_SRC["$x|probe-$ROUND"]=$p; PIN_HASH["$x|probe-$ROUND"]=$h; PIN_SURE["$x|probe-$ROUND"]=1
    PIN_HIST["$x|probe-$ROUND"]="round $ROUND: probe add, exit 0"
    for y in $(seq 0 $((N - 1))); do
      [ "$y" != "$x" ] && [ -n "${DPID[$y]}" ] || continue
      d=$RD/check/probe.$x.$y
      if ! cli "$y" get "$h" --from "${ID[$x]}" -o "$d"; then
        local first
        first=$(cli_text)
        local later=failed
        sleep 1
        cli "$y" get "$h" --from "${ID[$x]}" -o "$d" && later=succeeded
        violation fetch-after-restart "fetch|$y|$x|$(grep -m1 -i error <<<"$first" | sed -E 's/[0-9a-f]{8,}/H/g; s/[0-9]+/N/g')" \
          "node $y cannot get a new blob from node $x (${KILLED_NOW:-no daemons} SIGKILLed and restarted this round); a second try 1 s later $later: clive-node --home $(home "$y") get $h --from ${ID[$x]} -o DEST" "$first"
      elif ! cmp -s "$p" "$d"; then
        violation wrong-bytes "probebytes|$y|$x|$ROUND" "get -o from node $x to node $y wrote other bytes" "$(cli_text)"
      fi
      rm -rf "$d"
    done
  done
}

# --- setup ------------------------------------------------------------------------------------------
ROUND=0
RD=$WORK/setup
mkdir -p "$RD/check"
read -r -a PORT <<<"$(free_udp_ports "$N")"
declare -a ID=()
log "soak: $N nodes on 127.0.0.1 (UDP ports ${PORT[*]}), seed $SEED, $MINUTES min, $BIN"
for n in $(seq 0 $((N - 1))); do
  setup_cli "$n" init
  printf '[net]\nbind = ["127.0.0.1:0"]\n' >"$(home "$n")/config.toml"
  start_daemon "$n" || die "the daemon of node $n did not start: $(cat "$WORK/c.err") $(tail -n 20 "${DLOG[$n]}")"
  setup_cli "$n" --json status
  ID[$n]=$(jq -r .identity.endpoint_id "$WORK/c.out")
  if jq -r '.addrs[]' "$WORK/c.out" | grep -qv '^127\.0\.0\.1:'; then
    die "the daemon of node $n listens beyond 127.0.0.1: $(jq -c .addrs "$WORK/c.out")"
  fi
done
for x in $(seq 0 $((N - 1))); do
  for y in $(seq 0 $((N - 1))); do
    [ "$x" != "$y" ] || continue
    setup_cli "$x" invite --cap fetch,push --expires 1h --uses 1
    setup_cli "$y" join "$(tail -n1 "$WORK/c.out")"
  done
done
for z in "${ZONES[@]}"; do
  setup_cli "${OWNER[$z]}" --json name zone create "$z"
  TICKET[$z]=$(jq -r .ticket "$WORK/c.out")
  [[ ${TICKET[$z]} == clivezone1* ]] || die "zone create $z printed no ticket: $(cat "$WORK/c.out")"
done
wait_mesh
check_panics

# --- rounds -------------------------------------------------------------------------------------------
T_START=$SECONDS
DEADLINE=$((SECONDS + MINUTES * 60))
ROUNDS=0
while [ "$SECONDS" -lt "$DEADLINE" ]; do
  ROUND=$((ROUND + 1))
  ROUNDS=$ROUND
  RD=$WORK/round.$ROUND
  mkdir -p "$RD/check"
  OP_KIND=(); OP_NODE=(); OP_ARGS=(); KILL_NODE=(); KILL_AT=(); GROUPS_=()
  declare -A NAME_LATEV=() NAME_CLIENT_KILLED=() NAME_LATER=()
  FOLLOW_PLANNED=()
  nops=$((RANDOM % 17 + 16))
  declare -a LANE=()
  for i in $(seq 0 $((nops - 1))); do
    plan_op "$i"
    # Publishes of a zone run in order, on one worker.
    case ${OP_KIND[$i]} in
      publish) LANE[$i]=$(( ${OP_NODE[$i]} % WORKERS )) ;;
      *) LANE[$i]=$((RANDOM % WORKERS)) ;;
    esac
  done
  # A name published again later in the round: a group check would be ambiguous.
  declare -A last_pub=()
  for i in $(seq 0 $((nops - 1))); do
    [ "${OP_KIND[$i]}" = publish ] || continue
    read -r -a a <<<"${OP_ARGS[$i]}"
    for ((j = 0; j < ${#a[@]}; j += 2)); do
      [ -z "${last_pub[${a[j]}]:-}" ] || NAME_LATER["${a[j]}|${last_pub[${a[j]}]}"]=1
      last_pub[${a[j]}]=$i
    done
  done
  unset last_pub
  WORKER_PIDS=()
  for w in $(seq 0 $((WORKERS - 1))); do
    (
      RANDOM=$((SEED * 7 + ROUND * 131 + w))
      for i in $(seq 0 $((nops - 1))); do
        [ "${LANE[$i]}" = "$w" ] && run_op "$i"
      done
      exit 0
    ) 2>>"$RD/workers.err" &
    WORKER_PIDS+=($!)
  done
  # Daemon kills, at random moments while the workers run.
  nk=$(pick 0 1 1 2)
  KILLED_NOW=
  for _ in $(seq "$nk"); do
    sleep "$(printf '0.%03d' $((RANDOM % 1000)))" # rounds' commands take 1-3 s
    alive=0
    for p in "${WORKER_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 1 ] || break
    up=()
    for n in $(seq 0 $((N - 1))); do [ -z "${DPID[$n]}" ] || up+=("$n"); done
    [ ${#up[@]} -gt 0 ] || break
    n=$(pick "${up[@]}")
    KILL_NODE+=("$n"); KILL_AT+=("$EPOCHREALTIME")
    kill -KILL "${DPID[$n]}" 2>/dev/null
    wait "${DPID[$n]}" 2>/dev/null
    DPID[$n]=
    DAEMON_KILLS=$((DAEMON_KILLS + 1))
    KILLED_NOW+="node $n "
  done
  for p in "${WORKER_PIDS[@]}"; do wait "$p"; done
  WORKER_PIDS=()
  sleep 1 # requests of killed clients may still finish in their daemons
  for i in $(seq 0 $((nops - 1))); do absorb "$i"; done
  check_daemons
  wait_mesh
  check_fsck
  check_pins
  check_names
  check_fetch
  check_panics
  kinds=$(printf '%s\n' "${OP_KIND[@]}" | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
  log "round $ROUND ($((SECONDS - T_START)) s): $nops ops ($kinds), daemons killed: ${KILLED_NOW:-none}; violations so far: $VIOLATIONS"
  [ "${SOAK_KEEP:-0}" = 1 ] || rm -rf "$RD"
done

# --- report ---------------------------------------------------------------------------------------------
pins_sure=0
for k in "${!PIN_SURE[@]}"; do [ "${PIN_SURE[$k]}" = 1 ] && pins_sure=$((pins_sure + 1)); done
echo
echo "soak: $ROUNDS rounds in $((SECONDS - T_START)) s (seed $SEED, $N nodes, $(basename "$(dirname "$(dirname "$BIN")")")/$(basename "$(dirname "$BIN")") build)"
echo "  operations: $OPS ($CMDS commands); outcome uncertain (a command or its node's daemon SIGKILLed): $UNCERTAIN"
echo "  kills: $((DAEMON_KILLS + CMD_KILLS)) ($DAEMON_KILLS daemons, $CMD_KILLS commands)"
echo "  checked at the end: $pins_sure pins, ${#NAME_OK[@]} names; peers not all listed as connected 5 s after $MESH_SLOW of the checks"
echo "  notes (suspicious, not counted as violations): $NOTES"
echo "  violations: $VIOLATIONS"
for c in "${!VCLASS[@]}"; do echo "    $c: ${VCLASS[$c]}"; done
if [ ${#FAILS[@]} -gt 0 ]; then
  echo "  failed commands (not violations: killed peers, locked homes...), by first error line:"
  for f in "${!FAILS[@]}"; do printf '    %4d  %s\n' "${FAILS[$f]}" "$f"; done | sort -rn | head -n 25
fi
[ "$VIOLATIONS" = 0 ] || exit 1
exit 0
}
