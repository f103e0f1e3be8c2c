#!/usr/bin/env bash
# Benchmark: cairn backup vs restic backup (and rustic, if installed).
#
# Three data sets, generated once and reused:
#   mixed: large incompressible files, compressible text and >= 20k small
#          files (about BENCH_MIXED_MB in all);
#   tiny:  BENCH_TINY tiny files in a few hundred directories;
#   big:   one incompressible file of BENCH_BIG_MB.
# For each data set and tool, on a fresh repository (format v2, compression
# auto, the tool's default chunker settings): the initial backup and a
# no-change re-backup, each with wall time and peak RSS (GNU time).
# Repositories live on tmpfs (/dev/shm) when it has room, so the numbers
# measure the tools, not the disk's fsync speed; the data is read from the
# page cache unless BENCH_DROP_CACHES=1 (needs root). Then ratios:
# throughput cairn/restic for initial backups (target >= 2.5), time
# cairn/restic for re-backups (target <= 0.3), RSS cairn/restic (target
# <= 1). Finally the single-core speed of chunking, SHA-256, AES-CTR +
# Poly1305 and zstd, with the CPU features RustCrypto detects.
# Not a test: numbers vary with the machine; the script never fails on a
# missed target.
#
# Knobs (environment):
#   BENCH_DIR       work directory             (default /tmp/cairn-bench-backup)
#   BENCH_MIXED_MB  size of the mixed set      (default 1024)
#   BENCH_SMALL     small files in mixed       (default 20000)
#   BENCH_TINY      tiny files                 (default 100000)
#   BENCH_BIG_MB    size of the big file       (default 2048)
#   BENCH_SETS      data sets to run           (default "mixed tiny big")
#   BENCH_REPO_DIR  where repositories go      (default /dev/shm/cairn-bench-repos
#                                               if it has 8 GiB free, else BENCH_DIR)
#   BENCH_DROP_CACHES=1  drop the page cache before every backup
#   CAIRN           cairn binary               (default target/release/cairn)
set -euo pipefail

DIR=${BENCH_DIR:-/tmp/cairn-bench-backup}
MIXED_MB=${BENCH_MIXED_MB:-1024}
SMALL=${BENCH_SMALL:-20000}
TINY=${BENCH_TINY:-100000}
BIG_MB=${BENCH_BIG_MB:-2048}
SETS=${BENCH_SETS:-mixed tiny big}
CAIRN=$(realpath "${CAIRN:-target/release/cairn}")
export RESTIC_PASSWORD=bench
export XDG_CACHE_HOME=$DIR/cache
if [ -z "${BENCH_REPO_DIR:-}" ]; then
  free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
  if [ "${free_kb:-0}" -gt $((8 << 20)) ]; then BENCH_REPO_DIR=/dev/shm/cairn-bench-repos; else BENCH_REPO_DIR=$DIR; fi
fi
REPOS=$BENCH_REPO_DIR
mkdir -p "$REPOS"

command -v restic >/dev/null || { echo "restic is required"; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required"; exit 1; }
TOOLS="cairn restic"
command -v rustic >/dev/null && TOOLS="$TOOLS rustic"

mkdir -p "$DIR/data"
gen() { # set
  local set=$1 stamp=$DIR/data/.$1-$MIXED_MB-$SMALL-$TINY-$BIG_MB
  [ -f "$stamp" ] && return
  rm -rf "${DIR:?}/data/$set"
  mkdir -p "$DIR/data/$set"
  echo "generating data set '$set' in $DIR/data/$set"
  python3 - "$DIR/data/$set" "$set" "$MIXED_MB" "$SMALL" "$TINY" <<'PY'
import os, random, sys
root, kind, mixed_mb, small, tiny = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(4)
def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
if kind == "mixed":
    small_bytes = 0
    for i in range(small):  # small files, 0-16 KiB, half random, half text
        n = rnd.randint(0, 16384)
        data = rnd.randbytes(n) if i % 2 else (b"line %d of a small text file\n" % i) * (n // 28 + 1)
        write(os.path.join(root, "small", "d%03d" % (i % 200), "f%06d" % i), data[:n])
        small_bytes += n
    rest = mixed_mb * 2**20 - small_bytes
    words = [b"backup", b"restic", b"cairn", b"chunk", b"pack", b"index", b"tree", b"blob",
             b"snapshot", b"repository", b"the", b"a", b"of", b"and", b"to", b"in"]
    text_bytes = rest // 3
    i = 0
    while text_bytes > 0:  # compressible text, 32 MiB files
        n = min(text_bytes, 32 * 2**20)
        line = b" ".join(rnd.choice(words) for _ in range(4096)) + b"\n"
        out = bytearray()
        while len(out) < n:
            out += line[rnd.randint(0, 1000):] + b"%d\n" % len(out)
        write(os.path.join(root, "text", "t%02d.txt" % i), bytes(out[:n]))
        text_bytes -= n
        i += 1
    big_bytes = rest - rest // 3
    i = 0
    while big_bytes > 0:  # incompressible, 128 MiB files
        n = min(big_bytes, 128 * 2**20)
        write(os.path.join(root, "large", "r%02d.bin" % i), os.urandom(n))
        big_bytes -= n
        i += 1
elif kind == "tiny":
    for i in range(tiny):
        write(os.path.join(root, "d%03d" % (i % 500), "t%06d" % i), b"tiny file %d\n" % i)
PY
  if [ "$set" = big ]; then
    head -c $((BIG_MB << 20)) /dev/urandom > "$DIR/data/big/big.bin"
  fi
  touch "$stamp"
}

# Before each backup: drop the page cache (BENCH_DROP_CACHES=1), or else
# read the data set once so that every tool starts with it cached (the
# tool that runs first must not pay for the disk alone).
drop() { # set
  if [ "${BENCH_DROP_CACHES:-0}" = 1 ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  else
    find "$DIR/data/$1" -type f -print0 | xargs -0 -r cat > /dev/null
  fi
}

# run TOOL SET: time one backup; sets SECS, CPU (user+sys s) and RSS_KB.
run() {
  local tool=$1 set=$2 repo=$REPOS/repo-$1-$2
  export RESTIC_REPOSITORY=$repo RUSTIC_REPOSITORY=$repo RUSTIC_PASSWORD=bench
  local cmd
  case $tool in
    cairn) cmd=("$CAIRN" backup --quiet "$set") ;;
    restic) cmd=(restic backup --quiet "$set") ;;
    rustic) cmd=(rustic backup --no-progress "$set") ;;
  esac
  drop "$set"
  if ! (cd "$DIR/data" && /usr/bin/time -o "$DIR/time.log" -f '%e %M %U %S' "${cmd[@]}" >/dev/null 2>"$DIR/err.log"); then
    echo "$tool backup of $set failed:"; tail -5 "$DIR/err.log"; SECS=nan; RSS_KB=0; CPU=nan; return
  fi
  local user sys
  read -r SECS RSS_KB user sys < "$DIR/time.log"
  CPU=$(python3 -c "print('%.2f' % ($user + $sys))")
}

init() { # tool set
  local repo=$REPOS/repo-$1-$2
  rm -rf "$repo"
  case $1 in
    cairn) RESTIC_REPOSITORY=$repo "$CAIRN" init --repository-version 2 >/dev/null ;;
    restic) RESTIC_REPOSITORY=$repo restic init --repository-version 2 >/dev/null ;;
    rustic) RUSTIC_REPOSITORY=$repo RUSTIC_PASSWORD=bench rustic init >/dev/null 2>&1 ;;
  esac
}

declare -A INIT REBK RSS ICPU RCPU
echo "repositories in $REPOS; data in $DIR/data; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-7s %9s %8s %8s %11s %8s %9s\n' set tool "init s" "cpu s" "MB/s" "rebackup s" "cpu s" "peak MiB"
for set in $SETS; do
  gen "$set"
  bytes=$(du -sb "$DIR/data/$set" | cut -f1)
  for tool in $TOOLS; do
    init "$tool" "$set"
    run "$tool" "$set"; INIT[$tool.$set]=$SECS; ICPU[$tool.$set]=$CPU; rss1=$RSS_KB
    run "$tool" "$set"; REBK[$tool.$set]=$SECS; RCPU[$tool.$set]=$CPU; rss2=$RSS_KB
    RSS[$tool.$set]=$(( rss1 > rss2 ? rss1 : rss2 ))
    mbs=$(python3 -c "s=float('${INIT[$tool.$set]}'); print('%.1f' % ($bytes/1e6/s) if s==s and s>0 else 'nan')")
    printf '%-8s %-7s %9s %8s %8s %11s %8s %9d\n' "$set" "$tool" "${INIT[$tool.$set]}" "${ICPU[$tool.$set]}" "$mbs" \
      "${REBK[$tool.$set]}" "${RCPU[$tool.$set]}" $(( RSS[$tool.$set] / 1024 ))
    rm -rf "${REPOS:?}/repo-$tool-$set" "$XDG_CACHE_HOME"
  done
done

echo
echo "ratios cairn vs restic (targets: initial throughput >= 2.5x, re-backup time <= 0.3x, RSS <= 1x)"
for set in $SETS; do
  python3 - "$set" "${INIT[cairn.$set]}" "${INIT[restic.$set]}" "${REBK[cairn.$set]}" "${REBK[restic.$set]}" \
    "${RSS[cairn.$set]}" "${RSS[restic.$set]}" "${ICPU[cairn.$set]}" "${ICPU[restic.$set]}" <<'PY'
import sys
s, ci, ri, cr, rr, cm, rm, cc, rc = sys.argv[1], *map(float, sys.argv[2:])
f = lambda a, b: "%.2f" % (a / b) if b > 0 and a == a and b == b else "n/a"
print("%-6s initial throughput %sx (cpu %sx less)   re-backup time %sx   peak RSS %sx"
      % (s, f(ri, ci), f(rc, cc), f(cr, rr), f(cm, rm)))
PY
done

echo
echo "single-core primitives (cargo run --release --example bench_primitives)"
cargo run -q --release --example bench_primitives 256
