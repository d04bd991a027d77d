#!/usr/bin/env bash
# Names benchmark: clive-node's `name` commands through the CLI (in-process,
# no daemon), side by side in one run.
#
#   name resolve release/app (verified cache)  vs git rev-parse HEAD   (target: <= 2x)
#   zone of 10 names vs zone of BIG names:
#     name publish of one more name                                    (target: big <= 3x small)
#     name resolve of one name                                         (target: big <= 3x small)
#
# BIG is 10,000 names (1,000 with --quick), filled with `name publish` of
# 500 NAME FILE pairs at a time (each file distinct), then one more name is
# published, one at a time, in each zone.
#
# Timings use hyperfine (mean of its runs) when installed
# (scripts/install-bench-deps), else a bounded loop timed with date +%s%N
# (median). Usage: bench/names.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."

BIG=${BIG:-10000}
RUNS=${RUNS:-20}
if [ "${1:-}" = "--quick" ]; then BIG=1000; RUNS=10; fi

command -v git >/dev/null || { echo "git is needed" >&2; exit 1; }

# CLIVE_NODE_BIN runs another build (an older one, to compare) instead.
if [ -z "${CLIVE_NODE_BIN:-}" ]; then
  cargo build --release --locked -p clive-cli >&2
  CLIVE_NODE_BIN=target/release/clive-node
fi
BIN=$(realpath "$CLIVE_NODE_BIN")

WORK=$(mktemp -d "$PWD/target/bench-names.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

us_now() { echo $(($(date +%s%N) / 1000)); } # microseconds
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 0.001; printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "ok" : "MISSED" }'; }

# time_ms CMD...: prints the time one run of CMD takes, in milliseconds
# (hyperfine's mean, or the median of RUNS timed runs), after 3 warm-ups.
# CMD runs without a shell; its output is discarded; it must succeed.
time_ms() {
  if command -v hyperfine >/dev/null && command -v jq >/dev/null; then
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/hf.json" "$(printf '%q ' "$@")" \
      >/dev/null 2>"$WORK/hf.err" || { cat "$WORK/hf.err" >&2; exit 1; }
    jq -r '.results[0].mean * 1000 | . * 1000 | round / 1000' "$WORK/hf.json"
  else
    local i t0 t1
    for i in 1 2 3; do "$@" >/dev/null 2>&1; done
    for i in $(seq "$RUNS"); do
      t0=$(us_now)
      "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
      t1=$(us_now)
      echo $((t1 - t0))
    done | median | awk '{ printf "%.3f", $1 / 1000 }'
  fi
}

# A publish of one more name each run: NEXT holds the counter.
cat >"$WORK/publish-next" <<'SH'
#!/bin/sh
# publish-next BIN HOME ZONE FILE: publishes ZONE/moreN, N from HOME.next
set -e
n=$(cat "$2.next" 2>/dev/null || echo 0)
echo $((n + 1)) >"$2.next"
echo "$n" >"$4"
exec "$1" --home "$2" name publish "$3/more$n" "$4"
SH
chmod +x "$WORK/publish-next"

new_zone() { # new_zone HOME ZONE
  "$BIN" --home "$1" init >/dev/null
  "$BIN" --home "$1" name zone create "$2" >/dev/null
}

# --- resolve from the verified cache vs git rev-parse HEAD -------------------
echo "resolve vs git rev-parse" >&2
new_zone "$WORK/r" release
head -c 1048576 /dev/urandom >"$WORK/app.bin"
"$BIN" --home "$WORK/r" name publish release/app "$WORK/app.bin" >/dev/null
git init -q "$WORK/git"
echo hello >"$WORK/git/README"
git -C "$WORK/git" add README
git -C "$WORK/git" -c user.name=bench -c user.email=bench@localhost commit -qm bench
resolve_ms=$(time_ms "$BIN" --home "$WORK/r" name resolve release/app)
git_ms=$(time_ms git -C "$WORK/git" rev-parse HEAD)

# --- 10 names vs many ---------------------------------------------------------
# fill HOME ZONE COUNT: publishes ZONE/n1..nCOUNT, 500 names a command,
# each a distinct file; prints COUNT.
fill() {
  local home=$1 zone=$2 count=$3 i=0 args
  mkdir -p "$WORK/files-$zone"
  while [ "$i" -lt "$count" ]; do
    args=()
    for _ in $(seq 500); do
      [ "$i" -lt "$count" ] || break
      i=$((i + 1))
      echo "$zone $i" >"$WORK/files-$zone/n$i"
      args+=("$zone/n$i" "$WORK/files-$zone/n$i")
    done
    "$BIN" --home "$home" name publish "${args[@]}" >/dev/null
  done
  echo "$i"
}

echo "filling a zone of 10 names" >&2
new_zone "$WORK/small" small
small_n=$(fill "$WORK/small" small 10)
echo "filling a zone of $BIG names" >&2
t0=$(us_now)
new_zone "$WORK/big" big
big_n=$(fill "$WORK/big" big "$BIG")
fill_s=$(awk -v u=$(($(us_now) - t0)) 'BEGIN { printf "%.1f", u / 1e6 }')
echo "  $big_n names in ${fill_s}s" >&2

echo "timing publish and resolve in each" >&2
pub_small=$(time_ms "$WORK/publish-next" "$BIN" "$WORK/small" small "$WORK/next-small.txt")
pub_big=$(time_ms "$WORK/publish-next" "$BIN" "$WORK/big" big "$WORK/next-big.txt")
res_small=$(time_ms "$BIN" --home "$WORK/small" name resolve small/n5)
res_big=$(time_ms "$BIN" --home "$WORK/big" name resolve big/n5)
state_mib=$(du -sm "$WORK/big/state.redb" | cut -f1)

r1=$(ratio "$resolve_ms" "$git_ms")
r2=$(ratio "$pub_big" "$pub_small")
r3=$(ratio "$res_big" "$res_small")
tool=$(command -v hyperfine >/dev/null && command -v jq >/dev/null && echo "hyperfine mean of $RUNS runs" || echo "median of $RUNS runs")

echo
echo "clive-node names benchmark ($(nproc) cores, $tool, milliseconds, release build)"
echo
echo "| measure | clive | baseline | ratio | target | verdict |"
echo "|---|---:|---:|---:|---:|---|"
echo "| name resolve release/app (verified cache) vs git rev-parse HEAD | $resolve_ms | $git_ms | $r1 | 2.00 | $(verdict "$r1" 2) |"
echo "| name publish one more name: ${big_n} names vs ${small_n} | $pub_big | $pub_small | $r2 | 3.00 | $(verdict "$r2" 3) |"
echo "| name resolve one name: ${big_n} names vs ${small_n} | $res_big | $res_small | $r3 | 3.00 | $(verdict "$r3" 3) |"
echo
echo "Filling the big zone ($big_n names, 500 per publish) took ${fill_s}s."
echo "state.redb of the big zone's home: ${state_mib} MiB"
