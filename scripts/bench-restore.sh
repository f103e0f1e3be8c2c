#!/usr/bin/env bash
# Benchmark: cairn restore vs restic restore (and rustic restore if
# installed), from the same repository in the same run.
#
# Data sets (generated once, backed up once by restic into one v2
# repository, one snapshot each):
#   mixed  ~BENCH_MIXED_MB MiB: large random files, medium random files,
#          compressible text, a file of zeros, and a few hundred small files
#   small  BENCH_FILES small files (0-8 KiB) in a three-level tree
# For every data set and tool: a cold page cache, a fresh target, then
# `restore` timed with /usr/bin/time (wall time and peak RSS). Then a second
# run of cairn into the restored target (everything unchanged: the resume
# path). Prints a table with times, peak RSS and the cairn/other ratios.
# Not a test: numbers vary with the machine and its load.
#
# Knobs (environment):
#   BENCH_DIR       work directory            (default /tmp/cairn-bench-restore)
#   BENCH_MIXED_MB  size of the mixed set     (default 1024)
#   BENCH_FILES     number of small files     (default 100000)
#   BENCH_TOOLS     tools to compare          (default "cairn restic rustic")
#   CAIRN           cairn binary              (default target/release/cairn)
set -euo pipefail

DIR=${BENCH_DIR:-/tmp/cairn-bench-restore}
MIXED_MB=${BENCH_MIXED_MB:-1024}
FILES=${BENCH_FILES:-100000}
TOOLS=${BENCH_TOOLS:-cairn restic rustic}
CAIRN=${CAIRN:-target/release/cairn}
CAIRN=$(realpath "$CAIRN")
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$DIR/repo

command -v restic >/dev/null || { echo "restic is required"; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is required"; exit 1; }
[ "$(id -u)" = 0 ] || echo "warning: not root, cannot drop the page cache: cold numbers are not cold" >&2

mkdir -p "$DIR"
stamp="$DIR/.data-$MIXED_MB-$FILES"
if [ ! -f "$stamp" ]; then
  echo "generating the data sets in $DIR (mixed: ${MIXED_MB} MiB, small: $FILES files)"
  rm -rf "$DIR/mixed" "$DIR/small" "$DIR/repo" "$DIR"/.data-*
  python3 - "$DIR" "$MIXED_MB" "$FILES" <<'PY'
import os, sys, random
root, mixed_mb, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
mixed = os.path.join(root, "mixed")
budget = mixed_mb << 20
def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
# 50% large random files, 20% medium random files, 15% text, 10% zeros,
# the rest small files.
big = budget // 2 // 4
os.makedirs(os.path.join(mixed, "big"), exist_ok=True)
for i in range(4):
    with open(os.path.join(mixed, "big", f"big{i}.bin"), "wb") as f:
        left = big
        while left:
            k = min(left, 8 << 20)
            f.write(os.urandom(k))
            left -= k
medium = budget // 5
for i in range(medium // (512 << 10)):
    write(os.path.join(mixed, "medium", f"d{i % 16}", f"m{i}.bin"), os.urandom(512 << 10))
letters = "abcdefghijklmnopqrstuvwxyz"
words = ["".join(rnd.choice(letters) for _ in range(rnd.randint(2, 9))).encode()
         for _ in range(5000)]
text = budget * 15 // 100
i = 0
while text > 0:
    size = min(text, 4 << 20)
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rnd.choice(words) for _ in range(64)) + b"\n"
    write(os.path.join(mixed, "text", f"t{i}.txt"), bytes(out[:size]))
    text -= size
    i += 1
write(os.path.join(mixed, "zeros.bin"), bytes(budget // 10))
for i in range(500):
    write(os.path.join(mixed, "small", f"s{i}"), os.urandom(rnd.randint(0, 16384)))
small = os.path.join(root, "small")
for i in range(n):
    d = os.path.join(small, *(f"d{(i >> s) % 16:x}" for s in (12, 8, 4)))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(0, 8192)))
PY
  restic init -q --repository-version 2
  (cd "$DIR" && restic backup -q --tag mixed mixed && restic backup -q --tag small small)
  touch "$stamp"
fi

snap() { restic snapshots --json --tag "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

restore_cmd() {
  local tool=$1 id=$2 target=$3
  case $tool in
    cairn) echo "$CAIRN restore -q $id --target $target" ;;
    restic) echo "restic --no-cache -q restore $id --target $target" ;;
    rustic) echo "rustic -r $RESTIC_REPOSITORY --password $RESTIC_PASSWORD --no-cache restore $id $target" ;;
  esac
}

declare -A WALL RSS
# measure SET TOOL [rerun]: time one restore; "rerun" restores into the
# target the previous run left.
measure() {
  local set=$1 tool=$2 mode=${3:-fresh} id target=$DIR/target-$2 log=$DIR/$1-$2-${3:-fresh}.log
  id=$(snap "$set")
  [ "$mode" = fresh ] && rm -rf "$target"
  drop
  # shellcheck disable=SC2046
  if ! /usr/bin/time -f "%e %M" -o "$log.time" $(restore_cmd "$tool" "$id" "$target") >"$log" 2>&1; then
    echo "  $tool restore of $set failed, see $log" >&2
    WALL[$set/$tool/$mode]=nan; RSS[$set/$tool/$mode]=nan
    return
  fi
  read -r wall rss < <(tail -n 1 "$log.time")
  WALL[$set/$tool/$mode]=$wall
  RSS[$set/$tool/$mode]=$((rss / 1024))
  printf '  %-6s %-7s %-5s %8.2f s %7s MiB\n' "$set" "$tool" "$mode" "$wall" "${RSS[$set/$tool/$mode]}"
}

available=()
for tool in $TOOLS; do
  case $tool in
    cairn) [ -x "$CAIRN" ] && available+=(cairn) ;;
    *) command -v "$tool" >/dev/null && available+=("$tool") || echo "($tool not installed, skipped)" ;;
  esac
done

echo "restoring (cold page cache, fresh target):"
for set in mixed small; do
  for tool in "${available[@]}"; do
    measure "$set" "$tool"
  done
  measure "$set" cairn rerun
done

echo
printf '%-6s %-7s %10s %10s %12s %12s\n' set tool "time(s)" "rss(MiB)" "cairn/tool" "rss ratio"
for set in mixed small; do
  for tool in "${available[@]}"; do
    w=${WALL[$set/$tool/fresh]} r=${RSS[$set/$tool/fresh]}
    cw=${WALL[$set/cairn/fresh]} cr=${RSS[$set/cairn/fresh]}
    ratio=$(python3 -c "print(f'{$cw/$w:.2f}')" 2>/dev/null || echo nan)
    rratio=$(python3 -c "print(f'{$cr/$r:.2f}')" 2>/dev/null || echo nan)
    printf '%-6s %-7s %10s %10s %12s %12s\n' "$set" "$tool" "$w" "$r" "$ratio" "$rratio"
  done
  printf '%-6s %-7s %10s %10s   (re-run into the restored target)\n' "$set" "cairn" \
    "${WALL[$set/cairn/rerun]}" "${RSS[$set/cairn/rerun]}"
done
echo "target: cairn <= 0.4x restic's time at no more memory than restic"
