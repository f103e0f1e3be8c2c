#!/usr/bin/env bash
# Benchmark: cairn mount vs restic mount (and rustic mount if installed).
#
# On one repository (written by restic, so every tool reads it), with a fresh
# mount per tool and measurement:
#   find   `find` over the snapshot                      (cold page cache)
#   small  reading every small file                      (cold page cache)
#   big    sequential read of the big file               (cold page cache)
#   warm   sequential read of the big file with the repository's files in
#          the page cache (the mount's own page cache is still empty)
# Prints wall times, the mount process's CPU time, MB/s and cairn/other
# ratios. Not a test: numbers vary with the machine and its load (the CPU
# times are the steadier figure on a busy machine).
#
# Knobs (environment):
#   BENCH_DIR    work directory          (default /tmp/cairn-bench-mount)
#   BENCH_FILES  number of small files   (default 100000)
#   BENCH_BIG_MB size of the big file    (default 2048)
#   BENCH_NICE   nice level for mounts and readers (default 0; e.g. -10 on a
#                machine busy with other work, as root)
#   BENCH_TOOLS  tools to compare        (default "cairn restic rustic")
#   CAIRN        cairn binary            (default target/release/cairn)
set -euo pipefail

DIR=${BENCH_DIR:-/tmp/cairn-bench-mount}
FILES=${BENCH_FILES:-100000}
BIG_MB=${BENCH_BIG_MB:-2048}
NICE=${BENCH_NICE:-0}
TOOLS=${BENCH_TOOLS:-cairn restic rustic}
CAIRN=${CAIRN:-target/release/cairn}
CAIRN=$(realpath "$CAIRN")
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$DIR/repo

command -v restic >/dev/null || { echo "restic is required"; exit 1; }
[ -e /dev/fuse ] && command -v fusermount3 >/dev/null || { echo "FUSE is required"; exit 1; }
[ "$(id -u)" = 0 ] || echo "warning: not root, cannot drop the page cache: cold numbers are not cold" >&2

mkdir -p "$DIR"
if [ ! -f "$DIR/.data-$FILES-$BIG_MB" ]; then
  echo "generating $FILES small files in a deep tree and a ${BIG_MB} MiB file in $DIR/src"
  rm -rf "$DIR/src" "$DIR/repo" "$DIR"/.data-*
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
mountpoint -q "$MNT" && fusermount3 -u "$MNT"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
run() { nice -n "$NICE" "$@"; }

mount_cmd() {
  case $1 in
    cairn) echo "$CAIRN mount" ;;
    restic) echo "restic mount" ;;
    rustic) echo "rustic -r $RESTIC_REPOSITORY --password $RESTIC_PASSWORD mount" ;;
  esac
}

declare -A T C
# measure TOOL PHASE: fresh mount, run one phase, unmount.
measure() {
  local tool=$1 phase=$2 log=$DIR/$1-$2.log
  drop
  [ "$phase" = warm ] && cat "$RESTIC_REPOSITORY"/data/*/* >/dev/null
  # Not through a function: $! must be the mount process itself.
  # shellcheck disable=SC2046
  nice -n "$NICE" $(mount_cmd "$tool") "$MNT" >"$log" 2>&1 &
  local pid=$!
  # restic and rustic load the index first: give them time, and poll for
  # the snapshots directory rather than just the mount.
  local waited=0
  until [ -d "$MNT/snapshots/latest/src" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$tool mount exited early:"; cat "$log"; exit 1
    fi
    if [ $waited -ge 3000 ]; then
      echo "$tool mount did not show snapshots/ within 300 s:"; cat "$log"
      fusermount3 -u "$MNT" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; exit 1
    fi
    sleep 0.1; waited=$((waited + 1))
  done
  local snap=$MNT/snapshots/latest/src
  [ "$phase" = warm ] || drop
  local c0 t0 t1
  c0=$(cpu_ticks "$pid"); t0=$(now)
  case $phase in
    find) run find "$snap" >/dev/null ;;
    small) run find "$snap/small" -type f -exec cat {} + >/dev/null ;;
    big|warm) run cat "$snap/big.bin" >/dev/null ;;
  esac
  t1=$(now)
  C[$tool.$phase]=$(echo "($(cpu_ticks "$pid") - $c0) / $(getconf CLK_TCK)" | bc -l)
  T[$tool.$phase]=$(echo "$t1 - $t0" | bc -l)
  fusermount3 -u "$MNT" || umount "$MNT"
  wait "$pid" || true
}

ran=()
for tool in $TOOLS; do
  [ "$tool" = rustic ] && ! command -v rustic >/dev/null && continue
  ran+=("$tool")
  for phase in find small big warm; do measure "$tool" "$phase"; done
  mbs() { echo "$BIG_MB * 1.048576 / ${T[$tool.$1]}" | bc -l; }
  printf '%-7s find %7.2fs (cpu %6.2fs)  small %7.2fs (cpu %6.2fs)  big %7.2fs %6.0f MB/s (cpu %6.2fs)  warm %7.2fs %6.0f MB/s (cpu %6.2fs)\n' \
    "$tool" "${T[$tool.find]}" "${C[$tool.find]}" "${T[$tool.small]}" "${C[$tool.small]}" \
    "${T[$tool.big]}" "$(mbs big)" "${C[$tool.big]}" "${T[$tool.warm]}" "$(mbs warm)" "${C[$tool.warm]}"
done

echo
for other in "${ran[@]}"; do
  [ "$other" = cairn ] && continue
  for m in find small big warm; do
    printf 'cairn/%s %-6s time ratio: %6.3f   cpu ratio: %6.3f\n' "$other" "$m" \
      "$(echo "${T[cairn.$m]} / ${T[$other.$m]}" | bc -l)" \
      "$(echo "${C[cairn.$m]} / (${C[$other.$m]} + 0.0001)" | bc -l)"
  done
done
echo "targets: find and small-file time ratios <= 0.2; big-file time ratio <= 0.2 (>= 5x MB/s) and >= 1 GB/s warm"
