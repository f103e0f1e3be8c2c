//! Throughput of the primitives a backup runs on every byte: chunking,
//! SHA-256, zstd and AES-256-CTR + Poly1305 encryption, on one core.
//! Used by `scripts/bench-backup.sh`; prints one `name MB/s` line each and
//! the CPU features RustCrypto can use (it picks SHA-NI, AES-NI and AVX2
//! at run time).
//!
//! `cargo run --release --example bench_primitives [MiB]`

use std::time::Instant;

use cairn_core::chunker::{Chunker, ChunkerKind, Polynomial};
use cairn_core::compression::{compress_smaller, CompressionMode};
use cairn_core::crypto::MasterKey;
use cairn_core::id::Id;

fn noise(n: usize) -> Vec<u8> {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn rate(name: &str, bytes: usize, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let secs = start.elapsed().as_secs_f64();
    println!("{name:<24} {:8.0} MB/s", bytes as f64 / secs / 1e6);
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let data = noise(mib << 20);
    #[cfg(target_arch = "x86_64")]
    {
        let f = |name: &str, on: bool| format!("{name}={}", if on { "yes" } else { "no" });
        println!(
            "cpu features: {} {} {} {} {}",
            f("sha_ni", std::arch::is_x86_feature_detected!("sha")),
            f("aes_ni", std::arch::is_x86_feature_detected!("aes")),
            f(
                "pclmulqdq",
                std::arch::is_x86_feature_detected!("pclmulqdq")
            ),
            f("avx2", std::arch::is_x86_feature_detected!("avx2")),
            f("vaes", std::arch::is_x86_feature_detected!("vaes")),
        );
    }
    let pol = Polynomial::new(0x3DA3358B4DC173).expect("polynomial");
    for kind in [ChunkerKind::Rabin(pol), ChunkerKind::FastCdc] {
        rate(&format!("chunker {}", kind.name()), data.len(), || {
            let n = Chunker::new(kind, &data[..]).count();
            assert!(n > 0);
        });
    }
    rate("sha256", data.len(), || {
        for c in data.chunks(1 << 20) {
            std::hint::black_box(Id::hash(c));
        }
    });
    let key = MasterKey::generate();
    rate("aes-ctr+poly1305", data.len(), || {
        let mut out = Vec::with_capacity((1 << 20) + 32);
        for c in data.chunks(1 << 20) {
            out.clear();
            key.encrypt_into(c, &mut out);
            std::hint::black_box(&out);
        }
    });
    let mut compressed = Vec::new();
    rate("zstd auto (random)", data.len(), || {
        for c in data.chunks(1 << 20) {
            std::hint::black_box(compress_smaller(c, CompressionMode::Auto, &mut compressed));
        }
    });
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog 0123456789\n"
        .iter()
        .copied()
        .cycle()
        .take(data.len() / 4)
        .collect();
    rate("zstd auto (text)", text.len(), || {
        for c in text.chunks(1 << 20) {
            std::hint::black_box(compress_smaller(c, CompressionMode::Auto, &mut compressed));
        }
    });
}
