#!/usr/bin/env bash
# Publish-to-visible benchmark: two clive-node daemons on loopback. The
# publisher signs a new version of a name; the time until the follower's
# `name resolve` answers with the new hash, verified, is measured (the
# announcement, the fetch of the metadata objects and the TUF client
# workflow, plus one CLI call of polling granularity).
#
#   publish -> visible and verified on a following peer   (target: <= 500 ms median)
#
# Side by side: the same round trip done with git, a commit pushed to a bare
# repository and fetched by a second clone, each over the local file system
# (no network, no verification): the floor a user would otherwise get.
#
# Usage: bench/names-propagation.sh [--quick]    (--quick: 5 publishes instead of 20)
#
# Environment: CLIVE_NODE_BIN (default: target/release/clive-node, built first).
# Binds and dials 127.0.0.1 only. Publishes are 1.2 s apart (announcements
# are sent at most once a second).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

RUNS=20
case "${1:-}" in
  "") ;;
  --quick) RUNS=5 ;;
  *) sed -n '/^# Usage:/s/^# //p' "$0" >&2; exit 2 ;;
esac

if [ -z "${CLIVE_NODE_BIN:-}" ]; then
  cargo build --release -p clive-cli >&2
  CLIVE_NODE_BIN=target/release/clive-node
fi
BIN=$(realpath "$CLIVE_NODE_BIN")
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for n in pub fol; do
  "$BIN" --home "$WORK/$n" init >/dev/null
  printf '[net]\nbind = ["127.0.0.1:0"]\n' > "$WORK/$n/config.toml"
  "$BIN" --home "$WORK/$n" start >"$WORK/$n.log" 2>&1 &
  PIDS+=($!)
  "$BIN" --home "$WORK/$n" status --wait 20s >/dev/null
done
P() { "$BIN" --home "$WORK/pub" "$@"; }
F() { "$BIN" --home "$WORK/fol" "$@"; }
TICKET=$(P invite --cap fetch --expires 10m | tail -1)
F join "$TICKET" >/dev/null
ZT=$(P --json name zone create bench | sed -n 's/.*"ticket": "\(clivezone1[a-z0-9]*\)".*/\1/p')
echo v0 > "$WORK/v0"
P name publish bench/app "$WORK/v0" >/dev/null
F name follow "$ZT" >/dev/null

: > "$WORK/clive.ms"
for i in $(seq 1 "$RUNS"); do
  echo "version $i" > "$WORK/v$i"
  want=$(P --json add "$WORK/v$i" | sed -n 's/.*"hash": "\([0-9a-f]*\)".*/\1/p' | head -1)
  sleep 1.2
  t0=$(now_ms)
  P name publish bench/app "$WORK/v$i" >/dev/null
  got=""
  for _ in $(seq 1 1000); do            # at most ~10 s
    got=$(F name resolve bench/app 2>/dev/null || true)
    [ "$got" = "$want" ] && break
    sleep 0.005
  done
  t1=$(now_ms)
  [ "$got" = "$want" ] || { echo "version $i never became visible on the follower" >&2; exit 1; }
  echo $((t1 - t0)) >> "$WORK/clive.ms"
done

git init -q --bare "$WORK/origin.git"
git clone -q "$WORK/origin.git" "$WORK/w1" 2>/dev/null
git -C "$WORK/w1" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
git -C "$WORK/w1" push -q origin HEAD:main
git clone -q -b main "$WORK/origin.git" "$WORK/w2"
: > "$WORK/git.ms"
for i in $(seq 1 "$RUNS"); do
  echo "version $i" > "$WORK/w1/app"
  t0=$(now_ms)
  git -C "$WORK/w1" add app
  git -C "$WORK/w1" -c user.name=b -c user.email=b@b commit -q -m "v$i"
  git -C "$WORK/w1" push -q origin HEAD:main
  git -C "$WORK/w2" pull -q
  t1=$(now_ms)
  echo $((t1 - t0)) >> "$WORK/git.ms"
done

c=$(median < "$WORK/clive.ms")
g=$(median < "$WORK/git.ms")
echo
echo "| measure ($RUNS runs, median) | clive-node | git commit+push+pull (local) | target |"
echo "|---|---|---|---|"
echo "| publish -> visible and verified on a follower | ${c} ms | ${g} ms | <= 500 ms: $([ "${c%.*}" -le 500 ] && echo met || echo MISSED) |"
