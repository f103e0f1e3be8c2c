//! The binary's global allocator: mimalloc.
//!
//! The backup and restore pipelines allocate and free megabyte buffers at a
//! high rate; mimalloc keeps freed pages committed for reuse, where glibc's
//! malloc serves such sizes with fresh, zero-filled pages (page faults) and
//! per-thread arenas that fragment.
//!
//! Objects above 16 MiB are the exception (set at build time in
//! `.cargo/config.toml`): they come straight from the OS and are unmapped
//! when freed. Those are scrypt's tables — 32 MiB per lane, filled on rayon
//! threads when a key is opened — which mimalloc's arenas would otherwise
//! keep committed for a second, through the start of every backup or
//! restore.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(test)]
mod tests {
    /// Resident anonymous memory of this process, in bytes.
    fn rss_anon() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("RssAnon line");
        kib << 10
    }

    #[test]
    fn a_freed_scrypt_sized_table_leaves_memory_at_once() {
        const SIZE: usize = 64 << 20;
        let before = rss_anon();
        // Written, so every page is resident, as scrypt's tables are.
        let table = vec![1u8; SIZE];
        let held = rss_anon();
        assert!(
            held >= before + (SIZE as u64) * 7 / 8,
            "the table should be resident: {before} -> {held} bytes"
        );
        drop(std::hint::black_box(table));
        let after = rss_anon();
        // Other tests may allocate meanwhile, but only returning the table
        // can take the resident size this far down.
        assert!(
            after + (SIZE as u64) * 7 / 8 <= held,
            "a freed 64 MiB object should be unmapped at once \
             (built without .cargo/config.toml's CFLAGS?): {held} -> {after} bytes"
        );
    }
}
