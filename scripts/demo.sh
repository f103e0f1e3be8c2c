#!/usr/bin/env bash
# The demo behind `make demo`: init a repository in a temp dir, back up a
# small directory, list snapshots and files, restore, and verify the restored
# tree equals the source; then mount the repository, list it, compare the
# mounted snapshot with the source and unmount.
set -euo pipefail
CAIRN=${1:-target/release/cairn}
CAIRN=$(realpath "$CAIRN")
work=$(mktemp -d /tmp/cairn-demo.XXXXXX)
trap 'fusermount3 -uz "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
export RESTIC_REPOSITORY="$work/repo" RESTIC_PASSWORD=demo-password

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

src="$work/data"
mkdir -p "$src/docs/notes" "$src/empty"
for i in 1 2 3; do echo "note $i: cairn keeps restic's format" > "$src/docs/notes/note$i.txt"; done
head -c 3000000 /dev/urandom > "$src/docs/random.bin"
ln -s notes/note1.txt "$src/docs/link"
ln "$src/docs/notes/note2.txt" "$src/docs/hardlink"

step "$CAIRN" init
step "$CAIRN" backup "$src" --tag demo
echo "a new file" > "$src/docs/new.txt"
step "$CAIRN" backup "$src" --tag demo
step "$CAIRN" snapshots
step "$CAIRN" ls -l latest
step "$CAIRN" check --read-data
step "$CAIRN" restore latest --target "$work/restore"
step diff -r "$src" "$work/restore$src"

# Mount the repository, browse it, compare the mounted snapshot with the
# source, unmount.
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
  mnt="$work/mnt"
  mkdir -p "$mnt"
  printf '\n\033[1m$ %s\033[0m\n' "$CAIRN mount $mnt &"
  "$CAIRN" mount "$mnt" &
  mount_pid=$!
  for _ in $(seq 300); do [ -d "$mnt/snapshots" ] && break; sleep 0.1; done
  [ -d "$mnt/snapshots" ] || { echo "the mount did not come up"; kill "$mount_pid"; exit 1; }
  step ls "$mnt" "$mnt/snapshots"
  step ls -l "$mnt/snapshots/latest$src/docs"
  step ls "$mnt/history$src/docs/notes/note1.txt"
  step diff -r "$src" "$mnt/snapshots/latest$src"
  step fusermount3 -u "$mnt"
  wait "$mount_pid"
else
  echo "(skipping the mount step: FUSE is not available here)"
fi
echo
echo "demo OK: the restored tree and the mounted snapshot equal the source"
