//! The binary's global allocator: mimalloc, except for objects of 16 MiB
//! and more, which get mappings of their own, advised for transparent huge
//! pages.
//!
//! The backup and restore pipelines allocate and free megabyte buffers at a
//! high rate; mimalloc keeps freed pages committed for reuse, where glibc's
//! malloc serves such sizes with fresh, zero-filled pages (page faults) and
//! per-thread arenas that fragment.
//!
//! Large objects are the exception. Most of them are scrypt's tables —
//! 32 MiB per lane, one lane after another on two threads, every time a
//! key is opened — and the rest are whole packs and the largest blobs.
//! - Kept in mimalloc's arenas, a freed table would stay committed for a
//!   second, through the start of every backup or restore: a mapping of its
//!   own is unmapped (its memory returned) the moment it is freed.
//! - Faulted in 4 KiB at a time, a table costs 8,192 page faults, a third
//!   of a lane's time on these VMs. `MADV_HUGEPAGE` makes that sixteen
//!   2 MiB faults where the kernel allows transparent huge pages for
//!   advised memory (Debian's default, `madvise`): opening a key with
//!   p = 7 takes 0.19 s instead of 0.26 s. Elsewhere the advice is ignored.
//!
//! `unsafe` here is the allocator contract and the `mmap`, `mremap`,
//! `madvise` and `munmap` system calls; nothing else in cairn needs it.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: Allocator = Allocator;

/// Objects of at least this size are mapped on their own.
const LARGE: usize = 16 << 20;

/// Alignment every mapping has (the page size is at least this).
const MAP_ALIGN: usize = 4096;

struct Allocator;

/// Whether objects of `layout` get mappings of their own.
fn is_large(layout: Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= MAP_ALIGN
}

// SAFETY: every block comes from exactly one of mimalloc and `map`, chosen
// by `is_large` of its layout, and goes back to the same one: the contract
// hands `dealloc` and `realloc` the layout the block was allocated with.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) {
            map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) {
            // Fresh anonymous memory reads as zeros.
            map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if is_large(layout) {
            // SAFETY: `block` is a mapping of `layout.size()` from `map`.
            unsafe { unmap(block, layout.size()) }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { MiMalloc.dealloc(block, layout) }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the contract guarantees `new_size`, rounded up to the
        // alignment, does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(layout), is_large(new_layout)) {
            // SAFETY: the caller's contract, passed on.
            (false, false) => unsafe { MiMalloc.realloc(block, layout, new_size) },
            // SAFETY: `block` is a mapping of `layout.size()` from `map`.
            (true, true) => unsafe { remap(block, layout.size(), new_size) },
            _ => {
                // SAFETY: `new_layout` has a nonzero size (one of the two
                // sizes is at least `LARGE`, and shrinking to zero is not
                // allowed); the old block is valid for `layout.size()`
                // bytes, the new one for `new_size`, and they are distinct.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

/// A fresh private anonymous mapping of `size` bytes, advised for huge
/// pages; null if the system has no memory for it.
fn map(size: usize) -> *mut u8 {
    // SAFETY: a new anonymous mapping touches no existing memory.
    let block = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if block == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    advise_huge_pages(block, size);
    block.cast()
}

/// Ask for transparent huge pages; a kernel without them (or with them
/// turned off) refuses or ignores the advice, which changes nothing else.
fn advise_huge_pages(block: *mut libc::c_void, size: usize) {
    // SAFETY: advice on a mapping this allocator owns; it does not change
    // the contents.
    unsafe { libc::madvise(block, size, libc::MADV_HUGEPAGE) };
}

/// Grow or shrink a mapping from [`map`], moving it if need be; null (and
/// the old mapping untouched) if the system has no memory for it.
///
/// # Safety
/// `block` must be a live mapping of `size` bytes from [`map`].
unsafe fn remap(block: *mut u8, size: usize, new_size: usize) -> *mut u8 {
    // SAFETY: per the caller, `block..block + size` is one of our mappings.
    let moved = unsafe { libc::mremap(block.cast(), size, new_size, libc::MREMAP_MAYMOVE) };
    if moved == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    advise_huge_pages(moved, new_size);
    moved.cast()
}

/// Return a mapping from [`map`] to the system.
///
/// # Safety
/// `block` must be a live mapping of `size` bytes from [`map`], not used
/// afterwards.
unsafe fn unmap(block: *mut u8, size: usize) {
    // SAFETY: per the caller. munmap cannot fail on a whole mapping of ours.
    unsafe { libc::munmap(block.cast(), size) };
}

#[cfg(test)]
mod tests {
    use super::LARGE;

    /// A field of this process's `/proc/self/status`, in bytes.
    fn status_bytes(field: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} line"));
        kib << 10
    }

    fn rss_anon() -> u64 {
        status_bytes("RssAnon:")
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
            "a freed 64 MiB object should be unmapped at once: {held} -> {after} bytes"
        );
    }

    /// Whether the kernel gives huge pages to memory advised for them.
    fn huge_pages_on_advice() -> bool {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|mode| mode.contains("[always]") || mode.contains("[madvise]"))
    }

    /// Huge pages backing the mapping that holds `addr`, from smaps.
    fn huge_pages_at(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((start, end)) = range.split_once('-') {
                if let (Ok(start), Ok(end)) = (
                    usize::from_str_radix(start, 16),
                    usize::from_str_radix(end, 16),
                ) {
                    inside = (start..end).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("AnonHugePages:") {
                    return v
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                        << 10;
                }
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn a_large_table_is_faulted_in_huge_pages() {
        if !huge_pages_on_advice() {
            eprintln!("transparent huge pages are off here: nothing to check");
            return;
        }
        const SIZE: usize = 32 << 20;
        let mut table = vec![0u8; SIZE];
        for page in table.chunks_mut(4096) {
            page[0] = 1;
        }
        let huge = huge_pages_at(table.as_ptr() as usize + SIZE / 2);
        // Most of it: the kernel may fall back to small pages at unaligned
        // ends or when it has no free huge page at hand.
        assert!(
            huge >= (SIZE as u64) / 2,
            "a written 32 MiB table should mostly sit in huge pages, has {huge} bytes"
        );
        drop(std::hint::black_box(table));
    }

    #[test]
    fn growing_and_shrinking_across_the_threshold_keeps_the_contents() {
        let pattern = |i: usize| (i % 251) as u8;
        let mut v: Vec<u8> = (0..LARGE / 2).map(pattern).collect();
        // Small to large, large to larger (mremap), back to small.
        v.reserve_exact(LARGE - v.len() + 1);
        assert!(v.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        v.extend((v.len()..3 * LARGE).map(pattern));
        assert!(v.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        v.truncate(1000);
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        let zeroed = vec![0u8; 2 * LARGE];
        assert!(zeroed.iter().all(|&b| b == 0));
    }
}
