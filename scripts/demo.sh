#!/usr/bin/env bash
# The demo behind `make demo`: init a repository in a temp dir, back up a
# small directory, list snapshots and files, restore, and verify the restored
# tree equals the source.
set -euo pipefail
CAIRN=${1:-target/release/cairn}
CAIRN=$(realpath "$CAIRN")
work=$(mktemp -d /tmp/cairn-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
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
echo
echo "demo OK: the restored tree equals the source"
