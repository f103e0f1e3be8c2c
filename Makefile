# cairn — build, demo and test entry points.
#   make demo   build cairn and run its main job on a local demo repository
#   make test   install what the suite needs, then run the whole suite
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build release demo test deps lint fmt unit integration clean bench-mount bench-maintenance bench-backup bench-restore

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p cairn

# System packages the suite uses: restic (interop peer), fuse3 (mount tests),
# rsync, attr (xattr tools). Installed only when missing.
deps:
	@need=""; \
	command -v restic >/dev/null || need="$$need restic"; \
	command -v fusermount3 >/dev/null || need="$$need fuse3"; \
	command -v rsync >/dev/null || need="$$need rsync"; \
	command -v setfattr >/dev/null || need="$$need attr"; \
	command -v pkg-config >/dev/null || need="$$need pkg-config"; \
	command -v unzip >/dev/null || need="$$need unzip"; \
	[ -x /usr/bin/time ] || need="$$need time"; \
	dpkg -s libfuse3-dev >/dev/null 2>&1 || need="$$need libfuse3-dev"; \
	[ -e /usr/share/zoneinfo/Europe/Berlin ] || need="$$need tzdata"; \
	if [ -n "$$need" ]; then \
	  echo "installing:$$need"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$need; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo is required (rustup toolchain)"; exit 1; }

demo: release
	./scripts/demo.sh target/release/cairn

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --lib --bins

integration:
	$(CARGO) test --workspace --tests

test: deps lint
	$(CARGO) test --workspace

# Benchmark (not a test): cairn mount vs restic mount on generated data.
# Knobs: BENCH_FILES (100000), BENCH_BIG_MB (2048), BENCH_DIR.
bench-mount: release deps
	./scripts/bench-mount.sh

# Benchmark (not a test): forget+prune and check --read-data, cairn vs
# restic on copies of one repository. Knobs: BENCH_MB (128),
# BENCH_SNAPSHOTS (30), BENCH_KEEP (5), BENCH_DIR.
bench-maintenance: release deps
	./scripts/bench-maintenance.sh

# Benchmark (not a test): cairn backup vs restic (and rustic) backup on
# generated data: initial and no-change backups, peak RSS, ratios, and the
# speed of the hashing/encryption primitives.
# Knobs: BENCH_MIXED_MB (1024), BENCH_SMALL (20000), BENCH_TINY (100000),
# BENCH_BIG_MB (2048), BENCH_SETS, BENCH_DIR, BENCH_REPO_DIR.
bench-backup: release deps
	./scripts/bench-backup.sh

# Benchmark (not a test): cairn restore vs restic (and rustic) restore from
# one repository: a mixed ~1 GiB set and 100k small files, cold cache,
# times, peak RSS, ratios, and cairn's re-run into the restored target.
# Knobs: BENCH_MIXED_MB (1024), BENCH_FILES (100000), BENCH_TOOLS, BENCH_DIR.
bench-restore: release deps
	./scripts/bench-restore.sh

clean:
	$(CARGO) clean
