#!/usr/bin/env bash
# Network benchmark on rate-limited links between network namespaces this
# script creates and removes: a fetcher namespace joined to three seeder
# namespaces, each by its own veth pair shaped with `tc ... tbf` at both
# ends (this kernel has no netem). clive-node against rsync over ssh to the
# script's own sshd in the first seeder's namespace, side by side in one run.
#
#   one seeder over a 1 Gbit/s link: get of 1 GiB
#       targets: at least 90% of the link rate, and at least rsync's throughput
#   three seeders, each behind its own 300 Mbit/s link: get of 512 MiB
#       target: at least 2.5x faster than rsync from one of them
#   peak RSS of every daemon during those gets          target: <= 150 MiB
#
# Usage: bench/links.sh [--quick]        (--quick: 256 MiB and 128 MiB)
#
# Environment: RUNS (default 3; figures are medians), CLIVE_NODE_BIN
# (default: target/release/clive-node, built by cargo first).
#
# Needs root (network namespaces). Every address is inside the namespaces
# (10.233.N.0/24); nothing is sent anywhere else. Before each run of either
# tool dirty pages are written back. Exits 0 when a target is missed (it is
# a measurement) and 1 when anything fails to run.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }

RUNS=${RUNS:-3}
ONE_MIB=1024   # the one-seeder blob
SPREAD_MIB=512 # the three-seeder blob
case "${1:-}" in
  "") ;;
  --quick) ONE_MIB=256; SPREAD_MIB=128 ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
STEP_LIMIT=${STEP_LIMIT:-600}
FAST=1gbit FAST_BPS=1000000000 # the one-seeder link
SLOW=300mbit SLOW_BPS=300000000 # each link of the three-seeder run

# shellcheck source=bench/lib.sh
. bench/lib.sh

[ "$(id -u)" = 0 ] || die "needs root, for network namespaces"
scripts/install-bench-deps
command -v tc >/dev/null && command -v ip >/dev/null || scripts/install-test-deps
clive_binary

mkdir -p target
need_disk $((ONE_MIB * 4 + SPREAD_MIB * 6 + 256))
WORK=$(mktemp -d "$PWD/target/bench-links.XXXXXX")
case "$WORK" in *[[:space:]]*) die "scratch path has whitespace: $WORK" ;; esac
bench_traps

# --- namespaces and links ---------------------------------------------------------
TAG=clive-links-$$
F=$TAG-f
SEEDS=(1 2 3)
remove_namespaces() {
  local n
  for n in "$F" "${SEEDS[@]/#/$TAG-s}"; do ip netns del "$n" 2>/dev/null || true; done
}
ON_CLEANUP=remove_namespaces
ip netns add "$F"
ip -n "$F" link set lo up
for i in "${SEEDS[@]}"; do
  ip netns add "$TAG-s$i"
  ip -n "$TAG-s$i" link set lo up
  ip link add "cl$$f$i" type veth peer name "cl$$s$i"
  ip link set "cl$$f$i" netns "$F"
  ip link set "cl$$s$i" netns "$TAG-s$i"
  ip -n "$F" addr add "10.233.$i.2/24" dev "cl$$f$i"
  ip -n "$TAG-s$i" addr add "10.233.$i.1/24" dev "cl$$s$i"
  ip -n "$F" link set "cl$$f$i" up
  ip -n "$TAG-s$i" link set "cl$$s$i" up
done

# shape I RATE: link I carries at most RATE each way.
shape() {
  ip netns exec "$F" tc qdisc replace dev "cl$$f$1" root tbf rate "$2" burst 256kb latency 20ms
  ip netns exec "$TAG-s$1" tc qdisc replace dev "cl$$s$1" root tbf rate "$2" burst 256kb latency 20ms
}

# in_f CMD...: CMD inside the fetcher's namespace, as run runs it.
in_f() { run ip netns exec "$F" "$@"; }

# --- data and seeders ---------------------------------------------------------------
DATA=$WORK/data
mkdir -p "$DATA"
log "generating ${ONE_MIB} MiB and ${SPREAD_MIB} MiB of random bytes in $WORK"
head -c "$((ONE_MIB << 20))" /dev/urandom >"$DATA/one.bin"
head -c "$((SPREAD_MIB << 20))" /dev/urandom >"$DATA/spread.bin"

added_hash() { jq -r 'if type == "array" then .[0] else . end | .hash' "$WORK/cmd.out"; }
SEED_ID=()
for i in "${SEEDS[@]}"; do
  s=$WORK/s$i
  new_node "$s" "10.233.$i.1:0"
  if [ "$i" = 1 ]; then
    clive --home "$s" --json add "$DATA/one.bin" --pin one
    ONE_HASH=$(added_hash)
  fi
  clive --home "$s" --json add "$DATA/spread.bin" --pin spread
  SPREAD_HASH=$(added_hash)
  start_node "$s" "10.233.$i.1:0" "$TAG-s$i"
  clive --home "$s" --json status
  SEED_ID[$i]=$(jq -r .identity.endpoint_id "$WORK/cmd.out")
done
if echo 5 >"/proc/${NODE_PID[$WORK/s1]}/clear_refs" 2>/dev/null; then HWM_RESET=1; fi

# fetcher SEED...: a new node in the fetcher's namespace, joined to each SEED;
# sets FETCHER (its home).
FETCHERS=0
fetcher() {
  local i ticket
  FETCHERS=$((FETCHERS + 1))
  FETCHER=$WORK/f$FETCHERS
  new_node "$FETCHER" "0.0.0.0:0"
  start_node "$FETCHER" "0.0.0.0:0" "$F"
  for i in "$@"; do
    clive --home "$WORK/s$i" invite --cap fetch --expires 1h --uses 1
    ticket=$(tail -n1 "$WORK/cmd.out")
    in_f "$BIN" --home "$FETCHER" join "$ticket"
  done
}

# got_bytes: what the `--json get` in cmd.out received in all, and from each peer.
got_bytes() { jq -r 'if type == "array" then .[0] else . end | .bytes_received' "$WORK/cmd.out"; }
peer_bytes() { jq -r --arg p "$1" 'if type == "array" then .[0] else . end | [.from_peers[] | select(.peer == $p) | .bytes] | add // 0' "$WORK/cmd.out"; }

start_sshd 10.233.1.1 "$TAG-s1" "$F"
OUT=$WORK/out

# rsync_from_s1 FILE: sets s to the time rsync over ssh takes to copy FILE
# (under $DATA) from the first seeder into the fetcher's namespace.
rsync_from_s1() {
  rm -rf "$OUT"; mkdir "$OUT"; sync
  timed s ip netns exec "$F" rsync -e "$SSH_E" "10.233.1.1:$DATA/$1" "$OUT/"
  cmp -s "$DATA/$1" "$OUT/$1" || die "rsync's copy of $1 differs"
  rm -rf "$OUT"
}

# check_last_run R HASH FILE: on the last run, the fetched HASH is FILE's bytes.
check_last_run() {
  [ "$1" = "$RUNS" ] || return 0
  clive --home "$FETCHER" get "$2" -o "$WORK/check.out"
  cmp -s "$DATA/$3" "$WORK/check.out" || die "the fetched blob differs from $3 as added"
  rm -f "$WORK/check.out"
}

# --- one seeder, 1 Gbit/s ----------------------------------------------------------------
shape 1 "$FAST"
rsync_one=(); clive_one=(); rss=()
for r in $(seq "$RUNS"); do
  rsync_from_s1 one.bin
  rsync_one+=("$s")
  log "rsync ${ONE_MIB} MiB over ${FAST}, run $r: $(sec "$s") s"

  fetcher 1
  sync
  reset_hwm "${NODE_PID[$WORK/s1]}"; reset_hwm "${NODE_PID[$FETCHER]}"
  timed s ip netns exec "$F" "$BIN" --home "$FETCHER" --json get "$ONE_HASH" --from "${SEED_ID[1]}"
  [ "$(got_bytes)" -ge "$((ONE_MIB << 20))" ] || die "get received $(got_bytes) bytes"
  rss+=("$(hwm_kib "${NODE_PID[$WORK/s1]}")" "$(hwm_kib "${NODE_PID[$FETCHER]}")")
  clive_one+=("$s")
  log "clive-node get ${ONE_MIB} MiB over ${FAST}, run $r: $(sec "$s") s (peak RSS seeder $((rss[-2] / 1024)) MiB, fetcher $((rss[-1] / 1024)) MiB)"
  check_last_run "$r" "$ONE_HASH" one.bin
  stop_node "$FETCHER"; rm -rf "$FETCHER" "$FETCHER.log"
done

# --- three seeders, 300 Mbit/s each ------------------------------------------------------
for i in "${SEEDS[@]}"; do shape "$i" "$SLOW"; done
rsync_spread=(); clive_spread=(); shares=()
for r in $(seq "$RUNS"); do
  rsync_from_s1 spread.bin
  rsync_spread+=("$s")
  log "rsync ${SPREAD_MIB} MiB from one seeder over ${SLOW}, run $r: $(sec "$s") s"

  fetcher "${SEEDS[@]}"
  sync
  for i in "${SEEDS[@]}"; do reset_hwm "${NODE_PID[$WORK/s$i]}"; done
  reset_hwm "${NODE_PID[$FETCHER]}"
  timed s ip netns exec "$F" "$BIN" --home "$FETCHER" --json get "$SPREAD_HASH"
  [ "$(got_bytes)" -ge "$((SPREAD_MIB << 20))" ] || die "get received $(got_bytes) bytes"
  each=""
  for i in "${SEEDS[@]}"; do
    rss+=("$(hwm_kib "${NODE_PID[$WORK/s$i]}")")
    each+=" s$i $(calc %.0f "$(peer_bytes "${SEED_ID[$i]}") / 1048576") MiB"
  done
  rss+=("$(hwm_kib "${NODE_PID[$FETCHER]}")")
  shares+=("$each")
  clive_spread+=("$s")
  log "clive-node get ${SPREAD_MIB} MiB from three seeders over ${SLOW} each, run $r: $(sec "$s") s (from:$each)"
  check_last_run "$r" "$SPREAD_HASH" spread.bin
  stop_node "$FETCHER"; rm -rf "$FETCHER" "$FETCHER.log"
done

# --- report ----------------------------------------------------------------------------------
ro=$(median "${rsync_one[@]}"); co=$(median "${clive_one[@]}")
rs=$(median "${rsync_spread[@]}"); cs=$(median "${clive_spread[@]}")
rate() { calc %.0f "$1 * 1048576 * 8 / 1000000 / ($2 < 0.000001 ? 0.000001 : $2)"; } # Mbit/s
ratio() { calc %.2f "$1 / ($2 < 0.000001 ? 0.000001 : $2)"; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "ok" : "MISSED" }'; }
link_share=$(calc %.2f "$(rate "$ONE_MIB" "$co") / ($FAST_BPS / 1000000)")
vs_rsync=$(ratio "$ro" "$co")
speedup=$(ratio "$rs" "$cs")
rss_mib=$(calc %.1f "$(maximum "${rss[@]}") / 1024")

row() { printf '%-54s %9s %9s %7s %7s  %s\n' "$@"; }
echo
echo "clive-node on shaped links ($(nproc) cores; tc tbf between network namespaces; median of $RUNS runs)"
echo "baseline: rsync over $SSH_VERSION, ${SSH_ALGS}; page cache warm for both"
row "measure" "clive" "rsync" "ratio" "target" "verdict"
row "get ${ONE_MIB} MiB, one seeder over ${FAST} (s)" "$(sec "$co")" "$(sec "$ro")" "$vs_rsync" ">=1.00" "$(verdict "$vs_rsync" 1)"
row "  throughput (Mbit/s; ratio = share of the link)" "$(rate "$ONE_MIB" "$co")" "$(rate "$ONE_MIB" "$ro")" "$link_share" ">=0.90" "$(verdict "$link_share" 0.9)"
row "get ${SPREAD_MIB} MiB, three seeders over ${SLOW} each (s)" "$(sec "$cs")" "$(sec "$rs")" "$speedup" ">=2.50" "$(verdict "$speedup" 2.5)"
row "  throughput (Mbit/s)" "$(rate "$SPREAD_MIB" "$cs")" "$(rate "$SPREAD_MIB" "$rs")" "-" "-" ""
row "peak RSS of any daemon during those gets (MiB)" "$rss_mib" "-" "-" "<=150" "$(awk -v r="$rss_mib" 'BEGIN { print (r <= 150) ? "ok" : "MISSED" }')"
echo "bytes from each seeder in the three-seeder runs:"
for r in "${!shares[@]}"; do echo "  run $((r + 1)):${shares[$r]}"; done
if [ "$HWM_RESET" = 0 ]; then echo "(peak RSS counted from each daemon's start: /proc/PID/clear_refs was not writable)"; fi
