#!/usr/bin/env bash
# Network benchmark: two clive-node daemons on loopback against rsync and ssh
# to this script's own sshd on 127.0.0.1, side by side in one run, on the same
# disk, timed the same way.
#
#   get of a 1 GiB blob              vs rsync over ssh      (target: >= 2x the throughput)
#   get of 10,000 x 4 KiB files      vs rsync -a over ssh   (target: faster; shown with and
#                                                            without -o, rsync writes files)
#   peak RSS of each daemon during the 1 GiB get            (target: <= 150 MiB)
#   get of a 1 KiB blob from a warm peer, through the CLI
#                                    vs ssh 127.0.0.1 cat FILE  (target: <= half the time)
#
# Usage: bench/net.sh [--quick]        (--quick: 64 MiB and 1,000 files)
#
# Environment: RUNS (default 3; the 1 GiB and tree figures are medians of
# RUNS runs), SMALL_RUNS (default 20; the 1 KiB figures are medians),
# CLIVE_NODE_BIN (default: target/release/clive-node, built by cargo first),
# DROP_CACHES=0 to keep the page cache between runs.
#
# Every clive-node get really crosses the network: each 1 GiB and tree run
# fetches into a new node that has just joined, and each 1 KiB run fetches
# a different blob. Before each 1 GiB and tree run (both tools) dirty pages
# are written back and, where the kernel lets us, the page cache is dropped.
# The script exits 0 when a target is missed (it is a measurement) and 1 when
# anything fails to run. It binds and dials 127.0.0.1 only.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }

RUNS=${RUNS:-3}
SMALL_RUNS=${SMALL_RUNS:-20}
BIG_MIB=1024
FILES=10000
case "${1:-}" in
  "") ;;
  --quick) BIG_MIB=64; FILES=1000 ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
STEP_LIMIT=${STEP_LIMIT:-900} # seconds any one step may take before the run fails

# shellcheck source=bench/lib.sh
. bench/lib.sh

scripts/install-bench-deps

clive_binary

# --- scratch space on this disk ----------------------------------------------
mkdir -p target
# The big file, A's and B's copies of it and B's export of it, plus trees.
need_mib=$((BIG_MIB * 4 + FILES * 4 * 6 / 1024 + 256))
need_disk "$need_mib"
WORK=$(mktemp -d "$PWD/target/bench-net.XXXXXX")
case "$WORK" in *[[:space:]]*) die "scratch path has whitespace: $WORK" ;; esac

bench_traps

DROP=0
if [ "${DROP_CACHES:-1}" != 0 ] && sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  DROP=1
fi
# settle: before each 1 GiB and tree run, of either tool.
settle() {
  sync
  if [ "$DROP" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

# --- data ----------------------------------------------------------------------
DATA=$WORK/data
mkdir -p "$DATA/small"
log "generating ${BIG_MIB} MiB of random bytes, ${FILES} files of 4 KiB and $((SMALL_RUNS + 1)) of 1 KiB in $WORK"
head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom >"$DATA/big.bin"
python3 - "$DATA/tree" "$FILES" "$DATA/small" "$((SMALL_RUNS + 1))" <<'PY'
import os, sys
root, n, small, m = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for i in range(n):
    d = os.path.join(root, f"dir{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.dat"), "wb") as f:
        f.write(os.urandom(4096))
for i in range(m):
    with open(os.path.join(small, f"s{i:03d}.bin"), "wb") as f:
        f.write(os.urandom(1024))
PY
BIG_BYTES=$((BIG_MIB * 1024 * 1024))
TREE_BYTES=$((FILES * 4096))

# --- clive-node: nodes on loopback ---------------------------------------------
# pair HOME: HOME joins node A with a one-use invite.
pair() {
  local ticket
  clive --home "$A" invite --cap fetch,push --expires 1h --uses 1
  ticket=$(tail -n1 "$WORK/cmd.out")
  [ -n "$ticket" ] || die "invite printed no ticket"
  clive --home "$1" join "$ticket"
}

# added_hash: the hash in the `--json add` output in cmd.out.
added_hash() { jq -r 'if type == "array" then .[0] else . end | .hash' "$WORK/cmd.out"; }

# check_received MIN: the `--json get` in cmd.out received at least MIN bytes.
check_received() {
  local got
  got=$(jq -r 'if type == "array" then .[0] else . end | .bytes_received' "$WORK/cmd.out")
  [ "$got" -ge "$1" ] 2>/dev/null || die "get received ${got} bytes over the network, expected at least $1"
}

# Node A holds everything; it is set up first so that a missing network layer
# fails the run before minutes of baselines.
A=$WORK/a
log "clive-node: node A, adding the data"
new_node "$A"
clive --home "$A" --json add "$DATA/big.bin" --pin big
BIG_HASH=$(added_hash)
clive --home "$A" --json add "$DATA/tree" --pin tree
TREE_HASH=$(added_hash)
SMALL_HASH=()
for i in $(seq 0 "$SMALL_RUNS"); do
  clive --home "$A" --json add "$(printf '%s/small/s%03d.bin' "$DATA" "$i")" --pin "small$i"
  SMALL_HASH+=("$(added_hash)")
done
start_node "$A"
A_PID=${NODE_PID[$A]}
clive --home "$A" --json status
A_ID=$(jq -r .identity.endpoint_id "$WORK/cmd.out")
if echo 5 >"/proc/$A_PID/clear_refs" 2>/dev/null; then HWM_RESET=1; fi

# Node S stays paired with A for the 1 KiB gets.
S=$WORK/s
log "clive-node: node S joins A"
new_node "$S"
start_node "$S"
pair "$S"

# --- sshd on 127.0.0.1 -----------------------------------------------------------
start_sshd

# --- baselines: rsync and ssh -------------------------------------------------------
OUT=$WORK/out
rsync_big=(); rsync_tree=()
for r in $(seq "$RUNS"); do
  rm -rf "$OUT"; mkdir "$OUT"; settle
  timed s rsync -e "$SSH_E" "127.0.0.1:$DATA/big.bin" "$OUT/"
  rsync_big+=("$s")
  cmp -s "$DATA/big.bin" "$OUT/big.bin" || die "rsync copy of the big file differs"
  log "rsync ${BIG_MIB} MiB, run $r: $(sec "$s") s"

  rm -rf "$OUT"; mkdir "$OUT"; settle
  timed s rsync -a -e "$SSH_E" "127.0.0.1:$DATA/tree/" "$OUT/tree/"
  rsync_tree+=("$s")
  diff -r "$DATA/tree" "$OUT/tree" >/dev/null || die "rsync -a copy of the tree differs"
  log "rsync -a ${FILES} files, run $r: $(sec "$s") s"
done
rm -rf "$OUT"

SMALL_FILE=$DATA/small/s000.bin
run "${SSH_CMD[@]}" 127.0.0.1 cat "$SMALL_FILE" # warm up
cmp -s "$SMALL_FILE" "$WORK/cmd.out" || die "ssh cat returned other bytes"
ssh_cat=()
for _ in $(seq "$SMALL_RUNS"); do
  timed s "${SSH_CMD[@]}" 127.0.0.1 cat "$SMALL_FILE"
  ssh_cat+=("$s")
done
log "ssh cat 1 KiB, median of $SMALL_RUNS: $(ms "$(median "${ssh_cat[@]}")") ms"

# --- clive-node ------------------------------------------------------------------------
clive_big=(); clive_tree=(); clive_tree_o=(); rss_a=(); rss_b=()
for r in $(seq "$RUNS"); do
  B=$WORK/b$r
  new_node "$B"
  start_node "$B"
  pair "$B"
  settle
  reset_hwm "$A_PID"; reset_hwm "${NODE_PID[$B]}"
  timed s "$BIN" --home "$B" --json get "$BIG_HASH" --from "$A_ID"
  rss_a+=("$(hwm_kib "$A_PID")"); rss_b+=("$(hwm_kib "${NODE_PID[$B]}")")
  check_received "$BIG_BYTES"
  clive_big+=("$s")
  log "clive-node get ${BIG_MIB} MiB, run $r: $(sec "$s") s (peak RSS A $((rss_a[-1] / 1024)) MiB, B $((rss_b[-1] / 1024)) MiB)"

  settle
  timed s "$BIN" --home "$B" --json get "$TREE_HASH" --from "$A_ID"
  check_received "$TREE_BYTES"
  clive_tree+=("$s")
  log "clive-node get ${FILES} files, run $r: $(sec "$s") s"

  if [ "$r" = "$RUNS" ]; then # the fetched bytes are the source's bytes
    clive --home "$B" get "$BIG_HASH" --from "$A_ID" -o "$WORK/big.out"
    cmp -s "$DATA/big.bin" "$WORK/big.out" || die "the fetched big blob differs from the file added on A"
    rm -f "$WORK/big.out"
  fi
  stop_node "$B"
  rm -rf "$B" "$B.log"

  # get with -o into a node that holds nothing yet: fetch and write the files.
  C=$WORK/c$r
  new_node "$C"
  start_node "$C"
  pair "$C"
  rm -rf "$OUT"; mkdir "$OUT"; settle
  timed s "$BIN" --home "$C" --json get "$TREE_HASH" --from "$A_ID" -o "$OUT/tree"
  check_received "$TREE_BYTES"
  clive_tree_o+=("$s")
  diff -r "$DATA/tree" "$OUT/tree" >/dev/null || die "the tree fetched with get -o differs from the source"
  log "clive-node get -o ${FILES} files, run $r: $(sec "$s") s"
  stop_node "$C"
  rm -rf "$C" "$C.log" "$OUT"
done

# 1 KiB: S is connected to A; every run fetches a blob S does not hold.
clive --home "$S" --json get "${SMALL_HASH[0]}" --from "$A_ID" # warm up
clive_small=()
for i in $(seq "$SMALL_RUNS"); do
  timed s "$BIN" --home "$S" --json get "${SMALL_HASH[$i]}" --from "$A_ID"
  check_received 1024
  clive_small+=("$s")
done
log "clive-node get 1 KiB, median of $SMALL_RUNS: $(ms "$(median "${clive_small[@]}")") ms"

stop_node "$S"
stop_node "$A"

# --- report ------------------------------------------------------------------------------
rb=$(median "${rsync_big[@]}"); cb=$(median "${clive_big[@]}")
rt=$(median "${rsync_tree[@]}"); ct=$(median "${clive_tree[@]}"); cto=$(median "${clive_tree_o[@]}")
sc=$(median "${ssh_cat[@]}"); cs=$(median "${clive_small[@]}")
rss_a_mib=$(calc %.1f "$(maximum "${rss_a[@]}") / 1024")
rss_b_mib=$(calc %.1f "$(maximum "${rss_b[@]}") / 1024")
mibs() { calc %.0f "$BIG_MIB / ($1 < 0.000001 ? 0.000001 : $1)"; }
ratio() { calc %.2f "$1 / ($2 < 0.000001 ? 0.000001 : $2)"; }
verdict() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
  ok = (op == "<=") ? (r <= t) : (op == "<") ? (r < t) : (r >= t); print ok ? "ok" : "MISSED" }'; }

r_big=$(ratio "$cb" "$rb"); r_tree=$(ratio "$ct" "$rt"); r_tree_o=$(ratio "$cto" "$rt"); r_small=$(ratio "$cs" "$sc")
mb_c=$(mibs "$cb"); mb_r=$(mibs "$rb"); speedup=$(ratio "$mb_c" "$mb_r")
if [ "$DROP" = 1 ]; then cache="page cache dropped before each 1 GiB and tree run"
else cache="page cache warm for both (could not drop it)"; fi

row() { printf '%-48s %9s %9s %7s %7s  %s\n' "$@"; }
echo
echo "clive-node network benchmark ($(nproc) cores, loopback; median of $RUNS runs, 1 KiB: of $SMALL_RUNS)"
echo "baseline: $SSH_VERSION, ${SSH_ALGS}; $cache"
row "measure" "clive" "baseline" "ratio" "target" "verdict"
row "get ${BIG_MIB} MiB blob vs rsync over ssh (s)" "$(sec "$cb")" "$(sec "$rb")" "$r_big" "<=0.50" "$(verdict "$r_big" "<=" 0.5)"
row "  throughput (MiB/s; ratio = speedup)" "$mb_c" "$mb_r" "$speedup" ">=2.00" "$(verdict "$speedup" ">=" 2)"
row "get ${FILES} x 4 KiB (to store) vs rsync -a (s)" "$(sec "$ct")" "$(sec "$rt")" "$r_tree" "<1.00" "$(verdict "$r_tree" "<" 1)"
row "get -o ${FILES} x 4 KiB (store + files) vs rsync -a" "$(sec "$cto")" "$(sec "$rt")" "$r_tree_o" "<1.00" "$(verdict "$r_tree_o" "<" 1)"
row "get 1 KiB via CLI vs ssh 127.0.0.1 cat (ms)" "$(ms "$cs")" "$(ms "$sc")" "$r_small" "<=0.50" "$(verdict "$r_small" "<=" 0.5)"
row "peak RSS of daemon A, serving ${BIG_MIB} MiB (MiB)" "$rss_a_mib" "-" "-" "<=150" "$(verdict "$rss_a_mib" "<=" 150)"
row "peak RSS of daemon B, fetching ${BIG_MIB} MiB (MiB)" "$rss_b_mib" "-" "-" "<=150" "$(verdict "$rss_b_mib" "<=" 150)"
if [ "$HWM_RESET" = 0 ]; then echo "(peak RSS counted from each daemon's start: /proc/PID/clear_refs was not writable)"; fi
