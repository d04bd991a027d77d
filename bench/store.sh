#!/usr/bin/env bash
# Store benchmark: clive-node against the tools a user would otherwise pick,
# side by side in one run, on the same disk.
#
#   add of a 1 GiB file          vs cp, and cp + b3sum --num-threads 1 of the same file
#                                (target: <= cp + b3sum; <= 1.5x cp where b3sum is at
#                                 least twice as fast as cp; peak RSS < 100 MiB)
#   add of 10,000 x 4 KiB files  vs git add -A && git commit   (target: faster)
#   export of that tree          vs cp -r              (target: <= 2x)
#
# Each figure is the median of RUNS runs (default 3). Page cache is warmed
# before every run so both sides read from memory and write to the same disk.
# Usage: bench/store.sh [--quick]   (--quick: 256 MiB and 2,000 files)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
BIG_MIB=1024
FILES=10000
if [ "${1:-}" = "--quick" ]; then BIG_MIB=256; FILES=2000; fi

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
command -v git >/dev/null || { apt-get update -qq && apt-get install -y -qq git >/dev/null; }

# CLIVE_NODE_BIN runs another build (an older one, to compare) instead.
if [ -z "${CLIVE_NODE_BIN:-}" ]; then
  cargo build --release --locked -p clive-cli >&2
  CLIVE_NODE_BIN=target/release/clive-node
fi
BIN=$(realpath "$CLIVE_NODE_BIN")

WORK=$(mktemp -d "$PWD/target/bench-store.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# measure OUT_VAR CMD...: runs CMD, sets OUT_VAR to "seconds max_rss_kib".
measure() {
  local var=$1; shift
  /usr/bin/time -o "$WORK/time.out" -f '%e %M' "$@" >/dev/null 2>"$WORK/stderr.out" || {
    echo "failed: $*" >&2; cat "$WORK/stderr.out" >&2; exit 1; }
  printf -v "$var" '%s' "$(tail -n1 "$WORK/time.out")"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 0.001; printf "%.2f", a / b }'; }

fresh_home() {
  rm -rf "$WORK/home"
  "$BIN" --home "$WORK/home" init >/dev/null
}

echo "generating ${BIG_MIB} MiB file and ${FILES} files of 4 KiB in $WORK" >&2
head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom >"$WORK/big.bin"
python3 - "$WORK/tree" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"dir{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.dat"), "wb") as f:
        f.write(os.urandom(4096))
PY

warm() { cat "$@" >/dev/null 2>&1 || true; find "$WORK/tree" -type f -exec cat {} + >/dev/null; }

# --- 1 GiB file --------------------------------------------------------------
cp_t=(); add_t=(); add_rss=(); b3_t=()
command -v b3sum >/dev/null || cargo install --locked b3sum >&2
for _ in $(seq "$RUNS"); do
  warm "$WORK/big.bin"; sync
  measure s b3sum --num-threads 1 "$WORK/big.bin"
  b3_t+=("${s%% *}")
  warm "$WORK/big.bin"
  rm -f "$WORK/big.copy"; sync
  measure s cp "$WORK/big.bin" "$WORK/big.copy"; sync
  cp_t+=("${s%% *}")
  rm -f "$WORK/big.copy"
  fresh_home; warm "$WORK/big.bin"; sync
  measure s "$BIN" --home "$WORK/home" add "$WORK/big.bin"; sync
  add_t+=("${s%% *}"); add_rss+=("${s##* }")
done
cp_m=$(printf '%s\n' "${cp_t[@]}" | median)
b3_m=$(printf '%s\n' "${b3_t[@]}" | median)
cpb3_m=$(awk -v a="$cp_m" -v b="$b3_m" 'BEGIN { printf "%.2f", a + b }')
# 1.5x cp applies where hashing runs at least twice as fast as copying.
if awk -v c="$cp_m" -v b="$b3_m" 'BEGIN { exit !(b * 2 <= c) }'; then add_target=1.50; else
  add_target=$(ratio "$cpb3_m" "$cp_m"); fi
add_m=$(printf '%s\n' "${add_t[@]}" | median)
rss_m=$(printf '%s\n' "${add_rss[@]}" | sort -n | tail -n1)
rss_mib=$(awk -v k="$rss_m" 'BEGIN { printf "%.1f", k / 1024 }')

# --- 10,000 small files ------------------------------------------------------
git_t=(); tree_t=(); exp_t=(); cpr_t=()
for _ in $(seq "$RUNS"); do
  rm -rf "$WORK/repo"; mkdir "$WORK/repo"; cp -r "$WORK/tree/." "$WORK/repo/"
  git -C "$WORK/repo" init -q
  warm; sync
  measure s sh -c "cd '$WORK/repo' && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm bench"
  git_t+=("${s%% *}")
  fresh_home; warm; sync
  measure s "$BIN" --home "$WORK/home" add "$WORK/tree"
  tree_t+=("${s%% *}")
  hash=$("$BIN" --home "$WORK/home" add "$WORK/tree" | cut -d' ' -f1)
  rm -rf "$WORK/out" "$WORK/cpr"; sync
  measure s "$BIN" --home "$WORK/home" export "$hash" "$WORK/out"
  exp_t+=("${s%% *}")
  sync
  measure s cp -r "$WORK/tree" "$WORK/cpr"
  cpr_t+=("${s%% *}")
  diff -rq "$WORK/tree" "$WORK/out" >/dev/null || { echo "export differs from source!" >&2; exit 1; }
done
git_m=$(printf '%s\n' "${git_t[@]}" | median)
tree_m=$(printf '%s\n' "${tree_t[@]}" | median)
exp_m=$(printf '%s\n' "${exp_t[@]}" | median)
cpr_m=$(printf '%s\n' "${cpr_t[@]}" | median)

verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "ok" : "MISSED" }'; }

r1=$(ratio "$add_m" "$cp_m"); r2=$(ratio "$tree_m" "$git_m"); r3=$(ratio "$exp_m" "$cpr_m")
echo
echo "clive-node store benchmark ($(nproc) cores, median of $RUNS runs, seconds)"
printf '%-46s %8s %8s %7s %7s %s\n' "measure" "clive" "other" "ratio" "target" "verdict"
printf '%-46s %8s %8s %7s %7s %s\n' "add ${BIG_MIB} MiB file vs cp" "$add_m" "$cp_m" "$r1" "$add_target" "$(verdict "$r1" "$add_target")"
printf '%-46s %8s %8s %7s %7s %s\n' "add ${BIG_MIB} MiB file vs cp + b3sum -t1" "$add_m" "$cpb3_m" "$(ratio "$add_m" "$cpb3_m")" "1.00" "$(verdict "$(ratio "$add_m" "$cpb3_m")" 1)"
printf '%-46s %8s %8s %7s %7s %s\n' "(b3sum --num-threads 1 alone)" "-" "$b3_m" "-" "-" "-"
printf '%-46s %8s %8s %7s %7s %s\n' "add ${FILES} x 4 KiB vs git add -A && commit" "$tree_m" "$git_m" "$r2" "<1.00" "$(verdict "$r2" 0.999)"
printf '%-46s %8s %8s %7s %7s %s\n' "export ${FILES} x 4 KiB vs cp -r" "$exp_m" "$cpr_m" "$r3" "2.00" "$(verdict "$r3" 2)"
printf '%-46s %8s %8s %7s %7s %s\n' "peak RSS of add ${BIG_MIB} MiB (MiB)" "$rss_mib" "-" "-" "100" "$(verdict "$rss_mib" 100)"
