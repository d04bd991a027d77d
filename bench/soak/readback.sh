# shellcheck shell=bash
# Sourced by bench/soak.sh, not run alone: reading a round back: what each
# command did, counted, and taken into the ledger.

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
