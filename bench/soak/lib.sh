# shellcheck shell=bash
# Sourced by bench/soak.sh, not run alone: its helpers: logging, the
# processes it started and their cleanup, violations, and running commands
# and daemons.

log() { printf '%s\n' "$*" >&2; }
die() { log "soak.sh: $*"; exit 2; }

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
