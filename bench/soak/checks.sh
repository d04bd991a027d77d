# shellcheck shell=bash
# Sourced by bench/soak.sh, not run alone: the invariant checks after a round
# (daemons, fsck, pins, names, fetches, panics).

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
