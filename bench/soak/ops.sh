# shellcheck shell=bash
# Sourced by bench/soak.sh, not run alone: planning one round's operations and
# running them on the workers.

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
