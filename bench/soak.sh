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

# The parts, by concern, each read whole when sourced: helpers, processes,
# violations and commands (lib); test data and the ledger (ledger); a
# round's operations (ops); reading a round back (readback); the checks
# after a round (checks).
for part in lib ledger ops readback checks; do
  # shellcheck source=/dev/null
  source "bench/soak/$part.sh" || exit 2
done

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

trap cleanup EXIT
trap 'log "soak.sh: interrupted"; exit 130' INT
trap 'log "soak.sh: terminated"; exit 143' TERM

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
