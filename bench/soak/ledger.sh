# shellcheck shell=bash
# Sourced by bench/soak.sh, not run alone: the test data (new blobs and trees)
# and the ledger of what was added, pinned, published and followed.

# --- data ---------------------------------------------------------------------------------
SRCN=0
# new_blob: a new file of random bytes in $SRC, its path in NEW. Sizes: mostly
# small, some up to 4 MiB, a few of 16-32 MiB (long enough to be killed mid-way).
# (Not called in $(...): the count must survive.)
new_blob() {
  local size r=$((RANDOM % 100)) p
  if [ "$r" -lt 65 ]; then size=$((RANDOM % 65536 + 1))
  elif [ "$r" -lt 93 ]; then size=$(((RANDOM % 4096 + 256) * 1024))
  else size=$(((RANDOM % 17 + 16) * 1048576)); fi
  SRCN=$((SRCN + 1))
  p=$SRC/b$SRCN
  head -c "$size" /dev/urandom >"$p"
  NEW=$p
}
# new_tree: a new directory of 3-40 files (one empty, some in subdirectories), in NEW.
new_tree() {
  local p f i nf=$((RANDOM % 38 + 3))
  SRCN=$((SRCN + 1))
  p=$SRC/t$SRCN
  mkdir -p "$p/sub/deeper"
  : >"$p/empty"
  for i in $(seq "$nf"); do
    case $((RANDOM % 3)) in 0) f=$p/f$i ;; 1) f=$p/sub/f$i ;; *) f=$p/sub/deeper/f$i ;; esac
    head -c $((RANDOM % 32768)) /dev/urandom >"$f"
  done
  NEW=$p
}
# same SRC PATH: PATH (exported) holds exactly the bytes of SRC (file or tree).
same() {
  [ -n "$1" ] || { log "soak.sh: internal error: no source to compare $2 with"; exit 2; }
  if [ -d "$1" ]; then [ -d "$2" ] && diff -r "$1" "$2" >/dev/null 2>&1
  else [ -f "$2" ] && cmp -s "$1" "$2"; fi
}

# --- the ledger -------------------------------------------------------------------------------
declare -A SRC_OF=()     # hash -> source path
declare -A PIN_SRC=()    # "node|pin" -> source path
declare -A PIN_HASH=()   # "node|pin" -> hash ("" if not known)
declare -A PIN_SURE=()   # "node|pin" -> 1 once it must exist, 0 while it may
declare -A PIN_HIST=()   # "node|pin" -> how it came to be
declare -A PIN_BAD=()    # "node|pin" -> 1 once reported (not checked again)
declare -A PIN_ROUND=()  # "node|pin" -> round of a get-and-pin (to tell a concurrent gc)
declare -A PIN_PARTIAL=() # "node|pin" -> 1: pinned after a failed get, may be incomplete
declare -A NAME_OK=()    # "zone/name" -> allowed values: hashes and/or "none"
declare -A NAME_HIST=()  # "zone/name" -> every publish attempt
declare -A NAME_BAD=()   # "zone/name" -> 1 once reported
declare -A NAME_NOT=()   # "zone/name" -> values of publishes that exited non-zero unkilled
declare -A FOLLOWS=()    # "node|zone" -> 1 when a follow reported success (or zone show found it)
declare -A FOLLOW_PLANNED=() # "node|zone" -> 1 once a follow is planned (one a round; reset per round)
declare -A GROUP_NAMES=() # op -> "name=hash ..." of a killed publish of several names
NOTES=0
note() { NOTES=$((NOTES + 1)); printf 'note: %s\n' "$*" | tee -a "$WORK/notes" >&2; }
ZONES=(za zb)
declare -A OWNER=([za]=0 [zb]=1)
declare -A TICKET=()
NAMES_PER_ZONE=6
