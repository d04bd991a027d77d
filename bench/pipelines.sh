#!/usr/bin/env bash
# Pipelines benchmark: a no-op `job run` of a 20-step pipeline whose steps
# are all memo hits, against `make` on the equivalent up-to-date Makefile,
# side by side in one run, timed the same way.
#
#   no-op `clive-node job run p.toml` against a running daemon on 127.0.0.1
#                                    vs make, nothing to do   (target: <= 3x the time)
#   the same without a daemon (the CLI opens the home itself)  (for information)
#
# Usage: bench/pipelines.sh [--quick | --generate DIR]
#   --quick: medians of 5 runs; --generate DIR: only write the pipeline
#   (DIR/pipeline/p.toml and its sources) and the Makefile (DIR/make), for
#   profiling by hand
#
# Environment: RUNS (default 30; every time is a median of RUNS runs),
# CLIVE_NODE_BIN (default: target/release/clive-node, built by cargo first).
#
# The pipeline and the Makefile are generated alike: 4 source files and 20
# steps s01..s20, a chain with some fan-in. s01..s04 each read one source
# file; every later step reads the step before it, every third one also
# the step three before, and s10 and s20 also a source file again. Each
# step is one `cat` of what it reads into its own small output, sNN.txt,
# and the pipeline mounts each input under the file name the Makefile uses,
# so the two run exactly the same shell command per step. Both are run once
# to fill the memo and build the targets (and a second time, checked: every
# step a memo hit, make with nothing to do), then RUNS times each, taking
# turns within each round, so a change in the machine's load falls on both.
# The script exits 0 when the target is missed (it is a measurement) and 1
# when anything fails to run. It binds and dials 127.0.0.1 only.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }

RUNS=${RUNS:-30}
GENERATE=
case "${1:-}" in
  "") ;;
  --quick) RUNS=${QUICK_RUNS:-5} ;;
  --generate) [ $# = 2 ] || { usage >&2; exit 2; }; GENERATE=$2; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
STEP_LIMIT=${STEP_LIMIT:-900} # seconds any one step may take before the run fails
STEPS=20

# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- the pipeline and the Makefile ----------------------------------------------
step() { printf 's%02d' "$1"; }
# reads N: the files step N reads, as the Makefile names them.
reads() {
  local n=$1
  if [ "$n" -le 4 ]; then echo "in$n.txt"; return; fi
  printf '%s.txt' "$(step $((n - 1)))"
  if [ $((n % 3)) = 0 ]; then printf ' %s.txt' "$(step $((n - 3)))"; fi
  if [ "$n" = 10 ]; then printf ' in1.txt'; fi
  if [ "$n" = 20 ]; then printf ' in4.txt'; fi
  echo
}
# generate DIR: DIR/pipeline (p.toml and the sources it reads) and DIR/make
# (the Makefile, the same sources, and later the targets make builds); sets
# PIPE and MK to those two directories.
generate() {
  local i n s f files inputs
  PIPE=$1/pipeline
  MK=$1/make
  mkdir -p "$PIPE" "$MK"
  for i in 1 2 3 4; do
    printf 'source %s\n' "$i" | tee "$PIPE/in$i.txt" >"$MK/in$i.txt"
  done
  {
    echo "version = 1"
    for n in $(seq "$STEPS"); do
      s=$(step "$n")
      files=$(reads "$n")
      inputs=()
      for f in $files; do
        case "$f" in
          in*) inputs+=("\"$f\" = \"./$f\"") ;;
          *) inputs+=("\"$f\" = \"step:${f%.txt}/$f\"") ;;
        esac
      done
      printf '\n[step.%s]\n' "$s"
      printf 'argv = ["sh", "-c", "cat %s > %s.txt"]\n' "$files" "$s"
      printf 'inputs = { %s }\n' "$(IFS=,; echo "${inputs[*]}" | sed 's/,/, /g')"
      printf 'outputs = ["%s.txt"]\n' "$s"
    done
  } >"$PIPE/p.toml"
  {
    printf 'all:'
    for n in $(seq "$STEPS"); do printf ' %s.txt' "$(step "$n")"; done
    printf '\n'
    for n in $(seq "$STEPS"); do
      s=$(step "$n")
      files=$(reads "$n")
      printf '\n%s.txt: %s\n\tcat %s > %s.txt\n' "$s" "$files" "$files" "$s"
    done
  } >"$MK/Makefile"
}

if [ -n "$GENERATE" ]; then
  generate "$GENERATE"
  log "wrote $PIPE/p.toml and $MK/Makefile"
  exit 0
fi

command -v make >/dev/null || die "needs make (the side-by-side baseline)"
command -v jq >/dev/null || die "needs jq"

clive_binary

mkdir -p target
WORK=$(mktemp -d "$PWD/target/bench-pipelines.XXXXXX")
case "$WORK" in *[[:space:]]*) die "scratch path has whitespace: $WORK" ;; esac
bench_traps
generate "$WORK"

# --- clive-node: one daemon on loopback -------------------------------------------
H=$WORK/node
log "clive-node: one node on 127.0.0.1; $STEPS-step pipeline $PIPE/p.toml; Makefile $MK/Makefile"
new_node "$H"
start_node "$H"

JOB_RUN=("$BIN" --home "$H" job run "$PIPE/p.toml")
# check_noop: the run in cmd.out/cmd.err reported every step a memo hit.
check_noop() {
  local hits
  hits=$(grep -c '^step s[0-9]*: memo hit, exit 0' "$WORK/cmd.err" || true)
  [ "$hits" = "$STEPS" ] || die "a no-op run reported $hits of $STEPS steps memo hits: $(head -c 2000 "$WORK/cmd.err")"
}
check_make_noop() {
  grep -q "Nothing to be done for 'all'" "$WORK/cmd.out" \
    || die "make had something to do: $(head -c 2000 "$WORK/cmd.out")"
}

# Fill: the first run runs every step, the second is all memo hits.
run "$BIN" --home "$H" --json job run "$PIPE/p.toml"
ran=$(jq '[.steps[] | select(.run.memo_hit == false)] | length' "$WORK/cmd.out")
[ "$ran" = "$STEPS" ] || die "the first run ran $ran of $STEPS steps"
jq -c .plan "$WORK/cmd.out" >"$WORK/plan.json"
log "plan (dependency levels): $(cat "$WORK/plan.json")"
run "${JOB_RUN[@]}"
check_noop
run make -C "$MK"
run make -C "$MK"
check_make_noop
for n in $(seq "$STEPS"); do
  f=$(step "$n").txt
  run "$BIN" --home "$H" --json job run "$PIPE/p.toml" --step "$(step "$n")" -o "$WORK/out-$n"
  cmp -s "$WORK/out-$n/$(step "$n")/$f" "$MK/$f" || die "step $(step "$n") wrote other bytes than make's $f"
done
log "every step's output equals make's target"

# --- no-op runs: job run against the daemon vs make -----------------------------------
# take_turns CLIVE MAKE: RUNS rounds of a no-op job run and a no-op make,
# in turns, each checked; sets CLIVE and MAKE to their medians.
take_turns() {
  local -n clive_median=$1 make_median=$2
  local clive_t=() make_t=() _
  for _ in $(seq "$RUNS"); do
    timed s "${JOB_RUN[@]}"
    check_noop
    clive_t+=("$s")
    timed s make -C "$MK"
    check_make_noop
    make_t+=("$s")
  done
  clive_median=$(median "${clive_t[@]}")
  make_median=$(median "${make_t[@]}")
}
take_turns dt mt
log "clive-node job run (daemon), all memo hits, median of $RUNS: $(ms "$dt") ms"
log "make, up to date, median of $RUNS: $(ms "$mt") ms"

# --- the same without a daemon ----------------------------------------------------------
stop_node "$H"
run "${JOB_RUN[@]}" # warm up
check_noop
take_turns lt mt2
log "clive-node job run (no daemon), all memo hits, median of $RUNS: $(ms "$lt") ms"

# --- report ------------------------------------------------------------------------------
ratio() { calc %.2f "$1 / ($2 < 0.000001 ? 0.000001 : $2)"; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "PASS" : "MISS" }'; }
levels=$(jq length "$WORK/plan.json")

row() { printf '%-64s %9s %9s %7s %7s  %s\n' "$@"; }
echo
echo "clive-node pipelines benchmark ($(nproc) cores, loopback; medians of $RUNS runs)"
echo "$STEPS steps in $levels levels, every one a memo hit; baseline: $(make --version | head -n1), nothing to do"
row "measure" "clive" "make" "ratio" "target" "verdict"
r=$(ratio "$dt" "$mt")
row "no-op job run, $STEPS steps, via the daemon vs make (ms)" "$(ms "$dt")" "$(ms "$mt")" "$r" "<=3.00" "$(verdict "$r" 3)"
r=$(ratio "$lt" "$mt2")
row "the same with no daemon running (ms)" "$(ms "$lt")" "$(ms "$mt2")" "$r" "-" "-"
