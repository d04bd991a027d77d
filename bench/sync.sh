#!/usr/bin/env bash
# Sync benchmark: a server daemon publishing a tree of small files in a zone,
# a laptop daemon following it (`sync follow`), against rsync -a over ssh to
# this script's own sshd on 127.0.0.1, side by side in one run.
#
#   first sync of 10,000 x 4 KiB files        vs rsync -a        (target: faster)
#   sync with nothing new (sync now)           vs rsync -a again  (target: < 100 ms and <= 1/3)
#     messages and bytes each way, as the node counts them     (target: <= 2 messages, 1 KiB)
#   10 files changed: bytes received           vs rsync --stats   (target: <= 2x changed files +
#                                                                  the trees on their paths, and
#                                                                  < 1/10 of rsync's)
#   peak RSS of each daemon during the first sync              (target: <= 150 MiB)
#
# Usage: bench/sync.sh [--quick]        (--quick: 1,000 files)
#
# Environment: RUNS (default 3; first-sync figures are medians),
# NOOP_RUNS (default 10), CLIVE_NODE_BIN (default: target/release/clive-node,
# built by cargo first), DROP_CACHES=0 to keep the page cache between runs.
# The script exits 0 when a target is missed (it is a measurement) and 1 when
# anything fails to run. It binds and dials 127.0.0.1 only.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }

RUNS=${RUNS:-3}
NOOP_RUNS=${NOOP_RUNS:-10}
FILES=10000
case "${1:-}" in
  "") ;;
  --quick) FILES=1000 ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
STEP_LIMIT=${STEP_LIMIT:-900}
CHANGED=10

# shellcheck source=bench/lib.sh
. bench/lib.sh

scripts/install-bench-deps

clive_binary

mkdir -p target
need_mib=$((FILES * 4 * (RUNS + 4) / 1024 + 256))
need_disk "$need_mib"
WORK=$(mktemp -d "$PWD/target/bench-sync.XXXXXX")
case "$WORK" in *[[:space:]]*) die "scratch path has whitespace: $WORK" ;; esac
bench_traps

DROP=0
if [ "${DROP_CACHES:-1}" != 0 ] && sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  DROP=1
fi
settle() {
  sync
  if [ "$DROP" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

# --- data ----------------------------------------------------------------------
DATA=$WORK/data
log "generating ${FILES} files of 4 KiB in $DATA/tree"
python3 - "$DATA/tree" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"dir{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.dat"), "wb") as f:
        f.write(os.urandom(4096))
PY
TREE_BYTES=$((FILES * 4096))

# change_files: rewrites CHANGED files, each in its own directory, with new bytes.
change_files() {
  python3 - "$DATA/tree" "$FILES" "$CHANGED" <<'PY'
import os, sys
root, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for j in range(k):
    i = (j * (n // k)) % n
    with open(os.path.join(root, f"dir{i // 100:03d}", f"file{i:05d}.dat"), "wb") as f:
        f.write(os.urandom(4096))
PY
}

json_field() { jq -r "$1" "$WORK/cmd.out"; }

# --- the server ------------------------------------------------------------------
A=$WORK/server
log "clive-node: the server adds the tree and publishes it as bench/tree"
new_node "$A"
clive --home "$A" --json name zone create bench
ZONE_TICKET=$(json_field .ticket)
[ -n "$ZONE_TICKET" ] && [ "$ZONE_TICKET" != null ] || die "name zone create printed no ticket"
clive --home "$A" --json add "$DATA/tree"
TREE_HASH=$(json_field 'if type == "array" then .[0] else . end | .hash')
clive --home "$A" name publish bench/tree "$TREE_HASH"
start_node "$A"
A_PID=${NODE_PID[$A]}
if echo 5 >"/proc/$A_PID/clear_refs" 2>/dev/null; then HWM_RESET=1; fi

# new_laptop HOME: a node that joined the server and follows the zone's
# metadata (`name follow`), not yet its bytes.
new_laptop() {
  local ticket
  new_node "$1"
  start_node "$1"
  clive --home "$A" invite --cap fetch --expires 1h --uses 1
  ticket=$(tail -n1 "$WORK/cmd.out")
  clive --home "$1" join "$ticket"
  clive --home "$1" name follow "$ZONE_TICKET"
}

start_sshd

# --- rsync -a over ssh -----------------------------------------------------------
OUT=$WORK/out
rsync_first=()
for r in $(seq "$RUNS"); do
  rm -rf "$OUT"; mkdir "$OUT"; settle
  timed s rsync -a -e "$SSH_E" "127.0.0.1:$DATA/tree/" "$OUT/tree/"
  rsync_first+=("$s")
  log "rsync -a ${FILES} files, run $r: $(sec "$s") s"
done
diff -r "$DATA/tree" "$OUT/tree" >/dev/null || die "rsync -a copy of the tree differs"
rsync_noop=()
for _ in $(seq "$NOOP_RUNS"); do
  timed s rsync -a -e "$SSH_E" "127.0.0.1:$DATA/tree/" "$OUT/tree/"
  rsync_noop+=("$s")
done
log "rsync -a with nothing new, median of $NOOP_RUNS: $(ms "$(median "${rsync_noop[@]}")") ms"

# --- clive-node: first sync ------------------------------------------------------------
clive_first=(); rss_a=(); rss_b=()
for r in $(seq "$RUNS"); do
  B=$WORK/laptop$r
  new_laptop "$B"
  settle
  reset_hwm "$A_PID"; reset_hwm "${NODE_PID[$B]}"
  timed s "$BIN" --home "$B" --json sync follow bench
  rss_a+=("$(hwm_kib "$A_PID")"); rss_b+=("$(hwm_kib "${NODE_PID[$B]}")")
  got=$(jq -r .bytes_fetched "$WORK/cmd.out")
  [ "$got" -ge "$TREE_BYTES" ] 2>/dev/null || die "sync follow fetched ${got} bytes, expected at least $TREE_BYTES"
  clive_first+=("$s")
  log "clive-node sync follow ${FILES} files, run $r: $(sec "$s") s (peak RSS server $((rss_a[-1] / 1024)) MiB, laptop $((rss_b[-1] / 1024)) MiB)"
  if [ "$r" != "$RUNS" ]; then stop_node "$B"; rm -rf "$B" "$B.log"; fi
done
# The last laptop stays: its export is the server's tree.
clive --home "$B" export bench/tree "$WORK/export"
diff -r "$DATA/tree" "$WORK/export" >/dev/null || die "the laptop's export of bench/tree differs from the source"
rm -rf "$WORK/export"

# --- nothing new ---------------------------------------------------------------------------
clive --home "$B" --json sync now # the first exchange after the follow records the watermark
clive_noop=(); msgs_out=(); msgs_in=(); bytes_out=(); bytes_in=()
for _ in $(seq "$NOOP_RUNS"); do
  timed s "$BIN" --home "$B" --json sync now
  clive_noop+=("$s")
  msgs_out+=("$(jq '[.exchanges[].messages_sent] | add // 0' "$WORK/cmd.out")")
  msgs_in+=("$(jq '[.exchanges[].messages_received] | add // 0' "$WORK/cmd.out")")
  bytes_out+=("$(jq '[.exchanges[].bytes_sent] | add // 0' "$WORK/cmd.out")")
  bytes_in+=("$(jq '[.exchanges[].bytes_received] | add // 0' "$WORK/cmd.out")")
  [ "$(jq '[.exchanges[] | select(.unchanged | not)] | length' "$WORK/cmd.out")" = 0 ] ||
    die "sync now with nothing new exchanged more than heads: $(cat "$WORK/cmd.out")"
done
log "clive-node sync now with nothing new, median of $NOOP_RUNS: $(ms "$(median "${clive_noop[@]}")") ms"

# --- 10 files changed ---------------------------------------------------------------------
# The laptop's daemon is stopped while the server publishes the change, so
# that the whole catch-up is the one `sync now` measured.
stop_node "$B"
change_files
clive --home "$A" --json add "$DATA/tree"
NEW_HASH=$(json_field 'if type == "array" then .[0] else . end | .hash')
[ "$NEW_HASH" != "$TREE_HASH" ] || die "the changed tree has the old hash"
clive --home "$A" name publish bench/tree "$NEW_HASH"
# The trees on the changed files' paths: the root and one directory each.
clive --home "$A" cat "$NEW_HASH"
root_len=$(wc -c <"$WORK/cmd.out")
dir_len=0
for j in $(seq 0 $((CHANGED - 1))); do
  i=$(((j * (FILES / CHANGED)) % FILES))
  d=$(printf 'dir%03d' $((i / 100)))
  h=$("$BIN" --home "$A" --json ls "$NEW_HASH" | jq -r --arg d "$d" '.[] | select(.name == $d) | .hash')
  clive --home "$A" cat "$h"
  dir_len=$((dir_len + $(wc -c <"$WORK/cmd.out")))
done
tree_bytes=$((root_len + dir_len))
changed_bytes=$((CHANGED * 4096))
allowed=$((2 * (changed_bytes + tree_bytes)))

start_node "$B"
clive --home "$B" --json sync now
fetched=$(jq '[.exchanges[].bytes_fetched] | add // 0' "$WORK/cmd.out")
heads=$(jq '[.exchanges[].bytes_received] | add // 0' "$WORK/cmd.out")
# The daemon's own catch-up on connecting may have fetched it first: count
# what the laptop received since it started, from its status.
clive --home "$B" --json sync status
since_start=$(jq '[.peers[].bytes_fetched] | add // 0' "$WORK/cmd.out")
[ "$since_start" -ge "$fetched" ] || since_start=$fetched
clive_changed=$((since_start + heads))
clive --home "$B" --json name resolve bench/tree
[ "$(jq -r .hash "$WORK/cmd.out")" = "$NEW_HASH" ] || die "the laptop did not move to the changed tree"

timed s rsync -a --stats -e "$SSH_E" "127.0.0.1:$DATA/tree/" "$OUT/tree/"
rsync_changed=$(awk -F: '/^Total bytes received/ { gsub(/[ ,]/, "", $2); print $2 }' "$WORK/cmd.out")
diff -r "$DATA/tree" "$OUT/tree" >/dev/null || die "rsync -a copy of the changed tree differs"

stop_node "$B"
stop_node "$A"

# --- report ------------------------------------------------------------------------------
rf=$(median "${rsync_first[@]}"); cf=$(median "${clive_first[@]}")
rn=$(median "${rsync_noop[@]}"); cn=$(median "${clive_noop[@]}")
ratio() { calc %.2f "$1 / ($2 < 0.000001 ? 0.000001 : $2)"; }
verdict() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
  ok = (op == "<=") ? (r <= t) : (op == "<") ? (r < t) : (r >= t); print ok ? "ok" : "MISSED" }'; }
r_first=$(ratio "$cf" "$rf"); r_noop=$(ratio "$cn" "$rn")
r_changed=$(ratio "$clive_changed" "$rsync_changed"); r_allowed=$(ratio "$clive_changed" "$allowed")
rss_a_mib=$(calc %.1f "$(maximum "${rss_a[@]}") / 1024")
rss_b_mib=$(calc %.1f "$(maximum "${rss_b[@]}") / 1024")
mo=$(maximum "${msgs_out[@]}"); mi=$(maximum "${msgs_in[@]}")
bo=$(maximum "${bytes_out[@]}"); bi=$(maximum "${bytes_in[@]}")
if [ "$DROP" = 1 ]; then cache="page cache dropped before each first sync"
else cache="page cache warm for both (could not drop it)"; fi

row() { printf '%-52s %10s %10s %7s %8s  %s\n' "$@"; }
echo
echo "clive-node sync benchmark ($(nproc) cores, loopback; first sync: median of $RUNS, nothing new: of $NOOP_RUNS)"
echo "baseline: rsync -a over $SSH_VERSION, ${SSH_ALGS}; $cache"
row "measure" "clive" "rsync" "ratio" "target" "verdict"
row "first sync, ${FILES} x 4 KiB (s)" "$(sec "$cf")" "$(sec "$rf")" "$r_first" "<1.00" "$(verdict "$r_first" "<" 1)"
row "nothing new (ms)" "$(ms "$cn")" "$(ms "$rn")" "$r_noop" "<=0.33" "$(verdict "$r_noop" "<=" 0.334)"
row "  nothing new under 100 ms (ms)" "$(ms "$cn")" "-" "-" "<100" "$(verdict "$(ms "$cn")" "<" 100)"
row "  messages sent / received (most of $NOOP_RUNS)" "$mo/$mi" "-" "-" "<=2" "$(verdict "$(maximum "$mo" "$mi")" "<=" 2)"
row "  bytes sent / received (most of $NOOP_RUNS)" "$bo/$bi" "-" "-" "<=1024" "$(verdict "$(maximum "$bo" "$bi")" "<=" 1024)"
row "$CHANGED files changed: bytes received" "$clive_changed" "$rsync_changed" "$r_changed" "<0.10" "$(verdict "$r_changed" "<" 0.1)"
row "  vs 2x (changed files + trees on their paths)" "$clive_changed" "$allowed" "$r_allowed" "<=1.00" "$(verdict "$r_allowed" "<=" 1)"
# The new bytes themselves are random: no tool receives fewer than them.
r_floor=$(ratio "$changed_bytes" "$rsync_changed")
row "  the changed files' own bytes (a floor for any tool)" "$changed_bytes" "$rsync_changed" "$r_floor" "-" "-"
row "peak RSS of the server during a first sync (MiB)" "$rss_a_mib" "-" "-" "<=150" "$(verdict "$rss_a_mib" "<=" 150)"
row "peak RSS of the laptop during a first sync (MiB)" "$rss_b_mib" "-" "-" "<=150" "$(verdict "$rss_b_mib" "<=" 150)"
if [ "$HWM_RESET" = 0 ]; then echo "(peak RSS counted from each daemon's start: /proc/PID/clear_refs was not writable)"; fi
