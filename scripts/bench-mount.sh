#!/usr/bin/env bash
# Benchmark: cairn mount vs restic mount (and rustic mount if installed).
#
# On one repository (written by restic, so every tool reads it), with a cold
# page cache before each measurement and a fresh mount per tool:
#   1. `find` over the snapshot,
#   2. reading every small file,
#   3. sequential read of the big file.
# Prints times and ratios. Not a test: numbers vary with the machine.
#
# Knobs (environment):
#   BENCH_DIR    work directory          (default /tmp/cairn-bench-mount)
#   BENCH_FILES  number of small files   (default 100000)
#   BENCH_BIG_MB size of the big file    (default 2048)
#   CAIRN        cairn binary            (default target/release/cairn)
set -euo pipefail

DIR=${BENCH_DIR:-/tmp/cairn-bench-mount}
FILES=${BENCH_FILES:-100000}
BIG_MB=${BENCH_BIG_MB:-2048}
CAIRN=${CAIRN:-target/release/cairn}
CAIRN=$(realpath "$CAIRN")
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$DIR/repo

command -v restic >/dev/null || { echo "restic is required"; exit 1; }
[ -e /dev/fuse ] && command -v fusermount3 >/dev/null || { echo "FUSE is required"; exit 1; }

mkdir -p "$DIR"
if [ ! -f "$DIR/.data-$FILES-$BIG_MB" ]; then
  echo "generating $FILES small files in a deep tree and a ${BIG_MB} MiB file in $DIR/src"
  rm -rf "$DIR/src" "$DIR/repo"
  mkdir -p "$DIR/src"
  python3 - "$DIR/src" "$FILES" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(n):
    d = os.path.join(root, "small", *(f"d{(i >> s) % 16:x}" for s in (12, 8, 4)))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(0, 8192)))
PY
  head -c $((BIG_MB << 20)) /dev/urandom > "$DIR/src/big.bin"
  restic init -q --repository-version 2
  (cd "$DIR" && restic backup -q src)
  touch "$DIR/.data-$FILES-$BIG_MB"
fi

MNT=$DIR/mnt
mkdir -p "$MNT"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(cannot drop caches: not root?)" >&2; }
now() { date +%s.%N; }

declare -A T
bench() { # name, mount command...
  local name=$1; shift
  drop
  "$@" "$MNT" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 300); do mountpoint -q "$MNT" && [ -e "$MNT/snapshots/latest" ] && break; sleep 0.1; done
  local snap=$MNT/snapshots/latest/src
  drop; local t0=$(now); find "$snap" >/dev/null; local t1=$(now)
  drop; local t2=$(now); find "$snap/small" -type f -exec cat {} + >/dev/null; local t3=$(now)
  drop; local t4=$(now); cat "$snap/big.bin" >/dev/null; local t5=$(now)
  fusermount3 -u "$MNT" || umount "$MNT"; wait $pid || true
  T[$name.find]=$(echo "$t1 - $t0" | bc)
  T[$name.small]=$(echo "$t3 - $t2" | bc)
  T[$name.big]=$(echo "$t5 - $t4" | bc)
  printf '%-7s find %8.2fs   small files %8.2fs   big file %8.2fs (%6.0f MB/s)\n' "$name" \
    "${T[$name.find]}" "${T[$name.small]}" "${T[$name.big]}" \
    "$(echo "$BIG_MB * 1.048576 / ${T[$name.big]}" | bc -l)"
}

bench cairn "$CAIRN" mount
bench restic restic mount
if command -v rustic >/dev/null; then
  bench rustic rustic -r "$RESTIC_REPOSITORY" --password "$RESTIC_PASSWORD" mount
fi

echo
for m in find small big; do
  printf 'cairn/restic %-6s time ratio: %.3f\n' "$m" "$(echo "${T[cairn.$m]} / ${T[restic.$m]}" | bc -l)"
done
echo "targets: find and small-file ratios <= 0.2; big-file ratio <= 0.2 (>= 5x MB/s)"
