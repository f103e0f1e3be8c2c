#!/usr/bin/env bash
# Benchmark: cairn vs restic maintenance on copies of one repository.
#
# One repository (written by restic) holds BENCH_SNAPSHOTS snapshots of a
# directory in which about 5% of the data changes between snapshots, so that
# forgetting the older snapshots leaves a good share of unreferenced data.
# Each tool then works on its own fresh copy, in the same run:
#   forget+prune  forget --keep-last BENCH_KEEP, then prune --max-unused 0
#   check         check --read-data (on an untouched copy)
# The tools alternate, BENCH_RUNS times each, so that load from other
# processes hits both alike. Prints the median wall time and CPU time
# (user + system) of each tool and the cairn/restic ratios (target for wall
# time: <= 0.5). Not a test: numbers vary with the machine and its load.
# restic runs with --no-cache, as cairn keeps no cache; the page cache is
# dropped before each command when running as root.
#
# Knobs (environment):
#   BENCH_DIR        work directory              (default /tmp/cairn-bench-maintenance)
#   BENCH_MB         size of the source data     (default 128)
#   BENCH_SNAPSHOTS  number of snapshots         (default 30)
#   BENCH_KEEP       snapshots kept by forget    (default 5)
#   BENCH_RUNS       runs per tool and operation (default 3)
#   CAIRN            cairn binary                (default target/release/cairn)
set -euo pipefail

DIR=${BENCH_DIR:-/tmp/cairn-bench-maintenance}
MB=${BENCH_MB:-128}
SNAPS=${BENCH_SNAPSHOTS:-30}
KEEP=${BENCH_KEEP:-5}
RUNS=${BENCH_RUNS:-3}
CAIRN=$(realpath "${CAIRN:-target/release/cairn}")
export RESTIC_PASSWORD=bench

command -v restic >/dev/null || { echo "restic is required"; exit 1; }
[ -x "$CAIRN" ] || { echo "$CAIRN not found: run make release"; exit 1; }

drop_caches() {
  sync
  if [ "$(id -u)" = 0 ]; then echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; fi
}

mkdir -p "$DIR"
STAMP="$DIR/.repo-$MB-$SNAPS"
if [ ! -f "$STAMP" ]; then
  echo "generating $MB MiB in $DIR/src and $SNAPS restic snapshots (5% changes each)"
  rm -rf "$DIR/src" "$DIR/repo" "$DIR"/.repo-*
  mkdir -p "$DIR/src"
  RESTIC_REPOSITORY=$DIR/repo restic init -q --repository-version 2
  for i in $(seq 1 "$SNAPS"); do
    python3 - "$DIR/src" "$MB" "$i" <<'PY'
import os, sys, random
root, mb, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(step)
files = max(1, mb * 4)            # 256 KiB per file on average
change = files if step == 1 else max(1, files // 20)
for k in range(change):
    n = k if step == 1 else rnd.randrange(files)
    d = os.path.join(root, f"d{n % 32:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{n}"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(16 << 10, 496 << 10)))
PY
    (cd "$DIR" && RESTIC_REPOSITORY=$DIR/repo restic backup -q --no-cache \
       --time "$(date -d "2024-01-01 +$i day" '+%Y-%m-%d %H:%M:%S')" src)
  done
  touch "$STAMP"
fi
echo "repository: $(du -sh "$DIR/repo" | cut -f1), $SNAPS snapshots"

fresh() { rm -rf "$DIR/$1"; cp -a "$DIR/repo" "$DIR/$1"; }

# measure TOOL ARGS... : "wall cpu" of one command, in seconds (cpu is user
# plus system time of the command and its children).
measure() {
  local t
  drop_caches
  t=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>/dev/null; } 2>&1 )
  echo "$t" | awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }'
}

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
for run in $(seq 1 "$RUNS"); do
  for tool in restic cairn; do
    fresh "work-$tool"
    if [ "$tool" = restic ]; then bin=(restic --no-cache); else bin=("$CAIRN"); fi
    export RESTIC_REPOSITORY=$DIR/work-$tool
    read -r fw fc < <(measure "${bin[@]}" forget -q --keep-last "$KEEP")
    read -r pw pc < <(measure "${bin[@]}" prune -q --max-unused 0)
    echo "$tool prune $(echo "$fw + $pw" | bc) $(echo "$fc + $pc" | bc)" >> "$RESULTS"
    if [ "$run" = 1 ]; then
      echo "$tool: forget+prune $(du -sh "$RESTIC_REPOSITORY" | cut -f1) left"
      if [ "$tool" = cairn ]; then
        # The pruned repository must still check out with restic.
        restic --no-cache check -q --read-data >/dev/null
        echo "restic check --read-data on cairn's pruned copy: ok"
      fi
    fi
    fresh "work-$tool"
    echo "$tool check $(measure "${bin[@]}" check -q --read-data)" >> "$RESULTS"
  done
done

# med TOOL OP FIELD : median of one column (3 = wall, 4 = cpu)
med() { awk -v t="$1" -v o="$2" -v f="$3" '$1 == t && $2 == o { print $f }' "$RESULTS" | median; }

printf '\nmedians of %d runs     %21s %21s %15s\n' "$RUNS" "restic (wall / cpu)" "cairn (wall / cpu)" "ratio wall/cpu"
for op in prune check; do
  rw=$(med restic $op 3) rc=$(med restic $op 4) cw=$(med cairn $op 3) cc=$(med cairn $op 4)
  printf '%-22s %9.2fs / %6.2fs %9.2fs / %6.2fs %7.2f / %5.2f\n' \
    "$([ $op = prune ] && echo forget+prune || echo 'check --read-data')" \
    "$rw" "$rc" "$cw" "$cc" "$(echo "$cw / $rw" | bc -l)" "$(echo "$cc / $rc" | bc -l)"
done
rm -rf "$DIR/work-restic" "$DIR/work-cairn"
