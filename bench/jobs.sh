#!/usr/bin/env bash
# Jobs benchmark: clive-node daemons on loopback running jobs, against ssh to
# this script's own sshd on 127.0.0.1 and clive-node's own `cat`, side by side
# in one run, timed the same way.
#
#   a trivial remote job (`true`, a tiny input, warm daemons) through the CLI
#                                    vs ssh 127.0.0.1 true      (target: <= half the time)
#   a memo hit through the CLI       vs clive-node cat of 1 KiB (target: <= 2x the time)
#   100 jobs submitted at once to one executor with 2 slots     (target: each runs exactly
#                                    once; the executor's peak RSS < 300 MiB)
#   the same short job (`true`, --no-cache) under none, landlock and isolated
#
# Usage: bench/jobs.sh [--quick]        (--quick: medians of 5 runs)
#
# Environment: RUNS (default 20; every time is a median of RUNS runs), JOBS
# (default 100: the jobs submitted at once), CLIVE_NODE_BIN (default:
# target/release/clive-node, built by cargo first).
#
# Nodes: R, the requester, holds `exec` on E and on Q (invite and join). E
# runs the remote jobs; Q, with `[jobs] slots = 2`, takes the JOBS jobs at
# once, from R and R2 (a daemon serves at most 64 control clients at once,
# and each `exec` holds one until its job ends, so no requester sends more
# than 50). Both lower `[jobs] min_sandbox` to none, so that a job asking for
# none runs at none (the burst's jobs write outside their directory) and the
# remote figure is given at each level. Every remote run is a different job
# (its input differs), so it really runs there: E's `job ls` must list each.
# The script exits 0 when a target is missed (it is a measurement) and 1 when
# anything fails to run. It binds and dials 127.0.0.1 only.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }

RUNS=${RUNS:-20}
JOBS=${JOBS:-100}
[ "$JOBS" -le 100 ] || { echo "jobs.sh: JOBS is at most 100 (two requesters of 50)" >&2; exit 2; }
case "${1:-}" in
  "") ;;
  --quick) RUNS=${QUICK_RUNS:-5} ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
STEP_LIMIT=${STEP_LIMIT:-900} # seconds any one step may take before the run fails

# shellcheck source=bench/lib.sh
. bench/lib.sh

scripts/install-bench-deps

clive_binary

mkdir -p target
WORK=$(mktemp -d "$PWD/target/bench-jobs.XXXXXX")
case "$WORK" in *[[:space:]]*) die "scratch path has whitespace: $WORK" ;; esac
bench_traps

DATA=$WORK/data
mkdir -p "$DATA/in" "$WORK/burst"
head -c 1024 /dev/urandom >"$DATA/small.bin"

# --- clive-node: nodes on loopback ---------------------------------------------
# executor HOME SLOTS: a new node whose [jobs] has SLOTS slots ("" = the
# default, one per core) and min_sandbox none.
executor() {
  new_node "$1"
  { printf '\n[jobs]\nmin_sandbox = "none"\n'; [ -z "$2" ] || printf 'slots = %s\n' "$2"; } >>"$1/config.toml"
}

# grant_exec EXECUTOR REQUESTER: REQUESTER joins EXECUTOR with a one-use
# invite granting exec.
grant_exec() {
  local ticket
  clive --home "$1" invite --cap exec --expires 1h --uses 1
  ticket=$(tail -n1 "$WORK/cmd.out")
  [ -n "$ticket" ] || die "invite printed no ticket"
  clive --home "$2" join "$ticket"
}

key_of() { clive --home "$1" --json id; jq -r .public_key "$WORK/cmd.out"; }

# ran_jobs HOME: how many jobs HOME ran (for others or itself) and finished.
ran_jobs() {
  clive --home "$1" --json job ls
  jq '[.[] | select(.side == "run" and .state == "done")] | length' "$WORK/cmd.out"
}

R=$WORK/r
R2=$WORK/r2
E=$WORK/e
Q=$WORK/q
log "clive-node: requesters R and R2, executors E and Q (slots = 2), on 127.0.0.1"
new_node "$R"
new_node "$R2"
executor "$E" ""
executor "$Q" 2
for h in "$R" "$R2" "$E" "$Q"; do start_node "$h"; done
grant_exec "$E" "$R"
grant_exec "$Q" "$R"
grant_exec "$Q" "$R2"
E_KEY=$(key_of "$E")
Q_KEY=$(key_of "$Q")
Q_PID=${NODE_PID[$Q]}
if echo 5 >"/proc/$Q_PID/clear_refs" 2>/dev/null; then HWM_RESET=1; fi

# The levels this machine gives, as a job's result reports them.
clive --home "$R" --json exec --no-cache --sandbox none -- true
LEVELS=$(jq -r '.result.platform.sandbox | join(" ")' "$WORK/cmd.out")
has_level() { grep -qw "$1" <<<"$LEVELS"; }
log "sandbox levels here: $LEVELS"

# --- sshd on 127.0.0.1 -----------------------------------------------------------
start_sshd

# --- a trivial remote job vs ssh 127.0.0.1 true ------------------------------------
run "${SSH_CMD[@]}" 127.0.0.1 true # warm up
ssh_true=()
for _ in $(seq "$RUNS"); do
  timed s "${SSH_CMD[@]}" 127.0.0.1 true
  ssh_true+=("$s")
done
log "ssh 127.0.0.1 true, median of $RUNS: $(ms "$(median "${ssh_true[@]}")") ms"

# remote LEVEL N: the N-th remote run at LEVEL: `true` with a tiny input of
# its own (so a job E has not run), timed into s.
remote() {
  local f=$DATA/in/$1-$2
  printf 'run %s at %s\n' "$2" "$1" >"$f"
  timed s "$BIN" --home "$R" exec --on "$E_KEY" --no-cache --sandbox "$1" --input "in=$f" -- true
}
remote_levels=(none)
if has_level isolated; then remote_levels+=(isolated); fi
declare -A remote_ms=()
expected_e=0
for level in "${remote_levels[@]}"; do
  remote "$level" 0 # warm up: the connection, and E's first job at this level
  times=()
  for i in $(seq "$RUNS"); do
    remote "$level" "$i"
    times+=("$s")
  done
  expected_e=$((expected_e + RUNS + 1))
  remote_ms[$level]=$(median "${times[@]}")
  log "clive-node exec --on E -- true ($level), median of $RUNS: $(ms "${remote_ms[$level]}") ms"
done
got=$(ran_jobs "$E")
[ "$got" = "$expected_e" ] || die "E ran $got jobs, expected $expected_e (each remote run is a new job)"

# --- a memo hit vs clive-node cat ---------------------------------------------------
clive --home "$R" --json add "$DATA/small.bin" --pin small
SMALL_HASH=$(jq -r 'if type == "array" then .[0] else . end | .hash' "$WORK/cmd.out")
clive --home "$R" cat "$SMALL_HASH" # warm up
cmp -s "$DATA/small.bin" "$WORK/cmd.out" || die "cat returned other bytes"
MEMO_JOB=(exec --sandbox none -- sh -c 'echo memoized')
clive --home "$R" "${MEMO_JOB[@]}" # the run the hits replay
grep -q 'memo hit' "$WORK/cmd.err" && die "the first run of the memo job was already a hit"
# The two take turns within each round, so a change in load falls on both.
cat_t=(); memo_t=()
for _ in $(seq "$RUNS"); do
  timed s "$BIN" --home "$R" cat "$SMALL_HASH"
  cat_t+=("$s")
  timed s "$BIN" --home "$R" "${MEMO_JOB[@]}"
  grep -q 'memo hit' "$WORK/cmd.err" || die "exec of a job that already ran was not a memo hit: $(cat "$WORK/cmd.err")"
  [ "$(cat "$WORK/cmd.out")" = memoized ] || die "the memo hit printed other output: $(cat "$WORK/cmd.out")"
  memo_t+=("$s")
done
log "clive-node cat 1 KiB, median of $RUNS: $(ms "$(median "${cat_t[@]}")") ms"
log "clive-node exec, memo hit, median of $RUNS: $(ms "$(median "${memo_t[@]}")") ms"

# --- JOBS jobs at once to one executor with 2 slots ------------------------------------
LINES=$WORK/lines # outside every store: each job appends its own line
: >"$LINES"
# burst: starts JOBS `exec` processes at once, half from R and half from
# R2, then waits for all of them; fails when any of them does.
burst() {
  local i pids=() failed=0 first= from
  for i in $(seq "$JOBS"); do
    if [ $((i % 2)) = 0 ]; then from=$R; else from=$R2; fi
    "$BIN" --home "$from" exec --on "$Q_KEY" --sandbox none -- sh -c "echo job-$i >>$LINES" \
      >"$WORK/burst/$i.out" 2>"$WORK/burst/$i.err" &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed=$((failed + 1))
    if [ "$failed" = 1 ] && [ -z "${first:-}" ]; then first=$((i + 1)); fi
  done
  if [ "$failed" != 0 ]; then
    echo "$failed of $JOBS exec failed; the first, job-$first, said:" >&2
    cat "$WORK/burst/$first.err" >&2
    return 1
  fi
}
reset_hwm "$Q_PID"
log "clive-node: $JOBS exec at once to Q (slots = 2), half from R, half from R2"
timed burst_s burst
q_rss_kib=$(hwm_kib "$Q_PID")
lines=$(wc -l <"$LINES")
distinct=$(sort -u "$LINES" | wc -l)
expected=$(seq "$JOBS" | sed 's/^/job-/' | sort)
q_done=$(ran_jobs "$Q")
# Exactly once: the job-N whose line is in the file once.
once=$(sort "$LINES" | uniq -c | awk '$1 == 1 { print $2 }' | comm -12 - <(printf '%s\n' "$expected") | wc -l)
missing=$(comm -23 <(printf '%s\n' "$expected") <(sort -u "$LINES") | wc -l)
log "  $lines lines, $distinct distinct, $missing missing; Q lists $q_done jobs done; $(sec "$burst_s") s; Q peak RSS $((q_rss_kib / 1024)) MiB"

# --- the sandbox's cost: the same short job at each level ----------------------------
# The levels take turns within each round, so a change in the machine's load
# falls on all of them alike.
levels=()
for level in none landlock isolated; do
  has_level "$level" || continue
  levels+=("$level")
  clive --home "$R" exec --no-cache --sandbox "$level" -- true # warm up
done
declare -A level_times=() level_s=()
for _ in $(seq "$RUNS"); do
  for level in "${levels[@]}"; do
    timed s "$BIN" --home "$R" exec --no-cache --sandbox "$level" -- true
    level_times[$level]+="$s "
  done
done
for level in "${levels[@]}"; do
  # shellcheck disable=SC2086 # the times, one word each
  level_s[$level]=$(median ${level_times[$level]})
  log "clive-node exec --no-cache --sandbox $level -- true, median of $RUNS: $(ms "${level_s[$level]}") ms"
done

for h in "$R" "$R2" "$E" "$Q"; do stop_node "$h"; done

# --- report ------------------------------------------------------------------------------
ratio() { calc %.2f "$1 / ($2 < 0.000001 ? 0.000001 : $2)"; }
verdict() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
  ok = (op == "<=") ? (r <= t) : (op == "<") ? (r < t) : (op == "==") ? (r == t) : (r >= t); print ok ? "PASS" : "MISS" }'; }
st=$(median "${ssh_true[@]}"); ct=$(median "${cat_t[@]}"); mt=$(median "${memo_t[@]}")
q_rss_mib=$(calc %.1f "$q_rss_kib / 1024")

row() { printf '%-66s %11s %9s %7s %7s  %s\n' "$@"; }
echo
echo "clive-node jobs benchmark ($(nproc) cores, loopback; medians of $RUNS runs)"
echo "baseline: $SSH_VERSION, ${SSH_ALGS}; sandbox levels here: $LEVELS"
row "measure" "clive" "baseline" "ratio" "target" "verdict"
for level in "${remote_levels[@]}"; do
  r=$(ratio "${remote_ms[$level]}" "$st")
  row "remote job \`true\` ($level), via CLI vs ssh 127.0.0.1 true (ms)" "$(ms "${remote_ms[$level]}")" "$(ms "$st")" "$r" "<=0.50" "$(verdict "$r" "<=" 0.5)"
done
if ! has_level isolated; then echo "(no remote figure under isolated: this machine cannot give it)"; fi
r=$(ratio "$mt" "$ct")
row "memo hit via CLI vs clive-node cat 1 KiB (ms)" "$(ms "$mt")" "$(ms "$ct")" "$r" "<=2.00" "$(verdict "$r" "<=" 2)"
row "$JOBS jobs at once, 2 slots: each ran exactly once" "$once" "-" "-" "==$JOBS" "$(verdict "$once" "==" "$JOBS")"
row "  lines written / distinct / executor's jobs done" "$lines/$distinct/$q_done" "-" "-" "-" "-"
row "  wall time until all $JOBS exec returned (s)" "$(sec "$burst_s")" "-" "-" "-" "-"
row "  peak RSS of the executor daemon (MiB)" "$q_rss_mib" "-" "-" "<300" "$(verdict "$q_rss_mib" "<" 300)"
for level in none landlock isolated; do
  if [ -z "${level_s[$level]:-}" ]; then
    row "local job \`true\` --no-cache, sandbox $level (ms)" "n/a" "-" "-" "-" "not available here"
    continue
  fi
  r=$(ratio "${level_s[$level]}" "${level_s[none]}")
  row "local job \`true\` --no-cache, sandbox $level (ms; vs none)" "$(ms "${level_s[$level]}")" "$(ms "${level_s[none]}")" "$r" "-" "-"
done
if [ "$HWM_RESET" = 0 ]; then echo "(peak RSS counted from the daemon's start: /proc/PID/clear_refs was not writable)"; fi
