#!/usr/bin/env bash
# Watch latency benchmark: two clive-node daemons on loopback. The follower
# runs `job run PIPELINE.toml --watch` on a pipeline whose one step reads
# the name `bench/tool`, which the publisher moves to a new hash again and
# again. Measured: from just before the publisher's `name publish` to the
# moment the rerun step starts (its first action writes a nanosecond
# timestamp to a file outside the store): the announcement, the
# follower's metadata sync, the watch's zone event and resolution, the
# fetch of the new content, and the step's job being staged and started.
#
#   name moves -> first rerun step starts, in --watch    (target: < 300 ms median)
#
# Only the timestamp file is polled meanwhile (by the shell itself, every
# 5 ms), so that nothing else loads the two cores during a move.
#
# Usage: bench/pipelines-watch.sh [--quick]   (--quick: 5 moves instead of 10)
#
# Environment: MOVES (default 10), CLIVE_NODE_BIN (default:
# target/release/clive-node, built first). Binds and dials 127.0.0.1 only.
# Moves are 1.5 s apart (a node announces at most once a second, and a
# burst of announcements is spaced so). KEEP_WORK=1 keeps the scratch
# directory (the daemons' logs; RUST_LOG=clive_node=debug says more). Exits 0
# when the target is missed (it is a measurement), 1 when anything fails.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

MOVES=${MOVES:-10}
case "${1:-}" in
  "") ;;
  --quick) MOVES=5 ;;
  *) sed -n '/^# Usage:/s/^# //p' "$0" >&2; exit 2 ;;
esac

if [ -z "${CLIVE_NODE_BIN:-}" ]; then
  cargo build --release --locked -p clive-cli >&2
  CLIVE_NODE_BIN=target/release/clive-node
fi
BIN=$(realpath "$CLIVE_NODE_BIN")
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

die() { echo "pipelines-watch.sh: $*" >&2; exit 1; }
now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# lines FILE: how many lines FILE has (0 when missing), without forking.
lines() {
  local n=0 _
  if [ -f "$1" ]; then while IFS= read -r _; do n=$((n + 1)); done <"$1"; fi
  echo "$n"
}

for n in pub fol; do
  "$BIN" --home "$WORK/$n" init >/dev/null
  printf '[net]\nbind = ["127.0.0.1:0"]\n' >"$WORK/$n/config.toml"
  "$BIN" --home "$WORK/$n" start --bind 127.0.0.1:0 >"$WORK/$n.log" 2>&1 &
  PIDS+=($!)
  "$BIN" --home "$WORK/$n" status --wait 20s >/dev/null
done
P() { "$BIN" --home "$WORK/pub" "$@"; }
F() { "$BIN" --home "$WORK/fol" "$@"; }
TICKET=$(P invite --cap fetch --expires 10m | tail -1)
F join "$TICKET" >/dev/null
ZT=$(P --json name zone create bench | sed -n 's/.*"ticket": "\(clivezone1[a-z0-9]*\)".*/\1/p')
echo "tool 0" >"$WORK/v0"
P name publish bench/tool "$WORK/v0" >/dev/null
F name follow "$ZT" >/dev/null

STAMPS=$WORK/stamps
mkdir "$WORK/p"
cat >"$WORK/p/pipeline.toml" <<EOF
version = 1
[step.use]
argv = ["sh", "-c", "date +%s%N >> $STAMPS; cat tool > used.txt"]
inputs = { "tool" = "bench/tool" }
outputs = ["used.txt"]
EOF
F job run "$WORK/p/pipeline.toml" --watch >"$WORK/watch.out" 2>"$WORK/watch.err" &
WATCH_PID=$!
PIDS=("$WATCH_PID" "${PIDS[@]}")
for _ in $(seq 1 600); do # at most ~60 s for the first run
  grep -q 'run 1 done' "$WORK/watch.err" 2>/dev/null && break
  kill -0 "$WATCH_PID" 2>/dev/null || die "the watch exited: $(cat "$WORK/watch.err")"
  sleep 0.1
done
grep -q 'run 1 done' "$WORK/watch.err" || die "the watch's first run did not end: $(cat "$WORK/watch.err")"
[ "$(lines "$STAMPS")" = 1 ] || die "the first run did not run its step"

# The setup's own announcements (the publisher's addresses, the zone's
# creation, its first publish) go out a second apart: let them drain, so
# that the first move is not queued behind them.
sleep 3.5
: >"$WORK/watch.ms"
for i in $(seq 1 "$MOVES"); do
  echo "tool $i" >"$WORK/v$i"
  P add "$WORK/v$i" >/dev/null
  sleep 1.5
  t0=$(now_ns)
  P name publish bench/tool "$WORK/v$i" >/dev/null
  for _ in $(seq 1 2000); do # at most ~10 s
    [ "$(lines "$STAMPS")" -gt "$i" ] && break
    sleep 0.005
  done
  [ "$(lines "$STAMPS")" -gt "$i" ] || die "move $i never reran the step: $(tail -5 "$WORK/watch.err")"
  started=$(sed -n "$((i + 1))p" "$STAMPS")
  echo $(((started - t0) / 1000000)) >>"$WORK/watch.ms"
done
# Every move reran the step once and only once.
[ "$(lines "$STAMPS")" = $((MOVES + 1)) ] || die "the step ran $(lines "$STAMPS") times for $MOVES moves"

w=$(median <"$WORK/watch.ms")
wmin=$(sort -n "$WORK/watch.ms" | head -1)
wmax=$(sort -n "$WORK/watch.ms" | tail -1)
echo
echo "| measure ($MOVES moves) | median | min | max | target |"
echo "|---|---|---|---|---|"
echo "| name moves -> first rerun step starts (--watch) | ${w} ms | ${wmin} ms | ${wmax} ms | < 300 ms median: $([ "${w%.*}" -lt 300 ] && echo met || echo MISSED) |"
echo "each move, in order: $(tr '\n' ' ' <"$WORK/watch.ms")(ms)"
