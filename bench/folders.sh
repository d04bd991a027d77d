#!/usr/bin/env bash
# Folders benchmark: two paired daemons on 127.0.0.1 (a desk and a laptop),
# each with a synced folder for devices/bench, against git in the same run
# (and Syncthing's published defaults, as no Syncthing peer runs here):
#
#   first ingest of 10,000 x 4 KiB files (sync folder)   vs git add -A && git commit   (target: faster)
#   a rescan of the unchanged folder (sync folder again; the scan's own time,
#     as the daemon reports it, and the whole command)    vs git status                (target: <= 50 ms and <= 1/2)
#   one file changed on the desk: until it is in the laptop's folder, median
#     (Syncthing's default: its watcher waits 10 s before it sends)                    (target: <= 1 s)
#   peak RSS of a daemon reading a folder of 100,000 files, and serving it
#     to the laptop                                                                    (target: <= 150 MiB)
#
# Usage: bench/folders.sh [--quick]        (--quick: 1,000 and 10,000 files)
#
# Environment: RUNS (default 10), CLIVE_NODE_BIN (default:
# target/release/clive-node, built by cargo first). The script exits 0 when
# a target is missed (it is a measurement) and 1 when anything fails to
# run. It binds and dials 127.0.0.1 only.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

usage() { sed -n '/^# Usage:/s/^# //p' "$0"; }

RUNS=${RUNS:-10}
FILES=10000
BIG=100000
case "${1:-}" in
  "") ;;
  --quick) FILES=1000 BIG=10000 ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
STEP_LIMIT=${STEP_LIMIT:-900}

# shellcheck source=bench/lib.sh
. bench/lib.sh

scripts/install-bench-deps

clive_binary

mkdir -p target
need_mib=$((FILES * 4 * 4 / 1024 + BIG * 2 / 1024 + 256))
need_disk "$need_mib"
WORK=$(mktemp -d "$PWD/target/bench-folders.XXXXXX")
case "$WORK" in *[[:space:]]*) die "scratch path has whitespace: $WORK" ;; esac
bench_traps

# gen DIR N SIZE: N files of SIZE random bytes in directories of 100.
gen() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, f"dir{i // 100:04d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:06d}.dat"), "wb") as f:
        f.write(os.urandom(size))
PY
}

log "generating ${FILES} files of 4 KiB, twice (one tree for git, one for clive-node)"
gen "$WORK/git-tree" "$FILES" 4096
gen "$WORK/desk-notes" "$FILES" 4096
mkdir "$WORK/laptop-notes"
# Files younger than the folder's settle time are read later: let them age.
sleep 1
sync

# --- git ---------------------------------------------------------------------------
GIT=(git -C "$WORK/git-tree" -c user.name=bench -c user.email=bench@127.0.0.1 -c gc.auto=0)
run "${GIT[@]}" init -q
timed s sh -c 'cd "$1" && git add -A && git -c user.name=bench -c user.email=bench@127.0.0.1 commit -qm first' _ "$WORK/git-tree"
git_ingest=$s
log "git add -A && git commit, ${FILES} files: $(sec "$git_ingest") s"
git_status=()
for _ in $(seq "$RUNS"); do
  timed s "${GIT[@]}" status --porcelain
  [ ! -s "$WORK/cmd.out" ] || die "git status reports changes in an unchanged tree"
  git_status+=("$s")
done
log "git status, unchanged, median of $RUNS: $(ms "$(median "${git_status[@]}")") ms"

# --- clive-node: two paired devices ------------------------------------------------
DESK=$WORK/desk
LAPTOP=$WORK/laptop
new_node "$DESK"; new_node "$LAPTOP"
start_node "$DESK"; start_node "$LAPTOP"
if echo 5 >"/proc/${NODE_PID[$DESK]}/clear_refs" 2>/dev/null; then HWM_RESET=1; fi
clive --home "$DESK" invite --device --expires 1h
clive --home "$LAPTOP" join "$(tail -n1 "$WORK/cmd.out")"

timed s "$BIN" --home "$DESK" --json sync folder "$WORK/desk-notes" devices/bench
clive_ingest=$s
[ "$(jq -r .hashed "$WORK/cmd.out")" = "$FILES" ] || die "the first ingest read $(jq -r .hashed "$WORK/cmd.out") files, expected $FILES"
[ "$(jq -r '.published // empty' "$WORK/cmd.out")" != "" ] || die "the first ingest published nothing: $(cat "$WORK/cmd.out")"
log "clive-node sync folder (first ingest and publish), ${FILES} files: $(sec "$clive_ingest") s"

# The laptop (a device, so it follows the devices zone) learns of the new
# version and fetches it now; the rescans are timed once it is done, so
# that they do not share the cores with its work.
published=$(jq -r .published "$WORK/cmd.out")
wait_in_sync() { clive --home "$LAPTOP" --json sync status --wait 600s
  [ "$(jq -r .in_sync "$WORK/cmd.out")" = true ] || die "the laptop did not get in sync: $(cat "$WORK/cmd.out")"; }
for _ in $(seq 600); do
  [ "$("$BIN" --home "$LAPTOP" --json name resolve devices/bench 2>/dev/null | jq -r .hash)" = "$published" ] && break
  sleep 0.1
done
wait_in_sync

clive_rescan=(); clive_command=()
for _ in $(seq "$RUNS"); do
  timed s "$BIN" --home "$DESK" --json sync folder "$WORK/desk-notes" devices/bench
  [ "$(jq -r .hashed "$WORK/cmd.out")" = 0 ] || die "a rescan of the unchanged folder read files: $(cat "$WORK/cmd.out")"
  [ "$(jq -r '.published // empty' "$WORK/cmd.out")" = "" ] || die "a rescan of the unchanged folder published"
  clive_command+=("$s")
  clive_rescan+=("$(calc %.6f "$(jq -r .scan_us "$WORK/cmd.out") / 1000000")")
  log "  rescan: $(jq -r .scan_us "$WORK/cmd.out") us"
done
log "clive-node rescan, unchanged, median of $RUNS: $(ms "$(median "${clive_rescan[@]}")") ms (the whole command: $(ms "$(median "${clive_command[@]}")") ms)"

# The laptop's folder fills from the desk's version.
clive --home "$LAPTOP" sync folder "$WORK/laptop-notes" devices/bench
for _ in $(seq 1200); do
  [ "$(find "$WORK/laptop-notes" -type f | wc -l)" -ge "$FILES" ] && break
  sleep 0.1
done
[ "$(find "$WORK/laptop-notes" -type f | wc -l)" = "$FILES" ] || die "the laptop's folder did not fill"
diff -r "$WORK/desk-notes" "$WORK/laptop-notes" >/dev/null || die "the laptop's folder differs from the desk's"

# --- one file changed: until the laptop has it ------------------------------------
target=dir$(printf '%04d' $((FILES / 200)))/file$(printf '%06d' $((FILES / 2))).dat
latency=()
for r in $(seq "$RUNS"); do
  printf 'run %d: %s\n' "$r" "$EPOCHREALTIME" >"$WORK/change"
  t0=$EPOCHREALTIME
  cp "$WORK/change" "$WORK/desk-notes/$target"
  seen=0
  for _ in $(seq 3000); do
    if cmp -s "$WORK/change" "$WORK/laptop-notes/$target"; then seen=1; break; fi
    sleep 0.01
  done
  t1=$EPOCHREALTIME
  [ "$seen" = 1 ] || die "run $r: the change did not reach the laptop within 30 s"
  us=$((${t1/./} - ${t0/./}))
  latency+=("$(calc %.6f "$us / 1000000")")
  log "one file changed, run $r: $(ms "${latency[-1]}") ms until it is in the laptop's folder"
  sleep 0.5
done

# --- memory: a folder of BIG files ---------------------------------------------------
log "generating ${BIG} files of 1 KiB"
gen "$WORK/big" "$BIG" 1024
sleep 1
reset_hwm "${NODE_PID[$DESK]}"
timed s "$BIN" --home "$DESK" --json sync folder "$WORK/big" devices/big
big_ingest=$s
big_rss=$(hwm_kib "${NODE_PID[$DESK]}")
log "clive-node sync folder, ${BIG} files: $(sec "$big_ingest") s, peak RSS of the daemon $((big_rss / 1024)) MiB"
# Then the laptop fetches the new version from it.
wait_in_sync
served_rss=$(hwm_kib "${NODE_PID[$DESK]}")
log "peak RSS of the desk's daemon until the laptop has that version too: $((served_rss / 1024)) MiB"

# --- the table -------------------------------------------------------------------------
verdict() { if awk "BEGIN { exit !($1) }"; then echo ok; else echo MISSED; fi; }
ci=$(median "$clive_ingest"); cr=$(median "${clive_rescan[@]}"); gr=$(median "${git_status[@]}")
lat=$(median "${latency[@]}")
printf '\nclive-node folders benchmark (%s cores, loopback; medians of %s)\n' "$(nproc)" "$RUNS"
printf '%-52s %10s %10s %7s %8s  %s\n' measure clive baseline ratio target verdict
printf '%-52s %10s %10s %7s %8s  %s\n' "first ingest, ${FILES} x 4 KiB (s) vs git add+commit" "$(sec "$ci")" "$(sec "$git_ingest")" \
  "$(calc %.2f "$ci / $git_ingest")" "<1.00" "$(verdict "$ci < $git_ingest")"
printf '%-52s %10s %10s %7s %8s  %s\n' "rescan, unchanged (ms) vs git status" "$(ms "$cr")" "$(ms "$gr")" \
  "$(calc %.2f "$cr / $gr")" "<=0.50" "$(verdict "$cr <= $gr / 2")"
printf '%-52s %10s %10s %7s %8s  %s\n' "  rescan under 50 ms (ms)" "$(ms "$cr")" - - "<=50" "$(verdict "$cr <= 0.05")"
cc=$(median "${clive_command[@]}")
printf '%-52s %10s %10s %7s %8s  %s\n' "  the whole sync folder command (ms)" "$(ms "$cc")" "$(ms "$gr")" "$(calc %.2f "$cc / $gr")" - -
printf '%-52s %10s %10s %7s %8s  %s\n' "one file changed, visible on the laptop (ms)" "$(ms "$lat")" "10000.0" \
  "$(calc %.2f "$lat / 10")" "<=1000" "$(verdict "$lat <= 1")"
printf '%-52s %10s %10s %7s %8s  %s\n' "peak RSS, folder of ${BIG} files (MiB)" "$((big_rss / 1024))" - - "<=150" \
  "$(verdict "$big_rss <= 150 * 1024")"
printf '%-52s %10s %10s %7s %8s  %s\n' "  and until the laptop has fetched it (MiB)" "$((served_rss / 1024))" - - "<=150" \
  "$(verdict "$served_rss <= 150 * 1024")"
printf '(baseline of the change: Syncthing'"'"'s default, fsWatcherDelayS = 10 s; first ingest of %s files: %s s)\n' "$BIG" "$(sec "$big_ingest")"
